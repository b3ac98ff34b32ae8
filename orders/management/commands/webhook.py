"""manage.py webhook: a strategy's webhook endpoints (the secret is printed once, on add).

python manage.py webhook add "Momentum NIFTY" https://example.com/oms --kinds order.fill
python manage.py webhook list ["Momentum NIFTY"]
python manage.py webhook pause 3 --reason "receiver down for maintenance"
python manage.py webhook resume 3        # from the event after its last delivered one
python manage.py webhook remove 3
"""

from __future__ import annotations

import getpass

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from orders.models import Strategy, WebhookEndpoint
from orders.services.webhooks import (
    WebhookError,
    webhook_endpoint_create,
    webhook_endpoint_pause,
    webhook_endpoint_remove,
    webhook_endpoint_resume,
)


def _actor() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"manage.py webhook ({user})"


def _strategy(reference: str) -> Strategy:
    strategy = Strategy.objects.filter(name=reference).first()
    if strategy is None and reference.isdigit():
        strategy = Strategy.objects.filter(pk=int(reference)).first()
    if strategy is None:
        raise CommandError(f"strategy {reference!r}: no strategy has that name or id")
    return strategy


def _endpoint(reference: str) -> WebhookEndpoint:
    endpoint = (
        WebhookEndpoint.objects.select_related("strategy").filter(pk=int(reference)).first()
        if reference.isdigit()
        else None
    )
    if endpoint is None:
        raise CommandError(f"endpoint {reference!r}: no endpoint has that id (`webhook list`)")
    return endpoint


def _when(moment) -> str:
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M:%S") if moment else "-"


class Command(BaseCommand):
    help = "Add, list, pause, resume or remove webhook endpoints (the secret is printed once)."

    def add_arguments(self, parser: CommandParser) -> None:
        commands = parser.add_subparsers(dest="action", required=True)
        add = commands.add_parser("add", help="A new endpoint; prints its secret once.")
        add.add_argument("strategy", help="The strategy's name (or id).")
        add.add_argument("url")
        add.add_argument("--kinds", default="", help="Comma-separated event kinds (default: all).")
        listing = commands.add_parser("list", help="Endpoints, of one strategy or all.")
        listing.add_argument("strategy", nargs="?")
        pause = commands.add_parser("pause", help="Stop posting (events stay in the feed).")
        pause.add_argument("endpoint", help="The endpoint's id.")
        pause.add_argument("--reason", default="paused by an operator")
        resume = commands.add_parser("resume", help="Post again, from the last delivered event.")
        resume.add_argument("endpoint")
        remove = commands.add_parser("remove", help="Delete the endpoint and its delivery log.")
        remove.add_argument("endpoint")

    def handle(self, *args, **options) -> None:
        getattr(self, f"_{options['action']}")(options)

    def _add(self, options) -> None:
        strategy = _strategy(options["strategy"])
        kinds = [kind for kind in options["kinds"].split(",") if kind.strip()]
        try:
            endpoint, secret = webhook_endpoint_create(
                strategy=strategy, url=options["url"], kinds=kinds, actor=_actor()
            )
        except WebhookError as error:
            raise CommandError(str(error)) from None
        self.stdout.write(
            f"Created webhook endpoint {endpoint.pk} for strategy {strategy.name}: {endpoint.url} "
            f"({', '.join(endpoint.kinds) or 'all kinds'}). Its signing secret is shown once, "
            "below; store it now."
        )
        self.stdout.write(secret)

    def _list(self, options) -> None:
        endpoints = WebhookEndpoint.objects.select_related("strategy")
        if options["strategy"]:
            endpoints = endpoints.filter(strategy=_strategy(options["strategy"]))
        if not endpoints:
            self.stdout.write("No webhook endpoints.")
            return
        self.stdout.write(
            f"{'id':<5} {'state':<7} {'delivered':<10} {'failing since':<20} strategy / url / kinds"
        )
        for endpoint in endpoints:
            self.stdout.write(
                f"{endpoint.pk:<5} {endpoint.state:<7} {endpoint.delivered_seq:<10} "
                f"{_when(endpoint.failing_since):<20} {endpoint.strategy.name} / {endpoint.url} / "
                f"{','.join(endpoint.kinds) or 'all'}"
            )

    def _pause(self, options) -> None:
        endpoint = _endpoint(options["endpoint"])
        if not webhook_endpoint_pause(endpoint, reason=options["reason"], actor=_actor()):
            raise CommandError(f"endpoint {endpoint.pk}: already paused")
        self.stdout.write(f"Paused webhook endpoint {endpoint.pk} ({endpoint.url}).")

    def _resume(self, options) -> None:
        endpoint = _endpoint(options["endpoint"])
        if not webhook_endpoint_resume(endpoint, actor=_actor()):
            raise CommandError(f"endpoint {endpoint.pk}: not paused")
        self.stdout.write(
            f"Resumed webhook endpoint {endpoint.pk}: delivery continues after event "
            f"{endpoint.delivered_seq}."
        )

    def _remove(self, options) -> None:
        endpoint = _endpoint(options["endpoint"])
        webhook_endpoint_remove(endpoint, actor=_actor())
        self.stdout.write(f"Removed webhook endpoint {endpoint.pk} ({endpoint.url}).")
