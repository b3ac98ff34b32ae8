"""Varieties and baskets against the fake Kite server, through the real SDK: the path names
the variety (POST /orders/iceberg, /orders/amo), the iceberg's legs travel as Kite's fields,
and a LIVE basket is margin-checked once, as a basket (POST /margins/basket)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from types import SimpleNamespace

import pytest

from orders.brokers import KiteBroker
from orders.enums import OrderStatus, StrategyMode
from orders.models import Basket, Order
from orders.services import order_cancel, order_cancel_at_broker, order_place, order_submit
from orders.services.margins import BASKET_CHECKED
from orders.tests.api.conftest import make_caller, order_body
from orders.tests.fake_kite import recorded
from orders.tests.test_varieties import request
from risk import calendar
from risk.models import MarginCache

BASKETS = "/api/v1/baskets/"
BASKET_MARGINS = ("POST", "/margins/basket")
ORDER_MARGINS = ("POST", "/margins/orders")
FUNDS = ("GET", "/user/margins")
FINAL = Decimal("81520.60")  # margins_basket.json: the hedged total

pytestmark = pytest.mark.django_db


@pytest.fixture
def live(kite_server, kite_account):
    return make_caller(name="Live desk", mode=StrategyMode.LIVE)


@pytest.fixture
def clock(monkeypatch):
    def set_clock(moment: str) -> None:
        at = datetime.fromisoformat(moment).replace(tzinfo=calendar.IST)
        monkeypatch.setattr(calendar, "timezone", SimpleNamespace(now=lambda: at))

    return set_clock


def funds(net: str) -> dict:
    body = recorded("margins_user")
    body["data"]["equity"]["net"] = float(net)
    return body


def test_an_iceberg_goes_to_orders_iceberg_with_its_legs(kite_server, live, clock):
    clock("2026-01-14 10:00")
    kite_server.reply("POST", "/orders/iceberg", "place_order")
    result = order_place(request(live.strategy), actor="t")
    assert result.accepted, result.violations
    order = result.order

    order_submit(order.pk)

    (sent,) = [r for r in kite_server.sent if r.path == "/orders/iceberg"]
    assert sent.data["iceberg_legs"] == "3"
    assert sent.data["iceberg_quantity"] == "1300"
    assert (sent.data["quantity"], sent.data["order_type"]) == ("3900", "LIMIT")
    order.refresh_from_db()
    assert order.status == OrderStatus.OPEN


def test_an_amo_goes_to_orders_amo_and_is_cancelled_there(kite_server, live, clock):
    clock("2026-01-13 19:00")
    kite_server.reply("POST", "/orders/amo", "place_order", order_id="260113000000001")
    kite_server.reply("DELETE", "/orders/amo/260113000000001", "cancel_order")
    amo = request(
        live.strategy, variety="amo", iceberg_legs=None, iceberg_quantity=None, quantity=65
    )
    result = order_place(amo, actor="t")
    assert result.accepted, result.violations
    order = result.order
    order_submit(order.pk)
    order.refresh_from_db()

    order_cancel(order.pk, actor="t", reason="not tomorrow")
    order_cancel_at_broker(order.pk)

    assert order.broker_order_id == "260113000000001"
    place = next(r for r in kite_server.sent if r.path == "/orders/amo")
    assert "iceberg_legs" not in place.data
    assert kite_server.count("DELETE", "/orders/amo/260113000000001") == 1


def test_a_live_basket_is_margin_checked_once_as_a_basket(kite_server, live, settings):
    settings.OMS_MARGIN_CHECK_ENABLED = True
    kite_server.reply(*BASKET_MARGINS, "margins_basket")
    kite_server.reply(*FUNDS, funds("100000.00"))
    kite_server.reply("POST", "/orders/regular", "place_order")
    body = {
        "client_basket_id": "hedge-1",
        "legs": [order_body(client_order_id="h-1"), order_body(client_order_id="h-2")],
    }

    response = live.client.post(BASKETS, body, format="json")

    assert response.status_code == 201, response.json()
    assert response.json()["margin_required"] == str(FINAL)
    assert kite_server.count(*BASKET_MARGINS) == 1
    assert len(kite_server.sent[0].json) == 2
    assert MarginCache.objects.get(segment="equity").reserved == FINAL
    leg = Order.objects.get(client_order_id="h-1")
    assert leg.metadata[BASKET_CHECKED] is True
    order_submit(leg.pk)  # sent without a margin call of its own
    assert kite_server.count(*ORDER_MARGINS) == 0
    assert kite_server.count("POST", "/orders/regular") == 1


def test_a_live_basket_beyond_the_funds_writes_nothing(kite_server, live, settings):
    settings.OMS_MARGIN_CHECK_ENABLED = True
    kite_server.reply(*BASKET_MARGINS, "margins_basket")
    kite_server.reply(*FUNDS, funds("50000.00"))
    body = {
        "client_basket_id": "hedge-2",
        "legs": [order_body(client_order_id="h-3"), order_body(client_order_id="h-4")],
    }

    response = live.client.post(BASKETS, body, format="json")

    assert response.status_code == 422
    error = response.json()["error"]
    assert (error["code"], error["leg"]) == ("basket_refused", None)
    assert error["fields"]["basket.margin"] == (
        "basket margin insufficient: required ₹81,520.60, available ₹50,000.00 (equity)"
    )
    assert (Basket.objects.count(), Order.objects.count()) == (0, 0)


def test_kites_order_book_with_an_amo_and_an_icebergs_legs(kite_server, kite_account):
    kite_server.reply("GET", "/orders", "orders_varieties")

    amo, first_leg, second_leg = KiteBroker.for_account(kite_account).orders()

    # An AMO waiting for the open is in flight for us (it is not at the exchange yet).
    assert (amo.raw_status, amo.status, amo.tag) == (
        "AMO REQ RECEIVED",
        OrderStatus.SUBMITTED,
        "OMSAMO00000000000001",
    )
    # Each iceberg leg is its own Kite order, the later ones naming the first as their parent.
    assert (first_leg.status, first_leg.filled_quantity) == (OrderStatus.FILLED, 1300)
    assert first_leg.average_price == Decimal("25990")
    assert (second_leg.broker_order_id, second_leg.status) == ("260114000000102", OrderStatus.OPEN)
    assert second_leg.tag == first_leg.tag == "OMSICE00000000000001"
