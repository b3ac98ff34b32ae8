"""The admin's home is the desk's dashboard: today's PnL per strategy (the risk service's own
figures), working orders, gross exposure and position value, issues by severity, the kill
switch, the PnL chart."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from orders.enums import OrderStatus
from orders.tests.factories import OrderFactory, StrategyFactory, TradeFactory
from positions.models import Severity
from positions.tests.factories import PositionFactory, ReconciliationIssueFactory
from risk.models import PnlSnapshot
from risk.selectors import day_pnl, day_pnl_by_strategy, desk_today, gross_exposure
from risk.tests.checks import validate_order
from risk.tests.factories import limits_set, order_request

pytestmark = pytest.mark.django_db


def trading_day(strategy, *, scale: int = 1):
    """Today: an open position that realized 12.50 and a position closed for 200.00 (each by
    a fill today), a fill whose charges are 23.60; yesterday, a fill that realized 999.00."""
    now = timezone.now()
    opened = now - timedelta(hours=1)
    PositionFactory(
        strategy=strategy,
        quantity=10 * scale,
        realized_pnl=Decimal("12.50") * scale,
        unrealized_pnl=Decimal("-30.25") * scale,
        last_price=Decimal("101.00"),
    )
    PositionFactory(
        strategy=strategy,
        quantity=0,
        realized_pnl=Decimal("200.00") * scale,
        opened_at=opened,
        closed_at=now,
    )
    PositionFactory(  # closed yesterday: not today's
        strategy=strategy,
        quantity=0,
        realized_pnl=Decimal("999.00"),
        opened_at=now - timedelta(days=2),
        closed_at=now - timedelta(days=1, hours=1),
    )
    order = OrderFactory(strategy=strategy, status=OrderStatus.OPEN, quantity=100)
    TradeFactory(order=order, quantity=1, brokerage=Decimal("20.00"), gst=Decimal("3.60"))
    for realized, executed_at in (
        (Decimal("12.50") * scale, now),
        (Decimal("200.00") * scale, now),
        (Decimal("999.00"), now - timedelta(days=1, hours=1)),
    ):
        TradeFactory(order=order, quantity=1, realized_pnl=realized, executed_at=executed_at)
    OrderFactory(strategy=strategy)  # working


def test_the_grouped_pnl_is_the_risk_service_figure_for_every_strategy():
    strategies = [StrategyFactory() for _ in range(3)]
    for scale, strategy in enumerate(strategies[:2], start=1):
        trading_day(strategy, scale=scale)

    grouped = day_pnl_by_strategy()

    for strategy in strategies:
        if strategy.pk in grouped:
            assert grouped[strategy.pk] == day_pnl(strategy)
        else:
            assert day_pnl(strategy).total == 0
    account = day_pnl()
    assert grouped[None] == account
    strategy_rows = [money for key, money in grouped.items() if key is not None]
    assert sum(m.gross_realized for m in strategy_rows) == account.gross_realized
    assert sum(m.net_realized for m in strategy_rows) == account.net_realized
    assert sum(m.unrealized for m in strategy_rows) == account.unrealized
    assert account.gross_realized == Decimal("637.50")  # (12.50 + 200.00) x (1 + 2)
    assert account.charges == Decimal("47.20")  # 23.60 x 2


def test_desk_today_sums_the_strategies():
    momentum, arb = StrategyFactory(name="Momentum"), StrategyFactory(name="Arb")
    trading_day(momentum)
    trading_day(arb, scale=2)
    ReconciliationIssueFactory(severity=Severity.CRITICAL)
    ReconciliationIssueFactory(severity=Severity.INFO)

    desk = desk_today()

    rows = {row.strategy.name: row for row in desk.strategies}
    assert rows["Momentum"].open_orders == 2 and rows["Momentum"].open_positions == 1
    assert rows["Momentum"].position_value == Decimal("1010.00")  # 10 x last price 101
    assert rows["Momentum"].gross_realized == Decimal("212.50")
    assert rows["Momentum"].realized_pnl == Decimal("188.90")  # net: less 23.60 of charges
    assert desk.total_pnl == sum(day_pnl(s).total for s in (momentum, arb))
    assert desk.issues_by_severity == {"CRITICAL": 1, "WARNING": 0, "INFO": 1}


def test_the_dashboard_and_the_validator_agree_on_a_strategys_gross_exposure():
    strategy, other = StrategyFactory(name="Momentum"), StrategyFactory(name="Arb")
    # At cost 10 x 100 = 1,000 (worth 1,200 at the last price: its value, not its exposure).
    PositionFactory(
        strategy=strategy,
        quantity=10,
        average_price=Decimal("100.000000"),
        last_price=Decimal("120.00"),
    )
    OrderFactory(strategy=strategy, status=OrderStatus.OPEN, quantity=5, price=Decimal("50.00"))
    OrderFactory(  # 6 of 10 still working at 10.00
        strategy=strategy,
        status=OrderStatus.PARTIALLY_FILLED,
        quantity=10,
        filled_quantity=4,
        average_price=Decimal("10.00"),
        price=Decimal("10.00"),
    )
    OrderFactory(strategy=strategy, status=OrderStatus.CANCELLED)  # not working: counts nothing
    PositionFactory(strategy=other, quantity=-3, average_price=Decimal("200.000000"))

    desk = desk_today()
    rows = {row.strategy.name: row for row in desk.strategies}

    assert rows["Momentum"].gross_exposure == gross_exposure(strategy) == Decimal("1310")
    assert rows["Momentum"].position_value == Decimal("1200.00")
    assert rows["Arb"].gross_exposure == gross_exposure(other) == Decimal("600")
    assert desk.gross_exposure == gross_exposure() == Decimal("1910")
    # The validator checks the same figure: the dashboard's plus the new order's 10 x 2450.
    limits_set(strategy, max_strategy_exposure=Decimal("1.00"))
    refusals = [
        v.message
        for v in validate_order(order_request(strategy), strategy=strategy)
        if v.code == "max_strategy_exposure"
    ]
    assert refusals == ["strategy exposure would be ₹25,810.00: above the limit ₹1.00"]


def test_the_dashboard_costs_the_same_for_2_and_12_strategies(as_viewer):
    for _ in range(2):
        trading_day(StrategyFactory())
    as_viewer.get("/admin/")

    def cost():
        with CaptureQueriesContext(connection) as captured:
            assert as_viewer.get("/admin/").status_code == 200
        return len(captured)

    few = cost()
    for _ in range(10):
        trading_day(StrategyFactory())
    assert cost() == few
    # The desk's figures (15 at most; the kill switch board read once for the banner too),
    # the limits in use (2: the limit rows; the largest positions, order rates and PnL peaks)
    # and the system health (6: the background work in one statement — workers, jobs,
    # reconciliation's last run and open issues —, orders unsent and in flight, the Kite
    # accounts, the marks, the webhooks, the holidays).
    assert few <= 23


def test_the_dashboard_shows_the_day(as_viewer):
    momentum = StrategyFactory(name="Momentum")
    trading_day(momentum)
    ReconciliationIssueFactory(severity=Severity.CRITICAL)
    now = timezone.now()
    midnight = timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)
    for minutes, total in ((30, "-150.00"), (20, "80.00"), (10, "182.25")):
        for strategy in (None, momentum):
            PnlSnapshot.objects.create(
                strategy=strategy,
                taken_at=max(now - timedelta(minutes=minutes), midnight),
                realized_pnl=Decimal(total),
                unrealized_pnl=Decimal("0"),
                total_pnl=Decimal(total),
            )

    page = as_viewer.get("/admin/").content.decode()

    # realized gross 12.50 + 200.00 by today's fills - 23.60 charges, unrealized -30.25
    assert 'id="tile-net-pnl"' in page and "+₹158.65" in page
    assert "Momentum ₹182" in page  # the chart's legend: the last snapshot
    assert "1 CRITICAL" in page
    assert "<polyline" in page and "All strategies" in page and "Momentum" in page
