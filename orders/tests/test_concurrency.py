"""Real threads against the real database: placements, fills and cancels that race.

Each thread uses its own database connection and closes it (back to the pool) when done.
"""

from __future__ import annotations

import itertools
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone
from procrastinate.contrib.django.models import ProcrastinateJob

from omsproject.testing.threads import run_together
from orders.brokers import BrokerOrderUpdate
from orders.charges import calculate_zerodha_charges
from orders.domain import OrderRequest
from orders.enums import EventKind, EventSource, OrderSide, OrderStatus, OrderType, Product
from orders.models import Order, OrderEvent, PaperOrder, Strategy, Trade
from orders.services import (
    IllegalOrderState,
    fill_apply,
    order_cancel,
    order_cancel_at_broker,
    order_place,
    order_submit,
    order_updates_apply,
)
from orders.state import can_transition
from orders.tests.factories import OrderFactory, StrategyFactory
from positions.models import Position
from positions.services import market_prices_update
from risk.monitors import market_tick

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

SYMBOL = "SBIN"
S = OrderStatus


def transition_chain(order) -> list[tuple[str, str]]:
    return list(
        OrderEvent.objects.filter(order=order, kind=EventKind.TRANSITION)
        .order_by("id")
        .values_list("from_status", "to_status")
    )


# --- (a) one client_order_id, fifty requests at once ---------------------------------------------


def test_concurrent_placements_of_one_client_order_id_make_one_order():
    strategy = StrategyFactory()
    market_prices_update([(SYMBOL, "NSE", Decimal("812.35"))])

    def place():
        request = OrderRequest(
            strategy_id=strategy.pk,
            client_order_id="same-for-all",
            symbol=SYMBOL,
            side="BUY",
            quantity=10,
            order_type="LIMIT",
            price=Decimal("810.00"),
            product="MIS",
        )
        return order_place(request, actor="racer")

    outcomes = run_together([place] * 50)

    errors = [error for _, error in outcomes if error is not None]
    assert errors == []
    results = [result for result, _ in outcomes]
    [order] = Order.objects.filter(strategy=strategy)
    assert {r.order_id for r in results} == {order.pk}
    assert sum(1 for r in results if not r.replayed) == 1
    assert all(r.status == S.PENDING for r in results)
    assert order.status == S.PENDING
    submit_jobs = ProcrastinateJob.objects.filter(
        task_name="orders.submit", args__order_id=order.pk
    )
    assert submit_jobs.count() == 1
    assert OrderEvent.objects.filter(order=order).count() == 1  # PENDING, once


# --- (b) four hundred fills on one position ------------------------------------------------------


def test_concurrent_fills_on_one_position_are_all_counted_once():
    strategy = StrategyFactory()
    price = Decimal("810.00")
    orders = [
        OrderFactory(
            strategy=strategy,
            symbol=SYMBOL,
            side=OrderSide.BUY,
            quantity=50,
            order_type=OrderType.LIMIT,
            price=price,
            product=Product.MIS,
            status=S.OPEN,
            broker_order_id=f"CONC{n}",
        )
        for n in range(8)
    ]
    fills = [(order, f"{order.broker_order_id}-T{n}") for order in orders for n in range(50)]
    repeats = fills[::20]  # twenty fills reported twice
    assert len(repeats) == 20
    work = fills + repeats
    # spread the repeats among the originals, deterministically
    work = [work[i] for i in sorted(range(len(work)), key=lambda i: (i * 7919) % len(work))]
    now = timezone.now()

    def apply(item):
        order, trade_id = item
        try:
            return fill_apply(order, trade_id=trade_id, quantity=1, price=price, executed_at=now)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(apply, work))

    assert sum(1 for r in results if r is None) == len(repeats)
    assert Trade.objects.filter(strategy=strategy).count() == 400
    [position] = Position.objects.filter(strategy=strategy, closed_at__isnull=True)
    assert position.quantity == 400
    assert position.average_price == price
    assert Position.objects.filter(strategy=strategy).count() == 1
    whole_order = calculate_zerodha_charges("BUY", 50, price, "MIS").total
    for order in orders:
        order.refresh_from_db()
        assert order.status == S.FILLED
        assert order.filled_quantity == 50
        assert order.average_price == price
        trades = Trade.objects.filter(order=order)
        assert trades.count() == 50
        assert sum(t.total_charges for t in trades) == whole_order
        fill_events = OrderEvent.objects.filter(order=order, kind=EventKind.FILL)
        assert fill_events.count() == 50
        assert sorted(e.details["filled_quantity"] for e in fill_events) == list(range(1, 51))
        assert transition_chain(order) == [
            (S.OPEN, S.PARTIALLY_FILLED),
            (S.PARTIALLY_FILLED, S.FILLED),
        ]
    strategy = Strategy.objects.get(pk=strategy.pk)
    assert strategy.total_trades == 400


# --- (c) a cancel racing a fill ------------------------------------------------------------------


def test_a_cancel_racing_a_fill_ends_in_a_legal_consistent_state():
    market_prices_update([(SYMBOL, "NSE", Decimal("812.35"))])
    outcomes = []
    for round_number in range(8):
        strategy = StrategyFactory()
        result = order_place(
            OrderRequest(
                strategy_id=strategy.pk,
                client_order_id=f"race-{round_number}",
                symbol=SYMBOL,
                side="BUY",
                quantity=10,
                order_type="LIMIT",
                price=Decimal("810.00"),
                product="MIS",
            ),
            actor="racer",
        )
        order_submit(result.order_id)
        assert Order.objects.get(pk=result.order_id).status == S.OPEN

        def cancel(order_id=result.order_id):
            try:
                order_cancel(order_id, actor="racer")
            except IllegalOrderState:
                return "too late"
            order_cancel_at_broker(order_id)
            return "cancel sent"

        def tick():
            market_tick([(SYMBOL, "NSE", Decimal("809.90"))])
            market_prices_update([(SYMBOL, "NSE", Decimal("812.35"))])

        errors = [error for _, error in run_together([cancel, tick]) if error is not None]
        assert errors == []

        order = Order.objects.get(pk=result.order_id)
        outcomes.append(order.status)
        _assert_consistent(order)


def _assert_consistent(order) -> None:
    trades = Trade.objects.filter(order=order)
    assert order.filled_quantity == sum(t.quantity for t in trades)
    paper = PaperOrder.objects.get(tag=order.broker_tag)
    if order.status == S.FILLED:
        assert order.filled_quantity == order.quantity
        assert paper.status == "COMPLETE"
    else:
        assert order.status == S.CANCELLED
        assert order.filled_quantity == 0
        assert paper.status == "CANCELLED"
    chain = transition_chain(order)
    assert chain[0] == ("", S.PENDING)
    for (_, previous), (current, target) in itertools.pairwise(chain):
        assert current == previous, chain
        assert can_transition(current, target), chain
    assert chain[-1][1] == order.status
    assert not OrderEvent.objects.filter(order=order, kind=EventKind.REFUSED).exists()
    fills = OrderEvent.objects.filter(order=order, kind=EventKind.FILL)
    assert fills.count() == trades.count()


# --- (d) cumulative reports racing each other ----------------------------------------------------


def test_racing_cumulative_reports_lose_no_fill():
    """A postback and a poll can report the same order at once (4 filled, then 10 filled)."""
    strategy = StrategyFactory()
    for round_number in range(10):
        order = OrderFactory(
            strategy=strategy,
            symbol=SYMBOL,
            side=OrderSide.BUY,
            quantity=10,
            order_type=OrderType.LIMIT,
            price=Decimal("810.00"),
            product=Product.MIS,
            status=S.OPEN,
            broker_order_id=f"CUM{round_number}",
        )

        def report(filled, average, status, order=order):
            update = BrokerOrderUpdate(
                broker_order_id=order.broker_order_id,
                tag=order.broker_tag,
                status=status,
                filled_quantity=filled,
                average_price=Decimal(average),
            )
            return lambda: order_updates_apply([update], source=EventSource.BROKER)

        outcomes = run_together([report(4, "809.60", S.OPEN), report(10, "809.80", S.FILLED)])

        assert [error for _, error in outcomes if error is not None] == []
        order.refresh_from_db()
        assert (order.status, order.filled_quantity) == (S.FILLED, 10), round_number
        trades = Trade.objects.filter(order=order)
        assert sum(t.quantity for t in trades) == 10
        value = sum(t.quantity * t.price for t in trades)
        assert abs(value - Decimal("8098.00")) <= Decimal("0.05")
