"""Limits in use (risk.usage): each limit in force and today's usage against it, on the
dashboard, a strategy's page and the risk limits list; the numbers and colours move as orders
are placed and filled on the paper broker."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from orders.enums import OrderStatus
from orders.models import Order
from orders.services import order_place, order_submit
from orders.tests.factories import StrategyFactory
from positions.services import market_prices_update, positions_mark
from risk.models import PnlSnapshot
from risk.tests.factories import limits_set, order_request
from risk.usage import limits_in_use

pytestmark = pytest.mark.django_db

SYMBOL, LAST = "SBIN", Decimal("812.35")


@pytest.fixture
def strategy():
    market_prices_update([(SYMBOL, "NSE", LAST)])
    return StrategyFactory(name="Momentum")


def buy(strategy, quantity: int, **overrides) -> Order:
    """A MARKET buy placed and sent to the paper broker, which fills it at the last price."""
    fields = {"symbol": SYMBOL, "quantity": quantity, "order_type": "MARKET"}
    result = order_place(order_request(strategy, **{**fields, **overrides}), actor="algo")
    assert result.accepted, result
    order_submit(result.order_id)
    return Order.objects.get(pk=result.order_id)


def cell(usage, strategy, name):
    return usage.of(strategy).use(name)


def test_usage_moves_after_fills_and_turns_amber_then_red(strategy):
    limits_set(None, max_position_quantity=1000)  # the global row
    limits_set(strategy, max_position_quantity=100, max_strategy_exposure=Decimal("100000"))
    before = limits_in_use()
    position = cell(before, strategy, "max_position_quantity")
    assert (position.used, position.limit.value, position.limit.sources) == (0, 100, ("strategy",))
    assert position.tone == "green"

    assert buy(strategy, 75).status == OrderStatus.FILLED
    after = limits_in_use()
    position = cell(after, strategy, "max_position_quantity")
    exposure = cell(after, strategy, "max_strategy_exposure")
    assert (position.used, position.percent, position.tone) == (75, Decimal("75.0"), "amber")
    assert exposure.used == 75 * LAST  # the position at cost: 60,926.25
    assert (exposure.percent, exposure.tone) == (Decimal("60.9"), "green")
    assert cell(after, strategy, "orders_per_second").used == 1  # one order this second

    buy(strategy, 20)
    position = cell(limits_in_use(), strategy, "max_position_quantity")
    assert (position.used, position.tone) == (95, "red")
    exposure = cell(limits_in_use(), strategy, "max_strategy_exposure")
    assert (exposure.used, exposure.tone) == (95 * LAST, "amber")  # 77.2 %


def test_working_orders_loss_and_drawdown_against_their_limits(strategy):
    limits_set(
        strategy,
        max_open_orders=2,
        daily_loss_limit=Decimal("1000"),
        drawdown_limit=Decimal("500"),
    )
    result = order_place(
        order_request(strategy, symbol=SYMBOL, price="800.00", quantity=1), actor="algo"
    )
    order_submit(result.order_id)  # a LIMIT below the market: it works, unfilled
    assert Order.objects.get(pk=result.order_id).status == OrderStatus.OPEN
    usage = limits_in_use()
    working = cell(usage, strategy, "max_open_orders")
    assert (working.used, working.percent, working.tone) == (1, Decimal("50.0"), "green")

    buy(strategy, 10)  # at 812.35; the mark then falls 85: 850.00 down, over the day
    market_prices_update([(SYMBOL, "NSE", LAST - 85)])
    positions_mark([(SYMBOL, "NSE", LAST - 85)])
    PnlSnapshot.objects.create(
        strategy=strategy,
        taken_at=timezone.now(),
        realized_pnl=0,
        unrealized_pnl=200,
        total_pnl=Decimal("200.00"),
    )
    usage = limits_in_use()
    loss = cell(usage, strategy, "daily_loss_limit")
    drawdown = cell(usage, strategy, "drawdown_limit")
    total = -loss.used
    assert total < Decimal("-850")  # the fall, and the fill's charges
    assert loss.tone == "amber" and loss.percent >= Decimal("85")
    assert drawdown.used == Decimal("200.00") - total  # below the day's 200 peak
    assert drawdown.tone == "red"


def test_a_limit_that_is_off_is_said_so(strategy, as_viewer):
    usage = limits_in_use()
    loss = cell(usage, strategy, "daily_loss_limit")
    assert loss.off and loss.tone == "off" and loss.percent is None
    assert "daily_loss_limit is off" in usage.of(strategy).warnings[0]
    # The order rate always has one: OMS_ORDERS_PER_SECOND when no level sets it.
    rate = cell(usage, strategy, "orders_per_second")
    assert (rate.off, rate.limit.sources) == (False, ("setting",))

    page = as_viewer.get("/admin/").content.decode()
    assert 'id="limits-off"' in page
    assert "daily_loss_limit is off: no loss stops new exposure" in page


def test_the_dashboard_strategy_page_and_limits_list_show_the_usage(strategy, as_risk_officer):
    limits_set(None, max_total_exposure=Decimal("20000"))
    limits_set(strategy, max_position_quantity=10)
    buy(strategy, 10)

    dashboard = as_risk_officer.get("/admin/")
    usage = dashboard.context["limits_usage"]
    assert cell(usage, strategy, "max_position_quantity").tone == "red"
    assert cell(usage, None, "max_total_exposure").used == 10 * LAST  # 40.6 %
    page = dashboard.content.decode()
    assert 'id="limits-panel"' in page
    assert 'data-tone="red" title="Max position quantity: 10 in force, from strategy' in page

    strategy_page = as_risk_officer.get(f"/admin/orders/strategy/{strategy.pk}/change/")
    assert 'id="strategy-limits-in-use"' in strategy_page.content.decode()
    assert f'data-scope="{strategy.pk}"' in strategy_page.content.decode()

    listing = as_risk_officer.get("/admin/risk/risklimit/").content.decode()
    assert 'id="limits-in-use"' in listing and "Global (the desk)" in listing


def test_limits_in_use_costs_the_same_for_2_and_12_strategies(strategy):
    def cost():
        with CaptureQueriesContext(connection) as captured:
            limits_in_use()
        return len(captured)

    StrategyFactory()
    few = cost()
    for _ in range(10):
        limits_set(StrategyFactory(), max_open_orders=5)
    assert cost() == few <= 6
