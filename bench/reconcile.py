"""Reconciliation of a large paper book, against a raw SQL join of the same two sides.

    .venv/bin/python bench/reconcile.py                    # 5,000 open positions
    .venv/bin/python bench/reconcile.py --positions 1000

It makes its own database (``oms_bench_ops`` on the embedded PostgreSQL: dropped, created,
migrated) and writes, with bulk inserts, a book that agrees with the paper exchange:
``--strategies`` paper strategies holding ``--positions`` open positions in all, each
instrument held by ``--holders`` strategies (longs and shorts, so netting matters); behind each
position one FILLED order of ours and, at the paper exchange, its paper order and paper trade;
with ``--working N``, also N working orders (LIMIT buys below the market, OPEN here and there),
which reconciliation compares one by one with the paper exchange's order book.
Then, after a VACUUM ANALYZE, it times:

- ``reconcile_positions(dry_run=True)``: both books read through the broker interface, netted,
  compared; the working orders compared with the paper order book;
- the yardstick: two raw SQL joins of the same sides, every row fetched: our open positions
  netted per instrument FULL JOIN the paper trades netted per instrument, and our orders that
  can still differ (neither FILLED nor REJECTED, as reconciliation compares) JOIN the paper
  orders on the broker's order id.

Each is run seven times and the fastest kept. It prints both and their ratio (target <= 3).
"""

from __future__ import annotations

import argparse
import sys
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import benchdb

TARGET_RATIO = 3.0
POSITIONS_JOIN = """
WITH ours AS (
    SELECT p.symbol, p.exchange, p.product, sum(p.quantity) AS quantity,
           sum(p.quantity * p.average_price) AS cost
    FROM positions p JOIN strategies s ON s.id = p.strategy_id
    WHERE p.closed_at IS NULL AND s.mode = 'PAPER'
    GROUP BY 1, 2, 3
),
theirs AS (
    SELECT po.symbol, po.exchange, po.product,
           sum(CASE WHEN po.side = 'BUY' THEN pt.quantity ELSE -pt.quantity END) AS quantity,
           sum(pt.quantity * pt.price) FILTER (WHERE po.side = 'BUY') AS bought_value
    FROM paper_trades pt JOIN paper_orders po ON po.id = pt.paper_order_id
    GROUP BY 1, 2, 3
)
SELECT * FROM ours FULL JOIN theirs USING (symbol, exchange, product)
"""
ORDERS_JOIN = """
SELECT o.id, o.status, o.filled_quantity, po.status, po.filled_quantity, po.average_price
FROM orders o JOIN paper_orders po ON po.broker_order_id = o.broker_order_id
WHERE o.status NOT IN ('REJECTED', 'FILLED')
"""


def load(positions: int, strategies: int, holders: int, working_orders: int) -> None:
    """A book and a paper exchange that agree, written with bulk inserts."""
    from django.db import connection, transaction
    from django.utils import timezone

    from orders.enums import StrategyMode
    from orders.models import Order, PaperOrder, PaperTrade, Strategy
    from positions.models import Position

    now = timezone.now()
    began = time.perf_counter()
    with transaction.atomic():
        book = Strategy.objects.bulk_create(
            Strategy(name=f"Bench {n:03d}", mode=StrategyMode.PAPER) for n in range(strategies)
        )
        instruments = positions // holders
        rows = []
        for number in range(instruments * holders):
            symbol, holder = divmod(number, holders)
            strategy = book[(symbol + holder) % strategies]  # distinct holders
            # Holders of an instrument alternate long and short, larger longs: net long.
            quantity = (10 + holder) * (1 if holder % 2 == 0 else -1)
            price = Decimal(100 + symbol % 900) + Decimal(holder) / 20
            rows.append((strategy, f"BENCH{symbol:05d}", quantity, price))
        Position.objects.bulk_create(
            Position(
                strategy=strategy,
                symbol=symbol,
                exchange="NSE",
                product="MIS",
                quantity=quantity,
                average_price=price,
                opened_at=now,
            )
            for strategy, symbol, quantity, price in rows
        )
        working = [
            Order(
                strategy=strategy,
                client_order_id=f"bench-working-{n}",
                broker_tag=f"BENCHW{n:014d}",
                broker_order_id=f"PBW{n:011d}",
                symbol=symbol,
                exchange="NSE",
                side="BUY",
                quantity=5,
                order_type="LIMIT",
                price=price - 1,
                product="MIS",
                status="OPEN",
            )
            for n, (strategy, symbol, _, price) in enumerate(rows[:working_orders])
        ]
        orders = Order.objects.bulk_create(
            working
            + [
                Order(
                    strategy=strategy,
                    client_order_id=f"bench-{n}",
                    broker_tag=f"BENCH{n:015d}",
                    broker_order_id=f"PB{n:012d}",
                    symbol=symbol,
                    exchange="NSE",
                    side="BUY" if quantity > 0 else "SELL",
                    quantity=abs(quantity),
                    order_type="MARKET",
                    product="MIS",
                    status="FILLED",
                    filled_quantity=abs(quantity),
                    average_price=price,
                )
                for n, (strategy, symbol, quantity, price) in enumerate(rows)
            ]
        )
        paper_orders = PaperOrder.objects.bulk_create(
            PaperOrder(
                strategy_id=order.strategy_id,
                tag=order.broker_tag,
                broker_order_id=order.broker_order_id,
                symbol=order.symbol,
                exchange="NSE",
                product="MIS",
                side=order.side,
                order_type="MARKET",
                validity="DAY",
                quantity=order.quantity,
                status="COMPLETE" if order.status == "FILLED" else "OPEN",
                filled_quantity=order.filled_quantity,
                average_price=order.average_price,
                price=order.price,
            )
            for order in orders
        )
        PaperTrade.objects.bulk_create(
            PaperTrade(
                paper_order=paper,
                trade_id=f"{paper.broker_order_id}-T1",
                quantity=paper.quantity,
                price=paper.average_price,
                executed_at=now,
            )
            for paper in paper_orders
            if paper.filled_quantity
        )
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    print(
        f"book: {len(rows):,} open positions of {strategies} strategies on {instruments:,} "
        f"instruments, {len(orders):,} orders ({len(working):,} working) with their paper "
        "orders and trades; "
        f"loaded in {time.perf_counter() - began:.1f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--positions", type=int, default=5000)
    parser.add_argument("--strategies", type=int, default=25)
    parser.add_argument("--holders", type=int, default=5, help="strategies per instrument")
    parser.add_argument(
        "--working", type=int, default=0, help="working orders (at most one per position)"
    )
    parser.add_argument("--database", default=benchdb.DEFAULT_DATABASE)
    parser.add_argument("--runs", type=int, default=7)
    options = parser.parse_args()
    if options.holders > options.strategies:
        raise SystemExit("--holders: at most --strategies")

    benchdb.fresh_database(options.database)
    from django.db import connection

    from positions.reconciliation import reconcile_positions

    load(options.positions, options.strategies, options.holders, options.working)
    report = reconcile_positions(dry_run=True)
    if report.findings:
        raise SystemExit(f"the bench book should agree: {report.findings[:3]}")
    print(f"reconcile_positions: {report.summary()}")

    def reconcile() -> None:
        reconcile_positions(dry_run=True)

    def raw() -> None:
        with connection.cursor() as cursor:
            cursor.execute(POSITIONS_JOIN)
            cursor.fetchall()
            cursor.execute(ORDERS_JOIN)
            cursor.fetchall()

    raw()
    reconcile_seconds = benchdb.best_of(options.runs, reconcile)
    raw_seconds = benchdb.best_of(options.runs, raw)
    ratio = reconcile_seconds / raw_seconds
    print(f"reconcile_positions(dry_run=True):         {reconcile_seconds * 1000:8.1f} ms")
    print(f"raw SQL joins (positions, orders):         {raw_seconds * 1000:8.1f} ms")
    verdict = "met" if ratio <= TARGET_RATIO else "NOT met"
    print(f"ratio {ratio:.2f} (target <= {TARGET_RATIO:.0f}: {verdict})")


if __name__ == "__main__":
    main()
