"""Token buckets shared by every process, kept in PostgreSQL (the ``rate_buckets`` table).

A limit such as Kite's 10 orders per second per user must hold across all web processes and
workers, so the bucket cannot live in one process's memory. Each take is a single
INSERT ... ON CONFLICT DO UPDATE: PostgreSQL locks the bucket's row for the statement, so two
processes can never both spend the last token, and the refill is measured with the database's
clock (``clock_timestamp()``), so the machines' clocks do not need to agree.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.db import connection

# The balance the bucket would have now: what it had at updated_at plus the refill since,
# never more than the capacity. A clock that went backwards refills nothing.
_AVAILABLE = """
    LEAST(
        EXCLUDED.capacity,
        bucket.tokens + EXCLUDED.refill_per_second
            * GREATEST(0, EXTRACT(EPOCH FROM EXCLUDED.updated_at - bucket.updated_at))
    )
"""


def take_token_sql(source: str = "") -> str:
    """The INSERT ... ON CONFLICT that takes one token, returning (granted, tokens, refill).

    ``source``: a FROM clause (and condition) the take depends on: order_place takes a token
    only when its gate opened, in the statement that writes the order.
    """
    return f"""
    INSERT INTO rate_buckets AS bucket
        (key, tokens, capacity, refill_per_second, last_take_granted, updated_at)
    SELECT
        %(key)s::varchar,
        %(capacity)s::integer - 1,
        %(capacity)s::integer,
        %(refill_per_second)s::numeric,
        true,
        COALESCE(%(now)s::timestamptz, clock_timestamp())
    {source}
    ON CONFLICT (key) DO UPDATE SET
        (tokens, last_take_granted) = (
            SELECT CASE WHEN available >= 1 THEN available - 1 ELSE available END,
                   available >= 1
            FROM (SELECT {_AVAILABLE} AS available) AS refill
        ),
        capacity = EXCLUDED.capacity,
        refill_per_second = EXCLUDED.refill_per_second,
        updated_at = GREATEST(bucket.updated_at, EXCLUDED.updated_at)
    RETURNING last_take_granted, tokens, refill_per_second
    """  # noqa: S608 - constant fragments only


_TAKE_TOKEN = take_token_sql()


def window_count_sql(bucket: str, source: str = "") -> str:
    """A fixed-window counter (the API's per-key request limit, ``api_rate_limits``): the INSERT
    that counts one request in its bucket's current window and returns the hits
    in the window (this request included) and the seconds it has left.

    ``bucket``: an SQL expression for the bucket's name; ``source``: a FROM clause it reads
    (authentication counts a key's request in the statement that finds the key).
    """
    return f"""
    INSERT INTO api_rate_limits AS counter (bucket, window_start, hits)
    SELECT {bucket},
        to_timestamp(floor(extract(epoch FROM clock_timestamp()) / %(seconds)s) * %(seconds)s),
        1
    {source}
    ON CONFLICT (bucket) DO UPDATE SET
        hits = CASE WHEN counter.window_start = EXCLUDED.window_start
                    THEN counter.hits + 1 ELSE 1 END,
        window_start = EXCLUDED.window_start
    RETURNING hits,
        extract(epoch FROM window_start + make_interval(secs => %(seconds)s) - clock_timestamp())
    """  # noqa: S608 - the caller's constant fragments only


def take_token_statement(
    key: str,
    *,
    capacity: int,
    refill_per_second: float | Decimal,
    now: datetime | None = None,
) -> tuple[str, dict]:
    """The statement that takes one token (an INSERT ... RETURNING granted, tokens, refill), for
    a caller that writes it as part of a larger statement; ``token_wait`` reads its row."""
    if capacity < 1:
        raise ValueError(f"capacity {capacity}: must be at least 1")
    refill = Decimal(str(refill_per_second))
    if refill <= 0:
        raise ValueError(f"refill_per_second {refill_per_second}: must be more than 0")
    return _TAKE_TOKEN, {
        "key": key,
        "capacity": capacity,
        "refill_per_second": refill,
        "now": now,
    }


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
    sql, params = take_token_statement(
        key, capacity=capacity, refill_per_second=refill_per_second, now=now
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return token_wait(*cursor.fetchone())
