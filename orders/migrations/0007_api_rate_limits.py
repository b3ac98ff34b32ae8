"""The API's per-key request counters, shared by every web process (orders/api/throttling.py).

UNLOGGED: counters are worth nothing after a crash, so they skip the WAL (and its fsync). One
row per key and scope, reused window after window, so the table never grows with traffic.
"""

from django.db import migrations

CREATE = """
CREATE UNLOGGED TABLE IF NOT EXISTS api_rate_limits (
    bucket varchar(200) PRIMARY KEY,
    window_start timestamptz NOT NULL,
    hits integer NOT NULL CHECK (hits >= 0)
);
COMMENT ON TABLE api_rate_limits IS
    'API throttling: requests counted per bucket (scope and key) in the window that starts at '
    'window_start (fixed windows). Written only by orders.api.throttling.';
"""


class Migration(migrations.Migration):
    dependencies = [("orders", "0006_api_keys")]

    operations = [
        migrations.RunSQL(CREATE, reverse_sql="DROP TABLE IF EXISTS api_rate_limits;"),
    ]
