"""Baskets and sliced orders in a real browser: a viewer opens a basket, follows a leg to its
order page (which names its variety and basket), and reads a sliced order's state."""

from __future__ import annotations

from decimal import Decimal

import pytest
from playwright.sync_api import expect

from orders.domain import OrderRequest
from orders.services.baskets import basket_place
from orders.services.slicing import parent_place
from orders.tests.factories import StrategyFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


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


def test_a_viewer_reads_a_basket_its_legs_and_a_sliced_order(
    page, live_server, people, log_in, shot
):
    strategy = StrategyFactory(name="Hedger")
    basket = basket_place(
        strategy_id=strategy.pk,
        client_basket_id="hedge-7",
        legs=[leg(strategy, "h-a"), leg(strategy, "h-b", symbol="INFY", side="SELL")],
        actor="t",
    ).basket
    parent = parent_place(
        leg(
            strategy,
            "big-9",
            symbol="NIFTY26DECFUT",
            exchange="NFO",
            product="NRML",
            quantity=3900,
            price=Decimal("26000.00"),
        ),
        actor="t",
    ).parent
    log_in(people["Viewer"])

    page.goto(f"{live_server.url}/admin/orders/basket/")
    expect(page.locator("#result_list tbody tr")).to_have_count(1)
    page.click("#result_list >> text=hedge-7")
    expect(page.locator("#content")).to_contain_text("h-b")
    shot("varieties-01-basket")
    first = basket.orders.order_by("id").first()
    page.click(f"td.field-order_link a[href='/admin/orders/order/{first.pk}/change/']")
    expect(page.locator("#content")).to_contain_text("Variety")
    expect(page.locator("#content")).to_contain_text("hedge-7")
    shot("varieties-02-leg-order")

    page.goto(f"{live_server.url}/admin/orders/orderparent/{parent.pk}/change/")
    expect(page.locator("#content")).to_contain_text("0 of 3900")
    expect(page.locator("#content")).to_contain_text("big-9.3")
    shot("varieties-03-sliced-order")
