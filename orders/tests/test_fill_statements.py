"""A fill's statements: the same few whatever it does to the order and the position.

BEGIN, the strategy's lock, the order's and its position's lock (with the earlier fills and
the duplicate check), one statement for every write, COMMIT (bench/fill_apply.py counts it).
"""

from __future__ import annotations

import itertools
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from orders.enums import EventKind, OrderStatus
from orders.models import OrderEvent, Strategy
from orders.services import fill_apply
from orders.tests.factories import OrderFactory, StrategyFactory
from positions.models import Position

# Committed for real: inside a test's transaction BEGIN and COMMIT would be SAVEPOINT and RELEASE.
pytestmark = pytest.mark.django_db(transaction=True)

FILL = ["BEGIN", "SELECT", "SELECT", "WITH", "COMMIT"]
_trade_ids = itertools.count(1)


def working(strategy, side: str, quantity: int):
    return OrderFactory(
        strategy=strategy,
        side=side,
        quantity=quantity,
        status=OrderStatus.OPEN,
        broker_order_id=f"B-{next(_trade_ids)}",
    )


def fill(order, quantity: int, price: str = "2450.50", *, trade_id: str | None = None):
    """The fill's statements (their first word) and its trade."""
    with CaptureQueriesContext(connection) as queries:
        trade = fill_apply(
            order,
            trade_id=trade_id or f"T-{next(_trade_ids)}",
            quantity=quantity,
            price=Decimal(price),
            executed_at=timezone.now(),
        )
    return [query["sql"].split(None, 1)[0] for query in queries.captured_queries], trade


def test_opening_adding_and_completing_are_five_statements_each():
    strategy = StrategyFactory()
    order = working(strategy, "BUY", 10)

    opened, first = fill(order, 4)  # no position yet: one is opened; OPEN -> PARTIALLY_FILLED
    added, _ = fill(order, 4)  # the position grows; the status stays
    completed, _ = fill(order, 2, "2451.00")  # PARTIALLY_FILLED -> FILLED

    assert opened == added == completed == FILL
    order.refresh_from_db()
    assert (order.status, order.filled_quantity) == (OrderStatus.FILLED, 10)
    assert first.pk is not None and first.total_charges > 0
    kinds = list(order.events.order_by("id").values_list("kind", "to_status"))
    assert kinds == [
        (EventKind.TRANSITION, OrderStatus.PARTIALLY_FILLED),
        (EventKind.FILL, OrderStatus.PARTIALLY_FILLED),
        (EventKind.FILL, OrderStatus.PARTIALLY_FILLED),
        (EventKind.TRANSITION, OrderStatus.FILLED),
        (EventKind.FILL, OrderStatus.FILLED),
    ]
    assert Position.objects.get(strategy=strategy).quantity == 10
    assert Strategy.objects.get(pk=strategy.pk).total_trades == 3


def test_a_fill_through_zero_closes_and_opens_in_the_same_statement():
    strategy = StrategyFactory()
    fill(working(strategy, "BUY", 10), 10, "2450.00")
    sell = working(strategy, "SELL", 15)

    statements, _ = fill(sell, 15, "2460.00")

    assert statements == FILL
    closed, opened = Position.objects.filter(strategy=strategy).order_by("id")
    assert (closed.quantity, closed.realized_pnl, closed.closed_at is not None) == (
        0,
        Decimal("100.00"),
        True,
    )
    assert (opened.quantity, opened.average_price, opened.closed_at) == (
        -5,
        Decimal("2460.00"),
        None,
    )
    strategy.refresh_from_db()
    assert (strategy.total_trades, strategy.winning_trades) == (2, 1)


def test_a_repeated_trade_id_reads_and_writes_nothing():
    strategy = StrategyFactory()
    order = working(strategy, "BUY", 10)
    fill(order, 4, trade_id="DUP")
    events = OrderEvent.objects.count()

    statements, trade = fill(order, 4, trade_id="DUP")

    assert (statements, trade) == (["BEGIN", "SELECT", "SELECT", "COMMIT"], None)
    assert OrderEvent.objects.count() == events
