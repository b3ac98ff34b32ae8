from django.core.management.base import BaseCommand, CommandError

from risk.instruments import dump_broker, instruments_refresh, refresh_summary


class Command(BaseCommand):
    help = (
        "Refresh the instrument master from Kite's instruments dump now (the 08:30 IST job "
        "does it every weekday) and print what changed."
    )

    def handle(self, *args, **options):
        broker = dump_broker()
        if broker is None:
            raise CommandError("no Kite account has a session today: log in (Connect Kite)")
        refresh = instruments_refresh(broker)
        if refresh.error:
            raise CommandError(f"instrument refresh {refresh_summary(refresh)}")
        self.stdout.write(f"instrument refresh: {refresh_summary(refresh)}")
