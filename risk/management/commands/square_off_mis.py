from django.core.management.base import BaseCommand

from risk.monitors import square_off_mis


class Command(BaseCommand):
    help = "Cancel open MIS orders and close open MIS positions (safe to run twice)."

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="show what would be done")

    def handle(self, *args, dry_run=False, **options):
        plan = square_off_mis(dry_run=dry_run, actor="operator:square_off_mis")
        verb = "would cancel" if dry_run else "cancelling"
        self.stdout.write(f"{verb} {len(plan.orders_to_cancel)} MIS orders:")
        for order in plan.orders_to_cancel:
            self.stdout.write(f"  {order}")
        verb = "would close" if dry_run else "closing"
        self.stdout.write(f"{verb} {len(plan.positions_to_close)} MIS positions:")
        for position in plan.positions_to_close:
            self.stdout.write(f"  {position}")
