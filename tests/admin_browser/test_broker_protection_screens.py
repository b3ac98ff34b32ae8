"""Where each position's protection lives, in a real browser: the positions list's
*protection* column, a position's page, the broker protections list (screenshots to look at)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from orders.enums import ProtectionMode
from orders.tests.factories import StrategyFactory
from positions.models import BrokerProtection, ProtectionState
from positions.tests.factories import PositionFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_risk_officer_sees_where_each_stop_lives(page, live_server, people, log_in, shot):
    held = StrategyFactory(name="Trend (GTT)", protection_mode=ProtectionMode.BROKER)
    both = StrategyFactory(name="Breakout (both)", protection_mode=ProtectionMode.BOTH)
    PositionFactory(strategy=StrategyFactory(name="Scalper"), symbol="SBIN")
    for strategy, symbol, state, trigger in (
        (held, "INFY", ProtectionState.ACTIVE, "104233"),
        (both, "TCS", ProtectionState.FAILED, ""),
    ):
        position = PositionFactory(
            strategy=strategy, symbol=symbol, stop_loss=Decimal("95.00"), take_profit=None
        )
        BrokerProtection.objects.create(
            position=position,
            strategy=strategy,
            broker="paper",
            state=state,
            trigger_id=trigger,
            quantity=10,
            stop_loss=Decimal("95.00"),
            last_error="" if trigger else "paper broker: simulated GTT rejection",
            ended_at=None if trigger else timezone.now(),
        )
    log_in(people["Risk officer"])

    page.goto(f"{live_server.url}/admin/positions/position/")
    expect(page.locator("#result_list")).to_contain_text("broker ACTIVE")
    expect(page.locator("#result_list")).to_contain_text("both FAILED")
    shot("30-positions-protection")

    infy = BrokerProtection.objects.get(trigger_id="104233").position
    page.goto(f"{live_server.url}/admin/positions/position/{infy.pk}/change/")
    expect(page.locator("#content")).to_contain_text("broker: GTT 104233 ACTIVE")
    page.get_by_role("link", name="broker protections of this position").click()
    expect(page.locator("#result_list")).to_contain_text("104233")
    shot("31-position-broker-protections")
    page.goto(f"{live_server.url}/admin/positions/brokerprotection/")
    expect(page.locator("#result_list")).to_contain_text("simulated GTT rejection")
    shot("32-broker-protections")
