"""A position's cash flow (sells less buys of its quantities: a flat position's realized PnL
is exactly this) and the time of its mark.

Existing positions get the cash flow their average implies (realized - quantity * average, the
figure positions.pnl.apply_fill assumes when none is known), and the time of their last price
is taken as their last update."""

from decimal import Decimal

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("positions", "0008_contradictory_report"),
    ]

    operations = [
        migrations.AddField(
            model_name="position",
            name="cash_flow",
            field=models.DecimalField(
                db_default=Decimal("0"),
                decimal_places=6,
                default=Decimal("0"),
                help_text="Sells less buys of this position's quantities (its fills at their prices): when it closes, its realized PnL is exactly this, to the paisa.",
                max_digits=20,
            ),
        ),
        migrations.AddField(
            model_name="position",
            name="last_price_at",
            field=models.DateTimeField(
                blank=True, help_text="When the last price (the mark) was seen.", null=True
            ),
        ),
        migrations.RunSQL(
            sql="""
                UPDATE positions SET cash_flow = realized_pnl - quantity * average_price,
                    last_price_at = CASE WHEN last_price IS NULL THEN NULL ELSE updated_at END;
            """,
            reverse_sql=migrations.RunSQL.noop,
        ),
    ]
