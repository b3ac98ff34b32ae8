"""Two Kite accounts trading the same symbol: each order goes out with its own account's
credentials, each account's order rate is its own, and a session expiring on one account stops
only its strategies. Against a fake Kite HTTP server (the official client builds the requests)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from orders.enums import OrderStatus, StrategyMode
from orders.models import BrokerAccount
from orders.services import order_submit
from orders.tests.conftest import kite_account_create
from orders.tests.factories import OrderFactory, StrategyFactory

PLACE = ("POST", "/orders/regular")


@pytest.fixture
def desks(kite_server):
    """Desk 1 (AB1234, the fixture's account) and Desk 2 (CD5678), one LIVE strategy each."""
    first = BrokerAccount.objects.get(user_id="AB1234")
    second = kite_account_create("CD5678", api_key="key-2", access_token="token-2")
    return {
        account.user_id: StrategyFactory(
            name=f"Momentum {account.user_id}", mode=StrategyMode.LIVE, broker_account=account
        )
        for account in (first, second)
    }


def reliance_buy(strategy, n: int):
    return OrderFactory(strategy=strategy, symbol="RELIANCE", broker_tag=f"OMSTWO{n:014d}")


def test_each_accounts_order_goes_out_with_its_own_credentials(kite_server, desks):
    kite_server.reply(*PLACE, {"status": "success", "data": {"order_id": "1001"}})
    kite_server.reply(*PLACE, {"status": "success", "data": {"order_id": "2001"}})
    one, two = reliance_buy(desks["AB1234"], 1), reliance_buy(desks["CD5678"], 2)

    order_submit(one.pk)
    order_submit(two.pk)

    sent = [r for r in kite_server.sent if (r.method, r.path) == PLACE]
    assert [r.headers["Authorization"] for r in sent] == [
        "token kite-key:kite-access-token-0123456789",
        "token key-2:token-2",
    ]
    assert [r.data["tradingsymbol"] for r in sent] == ["RELIANCE", "RELIANCE"]
    one.refresh_from_db()
    two.refresh_from_db()
    assert (one.broker_order_id, two.broker_order_id) == ("1001", "2001")


def test_one_accounts_expired_session_stops_only_its_strategies(kite_server, desks):
    BrokerAccount.objects.filter(user_id="CD5678").update(
        token_expires_at=timezone.now() - timedelta(minutes=1)
    )
    kite_server.reply(*PLACE, {"status": "success", "data": {"order_id": "1001"}})
    one, two = reliance_buy(desks["AB1234"], 1), reliance_buy(desks["CD5678"], 2)

    order_submit(one.pk)
    with pytest.raises(Exception, match="CD5678: session expired"):
        order_submit(two.pk)

    one.refresh_from_db()
    two.refresh_from_db()
    assert one.status == OrderStatus.OPEN
    assert two.broker_order_id is None  # nothing was sent for Desk 2
    assert kite_server.count(*PLACE) == 1
