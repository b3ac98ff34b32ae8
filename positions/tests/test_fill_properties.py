"""Properties of fills netted into positions, over random sequences of buys and sells.

Every example applies its fills through ``orders.services.fill_apply`` to real orders of one
strategy and one instrument, inside a savepoint that is rolled back afterwards, so examples do
not see each other's rows.
"""

from __future__ import annotations

import itertools
from decimal import Decimal

import pytest
from django.db import transaction
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orders.charges import calculate_zerodha_charges, charges_for_value
from orders.enums import OrderSide, OrderStatus, OrderType, Product
from orders.models import Order, Strategy, Trade
from orders.money import PAISA
from orders.services import fill_apply
from orders.tests.factories import OrderFactory, StrategyFactory
from positions.models import Position

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

SYMBOL = "SBIN"
_ids = itertools.count(1)

prices = st.integers(min_value=10_000, max_value=20_000).map(lambda paise: Decimal(paise) / 100)
quantities = st.integers(min_value=1, max_value=50)


@st.composite
def orders_with_fills(draw):
    """A few orders, each with one to three fills; sometimes all of an order's fills share a
    price. Returns (orders, the order in which all fills arrive)."""
    orders = []
    for _ in range(draw(st.integers(min_value=1, max_value=6))):
        side = draw(st.sampled_from([OrderSide.BUY, OrderSide.SELL]))
        fill_quantities = draw(st.lists(quantities, min_size=1, max_size=3))
        if draw(st.booleans()):
            fill_prices = [draw(prices)] * len(fill_quantities)
        else:
            fill_prices = [draw(prices) for _ in fill_quantities]
        orders.append((side, list(zip(fill_quantities, fill_prices, strict=True))))
    arrivals = [(o, f) for o, (_, fills) in enumerate(orders) for f in range(len(fills))]
    return orders, draw(st.permutations(arrivals))


class Rollback(Exception):
    pass


def _closed_cash_flows(trades) -> list[Decimal]:
    """A reference apart from the ledger: the cash flow of each position the fills closed, in
    the order they closed (fills taken in the order they were applied)."""
    flows, quantity, flow = [], 0, Decimal(0)
    for trade in sorted(trades, key=lambda t: t.pk):
        signed = trade.quantity * OrderSide(trade.side).sign
        if quantity and (quantity > 0) != (signed > 0) and abs(signed) >= abs(quantity):
            flows.append(flow + quantity * trade.price)  # buy back / sell out what is held
            signed += quantity
            quantity, flow = 0, Decimal(0)
        quantity += signed
        flow -= signed * trade.price
    return flows


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(scenario=orders_with_fills(), mark=prices)
def test_fills_net_into_positions_exactly(db, scenario, mark):
    try:
        with transaction.atomic():
            _check_scenario(scenario, mark)
            raise Rollback
    except Rollback:
        pass


def _check_scenario(scenario, mark: Decimal) -> None:
    order_specs, arrivals = scenario
    strategy = StrategyFactory()
    orders = [
        OrderFactory(
            strategy=strategy,
            symbol=SYMBOL,
            side=side,
            quantity=sum(q for q, _ in fills),
            order_type=OrderType.LIMIT,
            price=Decimal("150.00"),
            product=Product.MIS,
            status=OrderStatus.OPEN,
            broker_order_id=f"PROP{next(_ids)}",
        )
        for side, fills in order_specs
    ]
    now = timezone.now()
    for order_index, fill_index in arrivals:
        quantity, price = order_specs[order_index][1][fill_index]
        trade = fill_apply(
            orders[order_index],
            trade_id=f"{orders[order_index].broker_order_id}-{fill_index}",
            quantity=quantity,
            price=price,
            executed_at=now,
        )
        assert trade is not None

    trades = list(Trade.objects.filter(strategy=strategy))
    assert len(trades) == len(arrivals)

    # Σ signed trade quantities is the open position, and there is at most one open
    signed = sum(t.quantity * OrderSide(t.side).sign for t in trades)
    open_positions = list(Position.objects.filter(strategy=strategy, closed_at__isnull=True))
    assert len(open_positions) <= 1
    held = open_positions[0] if open_positions else None
    assert (held.quantity if held else 0) == signed
    for position in Position.objects.filter(strategy=strategy, closed_at__isnull=False):
        assert position.quantity == 0

    # a flat position's realized PnL is exactly its cash flow (sells - buys of its quantities),
    # to the paisa: the closing fill absorbs the rounding of the earlier reductions
    closed_flows = _closed_cash_flows(trades)
    closed_positions = Position.objects.filter(strategy=strategy, closed_at__isnull=False)
    assert [p.realized_pnl for p in closed_positions.order_by("id")] == closed_flows
    # what the fills realized is what the positions realized
    realized = sum((p.realized_pnl for p in Position.objects.filter(strategy=strategy)), PAISA * 0)
    assert sum((t.realized_pnl for t in trades), Decimal(0)) == realized
    if held is None:
        assert realized == sum(
            (t.quantity * t.price * -OrderSide(t.side).sign for t in trades), Decimal(0)
        )

    # realized + unrealized at a mark == cash out - cash in + what is held, at the mark
    unrealized = held.calculate_unrealized_pnl(mark) if held else Decimal(0)
    sold = sum((t.quantity * t.price for t in trades if t.side == OrderSide.SELL), Decimal(0))
    bought = sum((t.quantity * t.price for t in trades if t.side == OrderSide.BUY), Decimal(0))
    expected = sold - bought + signed * mark
    assert abs(realized + unrealized - expected) <= PAISA * len(trades), (
        realized,
        unrealized,
        expected,
    )

    # every order: filled, and its fills' charges are the charges of the whole order
    for order, (side, fills) in zip(orders, order_specs, strict=True):
        order.refresh_from_db()
        assert order.status == OrderStatus.FILLED
        assert order.filled_quantity == order.quantity
        own = [t for t in trades if t.order_id == order.pk]
        assert sum(t.quantity for t in own) == order.quantity
        charged = {
            "brokerage": sum(t.brokerage for t in own),
            "stt": sum(t.stt for t in own),
            "exchange_charges": sum(t.exchange_charges for t in own),
            "sebi_charges": sum(t.sebi_charges for t in own),
            "stamp_duty": sum(t.stamp_duty for t in own),
            "gst": sum(t.gst for t in own),
            "total": sum(t.total_charges for t in own),
        }
        value = sum(q * p for q, p in fills)
        assert charged == charges_for_value(side, value, Product.MIS).as_dict()
        if len({p for _, p in fills}) == 1:
            one_price = calculate_zerodha_charges(side, order.quantity, fills[0][1], Product.MIS)
            assert charged == one_price.as_dict()

    # the strategy's counters follow its trades
    strategy = Strategy.objects.get(pk=strategy.pk)
    assert strategy.total_trades == len(trades)
    total_charges = sum((t.total_charges for t in trades), Decimal(0))
    assert strategy.total_pnl == realized - total_charges
    closed = Position.objects.filter(strategy=strategy, closed_at__isnull=False)
    assert strategy.winning_trades == sum(1 for p in closed if p.realized_pnl > 0)
    assert strategy.losing_trades == sum(1 for p in closed if p.realized_pnl < 0)
    assert Order.objects.filter(strategy=strategy).exclude(status=OrderStatus.FILLED).count() == 0
