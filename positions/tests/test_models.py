"""Derived properties of positions and reconciliation issues: pure, no database."""

from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from positions.models import Position, ReconciliationIssue, Severity

D = Decimal
DETECTED = datetime(2025, 3, 10, 9, 15, tzinfo=ZoneInfo("Asia/Kolkata"))


def long(**fields) -> Position:
    return Position(**{"quantity": 10, "average_price": D("100.000000"), **fields})


def short(**fields) -> Position:
    return Position(**{"quantity": -10, "average_price": D("100.000000"), **fields})


# --- state --------------------------------------------------------------------------------------


def test_position_state():
    assert long().is_open and short().is_open
    assert not Position(quantity=0, closed_at=DETECTED).is_open
    # Zero and not yet marked closed is not open either.
    assert Position(quantity=0).is_open is False
    assert long(closed_at=DETECTED).is_open is False


# --- PnL ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("position", "price", "expected"),
    [
        (long(), "103.25", "32.50"),
        (long(), "97.00", "-30.00"),
        (short(), "103.25", "-32.50"),
        (short(), "97.00", "30.00"),
        (long(average_price=D("100.005000"), quantity=1), "100.00", "-0.01"),
    ],
)
def test_calculate_unrealized_pnl(position, price, expected):
    assert position.calculate_unrealized_pnl(D(price)) == D(expected)


def test_total_pnl_is_realized_plus_unrealized():
    position = long(realized_pnl=D("-12.40"), unrealized_pnl=D("30.00"))
    assert position.total_pnl == D("17.60")


# --- stop-loss and take-profit, at the boundary -------------------------------------------------


@pytest.mark.parametrize(
    ("position", "price", "hit"),
    [
        (long(stop_loss=D("95.00")), "95.01", False),
        (long(stop_loss=D("95.00")), "95.00", True),
        (long(stop_loss=D("95.00")), "94.99", True),
        (short(stop_loss=D("105.00")), "104.99", False),
        (short(stop_loss=D("105.00")), "105.00", True),
        (short(stop_loss=D("105.00")), "105.01", True),
        (long(), "1.00", False),  # no stop set
        (Position(quantity=0, stop_loss=D("95.00")), "90.00", False),  # nothing to stop
    ],
)
def test_should_trigger_stop_loss(position, price, hit):
    assert position.should_trigger_stop_loss(D(price)) is hit


@pytest.mark.parametrize(
    ("position", "price", "hit"),
    [
        (long(take_profit=D("110.00")), "109.99", False),
        (long(take_profit=D("110.00")), "110.00", True),
        (long(take_profit=D("110.00")), "110.01", True),
        (short(take_profit=D("90.00")), "90.01", False),
        (short(take_profit=D("90.00")), "90.00", True),
        (short(take_profit=D("90.00")), "89.99", True),
        (long(), "1000.00", False),  # no target set
        (Position(quantity=0, take_profit=D("110.00")), "120.00", False),
    ],
)
def test_should_trigger_take_profit(position, price, hit):
    assert position.should_trigger_take_profit(D(price)) is hit


# --- marking ------------------------------------------------------------------------------------


def test_update_price_extremes():
    position = long()
    position.update_price_extremes(D("100.00"))
    assert (position.highest_price, position.lowest_price) == (D("100.00"), D("100.00"))
    position.update_price_extremes(D("102.00"))
    position.update_price_extremes(D("101.00"))
    assert (position.highest_price, position.lowest_price) == (D("102.00"), D("100.00"))
    position.update_price_extremes(D("98.50"))
    assert (position.highest_price, position.lowest_price) == (D("102.00"), D("98.50"))


def test_mark_tracks_pnl_peak_and_drawdown():
    position = long(realized_pnl=D("5.00"))
    steps = [
        # price, unrealized, peak (total), max drawdown
        ("110.00", "100.00", "105.00", "0"),
        ("104.00", "40.00", "105.00", "60.00"),
        ("120.00", "200.00", "205.00", "60.00"),
        ("90.00", "-100.00", "205.00", "300.00"),
        ("95.00", "-50.00", "205.00", "300.00"),
    ]
    for price, unrealized, peak, drawdown in steps:
        position.mark(D(price))
        assert position.last_price == D(price)
        assert position.unrealized_pnl == D(unrealized)
        assert (position.peak_pnl, position.max_drawdown) == (D(peak), D(drawdown))
    assert (position.highest_price, position.lowest_price) == (D("120.00"), D("90.00"))


def test_mark_short_gains_as_price_falls():
    position = short()
    position.mark(D("96.00"))
    assert (position.unrealized_pnl, position.peak_pnl) == (D("40.00"), D("40.00"))
    position.mark(D("101.00"))
    assert (position.unrealized_pnl, position.max_drawdown) == (D("-10.00"), D("50.00"))


def test_mark_closed_position_has_no_unrealized_pnl():
    position = Position(
        quantity=0, average_price=D("100"), closed_at=DETECTED, realized_pnl=D("25.00")
    )
    position.mark(D("150.00"))
    assert position.unrealized_pnl == D("0")
    assert position.peak_pnl == D("25.00")


# --- reconciliation issues ----------------------------------------------------------------------


@pytest.mark.parametrize("severity", Severity.values)
def test_issue_is_critical(severity):
    assert ReconciliationIssue(severity=severity).is_critical is (severity == "CRITICAL")


@pytest.mark.parametrize(
    ("elapsed", "hours"),
    [
        (timedelta(0), "0.0"),
        (timedelta(minutes=75), "1.3"),  # 1.25 hours, half up (half-even would say 1.2)
        (timedelta(hours=5, minutes=30), "5.5"),
        (timedelta(days=2, minutes=2), "48.0"),
    ],
)
def test_issue_hours_unresolved_while_open(elapsed, hours):
    issue = ReconciliationIssue(detected_at=DETECTED)
    assert issue.hours_unresolved(now=DETECTED + elapsed) == D(hours)


def test_issue_hours_unresolved_stop_at_resolution():
    issue = ReconciliationIssue(
        detected_at=DETECTED, resolved=True, resolved_at=DETECTED + timedelta(minutes=90)
    )
    assert issue.hours_unresolved(now=DETECTED + timedelta(days=3)) == D("1.5")
