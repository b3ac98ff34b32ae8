"""The back office's groups: Risk officer, Operator, Viewer (risk/roles.py says which
permissions each holds; ``manage.py create_roles`` re-syncs them after a change)."""

from django.contrib.auth.management import create_permissions
from django.db import migrations


def roles_create(apps, schema_editor):
    from risk.roles import (
        BASKETS_SEEN,
        BROKER_ACCOUNTS,
        INSTRUMENT_REFRESHES_SEEN,
        LOGIN_ATTEMPTS,
        ROLES,
        WEBHOOKS,
    )
    from risk.services import roles_sync

    # Permissions are made after every migration has run (post_migrate): make them now.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    # The roles as they were then: the login attempts' permissions came later (risk 0011).
    roles_sync(
        apps=apps,
        roles={
            name: held
            - LOGIN_ATTEMPTS
            - BROKER_ACCOUNTS
            - INSTRUMENT_REFRESHES_SEEN
            - WEBHOOKS
            - BASKETS_SEEN
            for name, held in ROLES.items()
        },
    )


def roles_remove(apps, schema_editor):
    from risk.roles import ROLES

    apps.get_model("auth", "Group").objects.filter(name__in=list(ROLES)).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("orders", "0008_admin_indexes_permissions"),
        ("positions", "0005_admin_permissions"),
        ("risk", "0004_admin_permissions"),
    ]

    operations = [migrations.RunPython(roles_create, roles_remove)]
