"""The kill switch page: every switch at a glance, a change only after a confirmation page and
only by risk officers (risk.change_kill_switch), through kill_switch_set; the banner on every
admin page while any switch is not ACTIVE; flattening as a separate confirmed act."""

from __future__ import annotations

import pytest
from django.contrib.admin.models import ADDITION, LogEntry

from orders.enums import OrderStatus
from orders.models import Order
from orders.tests.factories import OrderFactory, StrategyFactory
from positions.tests.factories import PositionFactory
from risk.kill_switch import kill_switch_set
from risk.models import ActorType, KillSwitchEvent, KillSwitchState
from risk.selectors import kill_switch_board, kill_switch_state

pytestmark = pytest.mark.django_db

PAGE = "/admin/risk/killswitch/"


def switch(client, **data):
    return client.post(PAGE, {"strategy": "", **data})


def test_the_page_shows_the_global_and_every_strategy_switch(as_viewer):
    momentum = StrategyFactory(name="Momentum")
    StrategyFactory(name="Arb")
    kill_switch_set(KillSwitchState.REDUCING, reason="loss limit", actor="rita", strategy=momentum)

    response = as_viewer.get(PAGE)

    assert response.status_code == 200
    rows = {row["strategy"].name: row for row in response.context["strategies"]}
    assert rows["Momentum"]["own"] == KillSwitchState.REDUCING
    assert rows["Arb"]["in_force"] == KillSwitchState.ACTIVE
    page = response.content.decode()
    assert "loss limit" in page  # the history
    assert 'id="read-only-note"' in page and 'id="switch-form"' not in page


@pytest.mark.parametrize("who", ["as_viewer", "as_operator"])
def test_only_risk_officers_change_it(who, request):
    client = request.getfixturevalue(who)

    assert switch(client, state="HALTED", reason="x", confirmed="yes").status_code == 403
    assert client.get(f"{PAGE}flatten/").status_code == 403
    assert not KillSwitchEvent.objects.exists()


def test_a_change_is_confirmed_first(as_risk_officer):
    OrderFactory(status=OrderStatus.OPEN, broker_order_id="B-1")

    response = switch(as_risk_officer, state="HALTED", reason="broker outage")

    assert response.status_code == 200
    assert response.context["state"] == KillSwitchState.HALTED
    assert response.context["working"] == 1
    assert "Yes, set HALTED" in response.content.decode()
    assert not KillSwitchEvent.objects.exists()


def test_confirmed_it_goes_through_the_service_and_is_audited(as_risk_officer, risk_officer):
    working = OrderFactory(status=OrderStatus.OPEN, broker_order_id="B-1")

    response = switch(as_risk_officer, state="HALTED", reason="broker outage", confirmed="yes")

    assert response.status_code == 302
    event = KillSwitchEvent.objects.get()
    assert (event.state, event.actor, event.actor_type, event.reason) == (
        "HALTED",
        "rita",
        ActorType.PERSON,
        "broker outage",
    )
    assert kill_switch_state() == KillSwitchState.HALTED
    working.refresh_from_db()
    assert working.status == OrderStatus.CANCEL_PENDING  # HALTED cancels working orders
    entry = LogEntry.objects.get(content_type__model="killswitchevent")
    assert (entry.user, entry.action_flag, entry.object_id) == (
        risk_officer,
        ADDITION,
        str(event.pk),
    )


def test_a_strategy_switch(as_risk_officer):
    momentum = StrategyFactory()

    switch(
        as_risk_officer, state="REDUCING", strategy=momentum.pk, reason="drawdown", confirmed="yes"
    )

    assert kill_switch_state(strategy=momentum) == KillSwitchState.REDUCING
    assert kill_switch_state() == KillSwitchState.ACTIVE


def test_a_reason_is_required(as_risk_officer):
    response = switch(as_risk_officer, state="HALTED", reason="   ", confirmed="yes")

    assert response.status_code == 200
    assert "reason" in response.context["form"].errors
    assert not KillSwitchEvent.objects.exists()


def test_the_banner_is_on_every_page_until_resumed(as_risk_officer, as_viewer):
    momentum = StrategyFactory(name="Momentum")
    assert "kill-switch-banner" not in as_viewer.get("/admin/orders/order/").content.decode()

    switch(as_risk_officer, state="HALTED", reason="broker outage", confirmed="yes")
    for url in ("/admin/", "/admin/orders/order/", "/admin/positions/position/", PAGE):
        page = as_viewer.get(url).content.decode()
        assert 'id="kill-switch-banner"' in page and "oms-banner--HALTED" in page, url
        assert "broker outage" in page

    switch(as_risk_officer, state="ACTIVE", reason="broker back", confirmed="yes")
    kill_switch_set(KillSwitchState.REDUCING, reason="loss", actor="rita", strategy=momentum)
    page = as_viewer.get("/admin/orders/order/").content.decode()
    assert "oms-banner--REDUCING" in page and "Momentum" in page

    switch(as_risk_officer, state="ACTIVE", strategy=momentum.pk, reason="ok", confirmed="yes")
    assert "kill-switch-banner" not in as_viewer.get("/admin/orders/order/").content.decode()


def test_the_board_is_one_query(django_assert_num_queries):
    strategies = StrategyFactory.create_batch(3)
    for strategy in strategies:
        kill_switch_set(KillSwitchState.HALTED, reason="x", actor="rita", strategy=strategy)
    kill_switch_set(KillSwitchState.REDUCING, reason="x", actor="rita")

    with django_assert_num_queries(1):
        board = kill_switch_board()
        alerts = board.alerts
        names = [e.strategy.name for e in alerts if e.strategy]

    assert board.global_state == KillSwitchState.REDUCING
    assert alerts[0].scope == "GLOBAL" and len(names) == 3
    assert board.state_for(strategies[0].pk) == KillSwitchState.HALTED


def test_flatten_is_refused_while_halted_and_works_when_reducing(as_risk_officer):
    position = PositionFactory(symbol="RELIANCE", quantity=10)
    kill_switch_set(KillSwitchState.HALTED, reason="outage", actor="rita")

    halted = as_risk_officer.get(f"{PAGE}flatten/")
    assert halted.context["halted"] and 'id="confirm-flatten"' not in halted.content.decode()
    as_risk_officer.post(f"{PAGE}flatten/", {"reason": "end of day"})
    assert not Order.objects.exists()

    kill_switch_set(KillSwitchState.REDUCING, reason="wind down", actor="rita")
    listing = as_risk_officer.get(f"{PAGE}flatten/")
    assert list(listing.context["positions"]) == [position]
    assert as_risk_officer.post(f"{PAGE}flatten/", {"reason": ""}).status_code == 200
    assert not Order.objects.exists()  # a reason is required

    response = as_risk_officer.post(f"{PAGE}flatten/", {"reason": "end of day"})

    assert response.status_code == 302
    exit_order = Order.objects.get()
    assert (exit_order.side, exit_order.quantity, exit_order.client_order_id) == (
        "SELL",
        10,
        f"flat-{position.pk}-1",
    )
    assert exit_order.status != OrderStatus.REJECTED
    assert LogEntry.objects.filter(
        content_type__model="position", object_id=str(position.pk)
    ).exists()


def test_the_history_is_append_only_here_too(as_superuser):
    event = kill_switch_set(KillSwitchState.HALTED, reason="x", actor="rita")
    url = f"/admin/risk/killswitchevent/{event.pk}/"

    assert as_superuser.get(f"{url}delete/").status_code == 403
    assert as_superuser.post(f"{url}change/", {"reason": "y"}).status_code == 403
    assert as_superuser.get("/admin/risk/killswitchevent/add/").status_code == 403
