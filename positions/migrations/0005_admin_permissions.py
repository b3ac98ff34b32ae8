"""The permission to settle CRITICAL reconciliation issues (risk officers), and an index on the
closed positions' closing time: today's are what risk's day PnL and the dashboard add up,
among years of them. Built CONCURRENTLY, so the migration is not atomic."""

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("positions", "0004_paper_broker_and_prices"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="reconciliationissue",
            options={
                "ordering": ["resolved", "-detected_at"],
                "permissions": [
                    (
                        "resolve_critical_issue",
                        "Can resolve or auto-fix CRITICAL reconciliation issues",
                    )
                ],
            },
        ),
        AddIndexConcurrently(
            model_name="position",
            index=models.Index(
                condition=models.Q(("closed_at__isnull", False)),
                fields=["closed_at"],
                name="position_closed_idx",
            ),
        ),
    ]
