"""The strategy's order rate (SEBI: under 10 orders a second), counted in PostgreSQL so that
every process shares it. The bucket's own arithmetic is tested in orders/tests/test_kite.py."""

from __future__ import annotations

import functools
import os
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection

from orders.models import Order
from orders.services import OrderThrottled, order_place
from orders.tests.factories import StrategyFactory
from risk import ratelimit
from risk.calendar import IST
from risk.models import RateBucket
from risk.ratelimit import take_token
from risk.tests.factories import order_request

T0 = datetime(2026, 1, 14, 10, 0, tzinfo=IST)


@pytest.fixture
def bucket_clock(monkeypatch):
    """Freeze the rate buckets' clock (the database's, normally) at ``T0``, movable."""
    moments = [T0]
    # Every take's clock, order_place's included.
    monkeypatch.setattr(ratelimit, "bucket_clock", lambda: moments[-1])
    return moments.append


@pytest.mark.django_db
def test_the_eleventh_order_within_a_second_is_refused(strategy, bucket_clock):
    assert settings.OMS_ORDERS_PER_SECOND == 10
    results = [order_place(order_request(strategy), actor="algo") for _ in range(10)]

    with pytest.raises(OrderThrottled) as refused:
        order_place(order_request(strategy, client_order_id="eleventh"), actor="algo")

    assert all(r.accepted for r in results)
    assert refused.value.code == "order_rate"
    assert refused.value.retry_after == pytest.approx(0.1)
    assert "more than 10 orders a second from strategy Momentum" in refused.value.message
    assert not Order.objects.filter(client_order_id="eleventh").exists()
    # A tenth of a second later one more order is due, and only one.
    bucket_clock(T0 + timedelta(milliseconds=100))
    assert order_place(order_request(strategy, client_order_id="eleventh"), actor="algo").accepted
    with pytest.raises(OrderThrottled):
        order_place(order_request(strategy), actor="algo")


@pytest.mark.django_db
def test_each_strategy_has_its_own_rate(strategy, bucket_clock):
    for _ in range(10):
        order_place(order_request(strategy), actor="algo")
    other = StrategyFactory()

    assert order_place(order_request(other), actor="algo").accepted


@pytest.mark.django_db
def test_a_strategys_config_may_lower_its_rate(bucket_clock):
    strategy = StrategyFactory(config={"limits": {"orders_per_second": 2}})
    order_place(order_request(strategy), actor="algo")
    order_place(order_request(strategy), actor="algo")

    with pytest.raises(OrderThrottled, match="more than 2 orders a second"):
        order_place(order_request(strategy), actor="algo")


# --- two operating system processes, one bucket ------------------------------------------------

# The other process: Django on the same (test) database through DATABASE_URL, taking tokens
# when told to: "<count> <ISO moment>" on stdin, answered with how many it was granted.
OTHER_PROCESS = """
import sys
from datetime import datetime

import django

django.setup()
from risk.ratelimit import take_token

key = sys.argv[1]
print("ready", flush=True)
for line in sys.stdin:
    count, moment = line.split()
    at = datetime.fromisoformat(moment)
    granted = sum(
        1 for _ in range(int(count)) if take_token(key, capacity=10, refill_per_second=10, now=at)
        == 0.0
    )
    print(granted, flush=True)
"""


def _database_url() -> str:
    """The test database, as a URL the other process's settings read (a Unix socket host)."""
    db = connection.settings_dict
    host = quote(db["HOST"], safe="") if db["HOST"] else "localhost"
    port = f":{db['PORT']}" if db["PORT"] else ""
    password = f":{quote(db['PASSWORD'])}" if db["PASSWORD"] else ""
    return f"postgres://{quote(db['USER'])}{password}@{host}{port}/{db['NAME']}"


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_two_processes_share_one_bucket():
    key = "test:two-processes"
    take = functools.partial(take_token, key, capacity=10, refill_per_second=10)
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "omsproject.settings",
        "DATABASE_URL": _database_url(),
        "OMS_DB_POOL_MIN": "1",
    }
    other = subprocess.Popen(
        [sys.executable, "-c", OTHER_PROCESS, key],
        cwd=Path(settings.BASE_DIR),
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:

        def other_takes(count: int, at: datetime) -> None:
            other.stdin.write(f"{count} {at.isoformat()}\n")
            other.stdin.flush()

        assert other.stdout.readline().strip() == "ready"

        # One after the other: what the other process spent, this one cannot.
        other_takes(4, T0)
        assert int(other.stdout.readline()) == 4
        assert sum(take(now=T0) == 0.0 for _ in range(10)) == 6

        # At once, a second later (full again): both ask for 20, 10 are granted in all.
        later = T0 + timedelta(seconds=1)
        other_takes(20, later)
        here = sum(take(now=later) == 0.0 for _ in range(20))
        there = int(other.stdout.readline())
    finally:
        other.stdin.close()
        other.wait(timeout=30)

    assert here + there == 10, (here, there)
    bucket = RateBucket.objects.get(key=key)
    assert bucket.tokens == 0
    assert bucket.last_take_granted is False


@pytest.mark.django_db
def test_the_rate_counters_say_they_return_one_row():
    """With the default estimate of 1,000 rows, PostgreSQL 15 JIT-compiled the statement that
    writes an order (23 ms a placement): the functions declare ROWS 1."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT proname, prorows FROM pg_proc"
            " WHERE proname IN ('oms_take_token', 'oms_count_request') ORDER BY proname"
        )
        assert cursor.fetchall() == [("oms_count_request", 1), ("oms_take_token", 1)]
