"""Views ``v_active_positions`` and ``v_reconciliation_issues`` (with their read-only models) and
the SQL functions ``position_unrealized_pnl`` and ``strategy_metrics``.

Rounding: PostgreSQL's ``round(numeric, n)`` rounds half away from zero, which is what Python's
``ROUND_HALF_UP`` does too (positions/pnl.py), negatives included.
"""

from django.db import migrations, models

ACTIVE_POSITIONS_VIEW = """
CREATE OR REPLACE VIEW v_active_positions AS
SELECT
    p.id,
    p.strategy_id,
    s.name AS strategy_name,
    p.symbol,
    p.exchange,
    p.product,
    p.quantity,
    p.average_price,
    p.last_price,
    p.realized_pnl,
    p.unrealized_pnl,
    p.realized_pnl + p.unrealized_pnl AS total_pnl,
    p.stop_loss,
    p.take_profit,
    round(abs(p.quantity) * coalesce(p.last_price, p.average_price), 2) AS exposure,
    p.opened_at
FROM positions p
JOIN strategies s ON s.id = p.strategy_id
WHERE p.closed_at IS NULL;

COMMENT ON VIEW v_active_positions IS
    'Open positions with the strategy name; exposure = abs(quantity) * '
    'coalesce(last_price, average_price), to the paisa.';
"""

RECONCILIATION_ISSUES_VIEW = """
CREATE OR REPLACE VIEW v_reconciliation_issues AS
SELECT
    r.id,
    r.strategy_id,
    s.name AS strategy_name,
    r.issue_type,
    r.severity,
    CASE r.severity WHEN 'CRITICAL' THEN 3 WHEN 'WARNING' THEN 2 WHEN 'INFO' THEN 1 END::smallint
        AS severity_rank,
    r.symbol,
    r.exchange,
    r.product,
    r.order_id,
    r.internal_quantity,
    r.broker_quantity,
    r.internal_price,
    r.broker_price,
    r.description,
    r.details,
    r.fingerprint,
    r.occurrences,
    r.detected_at,
    r.last_seen_at,
    round(extract(epoch FROM now() - r.detected_at) / 3600, 1) AS hours_unresolved
FROM reconciliation_log r
LEFT JOIN strategies s ON s.id = r.strategy_id
WHERE NOT r.resolved
ORDER BY severity_rank DESC, r.detected_at, r.id;

COMMENT ON VIEW v_reconciliation_issues IS
    'Unresolved reconciliation issues, most severe (severity_rank 3 CRITICAL, 2 WARNING, 1 INFO) '
    'then oldest first. Outer queries must ORDER BY severity_rank DESC, detected_at themselves.';
"""

UNREALIZED_PNL_FUNCTION = """
CREATE OR REPLACE FUNCTION position_unrealized_pnl(
    quantity integer, average_price numeric, price numeric
) RETURNS numeric
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$ SELECT round((price - average_price) * quantity, 2) $$;

COMMENT ON FUNCTION position_unrealized_pnl(integer, numeric, numeric) IS
    'Profit of a signed position (long > 0, short < 0) closed at price, to the paisa, half away '
    'from zero: the same figure as positions.pnl.unrealized_pnl.';
"""

STRATEGY_METRICS_FUNCTION = """
CREATE OR REPLACE FUNCTION strategy_metrics(p_strategy_id bigint, p_from date, p_to date)
RETURNS TABLE (
    total_trades bigint,
    buy_trades bigint,
    sell_trades bigint,
    winning_trades bigint,
    losing_trades bigint,
    win_rate numeric,
    gross_pnl numeric,
    total_charges numeric,
    net_pnl numeric,
    turnover numeric
)
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    WITH bounds AS (
        -- IST calendar days [p_from, p_to] as the half-open instant range [starts, ends).
        SELECT p_from::timestamp AT TIME ZONE 'Asia/Kolkata' AS starts,
               (p_to + 1)::timestamp AT TIME ZONE 'Asia/Kolkata' AS ends
    ),
    fills AS (
        SELECT count(*) AS total_trades,
               count(*) FILTER (WHERE t.side = 'BUY') AS buy_trades,
               count(*) FILTER (WHERE t.side = 'SELL') AS sell_trades,
               coalesce(sum(t.total_charges), 0.00) AS total_charges,
               coalesce(sum(t.gross_value), 0.00) AS turnover
        FROM trades t, bounds b
        WHERE t.strategy_id = p_strategy_id
          AND t.executed_at >= b.starts AND t.executed_at < b.ends
    ),
    round_trips AS (
        SELECT count(*) FILTER (WHERE p.realized_pnl > 0) AS winning_trades,
               count(*) FILTER (WHERE p.realized_pnl < 0) AS losing_trades,
               coalesce(sum(p.realized_pnl), 0.00) AS gross_pnl
        FROM positions p, bounds b
        WHERE p.strategy_id = p_strategy_id
          AND p.closed_at >= b.starts AND p.closed_at < b.ends
    )
    SELECT f.total_trades,
           f.buy_trades,
           f.sell_trades,
           r.winning_trades,
           r.losing_trades,
           CASE WHEN r.winning_trades + r.losing_trades = 0 THEN 0.00
                ELSE round(r.winning_trades * 100.0 / (r.winning_trades + r.losing_trades), 2)
           END,
           r.gross_pnl,
           f.total_charges,
           r.gross_pnl - f.total_charges,
           f.turnover
    FROM fills f, round_trips r
$$;

COMMENT ON FUNCTION strategy_metrics(bigint, date, date) IS
    'Figures of one strategy over the IST calendar days p_from..p_to (both included). '
    'From trades executed in the range: total_trades, buy_trades, sell_trades, '
    'turnover (sum of gross_value) and total_charges (sum of total_charges). '
    'From the strategy''s positions closed in the range (closed_at''s IST date), each a round '
    'trip: winning_trades (realized_pnl > 0), losing_trades (realized_pnl < 0; a break-even '
    'trip is neither), gross_pnl (sum of realized_pnl, all of it counted on the closing day). '
    'net_pnl = gross_pnl - total_charges; win_rate = winning * 100 / (winning + losing) to 2 '
    'places, half away from zero, 0 when no trip is decided. Open positions count nothing.';
"""


class Migration(migrations.Migration):
    dependencies = [
        ("positions", "0001_initial"),
        ("orders", "0002_views_functions"),
    ]

    operations = [
        migrations.RunSQL(
            sql=ACTIVE_POSITIONS_VIEW,
            reverse_sql="DROP VIEW IF EXISTS v_active_positions;",
        ),
        migrations.RunSQL(
            sql=RECONCILIATION_ISSUES_VIEW,
            reverse_sql="DROP VIEW IF EXISTS v_reconciliation_issues;",
        ),
        migrations.RunSQL(
            sql=UNREALIZED_PNL_FUNCTION,
            reverse_sql="DROP FUNCTION IF EXISTS position_unrealized_pnl(integer, numeric, numeric);",
        ),
        migrations.RunSQL(
            sql=STRATEGY_METRICS_FUNCTION,
            reverse_sql="DROP FUNCTION IF EXISTS strategy_metrics(bigint, date, date);",
        ),
        migrations.CreateModel(
            name="ActivePosition",
            fields=[
                ("id", models.BigIntegerField(primary_key=True, serialize=False)),
                ("strategy_name", models.CharField(max_length=100)),
                ("symbol", models.CharField(max_length=50)),
                (
                    "exchange",
                    models.CharField(
                        choices=[
                            ("NSE", "NSE"),
                            ("BSE", "BSE"),
                            ("NFO", "NSE F&O"),
                            ("BFO", "BSE F&O"),
                        ],
                        max_length=5,
                    ),
                ),
                (
                    "product",
                    models.CharField(
                        choices=[
                            ("MIS", "Intraday (MIS)"),
                            ("CNC", "Delivery (CNC)"),
                            ("NRML", "Carry-forward F&O (NRML)"),
                        ],
                        max_length=4,
                    ),
                ),
                ("quantity", models.IntegerField()),
                ("average_price", models.DecimalField(decimal_places=6, max_digits=20)),
                ("last_price", models.DecimalField(decimal_places=4, max_digits=14, null=True)),
                ("realized_pnl", models.DecimalField(decimal_places=2, max_digits=18)),
                ("unrealized_pnl", models.DecimalField(decimal_places=2, max_digits=18)),
                ("total_pnl", models.DecimalField(decimal_places=2, max_digits=18)),
                ("stop_loss", models.DecimalField(decimal_places=4, max_digits=14, null=True)),
                ("take_profit", models.DecimalField(decimal_places=4, max_digits=14, null=True)),
                ("exposure", models.DecimalField(decimal_places=2, max_digits=18)),
                ("opened_at", models.DateTimeField()),
            ],
            options={
                "db_table": "v_active_positions",
                "ordering": ["-opened_at", "-id"],
                "managed": False,
            },
        ),
        migrations.CreateModel(
            name="OpenReconciliationIssue",
            fields=[
                ("id", models.BigIntegerField(primary_key=True, serialize=False)),
                ("strategy_name", models.CharField(max_length=100, null=True)),
                (
                    "issue_type",
                    models.CharField(
                        choices=[
                            ("QUANTITY_MISMATCH", "Quantity mismatch"),
                            ("PRICE_MISMATCH", "Average price mismatch"),
                            ("MISSING_AT_BROKER", "Position missing at broker"),
                            ("UNKNOWN_POSITION", "Position unknown to us"),
                            ("ORDER_STATUS_MISMATCH", "Order status mismatch"),
                            ("MISSING_FILL", "Fill missing"),
                        ],
                        max_length=24,
                    ),
                ),
                (
                    "severity",
                    models.CharField(
                        choices=[
                            ("INFO", "Info"),
                            ("WARNING", "Warning"),
                            ("CRITICAL", "Critical"),
                        ],
                        max_length=8,
                    ),
                ),
                ("severity_rank", models.SmallIntegerField()),
                ("symbol", models.CharField(max_length=50)),
                ("exchange", models.CharField(max_length=5)),
                ("product", models.CharField(max_length=4)),
                ("internal_quantity", models.IntegerField(null=True)),
                ("broker_quantity", models.IntegerField(null=True)),
                (
                    "internal_price",
                    models.DecimalField(decimal_places=6, max_digits=20, null=True),
                ),
                ("broker_price", models.DecimalField(decimal_places=6, max_digits=20, null=True)),
                ("description", models.TextField()),
                ("details", models.JSONField()),
                ("fingerprint", models.CharField(max_length=200)),
                ("occurrences", models.PositiveIntegerField()),
                ("detected_at", models.DateTimeField()),
                ("last_seen_at", models.DateTimeField()),
                ("hours_unresolved", models.DecimalField(decimal_places=1, max_digits=12)),
            ],
            options={
                "db_table": "v_reconciliation_issues",
                "ordering": ["-severity_rank", "detected_at", "id"],
                "managed": False,
            },
        ),
    ]
