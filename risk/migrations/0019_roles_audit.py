"""The audit lists: everyone reads the admin's change log and the strategies' event log; risk
officers export the audit lists (order events, kill switch events, reconciliation issues, the
change log, strategy events) to CSV, a permission of its own (``risk.export_audit``)."""

from django.contrib.auth.management import create_permissions
from django.db import migrations


def roles_resync(apps, schema_editor):
    from risk.roles import roles_at
    from risk.services import roles_sync

    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    roles_sync(apps=apps, roles=roles_at("0019_roles_audit"))


class Migration(migrations.Migration):
    dependencies = [
        ("risk", "0018_roles_jobs_and_health"),
        ("orders", "0017_webhooks"),
        ("admin", "0003_logentry_add_action_flag_choices"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="killswitchevent",
            options={
                "ordering": ["-id"],
                "permissions": [
                    ("change_kill_switch", "Can set the kill switch and flatten positions"),
                    ("export_audit", "Can export the audit lists to CSV"),
                ],
            },
        ),
        migrations.RunPython(roles_resync, migrations.RunPython.noop),
    ]
