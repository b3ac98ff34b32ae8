"""Fills carry what they realized (PnL booked on the fill's day), and a position may change
only through a trades row: a fill of an order, or an adjustment (no order, no charges, a
reason and the reconciliation issue it settles). New columns have database defaults, so
a raw INSERT or COPY of a fill (the bulk demo history) stays valid."""

from decimal import Decimal

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0013_truncate_protection"),
        ("positions", "0009_money"),
    ]

    operations = [
        migrations.AddField(
            model_name="trade",
            name="issue",
            field=models.ForeignKey(
                blank=True,
                help_text="The reconciliation issue an adjustment settles.",
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="adjustments",
                to="positions.reconciliationissue",
            ),
        ),
        migrations.AddField(
            model_name="trade",
            name="kind",
            field=models.CharField(
                choices=[("FILL", "Fill"), ("ADJUSTMENT", "Adjustment")],
                db_default="FILL",
                default="FILL",
                max_length=10,
            ),
        ),
        migrations.AddField(
            model_name="trade",
            name="realized_pnl",
            field=models.DecimalField(
                db_default=Decimal("0"),
                decimal_places=2,
                default=Decimal("0"),
                help_text="Gross PnL this fill's reduction realized (0 for an add), on its day.",
                max_digits=18,
            ),
        ),
        migrations.AddField(
            model_name="trade",
            name="reason",
            field=models.TextField(blank=True, db_default="", default=""),
        ),
        migrations.AlterField(
            model_name="trade",
            name="order",
            field=models.ForeignKey(
                blank=True,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="trades",
                to="orders.order",
            ),
        ),
        migrations.AddConstraint(
            model_name="trade",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    models.Q(("issue__isnull", True), ("kind", "FILL"), ("order__isnull", False)),
                    models.Q(
                        ("issue__isnull", False),
                        ("kind", "ADJUSTMENT"),
                        ("order__isnull", True),
                        ("total_charges", 0),
                        models.Q(("reason", ""), _negated=True),
                    ),
                    _connector="OR",
                ),
                name="trade_fill_has_order_adjustment_has_issue",
            ),
        ),
        migrations.AddConstraint(
            model_name="trade",
            constraint=models.CheckConstraint(
                condition=models.Q(("kind__in", ["FILL", "ADJUSTMENT"])), name="trade_kind_valid"
            ),
        ),
    ]
