"""Issue types of orders that broker trouble left in flight: ORDER_STUCK (orders_sweep: a person
takes it from there) and CANCEL_UNCONFIRMED (reconciliation: a cancel the broker never confirmed).
The issue_type check constraint lists them."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("positions", "0013_last_price_at"),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name="reconciliationissue",
            name="issue_type_valid",
        ),
        migrations.AlterField(
            model_name="reconciliationissue",
            name="issue_type",
            field=models.CharField(
                choices=[
                    ("QUANTITY_MISMATCH", "Quantity mismatch"),
                    ("PRICE_MISMATCH", "Average price mismatch"),
                    ("MISSING_AT_BROKER", "Position missing at broker"),
                    ("UNKNOWN_POSITION", "Position unknown to us"),
                    ("ORDER_STATUS_MISMATCH", "Order status mismatch"),
                    ("MISSING_FILL", "Fill missing"),
                    ("CONTRADICTORY_REPORT", "Broker report contradicts the order"),
                    ("UNKNOWN_BROKER_STATUS", "Broker reports an unknown order status"),
                    ("CHARGES_MISMATCH", "Charges differ from the contract note"),
                    ("ORDER_STUCK", "Order stuck in flight: needs a person"),
                    ("CANCEL_UNCONFIRMED", "Cancel not confirmed by the broker"),
                ],
                max_length=24,
            ),
        ),
        migrations.AddConstraint(
            model_name="reconciliationissue",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    (
                        "issue_type__in",
                        [
                            "QUANTITY_MISMATCH",
                            "PRICE_MISMATCH",
                            "MISSING_AT_BROKER",
                            "UNKNOWN_POSITION",
                            "ORDER_STATUS_MISMATCH",
                            "MISSING_FILL",
                            "CONTRADICTORY_REPORT",
                            "UNKNOWN_BROKER_STATUS",
                            "CHARGES_MISMATCH",
                            "ORDER_STUCK",
                            "CANCEL_UNCONFIRMED",
                        ],
                    )
                ),
                name="issue_type_valid",
            ),
        ),
    ]
