"""Fill application against a raw INSERT of the same trade row, in the same run.

    .venv/bin/python bench/fill_apply.py                    # 2,000 fills each way
    .venv/bin/python bench/fill_apply.py --fills 10000 --rounds 8

It makes its own database (``oms_bench_fills`` on the embedded PostgreSQL: dropped, created,
migrated), a paper strategy and, on a few instruments, OPEN orders of 50 shares that fill in
parts of 10 (a buy order, a second buy, then two sells: positions open, grow, shrink, close
and realize PnL, as a day's book does). Then, on the one Django connection:

- the OMS: ``orders.services.fill_apply`` once per fill, as a broker report arrives — the
  duplicate check, the locks (strategy, position, order), the charges, the trade, the order's
  quantities and status, its events, the position and the strategy's counters, in one
  transaction;
- the yardstick: one INSERT of the same trade row (every column, charges included) into
  ``bench_raw_trades``, a copy of the ``trades`` table with its indexes and check constraints
  but no triggers, each INSERT its own transaction (autocommit).

The two alternate in ``--rounds`` blocks, so a noisy neighbour slows both alike. It prints
fills a second each way and their ratio (the target is at least 0.25); the CPU each fill cost
this process and its database session (read from /proc, Linux), steadier than throughput on a
shared machine; and the statements one fill sends, counted with Django's
CaptureQueriesContext — BEGIN and COMMIT included (Django logs them as queries), SAVEPOINTs
would be too — on a further set of fills (target: at most 6).
"""

from __future__ import annotations

import argparse
import itertools
import os
import re
import statistics
import sys
import time
from collections import Counter
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import benchdb

BENCH_DATABASE = "oms_bench_fills"
TARGET_RATIO = 0.25
TARGET_STATEMENTS = 6
INSTRUMENTS = ["RELIANCE", "INFY", "TCS", "HDFCBANK", "SBIN", "ITC", "WIPRO", "LT"]
FILL_QUANTITY = 10
FILLS_PER_ORDER = 5  # 50-share orders
SIDES = ["BUY", "BUY", "SELL", "SELL"]  # per instrument: open, add, reduce, close
COLUMNS = (
    "order_id, strategy_id, trade_id, symbol, exchange, product, side, quantity, price, "
    "gross_value, brokerage, stt, exchange_charges, sebi_charges, stamp_duty, gst, "
    "total_charges, net_value, executed_at, created_at"
)


def orders_make(strategy, fills: int, instruments: int, prefix: str) -> list:
    """OPEN orders (as the broker acknowledged them) for ``fills`` fills; returns the Order
    of each fill, in the order the fills arrive."""
    from django.utils import timezone

    from orders.models import Order

    count = -(-fills // FILLS_PER_ORDER)
    now = timezone.now()
    orders = []
    for number in range(count):
        symbol = INSTRUMENTS[number % instruments]
        side = SIDES[(number // instruments) % len(SIDES)]
        orders.append(
            Order(
                strategy=strategy,
                client_order_id=f"{prefix}-{number}",
                broker_tag=f"{prefix.upper()}{number:012d}"[:20],
                broker_order_id=f"{prefix.upper()}-{number}",
                symbol=symbol,
                side=side,
                quantity=FILL_QUANTITY * FILLS_PER_ORDER,
                order_type="LIMIT",
                price=Decimal("1000.00") + number % 7,
                product="MIS",
                status="OPEN",
                submitted_at=now,
                acknowledged_at=now,
            )
        )
    orders = Order.objects.bulk_create(orders)
    # Fills interleave across instruments, each order's parts in turn, like a day's reports.
    by_fill = []
    for first in range(0, len(orders), instruments):
        group = orders[first : first + instruments]
        for _ in range(FILLS_PER_ORDER):
            by_fill.extend(group)
    return by_fill[:fills]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (0 where /proc is missing)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Meter:
    """Wall time, and CPU of this process and of one database backend, over timed blocks."""

    def __init__(self, backend_pid: int):
        self.backend_pid = backend_pid
        self.wall = self.app = self.db = 0.0

    def run(self, work, items) -> None:
        wall, app, db = time.perf_counter(), time.process_time(), cpu_seconds(self.backend_pid)
        for item in items:
            work(item)
        self.wall += time.perf_counter() - wall
        self.app += time.process_time() - app
        self.db += cpu_seconds(self.backend_pid) - db


def fill_price(number: int) -> Decimal:
    return Decimal("1000.00") + Decimal(number % 13) / 4 - Decimal("1.05")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fills", type=int, default=2000, help="fills each way")
    parser.add_argument("--instruments", type=int, default=4, choices=range(1, 9))
    parser.add_argument("--rounds", type=int, default=10, help="alternating blocks")
    parser.add_argument("--counted", type=int, default=200, help="fills whose SQL is counted")
    parser.add_argument("--database", default=BENCH_DATABASE)
    options = parser.parse_args()
    if options.fills < options.rounds:
        parser.error("--fills must be at least --rounds")

    benchdb.fresh_database(options.database)
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from orders.enums import EventSource, StrategyMode
    from orders.models import Strategy, Trade
    from orders.services import fill_apply

    strategy = Strategy.objects.create(name="Bench fills", mode=StrategyMode.PAPER, config={})
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE bench_raw_trades (LIKE trades INCLUDING ALL)")
    warmup = orders_make(strategy, 40, options.instruments, "warm")
    timed = orders_make(strategy, options.fills, options.instruments, "fill")
    counted = orders_make(strategy, options.counted, options.instruments, "count")
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")

    sequence = itertools.count(1)
    started = timezone.now()

    def oms(order) -> None:
        number = next(sequence)
        fill_apply(
            order,
            trade_id=f"T{number:09d}",
            quantity=FILL_QUANTITY,
            price=fill_price(number),
            executed_at=started + timedelta(milliseconds=number),
            source=EventSource.BROKER,
        )

    raw_sql = (
        f"INSERT INTO bench_raw_trades ({COLUMNS}) "  # noqa: S608
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
    )

    def raw(order) -> None:
        number = next(sequence)
        price = fill_price(number)
        gross = price * FILL_QUANTITY
        charges = [Decimal("2.99"), Decimal("0.00"), Decimal("0.31"), Decimal("0.01")]
        charges += [Decimal("0.03"), Decimal("0.60")]
        total = sum(charges)
        at = started + timedelta(milliseconds=number)
        with connection.cursor() as cursor:
            cursor.execute(
                raw_sql,
                [
                    order.pk,
                    order.strategy_id,
                    f"R{number:09d}",
                    order.symbol,
                    order.exchange,
                    order.product,
                    order.side,
                    FILL_QUANTITY,
                    price,
                    gross,
                    *charges,
                    total,
                    gross + total if order.side == "BUY" else gross - total,
                    at,
                    at,
                ],
            )

    for order in warmup:
        oms(order)
        raw(order)

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]
    oms_meter, raw_meter = Meter(backend), Meter(backend)
    size = -(-len(timed) // options.rounds)
    for first in range(0, len(timed), size):
        block = timed[first : first + size]
        oms_meter.run(oms, block)
        raw_meter.run(raw, block)

    per_fill = []
    kinds: Counter = Counter()
    example = None
    for order in counted:
        with CaptureQueriesContext(connection) as captured:
            oms(order)
        statements = [query["sql"] for query in captured.captured_queries]
        per_fill.append(len(statements))
        kinds.update(statement.split(None, 1)[0].upper() for statement in statements)
        if example is None or sum(map(len, statements)) > sum(map(len, example)):
            example = statements

    fills = len(timed)
    trades = Trade.objects.count()
    assert trades == len(warmup) + fills + len(counted), trades
    ratio = raw_meter.wall / oms_meter.wall
    print(f"{fills:,} fills on {options.instruments} instruments, {options.rounds} rounds")
    print("               fills/s   ms a fill   CPU ms a fill: app    db")
    for name, meter in (("fill_apply", oms_meter), ("raw INSERT", raw_meter)):
        print(
            f"{name:<12} {fills / meter.wall:9.0f} {meter.wall / fills * 1000:11.2f}"
            f" {meter.app / fills * 1000:20.2f} {meter.db / fills * 1000:5.2f}"
        )
    verdict = "met" if ratio >= TARGET_RATIO else "NOT met"
    cpu_ratio = (raw_meter.app + raw_meter.db) / (oms_meter.app + oms_meter.db)
    print(
        f"ratio {ratio:.2f} (target >= {TARGET_RATIO}: {verdict}); "
        f"CPU ratio (app + db) {cpu_ratio:.2f}"
    )
    average = statistics.mean(per_fill)
    verdict = "met" if max(per_fill) <= TARGET_STATEMENTS else "NOT met"
    print(
        f"statements a fill (BEGIN and COMMIT included), over {len(per_fill)} fills: "
        f"{min(per_fill)}-{max(per_fill)}, mean {average:.2f} "
        f"(target <= {TARGET_STATEMENTS}: {verdict}); by kind: "
        + ", ".join(f"{kind} {count / len(per_fill):.2f}" for kind, count in kinds.most_common())
    )
    print("the statements of the longest fill:")
    for statement in example:
        writes = re.findall(r"write_\d+ AS \((INSERT INTO|UPDATE) (\"?\w+\"?)", statement)
        if writes:
            listed = ", ".join(
                f"{verb.split()[0]} {table.strip(chr(34))}" for verb, table in writes
            )
            print(f"  WITH ... ({len(writes)} writes in one statement: {listed})")
        else:
            print(f"  {' '.join(statement.split())[:100]}")


if __name__ == "__main__":
    main()
