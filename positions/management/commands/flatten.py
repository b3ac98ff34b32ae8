from django.core.management.base import BaseCommand, CommandError

from omsproject.money_format import plural
from orders.models import Strategy
from positions.exits import positions_flatten


class Command(BaseCommand):
    help = (
        "Close every open position (of one strategy, or all) with MARKET orders, through the one "
        "owner of exits. Exits with an error when an exit failed."
    )

    def add_arguments(self, parser):
        parser.add_argument("--strategy", help="the strategy's name or id (default: all)")
        parser.add_argument("--reason", required=True, help="why (recorded with every order)")
        parser.add_argument("--actor", default="operator:flatten", help="who asks")

    def handle(self, *args, strategy=None, reason="", actor="", **options):
        scope = None
        if strategy:
            lookup = {"pk": int(strategy)} if strategy.isdigit() else {"name": strategy}
            scope = Strategy.objects.filter(**lookup).first()
            if scope is None:
                raise CommandError(f"strategy {strategy!r}: not found")
        if not reason.strip():
            raise CommandError("reason: required")
        results = positions_flatten(actor=actor, reason=reason.strip(), strategy=scope)
        self.stdout.write(f"{plural(len(results), 'open position')}:")
        for result in results:
            self.stdout.write(f"  {result.describe()}")
        failed = [result for result in results if result.failed]
        if failed:
            raise CommandError(f"{plural(len(failed), 'exit')} failed: see above")
