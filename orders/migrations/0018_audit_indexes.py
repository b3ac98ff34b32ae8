"""The audit lists of order events and strategy events on millions of rows, newest first: an
index in the lists' order (``created_at``, ``id``) serves the whole list and any day range, and
one on ``actor`` first serves one person's order events. Built CONCURRENTLY: writes to the
history go on meanwhile (hence a non-atomic migration)."""

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("orders", "0017_webhooks"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="orderevent",
            index=models.Index(fields=["created_at", "id"], name="order_event_created_idx"),
        ),
        AddIndexConcurrently(
            model_name="orderevent",
            index=models.Index(fields=["actor", "created_at", "id"], name="order_event_actor_idx"),
        ),
        AddIndexConcurrently(
            model_name="strategyevent",
            index=models.Index(fields=["created_at", "id"], name="strategy_event_created_idx"),
        ),
    ]
