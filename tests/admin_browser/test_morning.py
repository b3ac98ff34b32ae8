"""A risk officer's morning in a real browser (issue 18): the system health red with the worker
stopped and an order stuck PENDING; limits in use moving as orders fill; one position closed
from its own page after a confirmation listing the order it places.

Screens are saved under artifacts/screenshots/ (30-...)."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from orders.models import Order
from orders.services import order_place, order_submit
from orders.tests.factories import StrategyFactory
from positions.services import market_prices_update
from positions.tests.factories import PositionFactory
from risk.tests.factories import limits_set, order_request

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_health_is_red_with_the_worker_stopped_and_an_order_stuck(
    page, live_server, people, desk, log_in, shot
):
    # No worker beats (none runs in this test); INFY has waited PENDING for five minutes.
    stuck = desk["orders"]["INFY"]
    Order.objects.filter(pk=stuck.pk).update(created_at=timezone.now() - timedelta(minutes=5))

    log_in(people["Risk officer"])

    worker = page.locator("#system-health [data-check=worker]")
    orders = page.locator("#system-health [data-check=orders]")
    expect(worker).to_have_class("health health--critical")
    expect(worker).to_contain_text("no worker heartbeat")
    expect(orders).to_have_class("health health--critical")
    expect(orders).to_contain_text("1 PENDING for over 60 s (not sent)")
    reconciliation = page.locator("#system-health [data-check=reconciliation]")
    expect(reconciliation).to_have_class("health health--critical")  # a CRITICAL issue is open
    expect(reconciliation).to_contain_text("open issues: 1 CRITICAL, 1 WARNING, 1 INFO")
    expect(page.locator("#system-health .health--ok")).not_to_have_count(0)  # the rest: green
    cards = shot("30-health-red", full_page=False).with_name("30-health-cards.png")
    page.locator("#system-health").screenshot(path=str(cards))  # the README's
    orders.locator("a", has_text="PENDING orders").click()
    expect(page.locator("#result_list tbody tr")).to_have_count(1)
    expect(page.locator("#result_list")).to_contain_text("INFY")


def test_limits_in_use_move_after_fills(page, live_server, people, log_in, shot):
    market_prices_update([("SBIN", "NSE", Decimal("812.35"))])
    strategy = StrategyFactory(name="Momentum")
    limits_set(None, daily_loss_limit=Decimal("25000"))
    limits_set(strategy, max_position_quantity=100, max_strategy_exposure=Decimal("100000"))

    def buy(quantity: int) -> None:
        request = order_request(strategy, symbol="SBIN", quantity=quantity, order_type="MARKET")
        result = order_place(request, actor="algo")
        order_submit(result.order_id)  # the paper broker fills it at 812.35

    log_in(people["Risk officer"])
    row = page.locator(f"#limits-in-use tr[data-scope='{strategy.pk}']")
    position = row.locator("td.usage").nth(5)
    expect(position).to_have_attribute("data-tone", "green")
    expect(position).to_contain_text("0 / 100")

    buy(75)
    page.reload()
    expect(position).to_have_attribute("data-tone", "amber")
    expect(position).to_contain_text("75 / 100")
    expect(row.locator("td.usage").nth(2)).to_contain_text("₹60,926.25 / ₹1,00,000.00")
    shot("31-limits-in-use-amber")

    buy(20)
    page.reload()
    expect(position).to_have_attribute("data-tone", "red")
    expect(position).to_contain_text("95 / 100")
    loss, drawdown = row.locator("td.usage").nth(0), row.locator("td.usage").nth(1)
    expect(loss).to_contain_text("/ ₹25,000.00")  # the global row's, charges so far
    expect(loss).to_have_attribute("title", re.compile("from global"))
    expect(drawdown).to_have_attribute("data-tone", "off")
    expect(page.locator("#limits-off")).to_contain_text("drawdown_limit is off")
    panel = shot("32-limits-in-use-red").with_name("32-limits-in-use-panel.png")
    page.locator("#limits-panel").screenshot(path=str(panel))  # the README's

    page.goto(f"{live_server.url}/admin/orders/strategy/{strategy.pk}/change/")
    expect(page.locator("#strategy-limits-in-use td[data-tone=red]")).to_have_count(1)


def test_a_risk_officer_closes_one_position_from_its_page(page, live_server, people, log_in, shot):
    market_prices_update([("SBIN", "NSE", Decimal("806.10"))])
    strategy = StrategyFactory(name="Mean Reversion")
    position = PositionFactory(
        strategy=strategy, symbol="SBIN", quantity=100, average_price=Decimal("812.35")
    )
    PositionFactory(strategy=strategy, symbol="INFY", quantity=40)  # stays open

    log_in(people["Risk officer"])
    page.goto(f"{live_server.url}/admin/positions/position/{position.pk}/change/")
    page.click("#flatten-position")

    planned = page.locator("#planned-orders tr.planned-order")
    expect(planned).to_have_count(1)
    expect(planned).to_contain_text("SBIN")
    expect(planned).to_contain_text("SELL")
    expect(planned).to_contain_text("100")
    expect(planned).to_contain_text("MIS")
    expect(planned).to_contain_text("MARKET")
    page.fill("#id_reason", "stop-loss missed at the open")
    shot("33-close-position-confirmation")
    page.click("#confirm-flatten")

    expect(page.locator(".messagelist")).to_contain_text("1 of 1 position closing")
    exit_order = Order.objects.get(closes_position=position)
    assert (exit_order.side, exit_order.quantity, exit_order.order_type) == ("SELL", 100, "MARKET")
    assert exit_order.metadata["reason"] == "stop-loss missed at the open"
    assert not Order.objects.exclude(pk=exit_order.pk).exists()  # INFY: nothing
    shot("34-position-after-close")
