"""``manage.py kite_sandbox``: serve the Kite sandbox (omsproject.kite_sandbox) until stopped.

A stand-in for Zerodha Kite in demos and manual tries, NOT Kite: point KITE_API_ROOT at the
URL it prints, and log in at its /connect/login page.
"""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from omsproject.kite_sandbox import DEFAULT_ACCOUNT, DEFAULT_REDIRECT_URL, KiteSandbox
from omsproject.kite_sandbox_records import DEFAULT_CASH, account_parse, instruments_read

DEFAULT_INSTRUMENTS = Path(settings.BASE_DIR) / "risk" / "fixtures" / "instruments_sample.csv"


def prices_read(path: str) -> dict[str, Decimal]:
    """A prices file: a JSON object of "EXCHANGE:SYMBOL" to a price, e.g. {"NSE:INFY": 1600.5}."""
    try:
        prices = json.loads(Path(path).read_text(), parse_float=Decimal)
    except (OSError, ValueError) as error:
        raise CommandError(f"--prices {path}: not a readable JSON file ({error})") from error
    if not isinstance(prices, dict):
        raise CommandError(f'--prices {path}: must be a JSON object like {{"NSE:INFY": 1600.5}}')
    try:
        parsed = {str(key): Decimal(str(value)) for key, value in prices.items()}
    except InvalidOperation as error:
        raise CommandError(f"--prices {path}: every price must be a number") from error
    if any(not price.is_finite() or price <= 0 for price in parsed.values()):
        raise CommandError(f"--prices {path}: every price must be above 0")
    return parsed


class Command(BaseCommand):
    help = (
        "Serve the Kite sandbox: Kite Connect v3's JSON from an in-memory exchange (a demo "
        "stand-in, not Zerodha). Stop it with Ctrl-C."
    )
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8001, help="0: any free port")
        parser.add_argument(
            "--redirect-url",
            default=DEFAULT_REDIRECT_URL,
            help="where the login page sends the browser with its request_token",
        )
        parser.add_argument(
            "--postback-url", default=None, help="POST Kite's order postbacks there"
        )
        parser.add_argument(
            "--account",
            action="append",
            default=None,
            metavar="USERID:API_KEY:API_SECRET",
            help=f"an account (repeatable); default {DEFAULT_ACCOUNT}",
        )
        parser.add_argument("--cash", default=str(DEFAULT_CASH), help="each account's cash")
        parser.add_argument(
            "--instruments",
            default=str(DEFAULT_INSTRUMENTS),
            help="instruments in Kite's CSV format",
        )
        parser.add_argument("--prices", default=None, help='JSON: {"NSE:INFY": 1600.5, ...}')
        parser.add_argument(
            "--walk-seconds", type=float, default=1.0, help="one price step every N seconds"
        )
        parser.add_argument("--seed", type=int, default=None, help="repeatable price walks")

    def handle(self, *args, **options):
        try:
            accounts = [account_parse(spec) for spec in options["account"] or [DEFAULT_ACCOUNT]]
        except ValueError as error:
            raise CommandError(f"--account: {error}") from None
        try:
            cash = Decimal(options["cash"])
        except InvalidOperation:
            raise CommandError(f"--cash {options['cash']}: not a number") from None
        if not cash.is_finite() or cash < 0:
            raise CommandError(f"--cash {options['cash']}: must be a number of at least 0")
        for account in accounts:
            account.cash = cash
        try:
            instruments = instruments_read(options["instruments"])
        except (OSError, KeyError, ValueError, InvalidOperation) as error:
            raise CommandError(f"--instruments {options['instruments']}: {error}") from None
        prices = prices_read(options["prices"]) if options["prices"] else None
        try:
            sandbox = KiteSandbox(
                accounts=accounts,
                instruments=instruments,
                prices=prices,
                redirect_url=options["redirect_url"],
                postback_url=options["postback_url"],
                host=options["host"],
                port=options["port"],
                walk_seconds=options["walk_seconds"] or None,
                seed=options["seed"],
            )
        except (ValueError, OSError) as error:
            raise CommandError(str(error)) from None
        sandbox.start()
        self.stdout.write(f"Kite sandbox (NOT Zerodha Kite) at {sandbox.root}", ending="\n")
        for account in accounts:
            self.stdout.write(
                f"    {account.user_id}: api_key {account.api_key}, "
                f"log in at {sandbox.login_url(account.api_key)}"
            )
        self.stdout.flush()
        try:
            sandbox.wait()
        except KeyboardInterrupt:
            self.stdout.write("Kite sandbox stopped.")
        finally:
            sandbox.stop()
