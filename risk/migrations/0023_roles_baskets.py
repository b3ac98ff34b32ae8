"""Everyone reads the baskets and the sliced parents (with their orders)."""

from django.contrib.auth.management import create_permissions
from django.db import migrations


def roles_resync(apps, schema_editor):
    from risk.roles import roles_at
    from risk.services import roles_sync

    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    roles_sync(apps=apps, roles=roles_at("0023_roles_baskets"))


class Migration(migrations.Migration):
    dependencies = [
        ("risk", "0022_pnl_snapshot_verbose_name"),
        ("orders", "0020_varieties_baskets"),
    ]

    operations = [migrations.RunPython(roles_resync, migrations.RunPython.noop)]
