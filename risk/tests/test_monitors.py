"""The risk monitors: stop-loss/take-profit exits, the MIS square-off, and the periodic pass
that runs them. Each closes a position once, however often it runs."""

from datetime import datetime
from decimal import Decimal

import pytest

from orders.enums import OrderStatus, StrategyMode
from orders.models import Order
from orders.tests.conftest import kite_account_create
from orders.tests.factories import OrderFactory, StrategyFactory
from positions.services import positions_mark
from positions.tests.factories import PositionFactory
from risk import calendar
from risk.models import KillSwitchState
from risk.monitors import risk_monitor, square_off_due, square_off_mis
from risk.selectors import kill_switch_state
from risk.tests.factories import MarketHolidayFactory, limits_set

pytestmark = pytest.mark.django_db


def ist(moment: str) -> datetime:
    return datetime.fromisoformat(moment).replace(tzinfo=calendar.IST)


def orders_of(strategy):
    return list(Order.objects.filter(strategy=strategy).order_by("pk"))


# --- stop-loss and take-profit -----------------------------------------------------------------


def test_a_crossed_stop_loss_is_closed_once(strategy):
    position = PositionFactory(
        strategy=strategy,
        symbol="RELIANCE",
        quantity=10,
        average_price=Decimal("2000.00"),
        stop_loss=Decimal("1950.00"),
    )
    positions_mark([("RELIANCE", "NSE", Decimal("1950.00"))])

    risk_monitor(now=ist("2026-01-14 11:00"))
    risk_monitor(now=ist("2026-01-14 11:01"))

    (exit_order,) = orders_of(strategy)
    assert (exit_order.side, exit_order.quantity, exit_order.order_type) == ("SELL", 10, "MARKET")
    assert exit_order.client_order_id == f"sl-{position.pk}-1"
    assert exit_order.closes_position == position
    position.refresh_from_db()
    assert position.exit_order == exit_order


def test_a_stop_loss_not_reached_places_nothing(strategy):
    PositionFactory(strategy=strategy, symbol="RELIANCE", quantity=10, stop_loss=Decimal("95.00"))
    positions_mark([("RELIANCE", "NSE", Decimal("95.05"))])

    risk_monitor(now=ist("2026-01-14 11:00"))

    assert orders_of(strategy) == []


def test_a_short_reaching_its_take_profit_is_bought_back_once(strategy):
    PositionFactory(
        strategy=strategy,
        symbol="INFY",
        quantity=-5,
        average_price=Decimal("1500.00"),
        take_profit=Decimal("1400.00"),
    )
    positions_mark([("INFY", "NSE", Decimal("1399.90"))])

    risk_monitor(now=ist("2026-01-14 11:00"))
    risk_monitor(now=ist("2026-01-14 11:01"))

    (exit_order,) = orders_of(strategy)
    assert (exit_order.side, exit_order.quantity) == ("BUY", 5)


# --- the MIS square-off ------------------------------------------------------------------------


@pytest.fixture
def intraday_book(strategy):
    """Two MIS orders working, one CNC order; two MIS positions and one CNC position."""
    return {
        "pending": OrderFactory(strategy=strategy, status=OrderStatus.PENDING),
        "open": OrderFactory(strategy=strategy, status=OrderStatus.OPEN, broker_order_id="B-1"),
        "delivery": OrderFactory(strategy=strategy, status=OrderStatus.OPEN, product="CNC"),
        "long": PositionFactory(strategy=strategy, symbol="RELIANCE", quantity=10),
        "short": PositionFactory(strategy=strategy, symbol="INFY", quantity=-5),
        "held": PositionFactory(strategy=strategy, symbol="TCS", quantity=3, product="CNC"),
    }


def _status(order) -> str:
    order.refresh_from_db()
    return order.status


def test_the_square_off_cancels_mis_orders_and_closes_mis_positions_once(strategy, intraday_book):
    book = intraday_book

    first = square_off_mis()
    closing = [o for o in orders_of(strategy) if o.closes_position_id]
    second = square_off_mis()

    assert [o.pk for o in first.orders_to_cancel] == [book["pending"].pk, book["open"].pk]
    assert _status(book["pending"]) == OrderStatus.CANCELLED
    assert _status(book["open"]) == OrderStatus.CANCEL_PENDING
    assert _status(book["delivery"]) == OrderStatus.OPEN
    assert sorted((o.symbol, o.side, o.quantity, o.product) for o in closing) == [
        ("INFY", "BUY", 5, "MIS"),
        ("RELIANCE", "SELL", 10, "MIS"),
    ]
    # The second run leaves the closing orders working: it neither cancels nor repeats them.
    assert second.orders_to_cancel == []
    assert second.positions_to_close == []
    assert [o for o in orders_of(strategy) if o.closes_position_id] == closing
    assert {_status(o) for o in closing} == {OrderStatus.PENDING}


def test_a_square_off_order_that_died_is_followed_by_the_next_attempt(strategy):
    """Rejected at the broker: the position is still open, and the next run closes it with a
    new order instead of replaying the rejected one."""
    from orders.enums import EventSource
    from orders.services import order_transition

    position = PositionFactory(strategy=strategy, symbol="SBIN", quantity=10, product="MIS")
    square_off_mis()
    (first,) = orders_of(strategy)
    order_transition(first, target=OrderStatus.REJECTED, source=EventSource.BROKER, reason="RMS")

    square_off_mis()
    square_off_mis()  # the second attempt works: left to it, not repeated

    first_id, second = first.client_order_id, orders_of(strategy)[-1]
    assert [o.pk for o in orders_of(strategy)] == [first.pk, second.pk]
    assert first_id.endswith("-1") and second.client_order_id == first_id[:-1] + "2"
    assert (second.side, second.quantity, second.status) == ("SELL", 10, OrderStatus.PENDING)
    position.refresh_from_db()
    assert position.exit_order == second


def test_a_position_whose_stop_loss_exit_is_working_is_left_to_it(strategy):
    position = PositionFactory(
        strategy=strategy, symbol="SBIN", quantity=10, stop_loss=Decimal("99.00")
    )
    positions_mark([("SBIN", "NSE", Decimal("98.00"))])
    risk_monitor(now=ist("2026-01-14 11:00"))
    (exit_order,) = orders_of(strategy)

    plan = square_off_mis()

    assert plan.orders_to_cancel == [] and plan.positions_to_close == []
    assert orders_of(strategy) == [exit_order]
    assert _status(exit_order) == OrderStatus.PENDING
    position.refresh_from_db()
    assert position.exit_order == exit_order


def test_a_dry_run_changes_nothing(strategy, intraday_book):
    plan = square_off_mis(dry_run=True)

    assert len(plan.orders_to_cancel) == 2
    assert len(plan.positions_to_close) == 2
    assert _status(intraday_book["pending"]) == OrderStatus.PENDING
    assert len(orders_of(strategy)) == 3


def test_the_square_off_of_a_live_strategy_passes_the_hours_it_closes(clock):
    """After 15:20 no MIS order may open a position, but the square-off's may close one."""
    kite_account_create()
    live = StrategyFactory(mode=StrategyMode.LIVE)
    clock("2026-01-14 15:21")
    PositionFactory(strategy=live, symbol="RELIANCE", quantity=10)

    square_off_mis()

    (closing,) = orders_of(live)
    assert closing.status == OrderStatus.PENDING
    assert (closing.side, closing.quantity, closing.product) == ("SELL", 10, "MIS")


@pytest.mark.parametrize(
    ("moment", "due"),
    [
        ("2026-01-14 15:09:59", False),
        ("2026-01-14 15:10:00", True),  # OMS_MIS_SQUARE_OFF: before the broker's 15:20
        ("2026-01-14 15:29:59", True),
        ("2026-01-14 15:30:00", False),
        ("2026-01-17 15:25:00", False),  # Saturday
        ("2026-01-15 15:25:00", False),  # exchange holiday
    ],
)
def test_the_square_off_is_due_from_1510_to_the_close_of_a_trading_day(moment, due):
    assert square_off_due(ist(moment)) is due


def test_no_square_off_on_a_holiday_added_by_staff():
    MarketHolidayFactory(date="2026-01-14")

    assert square_off_due(ist("2026-01-14 15:25")) is False


def test_the_periodic_pass_squares_off_only_when_due(strategy, intraday_book):
    risk_monitor(now=ist("2026-01-14 15:09"))
    assert len(orders_of(strategy)) == 3

    risk_monitor(now=ist("2026-01-14 15:11"))
    risk_monitor(now=ist("2026-01-14 15:12"))

    assert len(orders_of(strategy)) == 5


def test_the_periodic_pass_takes_a_snapshot_and_pulls_the_switch(strategy):
    limits_set(strategy, daily_loss_limit=Decimal("500.00"))
    PositionFactory(strategy=strategy, symbol="SBIN", quantity=100, average_price=Decimal("800"))
    positions_mark([("SBIN", "NSE", Decimal("794.90"))])  # -510

    risk_monitor()

    assert kill_switch_state(strategy=strategy) == KillSwitchState.REDUCING
