"""The "Manual Trading" strategy, owner of the orders placed by hand from the admin."""

from contextlib import suppress

from django.db import migrations, transaction
from django.db.models import ProtectedError, RestrictedError

MANUAL_TRADING = "Manual Trading"


def create_manual_trading(apps, schema_editor):
    """Create the strategy once; an existing one (perhaps edited since) is left as it is."""
    Strategy = apps.get_model("orders", "Strategy")
    Strategy.objects.using(schema_editor.connection.alias).get_or_create(
        name=MANUAL_TRADING,
        defaults={
            "status": "ACTIVE",
            "mode": "PAPER",
            "description": "Orders placed by hand from the admin",
            "config": {},
        },
    )


def remove_manual_trading(apps, schema_editor):
    """Remove the strategy unless something refers to it: its history is worth more."""
    Strategy = apps.get_model("orders", "Strategy")
    alias = schema_editor.connection.alias
    with suppress(ProtectedError, RestrictedError), transaction.atomic(using=alias):
        Strategy.objects.using(alias).filter(name=MANUAL_TRADING).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0002_views_functions"),
    ]

    operations = [
        migrations.RunPython(create_manual_trading, remove_manual_trading),
    ]
