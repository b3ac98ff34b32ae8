"""Kite's order rate as a sliding window in PostgreSQL (take_slot, oms_take_slot): in no window
of one second are more than 10 requests let through, in none of a minute more than 400.

A token bucket of 10 refilled at 10 a second let 20 through within one second (its full
bucket, then its refill), and Kite answered HTTP 429. The clock is the seam
``ratelimit.bucket_clock`` (the database's clock otherwise)."""

from __future__ import annotations

import functools
from datetime import datetime, timedelta

import pytest
from django.db import IntegrityError, transaction

from omsproject.testing.threads import run_together
from orders.brokers.kite import ORDER_RATE_LIMITS
from risk import ratelimit
from risk.calendar import IST
from risk.models import RateWindow
from risk.ratelimit import take_slot, take_token

T0 = datetime(2026, 4, 1, 9, 15, tzinfo=IST)
KEY = "kite:orders:AB1234"

pytestmark = pytest.mark.django_db


def most_in_any_window(times: list[datetime], seconds: float) -> int:
    """The most of ``times`` that any window [t, t + seconds) holds, wherever it starts (the
    busiest window starts at one of the times)."""
    span = timedelta(seconds=seconds)
    return max((sum(1 for u in times if t <= u < t + span) for t in times), default=0)


def granted_times(take, moments: list[datetime]) -> list[datetime]:
    return [moment for moment in moments if take(now=moment) == 0.0]


def every(step_ms: int, *, seconds: float) -> list[datetime]:
    return [T0 + timedelta(milliseconds=step_ms * i) for i in range(int(seconds * 1000 / step_ms))]


def test_no_second_ever_holds_more_than_ten_where_the_bucket_let_twenty_through():
    moments = every(25, seconds=3)  # 40 requests asked for each second, for three seconds
    window = functools.partial(take_slot, KEY, limits=ORDER_RATE_LIMITS)
    bucket = functools.partial(take_token, "bucket", capacity=10, refill_per_second=10)

    through_window = granted_times(window, moments)
    through_bucket = granted_times(bucket, moments)

    assert most_in_any_window(through_window, 1) == 10
    assert len(through_window) == 30  # and ten every second: no slot is wasted
    assert most_in_any_window(through_bucket, 1) > 10  # what Kite answered 429 to


def test_a_slot_is_free_exactly_when_the_oldest_of_the_ten_leaves_the_second(monkeypatch):
    moments = [T0 + timedelta(milliseconds=10 * i) for i in range(10)]
    assert all(take_slot(KEY, limits=ORDER_RATE_LIMITS, now=m) == 0.0 for m in moments)

    wait = take_slot(KEY, limits=ORDER_RATE_LIMITS, now=T0 + timedelta(milliseconds=500))
    assert wait == pytest.approx(0.5)
    assert take_slot(KEY, limits=ORDER_RATE_LIMITS, now=T0 + timedelta(seconds=1)) == 0.0
    # The second slot only when the second request is a second old.
    late = T0 + timedelta(seconds=1, milliseconds=5)
    assert take_slot(KEY, limits=ORDER_RATE_LIMITS, now=late) == pytest.approx(0.005)
    # A refused take records nothing.
    assert len(RateWindow.objects.get(key=KEY).sent_at) == 11


def test_no_minute_holds_more_than_four_hundred():
    moments = every(100, seconds=90)  # ten a second, steadily, for a minute and a half
    granted = granted_times(functools.partial(take_slot, KEY, limits=ORDER_RATE_LIMITS), moments)

    assert most_in_any_window(granted, 60) == 400
    assert most_in_any_window(granted, 1) == 10
    # The first 400 in 40 seconds; then nothing until the first of them is a minute old.
    assert granted[399] == T0 + timedelta(seconds=39, milliseconds=900)
    assert granted[400] == T0 + timedelta(seconds=60)
    assert len(RateWindow.objects.get(key=KEY).sent_at) == 400  # only the largest limit's


@pytest.mark.django_db(transaction=True)  # each thread commits on its own connection
def test_forty_takes_at_once_grant_exactly_ten(monkeypatch):
    monkeypatch.setattr(ratelimit, "bucket_clock", lambda: T0)

    outcomes = run_together([lambda: take_slot(KEY, limits=ORDER_RATE_LIMITS)] * 40)

    assert [error for _, error in outcomes if error] == []
    waits = [wait for wait, _ in outcomes]
    assert waits.count(0.0) == 10
    assert all(wait == pytest.approx(1.0) for wait in waits if wait)


@pytest.mark.django_db(transaction=True)
def test_forty_takes_at_once_on_the_database_clock_never_exceed_ten_a_second():
    outcomes = run_together([lambda: take_slot(KEY, limits=ORDER_RATE_LIMITS)] * 40)

    assert [error for _, error in outcomes if error] == []
    sent = RateWindow.objects.get(key=KEY).sent_at
    assert len(sent) == [wait for wait, _ in outcomes].count(0.0)
    assert len(sent) >= 10
    assert most_in_any_window(sent, 1) <= 10
    assert sent == sorted(sent)


def test_keys_are_independent():
    for _ in range(10):
        take_slot(KEY, limits=ORDER_RATE_LIMITS, now=T0)

    assert take_slot(KEY, limits=ORDER_RATE_LIMITS, now=T0) > 0
    assert take_slot("kite:orders:ZX9999", limits=ORDER_RATE_LIMITS, now=T0) == 0.0


def test_a_clock_gone_back_only_makes_the_window_stricter():
    for i in range(10):
        take_slot(KEY, limits=[(10, 1)], now=T0 + timedelta(milliseconds=i))

    assert take_slot(KEY, limits=[(10, 1)], now=T0 - timedelta(seconds=5)) > 0


def test_the_database_clock_is_the_default():
    assert take_slot(KEY, limits=ORDER_RATE_LIMITS) == 0.0
    assert RateWindow.objects.get(key=KEY).last_take_granted


@pytest.mark.parametrize(
    ("limits", "message"),
    [
        ((), "limits: at least one"),
        (((0, 1),), "requests 0: must be at least 1"),
        (((10, 0),), "seconds 0: must be more than 0"),
    ],
)
def test_a_limit_that_makes_no_sense_is_refused(limits, message):
    with pytest.raises(ValueError, match=message):
        take_slot(KEY, limits=limits)


def test_database_refuses_a_negative_wait():
    with pytest.raises(IntegrityError), transaction.atomic():
        RateWindow.objects.create(key=KEY, sent_at=[T0], wait_seconds=-1, updated_at=T0)
