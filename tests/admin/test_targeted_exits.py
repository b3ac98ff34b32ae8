"""Targeted exits: close one position from its page, or flatten one strategy from its page,
after a confirmation listing the exact orders (symbol, side, quantity, product, type) and with
a reason recorded beside who acted; the HALT confirmation lists the positions that stay open."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib.admin.models import LogEntry

from orders.models import Order
from orders.tests.factories import StrategyFactory
from positions.exits import ExitKind, exit_plans, position_close, position_flatten
from positions.services import market_prices_update
from positions.tests.factories import PositionFactory
from risk.kill_switch import kill_switch_set
from risk.models import KillSwitchState

pytestmark = pytest.mark.django_db

FLATTEN = "/admin/risk/killswitch/flatten/"


@pytest.fixture
def nifty():
    """1,820 NIFTY futures held: above the freeze quantity (1,800; lots of 65)."""
    market_prices_update([("NIFTY26DECFUT", "NFO", Decimal("26000.00"))])
    return PositionFactory(
        strategy=StrategyFactory(name="Index"),
        symbol="NIFTY26DECFUT",
        exchange="NFO",
        product="NRML",
        quantity=1820,
        average_price=Decimal("26010.00"),
    )


def planned_rows(html: str) -> int:
    return html.count('class="planned-order"')


def test_the_position_page_offers_the_close_to_risk_officers_only(
    nifty, as_risk_officer, as_operator
):
    page = f"/admin/positions/position/{nifty.pk}/change/"
    assert 'id="flatten-position"' in as_risk_officer.get(page).content.decode()
    assert 'id="flatten-position"' not in as_operator.get(page).content.decode()
    assert as_operator.get(f"{FLATTEN}?position={nifty.pk}").status_code == 403
    assert as_operator.post(f"{FLATTEN}?position={nifty.pk}", {"reason": "x"}).status_code == 403
    assert not Order.objects.exists()


def test_closing_one_position_lists_its_orders_then_places_them_with_who_and_why(
    nifty, as_risk_officer
):
    other = PositionFactory(strategy=nifty.strategy, symbol="SBIN", quantity=5)
    url = f"{FLATTEN}?position={nifty.pk}"

    confirm = as_risk_officer.get(url)

    html = confirm.content.decode()
    assert confirm.context["positions"] == [nifty]
    assert [
        (o.symbol, o.side, o.quantity, o.product, o.order_type)
        for o in confirm.context["plans"][0].orders
    ] == [
        ("NIFTY26DECFUT", "SELL", 1755, "NRML", "MARKET"),
        ("NIFTY26DECFUT", "SELL", 65, "NRML", "MARKET"),
    ]
    assert planned_rows(html) == 2 and "The 2 orders it will place" in html
    assert "SBIN" not in html  # one position, not its strategy's others
    assert as_risk_officer.post(url, {"reason": "  "}).status_code == 200  # a reason is required
    assert not Order.objects.exists()

    response = as_risk_officer.post(url, {"reason": "fat finger on the hedge"})

    assert response.status_code == 302
    assert response["Location"] == f"/admin/positions/position/{nifty.pk}/change/"
    orders = list(Order.objects.order_by("pk"))
    assert [(o.side, o.quantity, o.order_type, o.client_order_id) for o in orders] == [
        ("SELL", 1755, "MARKET", f"flat-{nifty.pk}-1.1"),
        ("SELL", 65, "MARKET", f"flat-{nifty.pk}-1.2"),
    ]
    assert all(o.closes_position_id == nifty.pk for o in orders)
    assert orders[0].metadata == {
        "exit": "flatten",
        "reason": "fat finger on the hedge",
        "actor": "rita",
    }
    entry = LogEntry.objects.get(object_id=str(nifty.pk), content_type__model="position")
    assert entry.user.username == "rita" and "fat finger on the hedge" in entry.change_message
    assert not Order.objects.filter(closes_position=other).exists()

    again = as_risk_officer.get(url).content.decode()  # its exit works: none is added
    assert planned_rows(again) == 0 and "an exit already works" in again


def test_flatten_one_strategy_from_its_page(nifty, as_risk_officer):
    elsewhere = PositionFactory(strategy=StrategyFactory(name="Other"), symbol="SBIN")
    strategy_page = f"/admin/orders/strategy/{nifty.strategy.pk}/change/"
    link = f'href="{FLATTEN}?strategy={nifty.strategy.pk}"'
    assert link in as_risk_officer.get(strategy_page).content.decode()

    confirm = as_risk_officer.get(f"{FLATTEN}?strategy={nifty.strategy.pk}")
    assert confirm.context["positions"] == [nifty]
    assert planned_rows(confirm.content.decode()) == 2

    as_risk_officer.post(f"{FLATTEN}?strategy={nifty.strategy.pk}", {"reason": "wind down"})

    assert Order.objects.filter(closes_position=nifty).count() == 2
    assert not Order.objects.filter(closes_position=elsewhere).exists()


def test_under_a_halt_the_page_says_so_and_places_nothing(nifty, as_risk_officer):
    kill_switch_set(KillSwitchState.HALTED, reason="outage", actor="rita")
    url = f"{FLATTEN}?position={nifty.pk}"

    html = as_risk_officer.get(url).content.decode()

    assert 'id="halted-note"' in html and 'id="confirm-flatten"' not in html
    assert "The orders it would place (refused while HALTED)" in html
    assert as_risk_officer.post(url, {"reason": "now"}).status_code == 200
    assert not Order.objects.exists()


def test_a_position_that_is_not_one_is_a_404(as_risk_officer):
    for raw in ("abc", "-1", "999999"):
        assert as_risk_officer.get(f"{FLATTEN}?position={raw}").status_code == 404
        assert as_risk_officer.post(f"{FLATTEN}?position={raw}", {"reason": "x"}).status_code == 404
    assert not Order.objects.exists()


def test_the_halt_confirmation_lists_the_positions_that_stay_open(nifty, as_risk_officer):
    html = as_risk_officer.post(
        "/admin/risk/killswitch/", {"state": "HALTED", "strategy": "", "reason": "outage"}
    ).content.decode()

    assert 'id="halt-positions"' in html
    assert "1 open position will stay open" in html
    assert "NIFTY26DECFUT (NFO)" in html
    assert "no exit passes a HALT" in html and "the MIS square-off and a flatten" in html


def test_exit_plans_match_what_position_close_places(nifty):
    short = PositionFactory(strategy=nifty.strategy, symbol="SBIN", quantity=-7)

    plans = exit_plans([nifty, short])

    assert [(o.side, o.quantity) for o in plans[1].orders] == [("BUY", 7)]
    result = position_close(nifty, kind=ExitKind.FLATTEN, actor="rita", reason="plan")
    placed = [(r.order.side, r.order.quantity) for r in result.orders]
    assert placed == [(o.side, o.quantity) for o in plans[0].orders]


def test_position_flatten_needs_a_reason(nifty):
    with pytest.raises(ValueError, match="reason: required"):
        position_flatten(nifty, actor="rita", reason=" ")
    assert not Order.objects.exists()
