"""The two rate counters as SQL functions, each defined once and called by every statement that
counts: ``oms_take_token`` (a token bucket: the order rate, Kite's request rate) and
``oms_count_request`` (a fixed window: the API's per-key request limit).

Each is one INSERT ... ON CONFLICT DO UPDATE: PostgreSQL locks the counter's row for the
statement, so two processes can never both spend the last token; time is the database's clock
(``clock_timestamp()``) unless a caller passes ``p_now`` (tests), so machines' clocks need not
agree. A clock that went backwards refills nothing. Each returns one row, and says so (``ROWS
1``): with the default estimate of 1,000 rows, the statement that writes an order looked
costly enough for PostgreSQL to JIT-compile it, 23 ms on every placement.
"""

from django.db import migrations

FUNCTIONS = """
CREATE FUNCTION oms_take_token(
    p_key varchar, p_capacity integer, p_refill_per_second numeric, p_now timestamptz
) RETURNS TABLE (granted boolean, tokens numeric, refill_per_second numeric)
LANGUAGE sql VOLATILE ROWS 1 AS $$
    INSERT INTO rate_buckets AS bucket
        (key, tokens, capacity, refill_per_second, last_take_granted, updated_at)
    VALUES (p_key, p_capacity - 1, p_capacity, p_refill_per_second, true,
            COALESCE(p_now, clock_timestamp()))
    ON CONFLICT (key) DO UPDATE SET
        (tokens, last_take_granted) = (
            SELECT CASE WHEN available >= 1 THEN available - 1 ELSE available END,
                   available >= 1
            FROM (SELECT LEAST(
                EXCLUDED.capacity,
                bucket.tokens + EXCLUDED.refill_per_second
                    * GREATEST(0, EXTRACT(EPOCH FROM EXCLUDED.updated_at - bucket.updated_at))
            ) AS available) AS refill
        ),
        capacity = EXCLUDED.capacity,
        refill_per_second = EXCLUDED.refill_per_second,
        updated_at = GREATEST(bucket.updated_at, EXCLUDED.updated_at)
    RETURNING last_take_granted, tokens, refill_per_second
$$;

CREATE FUNCTION oms_count_request(p_bucket varchar, p_seconds integer)
RETURNS TABLE (hits integer, seconds_left numeric)
LANGUAGE sql VOLATILE ROWS 1 AS $$
    INSERT INTO api_rate_limits AS counter (bucket, window_start, hits)
    VALUES (
        p_bucket,
        to_timestamp(floor(extract(epoch FROM clock_timestamp()) / p_seconds) * p_seconds),
        1
    )
    ON CONFLICT (bucket) DO UPDATE SET
        hits = CASE WHEN counter.window_start = EXCLUDED.window_start
                    THEN counter.hits + 1 ELSE 1 END,
        window_start = EXCLUDED.window_start
    RETURNING hits,
        extract(epoch FROM window_start + make_interval(secs => p_seconds) - clock_timestamp())
$$;
"""
DROP = """
DROP FUNCTION IF EXISTS oms_take_token(varchar, integer, numeric, timestamptz);
DROP FUNCTION IF EXISTS oms_count_request(varchar, integer);
"""


class Migration(migrations.Migration):
    dependencies = [
        ("risk", "0009_truncate_protection"),
        ("orders", "0007_api_rate_limits"),
    ]

    operations = [migrations.RunSQL(FUNCTIONS, DROP)]
