"""manage.py strategy_key: create, revoke and list a strategy's API keys.

python manage.py strategy_key create "Momentum NIFTY" --name "prod runner"   # key on the last line
python manage.py strategy_key list "Momentum NIFTY"
python manage.py strategy_key revoke "Momentum NIFTY" --prefix 1a2b3c4d
"""

from __future__ import annotations

import getpass

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from orders.api_keys import ApiKeyError, api_key_create, api_key_revoke, api_keys_of
from orders.models import Strategy


def _actor() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"manage.py strategy_key ({user})"


def _strategy(reference: str) -> Strategy:
    """A strategy by exact name, or by id when the reference is a number."""
    strategy = Strategy.objects.filter(name=reference).first()
    if strategy is None and reference.isdigit():
        strategy = Strategy.objects.filter(pk=int(reference)).first()
    if strategy is None:
        raise CommandError(f"strategy {reference!r}: no strategy has that name or id")
    return strategy


def _when(moment) -> str:
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M:%S") if moment else "-"


class Command(BaseCommand):
    help = "Create, revoke or list a strategy's API keys (the key is printed once, on create)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["create", "revoke", "list"])
        parser.add_argument("strategy", help="The strategy's name (or id).")
        parser.add_argument("--name", help="create: what the key is for (default: a timestamp).")
        parser.add_argument("--prefix", help="revoke: the key's 8-character prefix.")

    def handle(self, *args, **options) -> None:
        strategy = _strategy(options["strategy"])
        action = options["action"]
        if action == "create":
            self._create(strategy, options["name"])
        elif action == "revoke":
            self._revoke(strategy, options["prefix"])
        else:
            self._list(strategy)

    def _create(self, strategy: Strategy, name: str | None) -> None:
        name = name or f"cli {timezone.localtime():%Y-%m-%d %H:%M:%S}"
        try:
            key, plaintext = api_key_create(strategy=strategy, name=name, actor=_actor())
        except ApiKeyError as error:
            raise CommandError(str(error)) from None
        self.stdout.write(
            f"Created key {key.prefix} ({key.name}) for strategy {strategy.name}. "
            "It is shown once, below; store it now."
        )
        self.stdout.write(plaintext)

    def _revoke(self, strategy: Strategy, prefix: str | None) -> None:
        if not prefix:
            raise CommandError("--prefix: required to revoke (see `strategy_key list`)")
        key = api_keys_of(strategy).filter(prefix=prefix.lower()).first()
        if key is None:
            raise CommandError(f"prefix {prefix!r}: strategy {strategy.name} has no such key")
        if key.is_revoked:
            raise CommandError(f"key {key.prefix}: already revoked at {_when(key.revoked_at)}")
        api_key_revoke(key, actor=_actor())
        self.stdout.write(f"Revoked key {key.prefix} ({key.name}) of strategy {strategy.name}.")

    def _list(self, strategy: Strategy) -> None:
        keys = list(api_keys_of(strategy))
        if not keys:
            self.stdout.write(f"Strategy {strategy.name} has no API keys.")
            return
        self.stdout.write(f"{'prefix':<9} {'created':<20} {'last used':<20} {'revoked':<20} name")
        for key in keys:
            self.stdout.write(
                f"{key.prefix:<9} {_when(key.created_at):<20} {_when(key.last_used_at):<20} "
                f"{_when(key.revoked_at):<20} {key.name}"
            )
