"""``v_active_positions.exposure`` is renamed ``position_value``: it is |quantity| x the last
price (the average while unmarked), what a position is worth now. "Exposure" is the limits'
gross exposure alone (positions at cost plus working orders, risk.selectors.gross_exposure)."""

from django.db import migrations

FORWARD = """
ALTER TABLE v_active_positions RENAME COLUMN exposure TO position_value;
COMMENT ON VIEW v_active_positions IS
    'Open positions with the strategy name; position_value = abs(quantity) * '
    'coalesce(last_price, average_price), to the paisa (not the limits'' gross exposure).';
"""

BACKWARD = """
ALTER TABLE v_active_positions RENAME COLUMN position_value TO exposure;
COMMENT ON VIEW v_active_positions IS
    'Open positions with the strategy name; exposure = abs(quantity) * '
    'coalesce(last_price, average_price), to the paisa.';
"""


class Migration(migrations.Migration):
    dependencies = [
        ("positions", "0006_strategy_prices"),
    ]

    operations = [
        migrations.RunSQL(sql=FORWARD, reverse_sql=BACKWARD),
        migrations.RenameField(
            model_name="activeposition", old_name="exposure", new_name="position_value"
        ),
    ]
