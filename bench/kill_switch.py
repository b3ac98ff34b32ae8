"""The kill switch against 1,000 open orders: how long until every one is CANCELLED?

    .venv/bin/python bench/kill_switch.py                         # 1,000 orders, 2 workers
    .venv/bin/python bench/kill_switch.py --orders 5000 --workers 3 --concurrency 4

It makes its own database (``oms_bench_kill`` on the embedded PostgreSQL: dropped, created,
migrated), a paper strategy, and ``--orders`` LIMIT buys far below the market, OPEN at the
paper exchange: written in bulk as the submission would have left them (the order OPEN with
its broker order id, the paper exchange's order OPEN under the same tag and id). It starts
``--workers`` real workers (``manage.py procrastinate worker``) on that database and lets
them warm up on a halt of a second strategy. Then it sets the global kill switch to HALTED
through ``risk.kill_switch.kill_switch_set`` — what the admin page and the ``kill_switch``
command call — and counts, from the moment of that call, until every order is CANCELLED in
the database: marked at once, cancelled at the paper exchange by the workers' jobs, and the
exchange's reports applied, each status change with its event. Target: at most 2 s.

Only processes it started are stopped, by their pid; every wait is bounded.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import benchdb

BASE_DIR = Path(__file__).resolve().parent.parent
BENCH_DATABASE = "oms_bench_kill"
TARGET_SECONDS = 2.0
MARKET = Decimal("2450.00")
LIMIT = Decimal("1200.00")  # a buy at half the market: it stays OPEN


def open_orders(strategy, count: int, prefix: str) -> list[int]:
    """``count`` OPEN LIMIT buys of ``strategy`` with their OPEN paper exchange orders."""
    from django.utils import timezone

    from orders.models import Order, OrderEvent, PaperOrder

    now = timezone.now()
    orders = Order.objects.bulk_create(
        Order(
            strategy=strategy,
            client_order_id=f"{prefix}-{number}",
            broker_tag=f"{prefix.upper()}{number:010d}",
            broker_order_id=f"PB-{prefix.upper()}-{number}",
            symbol="RELIANCE",
            side="BUY",
            quantity=10,
            order_type="LIMIT",
            price=LIMIT,
            product="MIS",
            status="OPEN",
            submitted_at=now,
            acknowledged_at=now,
        )
        for number in range(count)
    )
    PaperOrder.objects.bulk_create(
        PaperOrder(
            strategy=strategy,
            tag=order.broker_tag,
            broker_order_id=order.broker_order_id,
            symbol=order.symbol,
            exchange=order.exchange,
            product=order.product,
            side=order.side,
            order_type=order.order_type,
            validity=order.validity,
            quantity=order.quantity,
            price=order.price,
            status="OPEN",
        )
        for order in orders
    )
    OrderEvent.objects.bulk_create(
        OrderEvent(order=order, kind="TRANSITION", from_status=start, to_status=end, source=source)
        for order in orders
        for start, end, source in (
            ("", "PENDING", "API"),
            ("PENDING", "SUBMITTED", "SYSTEM"),
            ("SUBMITTED", "OPEN", "BROKER"),
        )
    )
    return [order.pk for order in orders]


def start_workers(url: str, count: int, concurrency: int) -> list[subprocess.Popen]:
    env = {**os.environ, "DATABASE_URL": url, "OMS_LOG_LEVEL": "WARNING"}
    # The workers as in production: with their connection pool (this process has none).
    env.pop("OMS_DB_POOL_DISABLED", None)
    command = [sys.executable, str(BASE_DIR / "manage.py"), "procrastinate", "worker"]
    return [
        subprocess.Popen(  # noqa: S603
            [*command, "--name", f"bench-{n}", "--concurrency", str(concurrency)],
            cwd=BASE_DIR,
            env=env,
        )
        for n in range(count)
    ]


def stop_workers(workers: list[subprocess.Popen]) -> None:
    for worker in workers:
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
    for worker in workers:
        try:
            worker.wait(timeout=15)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait(timeout=5)


def wait_for(condition, *, timeout: float, interval: float = 0.005) -> float | None:
    """Seconds until ``condition()`` held, or None after ``timeout``."""
    began = time.perf_counter()
    while time.perf_counter() - began < timeout:
        if condition():
            return time.perf_counter() - began
        time.sleep(interval)
    return None


def cancelled(order_ids: list[int]) -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM orders WHERE id = ANY(%s) AND status = 'CANCELLED'",
            [order_ids],
        )
        return cursor.fetchone()[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--orders", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=4, help="jobs at once per worker")
    parser.add_argument("--timeout", type=float, default=120.0, help="give up after (s)")
    parser.add_argument("--database", default=BENCH_DATABASE)
    options = parser.parse_args()

    url = benchdb.fresh_database(options.database)
    from django.db import connection

    from orders.enums import StrategyMode
    from orders.models import Strategy
    from positions.models import MarketPrice
    from risk.kill_switch import kill_switch_set
    from risk.models import KillSwitchState

    MarketPrice.objects.create(symbol="RELIANCE", exchange="NSE", last_price=MARKET)
    strategy = Strategy.objects.create(name="Bench halt", mode=StrategyMode.PAPER, config={})
    warm = Strategy.objects.create(name="Bench warm-up", mode=StrategyMode.PAPER, config={})
    order_ids = open_orders(strategy, options.orders, "ks")
    warm_ids = open_orders(warm, 20, "wu")
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    print(f"{options.orders:,} OPEN orders at the paper exchange (LIMIT buys at {LIMIT})")

    workers = start_workers(url, options.workers, options.concurrency)
    try:
        started = wait_for(lambda: _live_workers() >= options.workers, timeout=60, interval=0.1)
        if started is None:
            print("the workers did not start")
            return 1
        kill_switch_set(
            KillSwitchState.HALTED, reason="bench warm-up", actor="bench", strategy=warm
        )
        if wait_for(lambda: cancelled(warm_ids) == len(warm_ids), timeout=60) is None:
            print("warm-up: the workers did not cancel the warm-up orders")
            return 1
        print(f"{options.workers} workers x {options.concurrency} jobs, warmed up")

        began = time.perf_counter()
        kill_switch_set(KillSwitchState.HALTED, reason="bench", actor="bench")
        returned = time.perf_counter() - began
        waited = wait_for(lambda: cancelled(order_ids) == len(order_ids), timeout=options.timeout)
        done = cancelled(order_ids)
    finally:
        stop_workers(workers)

    print(f"kill_switch_set(HALTED) returned after {returned:.2f} s")
    if waited is None:
        print(f"FAIL: {done:,} of {options.orders:,} CANCELLED after {options.timeout:.0f} s")
        return 1
    seconds = returned + waited
    verdict = "PASS" if seconds <= TARGET_SECONDS else "FAIL"
    print(
        f"kill switch to all {options.orders:,} open orders CANCELLED: {seconds:.2f} s "
        f"(target <= {TARGET_SECONDS:.0f} s): {verdict}"
    )
    return 0 if verdict == "PASS" else 1


def _live_workers() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM procrastinate_workers")
        return cursor.fetchone()[0]


if __name__ == "__main__":
    raise SystemExit(main())
