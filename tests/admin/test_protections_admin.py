"""Where a position's protection lives, in the admin: a column of the positions list and a line
on its page (OMS, broker, both; the GTT's state and trigger id), the broker protections list,
and the strategy's protection mode."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from orders.enums import ProtectionMode
from orders.models import Strategy
from orders.tests.factories import StrategyFactory
from positions.models import BrokerProtection, ProtectionState
from positions.tests.factories import PositionFactory
from risk.models import AdminChange
from tests.admin.test_strategies_admin import confirmed, url
from tests.admin.test_strategies_admin import form as form_data

pytestmark = pytest.mark.django_db

POSITIONS = "/admin/positions/position/"
PROTECTIONS = "/admin/positions/brokerprotection/"


def protected_position(state=ProtectionState.ACTIVE, trigger_id="4711", **position):
    strategy = StrategyFactory(protection_mode=ProtectionMode.BROKER)
    held = PositionFactory(strategy=strategy, stop_loss=Decimal("95.00"), **position)
    ended = None if state in ProtectionState.live() else timezone.now()
    BrokerProtection.objects.create(
        position=held,
        strategy=strategy,
        broker="paper",
        state=state,
        trigger_id=trigger_id,
        quantity=abs(held.quantity),
        stop_loss=Decimal("95.00"),
        ended_at=ended,
    )
    return held


def test_the_positions_list_says_where_each_protection_lives(as_viewer):
    protected_position()
    protected_position(state=ProtectionState.FAILED, trigger_id="")
    PositionFactory()  # an OMS-only strategy's

    with CaptureQueriesContext(connection) as few:
        page = as_viewer.get(POSITIONS).content.decode()
    for _ in range(5):
        protected_position(trigger_id=f"9{_}")
    with CaptureQueriesContext(connection) as many:
        as_viewer.get(POSITIONS)

    assert ">broker ACTIVE<" in page and "held at the broker as GTT 4711" in page
    assert ">broker FAILED<" in page
    assert ">OMS<" in page
    assert len(many) == len(few)  # one query for the page, however many protections


def test_a_positions_page_links_its_broker_protections(as_viewer):
    position = protected_position(state=ProtectionState.TRIGGERED)

    page = as_viewer.get(f"{POSITIONS}{position.pk}/change/").content.decode()

    assert "Where its protection lives" in page
    assert "broker: GTT 4711 TRIGGERED" in page
    assert f"{PROTECTIONS}?position__id__exact={position.pk}" in page


def test_the_broker_protections_list_is_read_only(as_viewer, as_risk_officer):
    position = protected_position()
    protection = BrokerProtection.objects.get(position=position)

    page = as_viewer.get(PROTECTIONS).content.decode()

    assert "4711" in page and "Active at the broker" in page and position.symbol in page
    assert as_risk_officer.get(f"{PROTECTIONS}add/").status_code == 403
    change = as_risk_officer.post(f"{PROTECTIONS}{protection.pk}/change/", {"trigger_id": "1"})
    assert change.status_code == 403
    protection.refresh_from_db()
    assert protection.trigger_id == "4711"


def test_a_risk_officer_sets_a_strategys_protection_mode(as_risk_officer):
    strategy = StrategyFactory()
    page = as_risk_officer.get(f"/admin/orders/strategy/{strategy.pk}/change/")
    form = page.context["adminform"].form
    assert form.initial["protection_mode"] == ProtectionMode.OMS

    # A controlled setting: the confirmation page first, then the change with its reason.
    page = as_risk_officer.post(url(strategy), form_data(strategy, protection_mode="BOTH"))
    assert "Confirm the change of" in page.content.decode()
    assert Strategy.objects.get(pk=strategy.pk).protection_mode == ProtectionMode.OMS
    response = as_risk_officer.post(
        url(strategy),
        confirmed(form_data(strategy, protection_mode="BOTH"), reason="stops at the broker"),
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    [change] = AdminChange.objects.all()
    assert change.changes == {"protection_mode": ["OMS", "BOTH"]}
    assert change.reason == "stops at the broker"
    assert Strategy.objects.get(pk=strategy.pk).protection_mode == ProtectionMode.BOTH
