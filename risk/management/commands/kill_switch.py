from django.core.management.base import BaseCommand, CommandError

from orders.models import Strategy
from risk.kill_switch import kill_switch_set
from risk.models import KillSwitchEvent, KillSwitchState
from risk.selectors import kill_switch_state
from risk.services import KillSwitchError

ACTIONS = {
    "halt": KillSwitchState.HALTED,
    "reduce": KillSwitchState.REDUCING,
    "resume": KillSwitchState.ACTIVE,
}


class Command(BaseCommand):
    help = "Show or change the kill switch, globally or for one strategy."

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["status", *ACTIONS])
        parser.add_argument("--strategy", help="strategy name (default: global)")
        parser.add_argument("--reason", help="why (required to change the state)")
        parser.add_argument("--actor", default="operator", help="who (default: operator)")

    def handle(self, *args, action, strategy=None, reason=None, actor="operator", **options):
        target = None
        if strategy:
            target = Strategy.objects.filter(name=strategy).first()
            if target is None:
                raise CommandError(f"--strategy {strategy!r}: no such strategy")
        if action == "status":
            self._status(target)
            return
        if not reason:
            raise CommandError("--reason: required to change the kill switch")
        try:
            event = kill_switch_set(ACTIONS[action], strategy=target, reason=reason, actor=actor)
        except KillSwitchError as error:
            raise CommandError(str(error)) from None
        self.stdout.write(f"kill switch {event.state} for {target or 'all strategies'}")

    def _status(self, target):
        self.stdout.write(f"global: {kill_switch_state()}")
        strategies = [target] if target else Strategy.objects.all()
        for strategy in strategies:
            self.stdout.write(f"{strategy.name}: {kill_switch_state(strategy=strategy)}")
        for event in KillSwitchEvent.objects.select_related("strategy")[:5]:
            self.stdout.write(
                f"  {event.created_at:%Y-%m-%d %H:%M:%S} {event.state:<8} "
                f"{event.strategy or 'global'} by {event.actor}: {event.reason}"
            )
