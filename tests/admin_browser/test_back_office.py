"""The back office in a real browser: each role logs in and does its day's work.

Every screen is saved under artifacts/screenshots/ (numbered in the order a risk officer meets
them); the README shows two of them.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from orders.enums import EventSource, OrderStatus
from orders.models import Order
from positions.models import Position, ReconciliationIssue
from risk.models import KillSwitchEvent
from risk.selectors import kill_switch_state

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_risk_officer_reviews_orders_and_cancels_one(
    page, live_server, people, desk, log_in, shot
):
    log_in(people["Risk officer"])
    expect(page.locator("#tile-net-pnl")).to_contain_text("₹")
    expect(page.locator("#pnl-chart polyline")).to_have_count(4)
    shot("01-dashboard")

    page.click("nav.oms-nav >> text=Orders")
    expect(page.locator("#result_list tbody tr")).to_have_count(9)
    shot("02-orders")
    page.click("#changelist-filter >> text=TRIGGER PENDING")
    expect(page.locator("#result_list tbody tr")).to_have_count(1)
    page.click("#changelist-filter >> text=All >> nth=0")
    page.fill("#searchbar", "infy")
    page.press("#searchbar", "Enter")
    expect(page.locator("#result_list tbody tr")).to_have_count(1)
    expect(page.locator("#result_list")).to_contain_text("INFY")

    infy = desk["orders"]["INFY"]
    page.goto(f"{live_server.url}/admin/orders/order/{infy.pk}/change/")
    expect(page.locator("#content")).to_contain_text("order received")  # its history
    shot("03-order-detail")
    page.click("#cancel-order")
    expect(page.locator("#cancel-list tbody tr")).to_have_count(1)
    page.fill("#id_reason", "duplicate signal")
    shot("04-cancel-confirmation")
    page.click("#confirm-cancel")

    expect(page.locator(".messagelist")).to_contain_text("Cancel requested for 1 order")
    infy.refresh_from_db()
    assert infy.status == OrderStatus.CANCELLED
    event = infy.events.latest("id")
    assert (event.source, event.actor, event.reason) == (
        EventSource.ADMIN,
        "rita",
        "duplicate signal",
    )


def test_a_risk_officer_cancels_several_through_the_action(
    page, live_server, people, desk, log_in, shot
):
    tcs, axis, itc = (desk["orders"][s] for s in ("TCS", "AXISBANK", "ITC"))
    log_in(people["Risk officer"])
    page.goto(f"{live_server.url}/admin/orders/order/")
    for order in (tcs, axis, itc):
        page.check(f"input[name=_selected_action][value='{order.pk}']")
    page.select_option("select[name=action]", "cancel_orders")
    page.click("button[name=index]")

    expect(page.locator("#cancel-list tbody tr")).to_have_count(1)  # only TCS is still working
    expect(page.locator("#content")).to_contain_text(
        "2 of the selected orders are no longer working"
    )
    shot("05-bulk-cancel-confirmation")
    page.click("#confirm-cancel")

    expect(page.locator(".messagelist")).to_contain_text("Cancel requested for 1 order")
    assert Order.objects.get(pk=tcs.pk).status == OrderStatus.CANCEL_PENDING
    assert Order.objects.get(pk=itc.pk).status == OrderStatus.CANCELLED


def test_an_operator_resolves_an_issue_with_a_note(page, live_server, people, desk, log_in, shot):
    warning, critical = desk["issues"]["warning"], desk["issues"]["critical"]
    log_in(people["Operator"])
    page.goto(f"{live_server.url}/admin/positions/reconciliationissue/")
    rows = page.locator("#result_list tbody tr")
    expect(rows).to_have_count(3)
    expect(rows.first).to_contain_text("CRITICAL")  # most severe first
    shot("06-issues")

    page.goto(f"{live_server.url}/admin/positions/reconciliationissue/{critical.pk}/change/")
    expect(page.locator("#content")).to_contain_text("needs a risk officer")
    expect(page.locator("#resolve-issue")).to_have_count(0)

    page.goto(f"{live_server.url}/admin/positions/reconciliationissue/{warning.pk}/change/")
    shot("07-issue-detail")
    page.click("#resolve-issue")
    page.click("#confirm-resolve")  # no note
    expect(page.locator(".errorlist")).to_contain_text("note: required")
    page.fill("#id_note", "Broker sold 10 SBIN at 09:41 (order 2411000431): strategy restarted.")
    shot("08-resolve-with-note")
    page.click("#confirm-resolve")

    expect(page.locator(".messagelist")).to_contain_text("Resolved 1 issue")
    expect(page.locator("#content")).to_contain_text("RESOLVED")
    shot("09-issue-resolved")
    warning.refresh_from_db()
    assert warning.resolved and warning.resolved_by == "omar"
    assert warning.resolution.startswith("Broker sold 10 SBIN")


def test_a_risk_officer_auto_fixes_a_critical_issue(page, live_server, people, desk, log_in, shot):
    critical = desk["issues"]["critical"]
    log_in(people["Risk officer"])
    page.goto(f"{live_server.url}/admin/positions/reconciliationissue/{critical.pk}/change/")
    page.click("#auto-fix-issue")
    expect(page.locator("#auto-fix-list")).to_contain_text("+25 → +20")
    shot("10-auto-fix-confirmation")
    page.click("#confirm-auto-fix")

    expect(page.locator(".messagelist")).to_contain_text("Auto-fixed 1 issue")
    critical.refresh_from_db()
    assert critical.auto_fixed and critical.details["auto_fix"]["quantity_after"] == 20


def test_a_risk_officer_halts_and_resumes_trading(page, live_server, people, desk, log_in, shot):
    log_in(people["Risk officer"])
    expect(page.locator("#kill-switch-banner")).to_have_count(0)
    page.click("nav.oms-nav >> text=Kill switch")
    shot("11-kill-switch")

    page.click("#id_state label:has-text('HALTED')")
    page.fill("#id_reason", "Broker API errors on every order since 11:02")
    page.click("#review-switch")
    expect(page.locator("#switch-summary")).to_contain_text("ALL STRATEGIES")
    expect(page.locator("#content")).to_contain_text("working orders will be cancelled")
    # What stays open under a HALT, and how to close it under control, is said before it.
    expect(page.locator("#halt-positions")).to_contain_text("open positions will stay open")
    expect(page.locator("#halt-positions")).to_contain_text("set REDUCING")
    assert not KillSwitchEvent.objects.exists()  # nothing before the confirmation
    shot("12-kill-switch-confirm")
    page.click("#confirm-switch")

    banner = page.locator("#kill-switch-banner")
    expect(banner).to_contain_text("HALTED")
    expect(banner).to_contain_text("Broker API errors")
    assert kill_switch_state() == "HALTED"
    shot("13-kill-switch-halted")
    page.click("nav.oms-nav >> text=Orders")
    expect(page.locator("#kill-switch-banner")).to_contain_text("ALL STRATEGIES")
    shot("14-banner-on-orders")

    page.click("#kill-switch-banner >> text=Kill switch page")
    page.click("#id_state label:has-text('ACTIVE')")
    page.fill("#id_reason", "Broker confirmed the fix; orders flow again")
    page.click("#review-switch")
    page.click("#confirm-switch")

    expect(page.locator(".messagelist")).to_contain_text("ACTIVE for all strategies")
    expect(page.locator("#kill-switch-banner")).to_have_count(0)
    assert kill_switch_state() == "ACTIVE"
    assert list(KillSwitchEvent.objects.order_by("id").values_list("state", "actor")) == [
        ("HALTED", "rita"),
        ("ACTIVE", "rita"),
    ]


def test_a_viewer_can_look_but_not_act(page, live_server, people, desk, log_in, shot):
    log_in(people["Viewer"])
    page.goto(f"{live_server.url}/admin/orders/order/")
    options = page.locator("select[name=action] option").all_inner_texts()
    assert not any("Cancel" in option for option in options)
    assert any("Export" in option for option in options)

    infy = desk["orders"]["INFY"]
    page.goto(f"{live_server.url}/admin/orders/order/{infy.pk}/change/")
    expect(page.locator("#cancel-order")).to_have_count(0)
    page.goto(f"{live_server.url}/admin/orders/order/{infy.pk}/cancel/")
    expect(page.locator("body")).to_contain_text(re.compile("403|Forbidden"))
    expect(page.locator("#forbidden-note")).to_contain_text("signed in as vera")
    shot("14b-viewer-forbidden")

    page.goto(f"{live_server.url}/admin/risk/killswitch/")
    expect(page.locator("#read-only-note")).to_be_visible()
    expect(page.locator("#switch-form")).to_have_count(0)
    shot("15-viewer-kill-switch")

    warning = desk["issues"]["warning"]
    page.goto(f"{live_server.url}/admin/positions/reconciliationissue/{warning.pk}/change/")
    expect(page.locator("#resolve-issue")).to_have_count(0)
    assert not ReconciliationIssue.objects.filter(resolved=True).exists()
    assert Order.objects.get(pk=infy.pk).status == OrderStatus.PENDING


def test_the_other_screens(page, live_server, people, desk, log_in, shot):
    """Positions, a position's protection levels, trades, strategies, limits: as a risk officer
    sees them (screenshots to look at)."""
    log_in(people["Risk officer"])
    for name, path in (
        ("16-positions", "/admin/positions/position/"),
        ("17-trades", "/admin/orders/trade/"),
        ("18-strategies", "/admin/orders/strategy/"),
        ("19-risk-limits", "/admin/risk/risklimit/"),
        ("20-kill-switch-history", "/admin/risk/killswitchevent/"),
    ):
        page.goto(f"{live_server.url}{path}")
        expect(page.locator("#content h1")).to_be_visible()
        shot(name)

    reliance = Position.objects.get(symbol="RELIANCE")  # long 25, last 2471.20
    page.goto(f"{live_server.url}/admin/positions/position/{reliance.pk}/change/")
    page.fill("#id_stop_loss", "2480.00")  # above the last price of a long
    page.click("input[name=_save]")
    expect(page.locator(".errorlist")).to_contain_text("a long's stop-loss must be below 2471.20")
    shot("21-position-protection")
    page.fill("#id_stop_loss", "2440.00")
    page.fill("#id_take_profit", "2550.00")
    page.click("input[name=_save]")
    expect(page.locator(".messagelist")).to_contain_text("was changed successfully")
    reliance.refresh_from_db()
    assert (str(reliance.stop_loss), str(reliance.take_profit)) == ("2440.0000", "2550.0000")

    strategy = desk["strategies"][0]
    page.goto(f"{live_server.url}/admin/orders/strategy/{strategy.pk}/change/")
    shot("22-strategy")
