"""Risk officers see the admin's login attempts and lockouts (django-axes' own admin)."""

from django.contrib.auth.management import create_permissions
from django.db import migrations


def roles_resync(apps, schema_editor):
    from risk.roles import (
        BASKETS_SEEN,
        BROKER_ACCOUNTS,
        INSTRUMENT_REFRESHES_SEEN,
        ROLES,
        WEBHOOKS,
    )
    from risk.services import roles_sync

    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    roles_sync(
        apps=apps,
        roles={
            name: held - BROKER_ACCOUNTS - INSTRUMENT_REFRESHES_SEEN - WEBHOOKS - BASKETS_SEEN
            for name, held in ROLES.items()
        },
    )


class Migration(migrations.Migration):
    dependencies = [
        ("risk", "0010_rate_functions"),
        ("axes", "0010_accessattemptexpiration"),
    ]

    operations = [migrations.RunPython(roles_resync, migrations.RunPython.noop)]
