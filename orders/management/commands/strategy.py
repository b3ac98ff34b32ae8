"""Operators show, pause or resume a strategy (as staff: a strategy cannot lift this pause)."""

from django.core.management.base import BaseCommand, CommandError

from orders.enums import StrategyEventKind, StrategyStatus
from orders.models import Strategy, StrategyEvent
from orders.services import strategy_status_set

ACTIONS = {"pause": StrategyStatus.PAUSED, "resume": StrategyStatus.ACTIVE}


class Command(BaseCommand):
    help = (
        "Show a strategy's status, or pause or resume it as staff (a staff pause is one the "
        "strategy itself can never lift)."
    )

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["status", *ACTIONS])
        parser.add_argument("name", help="the strategy's name")
        parser.add_argument("--reason", help="why (required to pause or resume)")
        parser.add_argument("--actor", default="operator", help="who (default: operator)")

    def handle(self, *args, action, name, reason=None, actor="operator", **options):
        strategy = Strategy.objects.filter(name=name).first()
        if strategy is None:
            raise CommandError(f"name {name!r}: no such strategy")
        if action != "status":
            if not (reason or "").strip():
                raise CommandError(f"--reason: required to {action} a strategy")
            strategy = strategy_status_set(
                strategy, status=ACTIONS[action], actor=actor, reason=reason.strip()
            )
        self._status(strategy)

    def _status(self, strategy: Strategy) -> None:
        held = f" by {strategy.paused_by.lower()}" if strategy.paused_by else ""
        self.stdout.write(f"{strategy.name}: {strategy.status}{held}")
        if strategy.status_reason:
            self.stdout.write(f"  why: {strategy.status_reason} ({strategy.status_actor})")
        changes = StrategyEvent.objects.filter(
            strategy=strategy, kind=StrategyEventKind.STRATEGY_STATUS
        ).order_by("-id")[:5]
        for event in changes:
            data = event.payload
            self.stdout.write(
                f"  {event.created_at:%Y-%m-%d %H:%M:%S} {data.get('from_status')} -> "
                f"{data.get('to_status')} by {data.get('actor') or '?'}: {data.get('reason')}"
            )
