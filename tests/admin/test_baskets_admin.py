"""Baskets and sliced parents in the admin: read by everyone, with their orders; an order's page
names its variety, basket and parent."""

from __future__ import annotations

from decimal import Decimal

import pytest

from orders.domain import OrderRequest
from orders.enums import OrderStatus
from orders.models import Order
from orders.services.baskets import basket_place
from orders.services.slicing import parent_place
from orders.tests.factories import StrategyFactory

pytestmark = pytest.mark.django_db


def leg(strategy, client_order_id, **overrides):
    fields = {
        "strategy_id": strategy.pk,
        "client_order_id": client_order_id,
        "symbol": "RELIANCE",
        "side": "BUY",
        "quantity": 10,
        "order_type": "LIMIT",
        "price": Decimal("2450.50"),
        "product": "MIS",
    }
    return OrderRequest(**{**fields, **overrides})


@pytest.fixture
def basket():
    strategy = StrategyFactory(name="Hedger")
    return basket_place(
        strategy_id=strategy.pk,
        client_basket_id="hedge-7",
        legs=[leg(strategy, "h-a"), leg(strategy, "h-b", symbol="INFY", side="SELL")],
        actor="t",
    ).basket


@pytest.fixture
def parent():
    strategy = StrategyFactory(name="Size")
    request = leg(
        strategy,
        "big-9",
        symbol="NIFTY26DECFUT",
        exchange="NFO",
        product="NRML",
        quantity=3900,
        price=Decimal("26000.00"),
    )
    return parent_place(request, actor="t").parent


def test_the_basket_list_and_page_show_its_legs(as_viewer, basket):
    listing = as_viewer.get("/admin/orders/basket/")
    page = as_viewer.get(f"/admin/orders/basket/{basket.pk}/change/")

    assert listing.status_code == 200 and page.status_code == 200
    assert "hedge-7" in listing.content.decode()
    content = page.content.decode()
    for order in Order.objects.filter(basket=basket):
        assert f"/admin/orders/order/{order.pk}/change/" in content
    assert "h-a" in content and "h-b" in content


def test_the_parent_page_shows_its_state_from_its_children(as_viewer, parent):
    first = parent.children.order_by("id").first()
    Order.objects.filter(pk=first.pk).update(status=OrderStatus.CANCELLED)

    page = as_viewer.get(f"/admin/orders/orderparent/{parent.pk}/change/")

    content = page.content.decode()
    assert page.status_code == 200
    assert "0 of 3900" in content
    assert "big-9.1" in content and "big-9.3" in content


def test_an_order_page_names_its_variety_and_basket(as_viewer, basket):
    order = Order.objects.filter(basket=basket).first()

    page = as_viewer.get(f"/admin/orders/order/{order.pk}/change/")

    content = page.content.decode()
    assert page.status_code == 200
    assert "Variety" in content and "regular" in content.lower()
    assert f"/admin/orders/basket/{basket.pk}/change/" in content


def test_nobody_changes_a_basket_here(as_risk_officer, basket):
    response = as_risk_officer.post(f"/admin/orders/basket/{basket.pk}/delete/", {"post": "yes"})

    assert response.status_code == 403
