"""The view ``v_today_orders`` and its read-only model ``TodayOrder``.

"Today" is the IST calendar day: ``now() AT TIME ZONE 'Asia/Kolkata'`` is the wall-clock time in
India (a timestamp without zone); ``date_trunc('day', ...)`` takes it to midnight; the second
``AT TIME ZONE 'Asia/Kolkata'`` reads that midnight as IST and gives back the instant
(timestamptz). Truncating a timestamptz directly would cut at midnight of the session's zone
(UTC on our connections), which is 05:30 IST.
"""

from django.db import migrations, models

TODAY_ORDERS_VIEW = """
CREATE OR REPLACE VIEW v_today_orders AS
SELECT
    o.id,
    o.strategy_id,
    s.name AS strategy_name,
    o.client_order_id,
    o.broker_tag,
    o.broker_order_id,
    o.symbol,
    o.exchange,
    o.segment,
    o.side,
    o.quantity,
    o.filled_quantity,
    o.quantity - o.filled_quantity AS remaining_quantity,
    o.order_type,
    o.price,
    o.trigger_price,
    o.average_price,
    o.product,
    o.validity,
    o.status,
    o.stop_loss,
    o.take_profit,
    o.tag,
    o.status_message,
    o.modification_count,
    o.created_at,
    o.submitted_at,
    o.acknowledged_at,
    o.last_fill_at,
    o.filled_at,
    o.cancelled_at,
    o.rejected_at,
    o.updated_at
FROM orders o
JOIN strategies s ON s.id = o.strategy_id
WHERE o.created_at >= (date_trunc('day', now() AT TIME ZONE 'Asia/Kolkata') AT TIME ZONE 'Asia/Kolkata')
  AND o.created_at < ((date_trunc('day', now() AT TIME ZONE 'Asia/Kolkata') + interval '1 day')
                      AT TIME ZONE 'Asia/Kolkata');

COMMENT ON VIEW v_today_orders IS
    'Orders created during the current IST calendar day (Asia/Kolkata), with the strategy name.';
"""


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0001_initial"),
    ]

    operations = [
        migrations.RunSQL(
            sql=TODAY_ORDERS_VIEW,
            reverse_sql="DROP VIEW IF EXISTS v_today_orders;",
        ),
        migrations.CreateModel(
            name="TodayOrder",
            fields=[
                ("id", models.BigIntegerField(primary_key=True, serialize=False)),
                ("strategy_name", models.CharField(max_length=100)),
                ("client_order_id", models.CharField(max_length=64)),
                ("broker_tag", models.CharField(max_length=20)),
                ("broker_order_id", models.CharField(max_length=64, null=True)),
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
                    "segment",
                    models.CharField(
                        choices=[("EQ", "Equity"), ("FUT", "Futures"), ("OPT", "Options")],
                        max_length=3,
                    ),
                ),
                (
                    "side",
                    models.CharField(choices=[("BUY", "Buy"), ("SELL", "Sell")], max_length=4),
                ),
                ("quantity", models.PositiveIntegerField()),
                ("filled_quantity", models.PositiveIntegerField()),
                ("remaining_quantity", models.PositiveIntegerField()),
                (
                    "order_type",
                    models.CharField(
                        choices=[
                            ("MARKET", "Market"),
                            ("LIMIT", "Limit"),
                            ("SL", "Stop-loss limit"),
                            ("SL-M", "Stop-loss market"),
                        ],
                        max_length=6,
                    ),
                ),
                ("price", models.DecimalField(decimal_places=4, max_digits=14, null=True)),
                (
                    "trigger_price",
                    models.DecimalField(decimal_places=4, max_digits=14, null=True),
                ),
                (
                    "average_price",
                    models.DecimalField(decimal_places=6, max_digits=20, null=True),
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
                (
                    "validity",
                    models.CharField(
                        choices=[("DAY", "Day"), ("IOC", "Immediate or cancel")], max_length=3
                    ),
                ),
                (
                    "status",
                    models.CharField(
                        choices=[
                            ("PENDING", "Pending (recorded, not yet sent)"),
                            ("SUBMITTED", "Submitted (in flight)"),
                            ("UNKNOWN", "Unknown (broker did not answer)"),
                            ("OPEN", "Open"),
                            ("TRIGGER_PENDING", "Trigger pending"),
                            ("PARTIALLY_FILLED", "Partially filled"),
                            ("CANCEL_PENDING", "Cancel pending"),
                            ("FILLED", "Filled"),
                            ("CANCELLED", "Cancelled"),
                            ("REJECTED", "Rejected"),
                            ("EXPIRED", "Expired"),
                        ],
                        max_length=16,
                    ),
                ),
                ("stop_loss", models.DecimalField(decimal_places=4, max_digits=14, null=True)),
                ("take_profit", models.DecimalField(decimal_places=4, max_digits=14, null=True)),
                ("tag", models.CharField(max_length=64)),
                ("status_message", models.TextField()),
                ("modification_count", models.PositiveSmallIntegerField()),
                ("created_at", models.DateTimeField()),
                ("submitted_at", models.DateTimeField(null=True)),
                ("acknowledged_at", models.DateTimeField(null=True)),
                ("last_fill_at", models.DateTimeField(null=True)),
                ("filled_at", models.DateTimeField(null=True)),
                ("cancelled_at", models.DateTimeField(null=True)),
                ("rejected_at", models.DateTimeField(null=True)),
                ("updated_at", models.DateTimeField()),
            ],
            options={
                "db_table": "v_today_orders",
                "ordering": ["-created_at", "-id"],
                "managed": False,
            },
        ),
    ]
