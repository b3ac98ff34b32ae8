"""Daily statistics over a large book, against one bare aggregate of the same trades.

    .venv/bin/python bench/daily_stats.py                    # 1M trades: a few minutes
    .venv/bin/python bench/daily_stats.py --trades 100000    # quicker
    .venv/bin/python bench/daily_stats.py --reuse            # keep the last run's rows

It makes its own database (``oms_bench_ops`` on the embedded PostgreSQL: dropped, created,
migrated), loads the demo history with ``seed_demo --orders`` (about 2.9 trades an order, with
their orders, events and closed positions), then times, on the same rows and after a VACUUM
ANALYZE:

- ``daily_stats_compute`` over the whole range: every daily_stats row, per strategy and for
  the account (orders by outcome, trades, turnover, charges and the DP charge, round trips,
  PnL, drawdown), upserted;
- the yardstick: ``SELECT date, strategy_id, count(*), sum(gross_value), sum(total_charges)
  FROM trades GROUP BY 1, 2``, every row fetched.

Each is run seven times and the fastest run kept. It prints both and their ratio (the target
is at most 2).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import benchdb

TARGET_RATIO = 2.0
TRADES_PER_ORDER = 2.88  # seed_demo's history: 24 round trips in 25 trade, 3 fills an order
RAW = """
    SELECT (executed_at AT TIME ZONE 'Asia/Kolkata')::date, strategy_id, count(*),
           sum(gross_value), sum(total_charges)
    FROM trades GROUP BY 1, 2
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trades", type=int, default=1_000_000, help="about this many trades")
    parser.add_argument("--days", type=int, default=20, help="weekdays the history spans")
    parser.add_argument("--database", default=benchdb.DEFAULT_DATABASE)
    parser.add_argument("--reuse", action="store_true", help="keep the database of a last run")
    parser.add_argument("--runs", type=int, default=7)
    options = parser.parse_args()

    if options.reuse:
        benchdb.django_setup(benchdb.database_url(options.database))
    else:
        benchdb.fresh_database(options.database)
    from django.core.management import call_command
    from django.db import connection

    from positions.statistics import daily_stats_compute

    orders = round(options.trades / TRADES_PER_ORDER)
    began = time.perf_counter()
    call_command("seed_demo", orders=orders, days=options.days)
    print(f"loaded {orders:,} bulk orders in {time.perf_counter() - began:.1f} s")
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
        cursor.execute(
            "SELECT count(*), min(executed_at AT TIME ZONE 'Asia/Kolkata')::date, "
            "max(executed_at AT TIME ZONE 'Asia/Kolkata')::date FROM trades"
        )
        trades, first, last = cursor.fetchone()
        cursor.execute("SELECT count(*) FROM orders")
        order_rows = cursor.fetchone()[0]
        cursor.execute("SELECT count(*) FROM positions")
        positions = cursor.fetchone()[0]
    print(
        f"book: {trades:,} trades, {order_rows:,} orders, {positions:,} positions, {first}..{last}"
    )

    def stats() -> None:
        daily_stats_compute(date_from=first, date_to=last)

    def raw() -> None:
        with connection.cursor() as cursor:
            cursor.execute(RAW)
            cursor.fetchall()

    stats()  # warm-up: the first run inserts, the timed ones update
    raw()
    stats_seconds = benchdb.best_of(options.runs, stats)
    raw_seconds = benchdb.best_of(options.runs, raw)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM daily_stats WHERE date BETWEEN %s AND %s", [first, last]
        )
        rows = cursor.fetchone()[0]
    ratio = stats_seconds / raw_seconds
    print(f"daily_stats_compute {first}..{last} ({rows} rows): {stats_seconds * 1000:8.1f} ms")
    print(f"raw GROUP BY over trades:                       {raw_seconds * 1000:8.1f} ms")
    verdict = "met" if ratio <= TARGET_RATIO else "NOT met"
    print(f"ratio {ratio:.2f} (target <= {TARGET_RATIO:.0f}: {verdict})")


if __name__ == "__main__":
    main()
