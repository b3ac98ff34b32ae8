"""The morning walked as each role in a real browser (issue 18): every role sees the system
health (red with no worker and an order stuck PENDING), the limits in use and a refusal read as
the risk checks' decision; only a risk officer is offered the changes (pause, close a
position), and the others who try the URL anyway get the styled 403 page, with nothing changed.

The risk officer's own changes (pause with a reason, close one position) are walked in
test_controlled_changes.py and test_morning.py. Screens: artifacts/screenshots/40-*.png.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import expect

from orders.enums import EventSource, OrderStatus
from orders.models import Order, Strategy
from orders.services import order_place
from positions.models import Position
from risk.tests.factories import limits_set, order_request

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize("role", ["Risk officer", "Operator", "Viewer"])
def test_each_role_reads_the_morning_and_only_risk_officers_act(
    role, page, live_server, people, desk, log_in, shot
):
    stuck = desk["orders"]["INFY"]
    Order.objects.filter(pk=stuck.pk).update(created_at=timezone.now() - timedelta(minutes=5))
    strategy = Strategy.objects.get(name="Mean Reversion")
    limits_set(max_order_quantity=50)
    refused = order_place(
        order_request(strategy, symbol="RELIANCE", quantity=60, price="2450.00"),
        actor="algo",
        source=EventSource.API,
    )
    assert refused.status == OrderStatus.REJECTED
    position = Position.objects.get(strategy=strategy, symbol="SBIN")
    name = role.lower().replace(" ", "-")

    log_in(people[role])

    # The dashboard: health red where it is wrong, the limits in use beside it.
    expect(page.locator("#system-health [data-check=worker]")).to_have_class(
        "health health--critical"
    )
    expect(page.locator("#system-health [data-check=orders]")).to_contain_text("1 PENDING")
    expect(page.locator("#limits-in-use")).to_be_visible()
    expect(page.locator(f"#limits-in-use tr[data-scope='{strategy.pk}']")).to_be_visible()
    shot(f"40-{name}-dashboard")

    # The refusal: the risk checks' decision, one line per violation.
    page.goto(f"{live_server.url}/admin/orders/order/{refused.order_id}/change/")
    expect(page.locator("fieldset", has_text="Refused by risk checks")).to_be_visible()
    expect(page.locator("#risk-violations li")).to_have_count(1)
    expect(page.locator("#risk-violations li").first).to_contain_text("60 vs limit 50")

    # The strategy and the position: the controls are a risk officer's only.
    page.goto(f"{live_server.url}/admin/orders/strategy/{strategy.pk}/change/")
    expect(page.locator("#rejected-today")).to_have_text("Rejected today: 1")
    pause = page.locator("#status-PAUSED")
    expect(pause).to_have_count(1 if role == "Risk officer" else 0)
    page.goto(f"{live_server.url}/admin/positions/position/{position.pk}/change/")
    closing = page.locator("#flatten-position")
    shot(f"40-{name}-position")
    if role == "Risk officer":
        expect(closing).to_have_count(1)
        closing.click()
        expect(page.locator("#planned-orders tr.planned-order")).to_contain_text("SELL")
        return
    expect(closing).to_have_count(0)

    # The URL typed anyway: the styled 403, nothing placed.
    flatten = reverse("admin:risk_kill_switch_flatten")
    answer = page.goto(f"{live_server.url}{flatten}?position={position.pk}")
    assert answer.status == 403
    expect(page.locator("#forbidden-note")).to_contain_text(people[role].username)
    expect(page.locator("#back-home")).to_be_visible()
    shot(f"40-{name}-forbidden")
    assert not Order.objects.filter(closes_position=position).exists()
