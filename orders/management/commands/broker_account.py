"""manage.py broker_account: the Kite accounts a desk trades through.

    python manage.py broker_account add --name "Desk 1" --user-id AB1234 --api-key KEY
        (the API secret is read from $KITE_API_SECRET, or asked for: never a command-line
        argument, which shell history and `ps` would keep)
    python manage.py broker_account list
    python manage.py broker_account disconnect --user-id AB1234
    python manage.py broker_account rotate      (re-encrypt every secret under the newest key)

The day's access token comes from the admin's "Connect Kite" (Kite's login), never from here.
"""

from __future__ import annotations

import getpass
import os

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import IntegrityError, connection, transaction

from omsproject.crypto import rotated
from omsproject.money_format import plural
from orders.broker_sessions import IST, session_problem, session_state
from orders.models import BrokerAccount
from orders.services.broker_accounts import broker_account_disconnect


class Command(BaseCommand):
    help = "Add, list, disconnect Kite broker accounts; rotate the key their secrets use."

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        add = actions.add_parser("add", help="a new Kite account (its secret from the env)")
        add.add_argument("--name", required=True)
        add.add_argument("--user-id", required=True, help="Kite user id, e.g. AB1234")
        add.add_argument("--api-key", required=True)
        add.add_argument(
            "--secret-env",
            default="KITE_API_SECRET",
            help="environment variable holding the API secret (default KITE_API_SECRET)",
        )
        actions.add_parser("list", help="every account and its session")
        disconnect = actions.add_parser("disconnect", help="forget an account's session")
        disconnect.add_argument("--user-id", required=True)
        actions.add_parser("rotate", help="re-encrypt every secret under the newest key")

    def handle(self, *args, action: str, **options) -> None:
        getattr(self, f"_{action}")(**options)

    def _add(self, *, name, user_id, api_key, secret_env, **options) -> None:
        secret = os.environ.get(secret_env) or getpass.getpass("Kite API secret: ")
        user_id = user_id.strip().upper()
        if not secret:
            raise CommandError(f"api secret: empty (set {secret_env} or type it)")
        if not user_id.isalnum():
            raise CommandError(f"--user-id {user_id!r}: letters and digits, e.g. AB1234")
        try:
            account = BrokerAccount.objects.create(
                name=name, user_id=user_id, api_key=api_key, api_secret=secret
            )
        except IntegrityError as error:
            raise CommandError(
                f"an account named {name!r} or for user {user_id} exists already"
            ) from error
        self.stdout.write(f"{account}: added; log in from the admin (Broker accounts)")

    def _list(self, **options) -> None:
        for account in BrokerAccount.objects.all():
            state = session_state(account)
            until = (
                account.token_expires_at.astimezone(IST).strftime("%d %b %H:%M IST")
                if state == "connected"
                else session_problem(account)
            )
            self.stdout.write(f"{account.user_id:<10} {account.name:<24} {state:<10} {until}")

    def _disconnect(self, *, user_id, **options) -> None:
        account = BrokerAccount.objects.filter(user_id=user_id.upper()).first()
        if account is None:
            raise CommandError(f"--user-id {user_id}: no such account")
        broker_account_disconnect(account.pk, actor="manage.py broker_account")
        self.stdout.write(f"{account}: session dropped")

    def _rotate(self, **options) -> None:
        """Each stored token read raw and written again under the first key of
        OMS_SECRETS_KEYS (the others still open it until then)."""
        columns = ("api_key", "api_secret", "access_token")
        count = 0
        with transaction.atomic(), connection.cursor() as cursor:
            # Raw: the field would decrypt on the way in and encrypt on the way out.
            cursor.execute(
                "SELECT id, api_key, api_secret, access_token FROM broker_accounts FOR UPDATE"
            )
            for pk, *tokens in cursor.fetchall():
                changes = {
                    column: rotated(token)
                    for column, token in zip(columns, tokens, strict=True)
                    if token
                }
                assignments = ", ".join(f"{column} = %s" for column in changes)
                cursor.execute(
                    f"UPDATE broker_accounts SET {assignments} WHERE id = %s",  # noqa: S608
                    [*changes.values(), pk],
                )
                count += 1
        self.stdout.write(f"{plural(count, 'account')} re-encrypted under the newest key")
