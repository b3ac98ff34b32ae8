"""A risk officer in a real browser: pauses a strategy with a reason (a confirmation page,
old → new, recorded in the change log and the strategy's history), then reads a pre-trade
refusal as the risk checks' decision, reached from the strategy page in two clicks.

Screens are saved under artifacts/screenshots/ (the 20s).
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from playwright.sync_api import expect

from orders.enums import EventSource, OrderStatus
from orders.models import Order, Strategy
from orders.services import order_place
from risk.models import AdminAction, AdminChange
from risk.tests.factories import limits_set, order_request

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_risk_officer_pauses_a_strategy_with_a_reason(
    page, live_server, people, desk, log_in, shot
):
    strategy = Strategy.objects.get(name="Momentum NIFTY")
    log_in(people["Risk officer"])
    page.goto(f"{live_server.url}/admin/orders/strategy/{strategy.pk}/change/")
    page.select_option("#id_status", "PAUSED")
    page.click("input[name=_save]")

    # The confirmation: old → new, a reason required; nothing saved yet.
    expect(page.locator("h1")).to_contain_text("Confirm the change of Momentum NIFTY")
    expect(page.locator("#change-list tbody")).to_contain_text("ACTIVE")
    expect(page.locator("#change-list tbody")).to_contain_text("PAUSED")
    page.click("#confirm-change")
    expect(page.locator("#reason-error")).to_contain_text("reason: required")
    assert Strategy.objects.get(pk=strategy.pk).status == "ACTIVE"
    page.fill("#id_change_reason", "NIFTY feed lagging; pausing until it catches up")
    shot("20-pause-confirmation")
    page.click("#confirm-change")

    expect(page.locator(".messagelist")).to_contain_text("was changed successfully")
    assert Strategy.objects.get(pk=strategy.pk).status == "PAUSED"
    change = AdminChange.objects.get()
    assert (change.action, change.user.username) == (AdminAction.STRATEGY_STATUS, "rita")
    assert change.changes["status"] == ["ACTIVE", "PAUSED"]

    page.goto(f"{live_server.url}/admin/orders/strategy/{strategy.pk}/history/")
    expect(page.locator("#change-history")).to_contain_text("status ACTIVE → PAUSED")
    expect(page.locator("#change-history")).to_contain_text("NIFTY feed lagging")
    shot("21-strategy-history")

    # Resuming from the strategy's own page: its Resume… button, the same confirmation.
    page.goto(f"{live_server.url}/admin/orders/strategy/{strategy.pk}/change/")
    shot("24-strategy-page")
    page.click("#status-ACTIVE")
    expect(page.locator("h1")).to_contain_text("Resume Momentum NIFTY?")
    page.fill("#id_change_reason", "feed caught up")
    page.click("#confirm-change")
    expect(page.locator(".messagelist").first).to_contain_text("Momentum NIFTY is ACTIVE")
    assert Strategy.objects.get(pk=strategy.pk).status == "ACTIVE"
    assert AdminChange.objects.count() == 2


def test_a_risk_officer_reads_a_refusal(page, live_server, people, desk, log_in, shot):
    strategy = Strategy.objects.get(name="Mean Reversion")
    limits_set(max_order_quantity=50, max_order_value=Decimal("100000.00"))
    result = order_place(
        order_request(strategy, symbol="RELIANCE", quantity=60, price="2450.00"),
        actor="test",
        source=EventSource.API,
    )
    assert result.status == OrderStatus.REJECTED
    log_in(people["Risk officer"])

    # Two clicks from the strategy: its page, then "Rejected today".
    page.goto(f"{live_server.url}/admin/orders/strategy/{strategy.pk}/change/")
    expect(page.locator("#rejected-today")).to_have_text("Rejected today: 1")
    page.click("#rejected-today")
    expect(page.locator("#result_list tbody tr")).to_have_count(1)
    expect(page.locator("#result_list td.field-reason")).to_have_text(
        "Risk checks: max_order_quantity, max_order_value"
    )
    shot("22-rejected-today")

    page.click(f"#result_list >> text={result.order_id}")
    refusal = page.locator("fieldset", has_text="Refused by risk checks")
    expect(refusal).to_be_visible()
    expect(page.locator("#risk-violations li")).to_have_count(2)
    expect(page.locator("#risk-violations li").nth(0)).to_contain_text(
        "max_order_quantity · quantity · 60 vs limit 50"
    )
    expect(page.locator("#risk-violations li").nth(1)).to_contain_text(
        "max_order_value · quantity · ₹1,47,000.00 vs limit ₹1,00,000.00"
    )
    expect(page.locator("fieldset", has_text="Decided by the broker")).to_have_count(0)
    shot("23-refused-order")

    # A broker's rejection stays the broker's.
    broker_rejected = Order.objects.get(pk=desk["orders"]["RELIANCE-2"].pk)
    page.goto(f"{live_server.url}/admin/orders/order/{broker_rejected.pk}/change/")
    expect(page.locator("fieldset", has_text="Decided by the broker")).to_be_visible()
    expect(page.locator("fieldset", has_text="Refused by risk checks")).to_have_count(0)
