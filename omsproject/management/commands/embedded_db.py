from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from omsproject import embedded_db


class Command(BaseCommand):
    help = "Start, stop or show the embedded PostgreSQL (used when DATABASE_URL is unset)."

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["start", "stop", "status"])

    def handle(self, *args, action, **options):
        if settings.DATABASE_URL:
            raise CommandError("DATABASE_URL is set: the embedded database is not in use")
        pgdata = embedded_db.pgdata_path(settings.BASE_DIR)
        if action == "start":
            params = embedded_db.ensure_running(pgdata)
            self.stdout.write(f"embedded PostgreSQL running, socket in {params['HOST']}")
        elif action == "stop":
            stopped = embedded_db.stop(pgdata)
            self.stdout.write("embedded PostgreSQL stopped" if stopped else "it was not running")
        else:
            running = (pgdata / "postmaster.pid").exists()
            self.stdout.write(f"{pgdata}: {'running' if running else 'stopped'}")
