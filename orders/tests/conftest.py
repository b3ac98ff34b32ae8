"""Fixtures of the orders tests: Kite Connect served by a fake Kite HTTP server, through a
broker account logged in for the day."""

from datetime import timedelta

import pytest
from django.utils import timezone

from orders.enums import StrategyMode
from orders.models import BrokerAccount, Strategy
from orders.tests.fake_kite import FakeKiteServer

KITE_USER_ID = "AB1234"  # the user of the recorded postbacks
KITE_API_KEY = "kite-key"
KITE_ACCESS_TOKEN = "kite-access-token-0123456789"
KITE_API_SECRET = "kite-api-secret"


def kite_account_create(
    user_id: str = KITE_USER_ID,
    *,
    api_key: str = KITE_API_KEY,
    api_secret: str = KITE_API_SECRET,
    access_token: str = KITE_ACCESS_TOKEN,
    name: str | None = None,
) -> BrokerAccount:
    """A Kite account with a session valid for the next day; LIVE strategies without an
    account trade through it (and, the only account, so will those made after it)."""
    account = BrokerAccount.objects.create(
        name=name or f"Desk {user_id}",
        user_id=user_id,
        api_key=api_key,
        api_secret=api_secret,
        access_token=access_token,
        token_expires_at=timezone.now() + timedelta(days=1) if access_token else None,
    )
    Strategy.objects.filter(mode=StrategyMode.LIVE, broker_account__isnull=True).update(
        broker_account=account
    )
    return account


@pytest.fixture
def kite_account(db):
    return kite_account_create()


@pytest.fixture
def kite_server(settings, kite_account):
    """A fake Kite on 127.0.0.1 and a LIVE desk's account pointed at it: the adapter
    (KiteBroker.for_account) talks HTTP to it, in the test and in the jobs run_jobs runs."""
    server = FakeKiteServer().start()
    settings.KITE_API_ROOT = server.root
    yield server
    server.stop()
    assert not server.unexpected, f"requests Kite was not expected to get: {server.unexpected}"
