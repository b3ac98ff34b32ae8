from django.core.management.base import BaseCommand, CommandError

from orders.brokers import BrokerUnavailable, KiteBroker
from risk.instruments import instruments_refresh, refresh_summary


class Command(BaseCommand):
    help = (
        "Refresh the instrument master from Kite's instruments dump now (the 08:30 IST job "
        "does it every weekday) and print what changed."
    )

    def handle(self, *args, **options):
        try:
            broker = KiteBroker.from_settings()
        except BrokerUnavailable as error:
            raise CommandError(str(error)) from None
        refresh = instruments_refresh(broker)
        if refresh.error:
            raise CommandError(f"instrument refresh {refresh_summary(refresh)}")
        self.stdout.write(f"instrument refresh: {refresh_summary(refresh)}")
