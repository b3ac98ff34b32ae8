"""The admin's order list at 1k orders and at 1M: does it stay as fast? (target: at most 2x).

    .venv/bin/python bench/admin_changelist.py                     # 1,000 then 1,000,000 orders
    .venv/bin/python bench/admin_changelist.py --orders 100000     # a quicker run
    .venv/bin/python bench/admin_changelist.py --loader sql        # without seed_demo --orders

It uses its own database (``oms_bench_admin`` on the embedded PostgreSQL, or --database-url),
migrates it, empties the order tables, loads ``--small`` orders, times the admin pages (Django's
test client, logged in as a superuser: the whole request, middleware and templates included,
the median of ``--repeat`` GETs after two warm-ups), then loads up to ``--orders`` and times
them again. Orders come from ``manage.py seed_demo --orders N`` (finished orders with about
three fills each, by COPY) when that option exists, else from an INSERT ... SELECT
generate_series in this script (four fills per filled order). Both runs are ANALYZEd, as
autovacuum would have done, so the planner and the list's row estimate see the real size.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import benchdb

BASE_DIR = Path(__file__).resolve().parent.parent
BENCH_DATABASE = "oms_bench_admin"
TARGET_RATIO = 2.0
ORDER_TABLES = "trades, order_events, positions, reconciliation_log, pnl_snapshots, orders"


def django_setup(database_url: str) -> None:
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "omsproject.settings")
    os.environ.setdefault("OMS_LOG_LEVEL", "WARNING")
    sys.path.insert(0, str(BASE_DIR))
    import warnings

    import django

    warnings.filterwarnings("ignore", message="No directory at")  # no collectstatic for a bench
    django.setup()


# --- loading ---------------------------------------------------------------------------------


def seed_demo_has_orders() -> bool:
    from django.core.management import load_command_class

    parser = load_command_class("orders", "seed_demo").create_parser("manage.py", "seed_demo")
    return any("--orders" in action.option_strings for action in parser._actions)


def reset() -> None:
    from django.db import connection, transaction

    from omsproject.pg import history_truncate_allowed

    # TRUNCATE, not DELETE: the history tables refuse row deletes (triggers), rightly; and
    # TRUNCATE too, except in a block that says so (this bench's own database).
    with transaction.atomic(), history_truncate_allowed(), connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {ORDER_TABLES} RESTART IDENTITY CASCADE")
        cursor.execute(
            "UPDATE strategies SET total_trades = 0, winning_trades = 0, losing_trades = 0, "
            "total_pnl = 0"
        )


def load_with_seed_demo(total: int) -> None:
    from django.core.management import call_command

    call_command("seed_demo", orders=total, verbosity=0)


def load_with_sql(total: int) -> None:
    """Orders 1..total (the ones missing), newest last, 5 s apart, with four fills per filled
    order; statuses as a day's mix. Every constraint and trigger of the tables applies."""
    from django.db import connection

    from orders.models import Strategy

    strategies = list(Strategy.objects.order_by("pk").values_list("pk", flat=True)[:5])
    if not strategies:
        strategies = [Strategy.objects.create(name="Bench", config={}).pk]
    with connection.cursor() as cursor:
        cursor.execute("SELECT coalesce(max(id), 0) FROM orders")
        start = cursor.fetchone()[0] + 1
        if start > total:
            return
        cursor.execute(
            """
            WITH series AS (
                SELECT i,
                       (%(strategies)s::bigint[])[1 + i %% %(count)s] AS strategy_id,
                       CASE WHEN i %% 100 < 80 THEN 'FILLED' WHEN i %% 100 < 88 THEN 'CANCELLED'
                            WHEN i %% 100 < 92 THEN 'REJECTED' WHEN i %% 100 < 96 THEN 'OPEN'
                            WHEN i %% 100 < 98 THEN 'PENDING' ELSE 'EXPIRED' END AS status,
                       4 * (1 + i %% 25) AS quantity,
                       round(100 + (i %% 5000) / 100.0, 2) AS price,
                       now() - (%(total)s - i) * interval '5 seconds' AS at
                FROM generate_series(%(start)s, %(total)s) AS i
            )
            INSERT INTO orders (
                id, strategy_id, client_order_id, broker_tag, broker_order_id, symbol, exchange,
                segment, side, quantity, order_type, price, product, validity, status,
                filled_quantity, average_price, tag, status_message, request_fingerprint,
                modification_count, metadata, created_at, updated_at)
            SELECT i, strategy_id, 'bench-' || i, 'BENCH' || lpad(i::text, 15, '0'),
                   CASE WHEN status = 'PENDING' THEN NULL ELSE 'K' || i END,
                   (ARRAY['RELIANCE','INFY','TCS','HDFCBANK','SBIN','ITC','WIPRO'])[1 + i %% 7],
                   'NSE', 'EQ', CASE WHEN i %% 2 = 0 THEN 'BUY' ELSE 'SELL' END, quantity,
                   'LIMIT', price, CASE WHEN i %% 3 = 0 THEN 'CNC' ELSE 'MIS' END, 'DAY', status,
                   CASE WHEN status = 'FILLED' THEN quantity ELSE 0 END,
                   CASE WHEN status = 'FILLED' THEN price END,
                   '', '', '', 0, '{}', at, at
            FROM series
            """,
            {"strategies": strategies, "count": len(strategies), "start": start, "total": total},
        )
        cursor.execute(
            """
            INSERT INTO trades (order_id, strategy_id, trade_id, symbol, exchange, product, side,
                                quantity, price, brokerage, stt, exchange_charges, sebi_charges,
                                stamp_duty, gst, executed_at, created_at)
            SELECT o.id, o.strategy_id, 'BT' || o.id || '-' || k, o.symbol, o.exchange,
                   o.product, o.side, o.quantity / 4, o.price, 5, 1, 0.5, 0.01, 0.1, 0.99,
                   o.created_at + k * interval '1 second', o.created_at
            FROM orders o CROSS JOIN generate_series(1, 4) AS k
            WHERE o.id >= %(start)s AND o.status = 'FILLED'
            """,
            {"start": start},
        )
        cursor.execute("SELECT setval('orders_id_seq', (SELECT max(id) FROM orders))")


def analyze() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE orders, trades, order_events, strategies, positions")


# --- timing ----------------------------------------------------------------------------------


def pages() -> list[tuple[str, str]]:
    from orders.models import Order

    newest = Order.objects.order_by("-created_at", "-id").first()
    day = newest.created_at
    return [
        ("order list", "/admin/orders/order/"),
        ("  filtered by status", "/admin/orders/order/?status__exact=FILLED"),
        (
            "  filtered by strategy",
            f"/admin/orders/order/?strategy__id__exact={newest.strategy_id}",
        ),
        ("  searched by symbol", f"/admin/orders/order/?q={newest.symbol}"),
        (
            "  a month",
            f"/admin/orders/order/?created_at__year={day.year}&created_at__month={day.month}",
        ),
        ("  page 5", "/admin/orders/order/?p=5"),
        ("  today (the shortcut)", "/admin/orders/order/?day=today"),
        ("  rejected today", "/admin/orders/order/?day=today&status__exact=REJECTED"),
        ("order detail", f"/admin/orders/order/{newest.pk}/change/"),
        ("trade list", "/admin/orders/trade/"),
        ("order events (audit list)", "/admin/orders/orderevent/"),
        (
            "  one day",
            f"/admin/orders/orderevent/?created_at__since={day.date()}&created_at__until={day.date()}",
        ),
        ("positions (totals row)", "/admin/positions/position/?held=all"),
        ("dashboard", "/admin/"),
    ]


def measure(client, path: str, repeat: int) -> tuple[float, int]:
    """(median milliseconds, queries) of GET path."""
    from django.db import connection

    for _ in range(2):
        response = client.get(path)
        assert response.status_code == 200, (path, response.status_code)
    queries = []

    def count(execute, sql, params, many, context):
        queries.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(count):
        client.get(path)
    samples = []
    for _ in range(repeat):
        began = time.perf_counter()
        client.get(path)
        samples.append((time.perf_counter() - began) * 1000)
    return statistics.median(samples), len(queries)


def time_pages(repeat: int) -> dict[str, tuple[float, int]]:
    from django.contrib.auth import get_user_model
    from django.test import Client

    user, _ = get_user_model().objects.get_or_create(
        username="bench-admin", defaults={"is_staff": True, "is_superuser": True}
    )
    client = Client()
    client.force_login(user)
    return {name: measure(client, path, repeat) for name, path in pages()}


def order_count() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*), (SELECT count(*) FROM trades) FROM orders")
        return cursor.fetchone()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--orders", type=int, default=1_000_000, help="the large size")
    parser.add_argument("--small", type=int, default=1_000, help="the small size")
    parser.add_argument("--repeat", type=int, default=9, help="timed GETs per page")
    parser.add_argument("--loader", choices=["auto", "seed_demo", "sql"], default="auto")
    parser.add_argument("--database-url", help="default: oms_bench_admin on the embedded server")
    args = parser.parse_args()
    if not 0 < args.small < args.orders:
        parser.error("--small must be positive and below --orders")

    django_setup(benchdb.existing_database_url(BENCH_DATABASE, args.database_url))
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    loader_name = args.loader
    if loader_name == "auto":
        loader_name = "seed_demo" if seed_demo_has_orders() else "sql"
    load = load_with_seed_demo if loader_name == "seed_demo" else load_with_sql
    reset()

    results = {}
    for size in (args.small, args.orders):
        began = time.perf_counter()
        load(size)
        analyze()
        orders, trades = order_count()
        print(
            f"loaded {orders:,} orders and {trades:,} trades ({loader_name}) "
            f"in {time.perf_counter() - began:.0f} s",
            flush=True,
        )
        results[orders] = time_pages(args.repeat)

    (small, small_times), (large, large_times) = results.items()
    width = max(len(name) for name in small_times)
    print()
    print(
        f"{'page':<{width}}  {f'{small:,} orders':>14}  {f'{large:,} orders':>16}  ratio  queries"
    )
    for name, (small_ms, small_queries) in small_times.items():
        large_ms, large_queries = large_times[name]
        queries = (
            f"{small_queries}"
            if small_queries == large_queries
            else f"{small_queries}→{large_queries}"
        )
        print(
            f"{name:<{width}}  {small_ms:>11.1f} ms  {large_ms:>13.1f} ms  "
            f"{large_ms / small_ms:>4.2f}x  {queries:>7}"
        )
    ratio = large_times["order list"][0] / small_times["order list"][0]
    verdict = "met" if ratio <= TARGET_RATIO else "NOT met"
    print(
        f"\norder list at {large:,} vs {small:,} orders: {ratio:.2f}x "
        f"(target at most {TARGET_RATIO}x: {verdict})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
