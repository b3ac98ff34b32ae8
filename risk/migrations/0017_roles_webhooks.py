"""Everyone reads the webhook endpoints (never a secret) and their delivery log; risk officers
add, change, pause, resume and retry them."""

from django.contrib.auth.management import create_permissions
from django.db import migrations


def roles_resync(apps, schema_editor):
    from risk.roles import BASKETS_SEEN, ROLES
    from risk.services import roles_sync

    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    # The baskets' permissions came later (risk roles_baskets).
    roles_sync(apps=apps, roles={name: held - BASKETS_SEEN for name, held in ROLES.items()})


class Migration(migrations.Migration):
    dependencies = [
        ("risk", "0016_instrument_refreshes_named"),
        ("orders", "0017_webhooks"),
    ]

    operations = [migrations.RunPython(roles_resync, migrations.RunPython.noop)]
