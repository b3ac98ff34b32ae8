"""Kite's order rate as a sliding window (``rate_windows`` and ``oms_take_slot``): a token bucket
of 10 refilled at 10 a second let 20 requests through within one second, and Kite answered 429.

``oms_take_slot(key, limits, seconds, now)`` keeps a key's latest send times (oldest first, as
many as its largest limit) and takes a slot only when, for each (limit, seconds), fewer than
``limit`` of them are later than ``seconds`` ago: the ``limit``-th latest is then old enough.
One INSERT ... ON CONFLICT DO UPDATE, so the row is locked for the decision and two processes
never take the last slot both; the time is the database's clock read under that lock (or
``p_now``, for tests). A clock that went backwards only makes it stricter: the send times stay
in order and a later one counts as recent.
"""

import django.contrib.postgres.fields
from django.db import migrations, models

FUNCTION = """
CREATE FUNCTION oms_take_slot(
    p_key varchar, p_limits integer[], p_seconds numeric[], p_now timestamptz
) RETURNS TABLE (granted boolean, wait_seconds numeric)
LANGUAGE sql VOLATILE ROWS 1 AS $$
    INSERT INTO rate_windows AS w (key, sent_at, last_take_granted, wait_seconds, updated_at)
    VALUES (p_key, ARRAY[COALESCE(p_now, clock_timestamp())], true, 0,
            COALESCE(p_now, clock_timestamp()))
    ON CONFLICT (key) DO UPDATE SET
        (sent_at, last_take_granted, wait_seconds, updated_at) = (
            SELECT CASE WHEN decision.wait > 0 THEN w.sent_at
                        ELSE (w.sent_at || GREATEST(decision.now, w.sent_at[cardinality(w.sent_at)]))
                             [GREATEST(1, cardinality(w.sent_at) + 2 - decision.keep):]
                   END,
                   decision.wait <= 0,
                   GREATEST(decision.wait, 0),
                   decision.now
            FROM (
                SELECT clock.now,
                       (SELECT max(requests) FROM unnest(p_limits) AS requests) AS keep,
                       COALESCE((
                           SELECT max(EXTRACT(EPOCH FROM
                               w.sent_at[cardinality(w.sent_at) - lim.requests + 1]
                               + make_interval(secs => lim.seconds::double precision)
                               - clock.now))
                           FROM unnest(p_limits, p_seconds) AS lim(requests, seconds)
                           WHERE cardinality(w.sent_at) >= lim.requests
                       ), 0) AS wait
                FROM (SELECT COALESCE(p_now, clock_timestamp()) AS now) AS clock
            ) AS decision
        )
    RETURNING last_take_granted, wait_seconds
$$;
"""
DROP = "DROP FUNCTION IF EXISTS oms_take_slot(varchar, integer[], numeric[], timestamptz);"


class Migration(migrations.Migration):
    dependencies = [
        ("risk", "0013_margin_cache_and_instrument_refreshes"),
    ]

    operations = [
        migrations.CreateModel(
            name="RateWindow",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("key", models.CharField(max_length=100, unique=True)),
                (
                    "sent_at",
                    django.contrib.postgres.fields.ArrayField(
                        base_field=models.DateTimeField(), size=None
                    ),
                ),
                ("last_take_granted", models.BooleanField(default=True)),
                ("wait_seconds", models.DecimalField(decimal_places=6, default=0, max_digits=14)),
                ("updated_at", models.DateTimeField()),
            ],
            options={
                "db_table": "rate_windows",
                "constraints": [
                    models.CheckConstraint(
                        condition=models.Q(("wait_seconds__gte", 0)),
                        name="rate_window_wait_not_negative",
                    )
                ],
            },
        ),
        migrations.RunSQL(FUNCTION, DROP),
    ]
