"""The strategies' event log: the database writes one event per change, whatever path made it,
and keeps the log append-only (orders migration 0016_events_log)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from orders.enums import (
    EventKind,
    EventSource,
    OrderStatus,
    PausedBy,
    StrategyEventKind,
    StrategyStatus,
    TradeKind,
)
from orders.event_feed import events_page, events_sequence
from orders.models import Order, Strategy, StrategyEvent, Trade
from orders.services import FillRefused, fill_apply, order_transition, strategy_status_set
from orders.services.events import order_locked
from orders.tests.factories import (
    OrderEventFactory,
    OrderFactory,
    StrategyFactory,
    TradeFactory,
    raw_insert,
    raw_update,
)
from positions.tests.factories import ReconciliationIssueFactory
from risk.models import KillSwitchScope, KillSwitchState
from risk.services import kill_switch_record

pytestmark = pytest.mark.django_db


def events_of(strategy, kind=None):
    rows = StrategyEvent.objects.filter(strategy=strategy).order_by("id")
    return list(rows.filter(kind=kind) if kind else rows)


def test_a_status_change_is_one_order_status_event_with_the_client_order_id():
    order = OrderFactory(status=OrderStatus.SUBMITTED)
    with transaction.atomic():
        locked = order_locked(order.pk)
        order_transition(
            locked, target=OrderStatus.OPEN, source=EventSource.BROKER, reason="acknowledged"
        )

    [event] = events_of(order.strategy)
    assert event.kind == StrategyEventKind.ORDER_STATUS
    assert event.order_id == order.pk
    assert event.client_order_id == order.client_order_id
    assert event.payload["from_status"] == "SUBMITTED"
    assert event.payload["to_status"] == "OPEN"
    assert event.payload["source"] == "BROKER"
    assert event.payload["reason"] == "acknowledged"
    assert event.seq is None  # numbered only by the sequencer, after commit


def test_a_fill_is_one_fill_event_with_its_charges_as_decimal_strings():
    order = OrderFactory(status=OrderStatus.OPEN, quantity=10, price=Decimal("2450.50"))

    fill_apply(
        order,
        trade_id="T-EV-1",
        quantity=4,
        price=Decimal("2450.50"),
        executed_at=timezone.now(),
    )

    trade = Trade.objects.get(trade_id="T-EV-1")
    [fill] = events_of(order.strategy, StrategyEventKind.ORDER_FILL)
    [status] = events_of(order.strategy, StrategyEventKind.ORDER_STATUS)
    assert len(events_of(order.strategy)) == 2
    assert fill.order_id == order.pk
    assert fill.client_order_id == order.client_order_id
    data = fill.payload
    assert data["trade_id"] == "T-EV-1"
    assert data["quantity"] == 4
    assert data["price"] == "2450.50"
    assert data["filled_quantity"] == 4  # the order's fills so far, this one included
    assert data["order_quantity"] == 10
    assert data["gross_value"] == str(trade.gross_value) == "9802.00"
    assert data["charges"] == {
        "brokerage": str(trade.brokerage),
        "stt": str(trade.stt),
        "exchange_charges": str(trade.exchange_charges),
        "sebi_charges": str(trade.sebi_charges),
        "stamp_duty": str(trade.stamp_duty),
        "gst": str(trade.gst),
        "total": str(trade.total_charges),
    }
    assert Decimal(data["charges"]["total"]) > 0
    assert data["net_value"] == str(trade.net_value)
    assert status.payload["to_status"] == "PARTIALLY_FILLED"


def test_a_repeated_fill_writes_no_second_event():
    order = OrderFactory(status=OrderStatus.OPEN)
    for _ in range(2):
        fill_apply(
            order,
            trade_id="T-EV-2",
            quantity=10,
            price=Decimal("2450.50"),
            executed_at=timezone.now(),
        )

    assert len(events_of(order.strategy, StrategyEventKind.ORDER_FILL)) == 1


def test_a_refused_fill_is_an_order_refused_event():
    order = OrderFactory(status=OrderStatus.OPEN, quantity=10)

    with pytest.raises(FillRefused, match="overfill"):
        fill_apply(
            order,
            trade_id="T-EV-3",
            quantity=11,
            price=Decimal("2450.50"),
            executed_at=timezone.now(),
        )

    [event] = events_of(order.strategy)
    assert event.kind == StrategyEventKind.ORDER_REFUSED
    assert event.payload["details"]["trade_id"] == "T-EV-3"


def test_a_modification_written_around_python_is_an_order_modified_event():
    order = OrderFactory(status=OrderStatus.OPEN)
    raw_insert(
        "order_events",
        {
            "order_id": order.pk,
            "kind": EventKind.MODIFY,
            "from_status": "OPEN",
            "to_status": "OPEN",
            "source": "API",
            "reason": "modify requested",
            "actor": "psql",
            "details": '{"requested": {"price": "2451.00"}}',
            "created_at": timezone.now(),
        },
    )

    [event] = events_of(order.strategy)
    assert event.kind == StrategyEventKind.ORDER_MODIFIED
    assert event.payload["details"] == {"requested": {"price": "2451.00"}}


def test_notes_and_adjustments_are_not_events():
    order = OrderFactory(status=OrderStatus.OPEN)
    OrderEventFactory(order=order, kind=EventKind.NOTE, to_status=OrderStatus.OPEN)
    OrderEventFactory(order=order, kind=EventKind.FILL, to_status=OrderStatus.OPEN)
    issue = ReconciliationIssueFactory(strategy=order.strategy)
    TradeFactory(
        order=None,
        strategy=order.strategy,
        kind=TradeKind.ADJUSTMENT,
        issue=issue,
        reason="settles the mismatch",
        symbol="RELIANCE",
        exchange="NSE",
        product="MIS",
        side="SELL",
        quantity=5,
    )

    assert Trade.objects.filter(kind=TradeKind.ADJUSTMENT).count() == 1
    assert events_of(order.strategy) == []


def test_fills_report_the_orders_filled_quantity_so_far():
    order = OrderFactory(status=OrderStatus.OPEN, quantity=10)
    for number, quantity in enumerate((4, 6)):
        fill_apply(
            order,
            trade_id=f"T-EV-SUM-{number}",
            quantity=quantity,
            price=Decimal("2450.50"),
            executed_at=timezone.now(),
        )

    fills = events_of(order.strategy, StrategyEventKind.ORDER_FILL)
    assert [fill.payload["filled_quantity"] for fill in fills] == [4, 10]
    statuses = events_of(order.strategy, StrategyEventKind.ORDER_STATUS)
    assert [event.payload["to_status"] for event in statuses] == ["PARTIALLY_FILLED", "FILLED"]


def test_a_global_kill_switch_change_reaches_every_strategy_once():
    strategies = [StrategyFactory() for _ in range(3)]
    everyone = Strategy.objects.count()

    kill_switch_record(KillSwitchState.HALTED, reason="exchange trouble", actor="ops")

    rows = StrategyEvent.objects.filter(kind=StrategyEventKind.KILL_SWITCH)
    assert rows.count() == everyone
    assert sorted(rows.values_list("strategy_id", flat=True)) == sorted(
        Strategy.objects.values_list("pk", flat=True)
    )
    for strategy in strategies:
        [event] = events_of(strategy)
        assert event.payload["state"] == "HALTED"
        assert event.payload["scope"] == KillSwitchScope.GLOBAL
        assert event.payload["reason"] == "exchange trouble"
        assert event.order_id is None


def test_a_strategy_kill_switch_change_reaches_that_strategy_only():
    mine, theirs = StrategyFactory(), StrategyFactory()

    kill_switch_record(KillSwitchState.REDUCING, strategy=mine, reason="drawdown", actor="ops")

    [event] = events_of(mine)
    assert event.payload["scope"] == KillSwitchScope.STRATEGY
    assert event.payload["state"] == "REDUCING"
    assert events_of(theirs) == []


def test_a_status_change_by_staff_is_one_strategy_status_event():
    strategy = StrategyFactory()

    strategy_status_set(strategy, status=StrategyStatus.PAUSED, actor="alice", reason="audit")
    strategy_status_set(strategy, status=StrategyStatus.PAUSED, actor="alice", reason="again")

    [event] = events_of(strategy)
    assert event.kind == StrategyEventKind.STRATEGY_STATUS
    assert event.payload == {
        "from_status": "ACTIVE",
        "to_status": "PAUSED",
        "paused_by": "STAFF",
        "reason": "audit",
        "actor": "alice",
    }


def test_a_pause_written_in_sql_is_staffs():
    strategy = StrategyFactory()

    raw_update("strategies", strategy.pk, {"status": StrategyStatus.PAUSED})

    strategy.refresh_from_db()
    assert strategy.paused_by == PausedBy.STAFF
    [event] = events_of(strategy)
    assert event.payload["paused_by"] == "STAFF"
    raw_update("strategies", strategy.pk, {"status": StrategyStatus.ACTIVE})
    strategy.refresh_from_db()
    assert strategy.paused_by == ""


def test_the_log_is_append_only_and_seq_is_set_once():
    strategy = StrategyFactory()
    strategy_status_set(strategy, status=StrategyStatus.INACTIVE, actor="alice")
    [event] = events_of(strategy)

    for statement in (
        "UPDATE strategy_events SET payload = '{}' WHERE id = %s",
        "UPDATE strategy_events SET seq = NULL WHERE id = %s",
        "DELETE FROM strategy_events WHERE id = %s",
    ):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            connection.cursor().execute(statement, [event.pk])
    with transaction.atomic():
        connection.cursor().execute("UPDATE strategy_events SET seq = 1 WHERE id = %s", [event.pk])
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            connection.cursor().execute(
                "UPDATE strategy_events SET seq = 2 WHERE id = %s", [event.pk]
            )
        transaction.set_rollback(True)


def test_a_kind_outside_the_list_is_refused_by_the_database():
    strategy = StrategyFactory()
    with pytest.raises(DatabaseError, match="strategy_event_kind_valid"), transaction.atomic():
        StrategyEvent.objects.create(strategy=strategy, kind="order.teleported", payload={})


@pytest.mark.django_db(transaction=True)
def test_the_sequencer_numbers_committed_events_in_insert_order():
    strategy = StrategyFactory()
    orders = [OrderFactory(strategy=strategy, status=OrderStatus.SUBMITTED) for _ in range(3)]
    for order in orders:
        with transaction.atomic():
            order_transition(
                order_locked(order.pk), target=OrderStatus.OPEN, source=EventSource.BROKER
            )

    top = events_sequence()

    events = events_of(strategy)
    assert [event.seq for event in events] == sorted(event.seq for event in events)
    assert top == events[-1].seq
    assert events_page(strategy_id=strategy.pk, after=events[0].seq, limit=10) == events[1:]
    assert events_sequence() == top  # nothing new: numbers nothing, same answer
    assert Order.objects.count() == 3
