"""Derived properties of strategies, orders and trades: pure, no database."""

from decimal import Decimal

import pytest

from orders.enums import OrderStatus, StrategyMode, StrategyStatus
from orders.models import Order, Strategy, Trade

TERMINAL = {"FILLED", "CANCELLED", "REJECTED", "EXPIRED"}


# --- Order --------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", OrderStatus.values)
def test_order_is_active_until_terminal(status):
    # A plain string, as loaded from the database, and the enum member agree.
    assert Order(status=status).is_active is (status not in TERMINAL)
    assert Order(status=OrderStatus(status)).is_active is (status not in TERMINAL)


@pytest.mark.parametrize(
    ("quantity", "filled_quantity", "remaining"),
    [(10, 0, 10), (10, 4, 6), (7, 7, 0), (0, 0, 0)],
)
def test_order_remaining_quantity(quantity, filled_quantity, remaining):
    order = Order(quantity=quantity, filled_quantity=filled_quantity)
    assert order.remaining_quantity == remaining


# --- Trade --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("gross_value", "total_charges", "percentage"),
    [
        ("15002.50", "28.40", "0.1893"),  # 0.18930178...
        ("1000.00", "20.00", "2.0000"),
        ("100.00", "0.00", "0.0000"),
        ("0", "0", "0"),  # zero value: no division by zero
        ("0", "20.00", "0"),
    ],
)
def test_trade_charges_percentage(gross_value, total_charges, percentage):
    trade = Trade(gross_value=Decimal(gross_value), total_charges=Decimal(total_charges))
    assert trade.charges_percentage == Decimal(percentage)


# --- Strategy -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("winning", "losing", "win_rate"),
    [
        (0, 0, "0"),  # nothing decided yet: no division by zero
        (3, 0, "100.00"),
        (0, 4, "0.00"),
        (3, 1, "75.00"),
        (1, 2, "33.33"),
        (2, 1, "66.67"),
    ],
)
def test_strategy_win_rate(winning, losing, win_rate):
    strategy = Strategy(winning_trades=winning, losing_trades=losing)
    assert strategy.win_rate == Decimal(win_rate)


def test_strategy_win_rate_rounds_half_up_like_the_database():
    assert Strategy(winning_trades=1, losing_trades=31).win_rate == Decimal("3.13")


@pytest.mark.parametrize("status", StrategyStatus.values)
def test_strategy_is_active_only_when_active(status):
    assert Strategy(status=status).is_active is (status == "ACTIVE")


@pytest.mark.parametrize(("mode", "is_live"), [(StrategyMode.PAPER, False), ("LIVE", True)])
def test_strategy_is_live(mode, is_live):
    assert Strategy(mode=mode).is_live is is_live
