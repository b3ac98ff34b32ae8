from django.core.management.base import BaseCommand, CommandError

from risk.services import roles_sync


class Command(BaseCommand):
    help = (
        "Create or re-sync the back office's groups (Risk officer, Operator, Viewer) with "
        "exactly the permissions of risk/roles.py."
    )

    def handle(self, *args, **options):
        try:
            held = roles_sync()
        except LookupError as error:
            raise CommandError(str(error)) from None
        for name, count in held.items():
            self.stdout.write(f"{name}: {count} permissions")
