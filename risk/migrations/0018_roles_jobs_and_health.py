"""Operators and risk officers read the background jobs (the dashboard's jobs card links to
them); the jobs card finds the failed ones through a partial index of their own."""

from django.contrib.auth.management import create_permissions
from django.db import migrations


def roles_resync(apps, schema_editor):
    from risk.roles import roles_at
    from risk.services import roles_sync

    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    roles_sync(apps=apps, roles=roles_at("0018_roles_jobs_and_health"))


class Migration(migrations.Migration):
    dependencies = [
        ("risk", "0017_roles_webhooks"),
        ("procrastinate", "0041_post_retry_failed_job"),
    ]

    operations = [
        migrations.RunSQL(
            "CREATE INDEX IF NOT EXISTS oms_procrastinate_jobs_failed "
            "ON procrastinate_jobs (id) WHERE status = 'failed'",
            "DROP INDEX IF EXISTS oms_procrastinate_jobs_failed",
        ),
        migrations.RunPython(roles_resync, migrations.RunPython.noop),
    ]
