"""The admin's order list on millions of rows: an index for the status filter in date order and
one for the search by client order id, built CONCURRENTLY (writes to orders go on meanwhile,
hence a non-atomic migration); and the permission to cancel orders from the admin."""

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("orders", "0007_api_rate_limits"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="order",
            options={
                "ordering": ["-created_at", "-id"],
                "permissions": [("cancel_order", "Can cancel working orders from the admin")],
            },
        ),
        AddIndexConcurrently(
            model_name="order",
            index=models.Index(
                fields=["status", "-created_at", "-id"], name="order_status_created_idx"
            ),
        ),
        AddIndexConcurrently(
            model_name="order",
            index=models.Index(fields=["client_order_id"], name="order_client_order_id_idx"),
        ),
    ]
