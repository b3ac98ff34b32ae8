"""Strategies in the admin: status and mode change through their services, counters and PnL
are read-only, limits are edited beside them."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib.admin.models import LogEntry

from orders.enums import OrderStatus
from orders.models import Strategy, StrategyEvent
from orders.tests.conftest import kite_account_create
from orders.tests.factories import OrderFactory, StrategyFactory
from risk.models import RiskLimit

pytestmark = pytest.mark.django_db


def form(strategy, **changes):
    data = {
        "name": strategy.name,
        "description": strategy.description,
        "status": strategy.status,
        "mode": strategy.mode,
        "protection_mode": strategy.protection_mode,
        "config": "{}",
        "risk_limits-TOTAL_FORMS": "0",
        "risk_limits-INITIAL_FORMS": "0",
        "api_keys-TOTAL_FORMS": "0",
        "api_keys-INITIAL_FORMS": "0",
    }
    return {**data, **changes}


def confirmed(data, reason="desk review"):
    """The confirmation page's POST: the edit page's fields again, with the reason."""
    return {**data, "_confirm_change": "yes", "_change_reason": reason}


def url(strategy):
    return f"/admin/orders/strategy/{strategy.pk}/change/"


def test_status_changes_through_the_service(as_risk_officer, risk_officer, caplog):
    strategy = StrategyFactory(total_pnl=Decimal("10.00"))

    response = as_risk_officer.post(
        url(strategy), confirmed(form(strategy, status="PAUSED", total_pnl="9999"))
    )

    assert response.status_code == 302
    strategy.refresh_from_db()
    assert strategy.status == "PAUSED"
    assert strategy.total_pnl == Decimal("10.00")  # money is read-only
    assert "status PAUSED by rita" in caplog.text
    assert LogEntry.objects.get(object_id=str(strategy.pk)).user == risk_officer
    # A pause set in the admin is staff's (the strategy cannot lift it), and an event.
    assert strategy.paused_by == "STAFF"
    [event] = StrategyEvent.objects.filter(strategy=strategy)
    assert event.payload["paused_by"] == "STAFF"
    assert event.payload["actor"] == "rita"
    page = as_risk_officer.get(url(strategy)).content.decode()
    assert "paused by staff · desk review (rita)" in page


def test_a_mode_change_is_refused_while_orders_work(as_risk_officer):
    strategy = StrategyFactory()
    OrderFactory(strategy=strategy, status=OrderStatus.OPEN)

    response = as_risk_officer.post(url(strategy), form(strategy, mode="LIVE"))

    assert response.status_code == 200
    assert "1 working order at" in response.content.decode()
    assert Strategy.objects.get(pk=strategy.pk).mode == "PAPER"


def test_a_flat_strategy_goes_live(as_risk_officer):
    strategy = StrategyFactory()
    kite_account_create()  # the desk's only Kite account: the database picks it

    as_risk_officer.post(url(strategy), confirmed(form(strategy, mode="LIVE")))

    live = Strategy.objects.get(pk=strategy.pk)
    assert (live.mode, live.broker_account.user_id) == ("LIVE", "AB1234")


def test_going_live_needs_an_account_and_changing_it_needs_a_flat_strategy(as_risk_officer):
    strategy = StrategyFactory()
    response = as_risk_officer.post(url(strategy), form(strategy, mode="LIVE"))
    errors = response.context["adminform"].form.errors
    assert errors["broker_account"] == [
        "a LIVE strategy needs a Kite account: add one first (Broker accounts)"
    ]
    first, second = kite_account_create("AB1234"), kite_account_create("CD5678")
    response = as_risk_officer.post(url(strategy), form(strategy, mode="LIVE"))
    assert response.context["adminform"].form.errors["broker_account"] == [
        "a LIVE strategy trades through a Kite account: choose one"
    ]
    as_risk_officer.post(
        url(strategy), confirmed(form(strategy, mode="LIVE", broker_account=first.pk))
    )
    strategy.refresh_from_db()
    assert strategy.broker_account == first
    OrderFactory(strategy=strategy, status=OrderStatus.OPEN)

    response = as_risk_officer.post(
        url(strategy), form(strategy, mode="LIVE", broker_account=second.pk)
    )

    assert response.context["adminform"].form.errors["broker_account"] == [
        f"broker account: strategy {strategy.name} has 1 working order at its LIVE broker; "
        "cancel them first"
    ]
    strategy.refresh_from_db()
    assert strategy.broker_account == first


def test_limits_are_edited_beside_the_strategy(as_risk_officer):
    strategy = StrategyFactory()
    data = form(
        strategy,
        **{
            "risk_limits-TOTAL_FORMS": "1",
            "risk_limits-0-max_order_quantity": "500",
            "risk_limits-0-rejection_window_seconds": "60",
            "risk_limits-0-halt_on_critical_issue": "on",
        },
    )

    as_risk_officer.post(url(strategy), confirmed(data))

    assert RiskLimit.objects.get(strategy=strategy).max_order_quantity == 500


def test_the_list_shows_working_orders_and_the_switch(as_viewer):
    strategy = StrategyFactory(name="Momentum")
    OrderFactory(strategy=strategy)

    response = as_viewer.get("/admin/orders/strategy/")

    row = next(s for s in response.context["cl"].result_list if s.pk == strategy.pk)
    assert (row.working, row.own_switch) == (1, None)
    assert "oms-badge--green" in response.content.decode()
