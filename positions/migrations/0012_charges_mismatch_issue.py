"""Issues of charges that differ from the contract note (positions.contract_notes)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0015_broker_accounts"),
        ("positions", "0011_unknown_broker_status"),
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
                        ],
                    )
                ),
                name="issue_type_valid",
            ),
        ),
    ]
