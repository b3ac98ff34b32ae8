from datetime import datetime

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from orders.services import orders_expire


class Command(BaseCommand):
    help = "Expire DAY orders still working after the market close (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("--at", help="as if it were this IST time, YYYY-MM-DDTHH:MM")

    def handle(self, *args, at=None, **options):
        now = None
        if at:
            try:
                now = datetime.fromisoformat(at)
            except ValueError:
                raise CommandError(f"--at {at!r}: must be YYYY-MM-DDTHH:MM") from None
            if timezone.is_naive(now):  # IST, unless the time says otherwise
                now = timezone.make_aware(now)
        expired = orders_expire(now=now)
        self.stdout.write(f"{expired} DAY orders expired")
