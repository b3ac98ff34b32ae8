"""Every role sees the instrument master's morning refreshes (what changed)."""

from django.contrib.auth.management import create_permissions
from django.db import migrations


def roles_resync(apps, schema_editor):
    from risk.roles import BASKETS_SEEN, ROLES, WEBHOOKS
    from risk.services import roles_sync

    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    roles_sync(
        apps=apps, roles={name: held - WEBHOOKS - BASKETS_SEEN for name, held in ROLES.items()}
    )


class Migration(migrations.Migration):
    dependencies = [
        ("risk", "0014_rate_windows"),
    ]

    operations = [migrations.RunPython(roles_resync, migrations.RunPython.noop)]
