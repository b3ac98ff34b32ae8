from django.core.management.base import BaseCommand, CommandError

from orders.models import Strategy
from positions.reconciliation import reconcile_positions


class Command(BaseCommand):
    help = "Compare our orders, positions and CNC holdings with the broker's; log the differences."

    def add_arguments(self, parser):
        parser.add_argument("--strategy", help="only this strategy (by name)")
        parser.add_argument("--dry-run", action="store_true", help="show, record nothing")
        parser.add_argument("--no-auto-fix", action="store_true", help="fix nothing by itself")

    def handle(self, *args, strategy=None, dry_run=False, no_auto_fix=False, **options):
        target = None
        if strategy:
            target = Strategy.objects.filter(name=strategy).first()
            if target is None:
                raise CommandError(f"--strategy {strategy!r}: no such strategy")
        report = reconcile_positions(
            strategy=target, dry_run=dry_run, auto_fix=False if no_auto_fix else None
        )
        for finding in report.findings:
            self.stdout.write(
                f"{finding.severity:<8} {finding.issue_type:<22} {finding.description}"
            )
        prefix = "dry run: " if dry_run else ""
        self.stdout.write(prefix + report.summary())
