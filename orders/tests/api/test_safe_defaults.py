"""A fresh install is safe by default: the outside review's order is refused through the API,
and the strategy endpoint shows every limit in force, where it comes from, and which are off."""

from __future__ import annotations

from decimal import Decimal

import pytest

from orders.enums import OrderStatus
from orders.models import Order, OrderEvent
from orders.tests.api.conftest import order_body
from positions.models import MarketPrice
from risk.models import RiskLimit

pytestmark = [pytest.mark.django_db, pytest.mark.safe_defaults]


def test_the_reviews_100000_share_tcs_market_order_is_refused_on_a_fresh_install(api, caller):
    """The review filled it (Rs 38.9 Cr) on an install with no limits at all."""
    MarketPrice.objects.create(symbol="TCS", exchange="NSE", last_price=Decimal("3890.00"))

    response = api.post(
        "/api/v1/orders/",
        order_body(symbol="TCS", quantity=100_000, order_type="MARKET", price=None),
        format="json",
    )

    assert response.status_code == 422, response.content
    error = response.json()["error"]
    assert error["code"] == "risk_rejected"
    assert {v["code"] for v in error["violations"]} == {"max_order_quantity", "max_order_value"}
    order = Order.objects.get()
    assert (order.pk, order.status, order.quantity) == (
        error["order_id"],
        OrderStatus.REJECTED,
        100_000,
    )
    assert {v["code"] for v in order.metadata["violations"]} == {
        "max_order_quantity",
        "max_order_value",
    }
    assert OrderEvent.objects.filter(order=order, to_status=OrderStatus.REJECTED).exists()


def test_the_strategy_endpoint_shows_every_limit_its_source_and_flags_the_off_ones(caller):
    caller.strategy.config = {"limits": {"max_open_orders": 5}}
    caller.strategy.save()
    RiskLimit.objects.create(strategy=caller.strategy, max_position_quantity=300)

    body = caller.client.get("/api/v1/strategy/").json()

    limits = {limit["limit"]: limit for limit in body["limits_in_force"]}
    assert limits["max_order_value"] == {
        "limit": "max_order_value",
        "label": "Max order value (Rs)",
        "value": "1000000.00",
        "sources": ["global"],
        "levels": {"global": "1000000.00", "strategy": None, "config": None},
        "off": False,
        "warning": None,
    }
    assert (limits["max_open_orders"]["value"], limits["max_open_orders"]["sources"]) == (
        "5",
        ["config"],
    )
    assert (
        limits["max_position_quantity"]["value"],
        limits["max_position_quantity"]["sources"],
    ) == ("300", ["strategy"])
    drawdown = limits["drawdown_limit"]
    assert (drawdown["value"], drawdown["off"]) == (None, True)
    assert "drawdown_limit is off" in drawdown["warning"]
    off = {name for name, limit in limits.items() if limit["off"]}
    assert off == {
        "max_strategy_exposure",
        "max_total_exposure",
        "drawdown_limit",
        "rejection_burst",
    }
    assert body["limit_warnings"] == [limits[name]["warning"] for name in limits if name in off]
    assert body["limits"]["max_order_quantity"] == 1000
