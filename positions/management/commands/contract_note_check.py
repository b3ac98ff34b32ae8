from datetime import date

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from positions.contract_notes import COMPONENTS, contract_notes_check


class Command(BaseCommand):
    help = (
        "Compare the charges of a day's executed LIVE orders with Kite's contract note; each "
        "component differing by more than OMS_CHARGES_TOLERANCE is a CHARGES_MISMATCH issue."
    )

    def add_arguments(self, parser):
        parser.add_argument("--date", help="the trading day, YYYY-MM-DD (default: today, IST)")

    def handle(self, *args, **options):
        day = timezone.localdate()
        if options["date"]:
            try:
                day = date.fromisoformat(options["date"])
            except ValueError:
                raise CommandError(f"--date {options['date']!r}: must be YYYY-MM-DD") from None
        report = contract_notes_check(day=day)
        for mismatch in report.mismatches:
            self.stdout.write(
                f"order {mismatch.order_id}: {COMPONENTS[mismatch.component]} ours "
                f"₹{mismatch.ours}, Kite ₹{mismatch.kite} (unrounded {mismatch.kite_unrounded})"
            )
        self.stdout.write(report.summary())
