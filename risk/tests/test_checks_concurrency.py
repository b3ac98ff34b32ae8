"""Every pre-trade check that depends on other orders or on the position holds when one
strategy's placements arrive at the same instant: ten threads released together by a barrier,
each through order_place on its own connection, against real PostgreSQL.

Before the checks ran under the strategy's lock (risk.validator.checks_lock), ten SELL 10
against a long 10 under REDUCING let 2-3 through (the position went to -20), and ten BUY 1
against max_open_orders=3 let 4 through.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from omsproject.testing.threads import run_together
from orders.enums import StrategyStatus
from orders.models import Order
from orders.services import order_place
from orders.tests.factories import StrategyFactory
from positions.services import market_prices_update
from positions.tests.factories import PositionFactory
from risk.kill_switch import kill_switch_set
from risk.models import KillSwitchState
from risk.tests.factories import limits_set, order_request

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

THREADS = 10


def place_together(requests) -> list:
    """Place the requests at once; returns each result (a thread's error fails the test)."""
    outcomes = run_together(
        [lambda request=request: order_place(request, actor="racer") for request in requests]
    )
    assert [error for _, error in outcomes if error is not None] == []
    return [result for result, _ in outcomes]


def accepted(results) -> int:
    return sum(1 for result in results if result.accepted)


def refusal_codes(results) -> set[str]:
    return {v.code for result in results if not result.accepted for v in result.violations}


@pytest.fixture
def strategy():
    market_prices_update([("RELIANCE", "NSE", Decimal("2450.00"))])
    return StrategyFactory(name="Racer")


def long_ten(strategy):
    return PositionFactory(
        strategy=strategy, symbol="RELIANCE", quantity=10, average_price=Decimal("2450.00")
    )


def sells_of_ten(strategy) -> list:
    return [order_request(strategy, side="SELL", quantity=10) for _ in range(THREADS)]


def test_reducing_lets_one_exit_of_a_long_ten_through(strategy):
    long_ten(strategy)
    kill_switch_set(KillSwitchState.REDUCING, strategy=strategy, reason="test", actor="asha")

    results = place_together(sells_of_ten(strategy))

    assert accepted(results) == 1
    assert refusal_codes(results) == {"kill_switch_reducing"}


def test_a_paused_strategy_lets_one_exit_of_a_long_ten_through(strategy):
    long_ten(strategy)
    Strategy = type(strategy)
    Strategy.objects.filter(pk=strategy.pk).update(status=StrategyStatus.PAUSED)

    results = place_together(sells_of_ten(strategy))

    assert accepted(results) == 1
    assert refusal_codes(results) == {"strategy_paused"}


def test_the_daily_loss_limit_lets_one_exit_through(strategy):
    PositionFactory(
        strategy=strategy,
        symbol="RELIANCE",
        quantity=10,
        average_price=Decimal("2650.00"),
        last_price=Decimal("2450.00"),
        unrealized_pnl=Decimal("-2000.00"),
    )
    limits_set(strategy, daily_loss_limit=Decimal("1000.00"))

    results = place_together(sells_of_ten(strategy))

    assert accepted(results) == 1
    assert refusal_codes(results) == {"daily_loss_limit"}


def test_max_open_orders_holds(strategy):
    limits_set(strategy, max_open_orders=3)

    results = place_together([order_request(strategy, quantity=1) for _ in range(THREADS)])

    assert accepted(results) == 3
    assert refusal_codes(results) == {"max_open_orders"}
    assert Order.objects.filter(strategy=strategy, status="PENDING").count() == 3


def test_max_position_quantity_holds_with_the_working_orders(strategy):
    limits_set(strategy, max_position_quantity=10)

    results = place_together([order_request(strategy, quantity=5) for _ in range(THREADS)])

    assert accepted(results) == 2
    assert refusal_codes(results) == {"max_position_quantity"}


def test_max_strategy_exposure_holds(strategy):
    limits_set(strategy, max_strategy_exposure=Decimal("10000.00"))

    results = place_together([order_request(strategy, quantity=1) for _ in range(THREADS)])

    assert accepted(results) == 4  # 4 x 2450 = 9800; a fifth would make 12250
    assert refusal_codes(results) == {"max_strategy_exposure"}


def test_max_total_exposure_holds_across_strategies(strategy):
    other = StrategyFactory(name="Other racer")
    limits_set(max_total_exposure=Decimal("10000.00"))

    requests = [order_request(s, quantity=1) for s in (strategy, other) for _ in range(5)]
    results = place_together(requests)

    assert accepted(results) == 4
    assert refusal_codes(results) == {"max_total_exposure"}
