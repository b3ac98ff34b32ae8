"""Rate counters shared by every process, kept in PostgreSQL.

A limit such as Kite's 10 orders per second per user must hold across all web processes and
workers, so it cannot live in one process's memory. Three counters, each an SQL function defined
once (risk migrations 0010 and rate_windows) and called by every statement that counts:

- ``oms_take_token(key, capacity, refill_per_second, now)``: a token bucket (``rate_buckets``)
  — the order rate of a strategy (order_place counts it in the statement that writes the
  order);
- ``oms_take_slot(key, limits, seconds, now)``: a sliding window (``rate_windows``) — Kite's
  order requests per user (placements, modifications and cancellations). A bucket of 10 with a
  refill of 10 a second lets 20 through within one second, and Kite answers the 11th with HTTP
  429; the window keeps the latest send times and lets none through while 10 fall within the
  last second (or 400 within the last minute);
- ``oms_count_request(bucket, seconds)``: a fixed window (``api_rate_limits``) — the API's
  per-key request limit (authentication counts it in the statement that finds the key).

Each take is one INSERT ... ON CONFLICT DO UPDATE: PostgreSQL locks the counter's row for the
statement, so two processes can never both spend the last token, and time is the database's
clock (``clock_timestamp()``), so the machines' clocks do not need to agree.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal

from django.db import connection


def bucket_clock() -> datetime | None:
    """The time the token buckets count with: None, the database's clock (tests freeze it)."""
    return None


def bucket_rate(capacity: int, refill_per_second: float | Decimal) -> Decimal:
    """A bucket's refill as a Decimal, or ValueError naming the rule."""
    if capacity < 1:
        raise ValueError(f"capacity {capacity}: must be at least 1")
    refill = Decimal(str(refill_per_second))
    if refill <= 0:
        raise ValueError(f"refill_per_second {refill_per_second}: must be more than 0")
    return refill


def token_wait(granted: bool, tokens, refill_per_second) -> float:
    """0.0 when the token was taken, else the seconds until one is due."""
    if granted:
        return 0.0
    return float((1 - tokens) / refill_per_second)


def take_token(
    key: str,
    *,
    capacity: int,
    refill_per_second: float | Decimal,
    now: datetime | None = None,
) -> float:
    """Take one token from the bucket ``key``: 0.0 when taken, else the seconds until one is due.

    Never sleeps: a caller that gets a wait decides what to do (a job is retried later). The
    bucket is created full on first use; ``capacity`` and ``refill_per_second`` are the
    caller's and replace the stored ones, so a changed limit applies from the next take.
    ``now`` replaces the database clock (for tests). The row stays locked until the current
    transaction ends: call this outside long transactions, or every other process waits.
    """
    refill = bucket_rate(capacity, refill_per_second)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT * FROM oms_take_token(%s::varchar, %s::integer, %s::numeric, %s::timestamptz)",
            [key, capacity, refill, now or bucket_clock()],
        )
        return token_wait(*cursor.fetchone())


def take_slot(
    key: str, *, limits: Iterable[tuple[int, float]], now: datetime | None = None
) -> float:
    """Take one request slot of the window ``key``: 0.0 when taken, else the seconds until one
    is free.

    ``limits``: (requests, seconds) pairs, e.g. ((10, 1), (400, 60)); a slot is taken only
    when, for every pair, fewer than ``requests`` slots were taken within the last ``seconds``
    (a window open at its start: a slot taken exactly ``seconds`` ago no longer counts). So no
    window of that length, wherever it starts, holds more than ``requests``. A refused take
    records nothing. Never sleeps. Time is the database's clock, read once the row is locked;
    ``now`` replaces it (tests). As with take_token, the row stays locked until the current
    transaction ends: call this outside long transactions.
    """
    limits = tuple(limits)
    if not limits:
        raise ValueError("limits: at least one (requests, seconds) pair is needed")
    for requests, seconds in limits:
        if requests < 1:
            raise ValueError(f"limits: requests {requests}: must be at least 1")
        if Decimal(str(seconds)) <= 0:
            raise ValueError(f"limits: seconds {seconds}: must be more than 0")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT * FROM oms_take_slot("
            "%s::varchar, %s::integer[], %s::numeric[], %s::timestamptz)",
            [
                key,
                [requests for requests, _ in limits],
                [Decimal(str(seconds)) for _, seconds in limits],
                now or bucket_clock(),
            ],
        )
        granted, wait = cursor.fetchone()
    return 0.0 if granted else float(wait)
