"""One definition of the day's money, read by everyone: random fills across days (adds,
partial reductions, closes, flips, late fills, MIS and CNC, two strategies on one scrip),
then every consumer's figure for every day compared, to the paisa.

Consumers: positions.selectors.day_money (the definition), risk.selectors.day_pnl (the daily
loss limit, the kill switch's rules, PnL snapshots), day_pnl_by_strategy (the dashboard),
/strategy/'s overview, daily_stats (compute_daily_stats) and strategy_metrics; the strategy's
running counter is the sum of its days.
"""

from __future__ import annotations

import itertools
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orders.enums import OrderSide, OrderStatus, OrderType, Product
from orders.models import Strategy, Trade
from orders.selectors import strategy_overview
from orders.services import fill_apply
from orders.tests.factories import OrderFactory, StrategyFactory
from positions.models import DailyStats, Position
from positions.selectors import day_money, strategy_metrics
from positions.statistics import daily_stats_compute
from risk.selectors import day_pnl, day_pnl_by_strategy

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

IST = ZoneInfo("Asia/Kolkata")
FIRST = date(2026, 11, 16)  # a Monday
DAYS = [FIRST + timedelta(days=n) for n in range(4)]
_ids = itertools.count(1)

prices = st.integers(min_value=10_000, max_value=20_000).map(lambda paise: Decimal(paise) / 100)


@st.composite
def fills_across_days(draw):
    """Orders of two strategies on one scrip, each filled in one to three parts on random days
    and minutes; the fills arrive in a random order (a fill of Tuesday may come after one of
    Thursday: a late fill)."""
    product = draw(st.sampled_from([Product.MIS, Product.CNC]))
    orders = []
    for _ in range(draw(st.integers(min_value=1, max_value=7))):
        strategy = draw(st.integers(min_value=0, max_value=1))
        side = draw(st.sampled_from([OrderSide.BUY, OrderSide.SELL]))
        fills = draw(
            st.lists(
                st.tuples(
                    st.integers(min_value=1, max_value=400),
                    prices,
                    st.integers(min_value=0, max_value=len(DAYS) - 1),
                    st.integers(min_value=0, max_value=300),
                ),
                min_size=1,
                max_size=3,
            )
        )
        orders.append((strategy, side, fills))
    arrivals = [(o, f) for o, (_, _, fills) in enumerate(orders) for f in range(len(fills))]
    return product, orders, draw(st.permutations(arrivals))


class Rollback(Exception):
    pass


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(scenario=fills_across_days())
def test_every_consumer_agrees_on_every_day(db, scenario):
    try:
        with transaction.atomic():
            _check(*scenario)
            raise Rollback
    except Rollback:
        pass


def _executed(day_index: int, minute: int) -> datetime:
    return datetime.combine(DAYS[day_index], time(9, 30), tzinfo=IST) + timedelta(minutes=minute)


def _check(product, order_specs, arrivals) -> None:
    strategies = [StrategyFactory(), StrategyFactory()]
    orders = [
        OrderFactory(
            strategy=strategies[owner],
            symbol="SBIN",
            side=side,
            product=product,
            quantity=sum(f[0] for f in fills),
            order_type=OrderType.LIMIT,
            price=Decimal("150.00"),
            status=OrderStatus.OPEN,
            broker_order_id=f"DAY{next(_ids)}",
        )
        for owner, side, fills in order_specs
    ]
    for order_index, fill_index in arrivals:
        quantity, price, day_index, minute = order_specs[order_index][2][fill_index]
        fill_apply(
            orders[order_index],
            trade_id=f"{orders[order_index].broker_order_id}-{fill_index}",
            quantity=quantity,
            price=price,
            executed_at=_executed(day_index, minute),
        )
    daily_stats_compute(date_from=DAYS[0], date_to=DAYS[-1])

    for strategy in strategies:
        trades = list(Trade.objects.filter(strategy=strategy))
        # The ledger: the open position is the sum of the fills; PnL is booked by the fills.
        signed = sum(t.quantity * OrderSide(t.side).sign for t in trades)
        held = Position.objects.filter(strategy=strategy, closed_at__isnull=True).first()
        assert (held.quantity if held else 0) == signed
        positions = Position.objects.filter(strategy=strategy)
        assert sum((t.realized_pnl for t in trades), Decimal(0)) == sum(
            (p.realized_pnl for p in positions), Decimal(0)
        )
        # A position closes at its closing fill's time (never before it opened).
        executed = {t.executed_at for t in trades}
        for position in positions.filter(closed_at__isnull=False):
            assert position.closed_at in executed or position.closed_at == position.opened_at
            assert position.closed_at >= position.opened_at

        by_day = []
        for day in DAYS:
            money = day_money(strategy=strategy, day=day)
            todays = [t for t in trades if t.executed_at.astimezone(IST).date() == day]
            # The definition, against the fills themselves.
            assert money.gross_realized == sum((t.realized_pnl for t in todays), Decimal(0))
            fill_charges = sum((t.total_charges for t in todays), Decimal(0))
            assert money.trade_charges == fill_charges
            cnc_sold = any(t.product == "CNC" and t.side == "SELL" for t in todays)
            assert money.dp_charges == (Decimal("15.34") if cnc_sold else 0)
            # Every consumer: the risk service, the dashboard, /strategy/, daily_stats and
            # strategy_metrics.
            noon = datetime.combine(day, time(12), tzinfo=IST)
            assert day_pnl(strategy, now=noon) == money
            assert day_pnl_by_strategy(now=noon).get(strategy.pk, money) == money
            overview = strategy_overview(strategy=strategy, today=day).today
            assert (overview["gross_realized_pnl"], overview["charges"]) == (
                money.gross_realized,
                money.charges,
            )
            assert overview["realized_pnl"] == money.net_realized
            assert overview["net_pnl"] == money.total
            row = DailyStats.objects.filter(date=day, strategy=strategy).first()
            if row is None:
                assert money.gross_realized == money.charges == 0
            else:
                assert (row.gross_pnl, row.total_charges, row.net_pnl) == (
                    money.gross_realized,
                    money.charges,
                    money.net_realized,
                )
            metrics = strategy_metrics(strategy=strategy, date_from=day, date_to=day)
            assert metrics["gross_pnl"] == money.gross_realized
            assert metrics["total_charges"] == money.trade_charges
            by_day.append(money)

        # The running counter is the sum of the days (the fills' realized PnL less their
        # charges; the DP charge is a day's charge of the demat account).
        counted = Strategy.objects.get(pk=strategy.pk).total_pnl
        assert counted == sum((m.gross_realized - m.trade_charges for m in by_day), Decimal(0))

    # The account: each day's row is the strategies' gross and fill charges, the DP charge
    # once per scrip (both strategies trade SBIN).
    for day in DAYS:
        account = day_money(day=day)
        rows = [day_money(strategy=s, day=day) for s in strategies]
        assert account.gross_realized == sum((m.gross_realized for m in rows), Decimal(0))
        assert account.trade_charges == sum((m.trade_charges for m in rows), Decimal(0))
        assert account.dp_charges == max(m.dp_charges for m in rows)
        global_row = DailyStats.objects.filter(date=day, strategy=None).first()
        if global_row is not None:
            assert (global_row.gross_pnl, global_row.total_charges) == (
                account.gross_realized,
                account.charges,
            )


def test_a_short_of_352_closed_in_three_fills_realizes_its_cash_flow_exactly(db):
    """The review's case: a short of 352 bought back in three fills. Sold 176 @ 152.62 and
    176 @ 152.63 (53,724.00, average 152.625), bought back 117 + 117 + 118 @ 152.13
    (53,549.76): 174.24 exactly. Each reduction rounded on its own (57.915 -> 57.92 twice,
    58.41) would book 174.25; the closing fill absorbs the paisa."""
    strategy = StrategyFactory()
    at = datetime.combine(DAYS[0], time(10), tzinfo=IST)

    def order(side, quantity):
        return OrderFactory(
            strategy=strategy,
            symbol="SBIN",
            side=side,
            quantity=quantity,
            product=Product.MIS,
            status=OrderStatus.OPEN,
            broker_order_id=f"REV{next(_ids)}",
        )

    sell = order(OrderSide.SELL, 352)
    for number, price in enumerate(("152.62", "152.63")):
        fill_apply(
            sell, trade_id=f"REV-S{number}", quantity=176, price=Decimal(price), executed_at=at
        )
    buy = order(OrderSide.BUY, 352)
    for number, quantity in enumerate((117, 117, 118)):
        fill_apply(
            buy,
            trade_id=f"REV-B{number}",
            quantity=quantity,
            price=Decimal("152.13"),
            executed_at=at + timedelta(minutes=number + 1),
        )

    position = Position.objects.get(strategy=strategy)
    assert position.closed_at == at + timedelta(minutes=3)  # the closing fill's time
    assert position.realized_pnl == Decimal("174.24")
    booked = Trade.objects.filter(strategy=strategy, side="BUY").order_by("id")
    assert [t.realized_pnl for t in booked] == [
        Decimal("57.92"),
        Decimal("57.92"),
        Decimal("58.40"),
    ]
