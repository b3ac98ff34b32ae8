from django.core.management.base import BaseCommand, CommandError

from omsproject.money_format import plural
from risk.monitors import square_off_mis


class Command(BaseCommand):
    help = (
        "Cancel open MIS orders and close open MIS positions (safe to run twice). Exits with an "
        "error when an exit failed or a position was left open by a HALTED kill switch."
    )

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="show what would be done")

    def handle(self, *args, dry_run=False, **options):
        plan = square_off_mis(dry_run=dry_run, actor="operator:square_off_mis")
        verb = "would cancel" if dry_run else "cancelling"
        self.stdout.write(f"{verb} {len(plan.orders_to_cancel)} MIS orders:")
        for order in plan.orders_to_cancel:
            self.stdout.write(f"  {order}")
        if dry_run:
            self.stdout.write(f"would close {len(plan.positions_to_close)} MIS positions:")
            for position in plan.positions_to_close:
                self.stdout.write(f"  {position}")
        else:
            self.stdout.write(f"closing {len(plan.positions_to_close)} MIS positions:")
            for result in plan.exits:
                self.stdout.write(f"  {result.describe()}")
        for position in plan.held:
            self.stdout.write(
                f"  left open: {position} (kill switch HALTED: set REDUCING to let exits through)"
            )
        problems = len(plan.failed) + len(plan.held)
        if problems and not dry_run:
            raise CommandError(
                f"{plural(len(plan.failed), 'exit')} failed and "
                f"{plural(len(plan.held), 'position')} left open: see above"
            )
