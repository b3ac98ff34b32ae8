"""No strategy sees or touches another's rows, on any endpoint: its key reaches its own only.

Another strategy's row answers exactly like a row that does not exist (404, same body), and
lists never include it, whatever the filters.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from orders.enums import EventKind, OrderStatus
from orders.models import Order, OrderEvent
from orders.tests.api.conftest import order_body
from orders.tests.factories import OrderFactory, TradeFactory
from positions.tests.factories import PositionFactory

pytestmark = pytest.mark.django_db

MISSING_ID = 987654321


@pytest.fixture
def a_rows(caller):
    """Strategy A's order (working, with a fill), its trade and positions (open and closed)."""
    order = OrderFactory(strategy=caller.strategy, status=OrderStatus.OPEN)
    Order.objects.filter(pk=order.pk).update(broker_order_id=f"A-{order.pk}")
    trade = TradeFactory(order=order, quantity=4)
    open_position = PositionFactory(strategy=caller.strategy, symbol="RELIANCE")
    opened = timezone.now() - timedelta(hours=1)
    closed = PositionFactory(
        strategy=caller.strategy, symbol="INFY", quantity=0, opened_at=opened, closed_at=opened
    )
    return {"order": order, "trade": trade, "position": open_position, "closed": closed}


def same_as_missing(client, method: str, path: str, missing_path: str, **kwargs):
    response = getattr(client, method)(path, **kwargs)
    missing = getattr(client, method)(missing_path, **kwargs)
    assert response.status_code == 404, response.json()
    assert response.json() == missing.json()


def test_orders_of_another_strategy_are_not_found(other, a_rows):
    order = a_rows["order"]
    b = other.client
    same_as_missing(b, "get", f"/api/v1/orders/{order.pk}/", f"/api/v1/orders/{MISSING_ID}/")
    same_as_missing(
        b,
        "patch",
        f"/api/v1/orders/{order.pk}/",
        f"/api/v1/orders/{MISSING_ID}/",
        data={"price": "2440.00"},
        format="json",
    )
    same_as_missing(
        b,
        "post",
        f"/api/v1/orders/{order.pk}/cancel/",
        f"/api/v1/orders/{MISSING_ID}/cancel/",
        format="json",
    )
    order.refresh_from_db()
    assert order.status == OrderStatus.OPEN
    assert not order.metadata.get("pending_modification")
    assert not OrderEvent.objects.filter(order=order, kind=EventKind.MODIFY).exists()


def test_order_lists_never_include_another_strategys_orders(other, a_rows):
    own = OrderFactory(strategy=other.strategy)
    a_strategy = a_rows["order"].strategy_id
    for params in (
        {},
        {"status": "OPEN"},
        {"symbol": "RELIANCE"},
        {"strategy": a_strategy},
        {"client_order_id": a_rows["order"].client_order_id},
    ):
        results = other.client.get("/api/v1/orders/", params).json()["results"]
        assert a_rows["order"].pk not in {o["id"] for o in results}, params
    assert [o["id"] for o in other.client.get("/api/v1/orders/").json()["results"]] == [own.pk]


def test_a_client_order_id_is_per_strategy(caller, other):
    first = caller.client.post("/api/v1/orders/", order_body(), format="json")
    # B sends the same id with other content: no conflict, no replay of A's order.
    second = other.client.post("/api/v1/orders/", order_body(quantity=3), format="json")

    assert (first.status_code, second.status_code) == (201, 201)
    assert first.json()["id"] != second.json()["id"]
    assert second.json()["quantity"] == 3
    assert Order.objects.get(pk=second.json()["id"]).strategy == other.strategy


def test_trades_of_another_strategy_are_not_found(other, a_rows):
    trade, order = a_rows["trade"], a_rows["order"]
    b = other.client
    same_as_missing(b, "get", f"/api/v1/trades/{trade.pk}/", f"/api/v1/trades/{MISSING_ID}/")
    assert b.get("/api/v1/trades/").json()["results"] == []
    assert b.get("/api/v1/trades/", {"order": order.pk}).json()["results"] == []
    assert b.get("/api/v1/trades/", {"strategy": order.strategy_id}).json()["results"] == []


def test_positions_of_another_strategy_are_not_found(other, a_rows):
    b = other.client
    for position in (a_rows["position"], a_rows["closed"]):
        same_as_missing(
            b, "get", f"/api/v1/positions/{position.pk}/", f"/api/v1/positions/{MISSING_ID}/"
        )
    for status in ("open", "closed", "all"):
        assert b.get("/api/v1/positions/", {"status": status}).json()["results"] == []


def test_the_strategy_endpoint_shows_the_callers_own_strategy(caller, other, a_rows):
    body = other.client.get("/api/v1/strategy/", {"strategy": caller.strategy.pk}).json()

    assert (body["id"], body["name"]) == (other.strategy.pk, "Strategy B")
    assert body["open_positions"] == 0
    assert body["working_orders"] == 0
    assert body["today"]["unrealized_pnl"] == "0.00"


def test_prices_answers_nothing_about_other_strategies(other, a_rows):
    response = other.client.post(
        "/api/v1/prices/",
        {"prices": [{"symbol": "RELIANCE", "exchange": "NSE", "price": "2460.00"}]},
        format="json",
    )

    assert response.status_code == 202
    assert response.json() == {"accepted": 1}


def test_the_owner_sees_its_rows(caller, a_rows):
    a = caller.client
    assert a.get(f"/api/v1/orders/{a_rows['order'].pk}/").status_code == 200
    assert [t["id"] for t in a.get("/api/v1/trades/").json()["results"]] == [a_rows["trade"].pk]
    assert [p["id"] for p in a.get("/api/v1/positions/").json()["results"]] == [
        a_rows["position"].pk
    ]
    closed = a.get("/api/v1/positions/", {"status": "closed"}).json()["results"]
    assert [p["id"] for p in closed] == [a_rows["closed"].pk]
    assert a_rows["trade"].price == Decimal("2450.50")
