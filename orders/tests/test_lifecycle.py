"""The order lifecycle end to end on the paper broker: services, the real worker, rows and events.

Every test commits (``transaction=True``) because the procrastinate worker started by
``run_jobs`` reads jobs through its own connection.
"""

from __future__ import annotations

import itertools
import threading
from datetime import timedelta
from decimal import Decimal
from unittest import mock

import pytest
from django.db import connection, transaction
from django.db.models import Sum
from django.utils import timezone
from procrastinate.contrib.django.models import ProcrastinateJob

from orders import tasks
from orders.brokers import BrokerOrderUpdate
from orders.brokers.paper import PaperBroker
from orders.charges import calculate_zerodha_charges, charges_for_value
from orders.domain import OrderRequest, OrderRequestError
from orders.enums import EventKind, EventSource, OrderStatus, StrategyStatus
from orders.models import Order, OrderEvent, PaperOrder, Strategy, Trade
from orders.services import (
    FillRefused,
    IdempotencyConflict,
    IllegalOrderState,
    fill_apply,
    order_cancel,
    order_modify,
    order_place,
    order_resolve_unknown,
    order_submit,
    order_transition,
    order_updates_apply,
    orders_expire,
)
from orders.tests.factories import StrategyFactory
from positions.models import Position
from positions.services import market_prices_update

pytestmark = pytest.mark.django_db(transaction=True)

SYMBOL = "SBIN"  # in the sample instrument master, tick 0.05; the paper tick is 0.05 too
LAST = Decimal("812.35")
S = OrderStatus
CHARGE_FIELDS = {
    "brokerage": "brokerage",
    "stt": "stt",
    "exchange_charges": "exchange_charges",
    "sebi_charges": "sebi_charges",
    "stamp_duty": "stamp_duty",
    "gst": "gst",
    "total_charges": "total",
}
_client_ids = itertools.count(1)


@pytest.fixture
def strategy():
    return StrategyFactory()


@pytest.fixture
def last_price():
    market_prices_update([(SYMBOL, "NSE", LAST)])
    return LAST


@pytest.fixture
def placements(monkeypatch):
    """Counts the calls to the paper broker's place(), whoever makes them (the worker too)."""
    calls = []
    original = PaperBroker.place

    def spy(self, order):
        calls.append(order.pk)
        return original(self, order)

    monkeypatch.setattr(PaperBroker, "place", spy)
    return calls


def configure(strategy, **paper) -> Strategy:
    strategy.config = {"paper": paper}
    strategy.save(update_fields=["config"])
    return strategy


def order_request(strategy, **overrides) -> OrderRequest:
    fields = {
        "strategy_id": strategy.pk,
        "client_order_id": f"life-{next(_client_ids)}",
        "symbol": SYMBOL,
        "side": "BUY",
        "quantity": 10,
        "order_type": "MARKET",
        "product": "MIS",
    }
    fields.update(overrides)
    return OrderRequest(**fields)


def place(strategy, **overrides) -> Order:
    result = order_place(order_request(strategy, **overrides), actor="tester")
    assert result.accepted, result
    return Order.objects.get(pk=result.order_id)


def tick(run_jobs, price: str, *, queues=None) -> None:
    tasks.apply_prices.defer(prices=[[SYMBOL, "NSE", price]])
    run_jobs(queues)


def transitions(order) -> list[tuple[str, str]]:
    return list(
        OrderEvent.objects.filter(order=order, kind=EventKind.TRANSITION)
        .order_by("id")
        .values_list("from_status", "to_status")
    )


def events(order, kind) -> list[OrderEvent]:
    return list(OrderEvent.objects.filter(order=order, kind=kind).order_by("id"))


def jobs(order, task_name=None) -> list[tuple[str, str]]:
    rows = ProcrastinateJob.objects.filter(args__order_id=order.pk).order_by("id")
    if task_name:
        rows = rows.filter(task_name=task_name)
    return list(rows.values_list("task_name", "status"))


def assert_jobs_succeeded(order) -> None:
    assert all(status == "succeeded" for _, status in jobs(order)), jobs(order)


def charges_of(order) -> dict[str, Decimal]:
    totals = Trade.objects.filter(order=order).aggregate(**{f: Sum(f) for f in CHARGE_FIELDS})
    return {CHARGE_FIELDS[f]: totals[f] for f in CHARGE_FIELDS}


def whole_order_charges(order) -> dict[str, Decimal]:
    """The one-leg charges of everything the order executed, whatever its fills' prices."""
    value = sum(t.quantity * t.price for t in Trade.objects.filter(order=order))
    charges = charges_for_value(
        order.side, value, order.product, exchange=order.exchange, segment=order.segment
    )
    return charges.as_dict()


def one_price_charges(order, price: Decimal) -> dict[str, Decimal]:
    charges = calculate_zerodha_charges(
        order.side,
        order.filled_quantity,
        price,
        order.product,
        exchange=order.exchange,
        segment=order.segment,
    )
    return charges.as_dict()


def open_position(strategy) -> Position | None:
    return Position.objects.filter(strategy=strategy, closed_at__isnull=True).first()


def assert_events_chain(order) -> None:
    """Transition events form one unbroken chain from PENDING to the order's status."""
    chain = transitions(order)
    assert chain[0] == ("", S.PENDING)
    for (_, previous_to), (from_status, _) in itertools.pairwise(chain):
        assert from_status == previous_to, chain
    assert chain[-1][1] == order.status, chain


# --- placement to fill -------------------------------------------------------------------------


def test_market_order_is_submitted_acknowledged_and_filled(strategy, last_price, run_jobs):
    result = order_place(order_request(strategy, quantity=10), actor="tester")
    assert (result.status, result.accepted, result.replayed) == (S.PENDING, True, False)
    order = Order.objects.get(pk=result.order_id)
    assert order.status == S.PENDING
    assert order.broker_order_id is None
    assert order.metadata == {"actor": "tester"}
    assert jobs(order) == [("orders.submit", "todo")]

    run_jobs()

    order.refresh_from_db()
    assert order.status == S.FILLED
    assert order.broker_order_id == f"PB{order.pk:012d}"
    assert (order.filled_quantity, order.average_price) == (10, LAST)
    for stamp in ("submitted_at", "acknowledged_at", "filled_at", "last_fill_at"):
        assert getattr(order, stamp) is not None, stamp
    assert transitions(order) == [
        ("", S.PENDING),
        (S.PENDING, S.SUBMITTED),
        (S.SUBMITTED, S.OPEN),
        (S.OPEN, S.FILLED),
    ]
    [fill] = events(order, EventKind.FILL)
    assert fill.details["quantity"] == 10
    assert fill.details["price"] == str(LAST)
    assert events(order, EventKind.REFUSED) == []
    assert_jobs_succeeded(order)

    [trade] = Trade.objects.filter(order=order)
    assert (trade.quantity, trade.price, trade.side) == (10, LAST, "BUY")
    assert trade.trade_id == f"{order.broker_order_id}-T1"
    assert charges_of(order) == one_price_charges(order, LAST) == whole_order_charges(order)
    assert trade.gross_value == Decimal("8123.50")
    assert trade.net_value == trade.gross_value + trade.total_charges

    position = open_position(strategy)
    assert (position.quantity, position.average_price) == (10, LAST)
    assert position.realized_pnl == 0
    strategy.refresh_from_db()
    assert strategy.total_trades == 1
    assert strategy.total_pnl == -trade.total_charges

    paper = PaperOrder.objects.get(tag=order.broker_tag)
    assert (paper.status, paper.filled_quantity) == ("COMPLETE", 10)


def test_partial_fills_then_filled_and_a_round_trip(strategy, last_price, run_jobs):
    configure(strategy, fill_parts=3)
    buy = place(strategy, quantity=1000)
    run_jobs()

    buy.refresh_from_db()
    assert buy.status == S.FILLED
    trades = list(Trade.objects.filter(order=buy).order_by("id"))
    assert len(trades) == 3
    assert sum(t.quantity for t in trades) == buy.quantity == 1000
    assert transitions(buy)[-2:] == [
        (S.OPEN, S.PARTIALLY_FILLED),
        (S.PARTIALLY_FILLED, S.FILLED),
    ]
    fills = events(buy, EventKind.FILL)
    assert [e.details["filled_quantity"] for e in fills] == list(
        itertools.accumulate(t.quantity for t in trades)
    )
    assert [e.to_status for e in fills] == [S.PARTIALLY_FILLED, S.PARTIALLY_FILLED, S.FILLED]
    # brokerage is capped per order (Rs 20), not per fill
    assert sum(t.brokerage for t in trades) == Decimal("20.00")
    assert charges_of(buy) == one_price_charges(buy, LAST) == whole_order_charges(buy)

    market_prices_update([(SYMBOL, "NSE", Decimal("813.50"))])
    sell = place(strategy, side="SELL", quantity=1000)
    run_jobs()

    sell.refresh_from_db()
    assert sell.status == S.FILLED
    assert Trade.objects.filter(order=sell).count() == 3
    assert charges_of(sell) == one_price_charges(sell, Decimal("813.50"))
    assert open_position(strategy) is None
    [closed] = Position.objects.filter(strategy=strategy)
    assert closed.quantity == 0
    assert closed.realized_pnl == Decimal("1150.00")  # (813.50 - 812.35) x 1000
    strategy.refresh_from_db()
    assert (strategy.total_trades, strategy.winning_trades, strategy.losing_trades) == (6, 1, 0)
    all_charges = Trade.objects.filter(strategy=strategy).aggregate(s=Sum("total_charges"))["s"]
    assert strategy.total_pnl == Decimal("1150.00") - all_charges


def test_limit_order_rests_then_fills_on_a_price_tick(strategy, last_price, run_jobs):
    order = place(strategy, order_type="LIMIT", price="810.50")
    run_jobs()
    order.refresh_from_db()
    assert order.status == S.OPEN
    assert Trade.objects.filter(order=order).count() == 0

    tick(run_jobs, "810.70")  # above the limit: still resting
    order.refresh_from_db()
    assert order.status == S.OPEN

    tick(run_jobs, "809.90")  # crosses: a buy limit fills at the better of limit and market
    order.refresh_from_db()
    assert order.status == S.FILLED
    [trade] = Trade.objects.filter(order=order)
    assert (trade.quantity, trade.price) == (10, Decimal("809.90"))
    assert transitions(order)[-1] == (S.OPEN, S.FILLED)
    position = open_position(strategy)
    assert (position.quantity, position.average_price) == (10, Decimal("809.90"))
    assert position.last_price == Decimal("809.90")
    assert charges_of(order) == whole_order_charges(order)


def test_sl_order_waits_for_its_trigger(strategy, last_price, run_jobs):
    order = place(strategy, order_type="SL", price="815.50", trigger_price="815.00")
    run_jobs()
    order.refresh_from_db()
    assert order.status == S.TRIGGER_PENDING
    assert order.acknowledged_at is not None

    tick(run_jobs, "814.90")
    order.refresh_from_db()
    assert order.status == S.TRIGGER_PENDING

    tick(run_jobs, "815.10")
    order.refresh_from_db()
    assert order.status == S.FILLED
    assert transitions(order)[-3:] == [
        (S.SUBMITTED, S.TRIGGER_PENDING),
        (S.TRIGGER_PENDING, S.OPEN),
        (S.OPEN, S.FILLED),
    ]
    [trade] = Trade.objects.filter(order=order)
    assert trade.price == Decimal("815.10")


def test_sl_m_sell_fills_at_market_once_triggered(strategy, last_price, run_jobs):
    order = place(strategy, side="SELL", order_type="SL-M", trigger_price="810.00")
    run_jobs()
    order.refresh_from_db()
    assert order.status == S.TRIGGER_PENDING

    tick(run_jobs, "809.70")
    order.refresh_from_db()
    assert order.status == S.FILLED
    [trade] = Trade.objects.filter(order=order)
    assert trade.price == Decimal("809.70")
    assert open_position(strategy).quantity == -10


# --- cancel ------------------------------------------------------------------------------------


def test_cancel_of_a_pending_order_never_reaches_the_broker(
    strategy, last_price, run_jobs, placements
):
    order = place(strategy, order_type="LIMIT", price="810.00")

    cancelled = order_cancel(order.pk, actor="alice", reason="changed my mind")

    assert cancelled.status == S.CANCELLED
    order.refresh_from_db()
    assert order.status == S.CANCELLED
    assert order.cancelled_at is not None
    assert transitions(order)[-1] == (S.PENDING, S.CANCELLED)
    [event] = events(order, EventKind.TRANSITION)[-1:]
    assert (event.actor, event.reason, event.source) == ("alice", "changed my mind", "API")

    run_jobs()  # the submit job finds the order cancelled and does nothing

    order.refresh_from_db()
    assert order.status == S.CANCELLED
    assert placements == []
    assert not PaperOrder.objects.filter(tag=order.broker_tag).exists()
    assert_jobs_succeeded(order)


def test_cancel_of_an_open_order_goes_through_cancel_pending(strategy, last_price, run_jobs):
    order = place(strategy, order_type="LIMIT", price="810.00")
    run_jobs()

    order_cancel(order.pk, actor="alice")

    order.refresh_from_db()
    assert order.status == S.CANCEL_PENDING
    assert order.cancel_requested_at is not None
    assert jobs(order, "orders.cancel") == [("orders.cancel", "todo")]
    assert PaperOrder.objects.get(tag=order.broker_tag).status == "OPEN"

    run_jobs()

    order.refresh_from_db()
    assert order.status == S.CANCELLED
    assert order.cancelled_at is not None
    assert transitions(order)[-2:] == [(S.OPEN, S.CANCEL_PENDING), (S.CANCEL_PENDING, S.CANCELLED)]
    assert PaperOrder.objects.get(tag=order.broker_tag).status == "CANCELLED"
    assert_jobs_succeeded(order)


def test_cancel_of_a_filled_order_is_refused(strategy, last_price, run_jobs):
    order = place(strategy)
    run_jobs()
    order.refresh_from_db()
    assert order.status == S.FILLED
    count = OrderEvent.objects.filter(order=order).count()

    with pytest.raises(IllegalOrderState) as caught:
        order_cancel(order.pk, actor="alice")

    assert caught.value.code == "illegal_state"
    assert "is FILLED" in caught.value.message
    order.refresh_from_db()
    assert order.status == S.FILLED
    assert OrderEvent.objects.filter(order=order).count() == count
    assert jobs(order, "orders.cancel") == []


# --- modify ------------------------------------------------------------------------------------


def test_modify_of_an_open_limit_order(strategy, last_price, run_jobs):
    order = place(strategy, order_type="LIMIT", price="810.00")
    run_jobs()

    order_modify(order.pk, actor="alice", price="810.50")

    order.refresh_from_db()
    assert order.price == Decimal("810.00")  # changed only when the broker accepts
    assert order.metadata["pending_modification"]["price"] == "810.50"
    [requested] = events(order, EventKind.MODIFY)
    assert requested.reason == "modification requested"
    assert requested.actor == "alice"

    run_jobs()

    order.refresh_from_db()
    assert order.status == S.OPEN
    assert order.price == Decimal("810.50")
    assert order.modification_count == 1
    assert "pending_modification" not in order.metadata
    assert [e.reason for e in events(order, EventKind.MODIFY)] == [
        "modification requested",
        "modification accepted by broker",
    ]
    assert PaperOrder.objects.get(tag=order.broker_tag).price == Decimal("810.50")
    assert_jobs_succeeded(order)

    # a modification that crosses the market fills at once
    order_modify(order.pk, actor="alice", price="812.50")
    run_jobs()
    order.refresh_from_db()
    assert order.status == S.FILLED
    assert order.modification_count == 2
    [trade] = Trade.objects.filter(order=order)
    assert trade.price == LAST


def test_a_modification_overtaken_by_a_fill_is_dropped(strategy, last_price, run_jobs):
    order = place(strategy, order_type="LIMIT", price="810.00")
    run_jobs()
    order_modify(order.pk, actor="alice", price="810.50")

    tick(run_jobs, "809.90", queues=["prices"])  # fills before the modify job runs
    run_jobs()

    order.refresh_from_db()
    assert order.status == S.FILLED
    assert order.price == Decimal("810.00")
    assert order.modification_count == 0
    assert "pending_modification" not in order.metadata
    assert [e.reason for e in events(order, EventKind.MODIFY)] == [
        "modification requested",
        "modification not sent: the order is FILLED",
    ]
    assert_jobs_succeeded(order)


def test_modify_of_a_filled_order_is_refused(strategy, last_price, run_jobs):
    order = place(strategy)
    run_jobs()
    with pytest.raises(IllegalOrderState):
        order_modify(order.pk, actor="alice", quantity=20)
    assert jobs(order, "orders.modify") == []


def test_modify_below_the_filled_quantity_is_refused(strategy, last_price, run_jobs):
    order = place(strategy, order_type="LIMIT", price="810.00")
    run_jobs()
    order.refresh_from_db()
    fill_apply(order, trade_id="MANUAL-1", quantity=4, price=Decimal("810.00"), executed_at=now())
    with pytest.raises(OrderRequestError) as caught:
        order_modify(order.pk, actor="alice", quantity=4)
    assert caught.value.errors == {"quantity": "quantity 4: must exceed the 4 already filled"}


# --- orders the broker closes ------------------------------------------------------------------


def test_ioc_order_unfilled_is_cancelled(strategy, last_price, run_jobs):
    order = place(strategy, order_type="LIMIT", price="810.00", validity="IOC")
    run_jobs()
    order.refresh_from_db()
    assert order.status == S.CANCELLED
    assert order.filled_quantity == 0
    assert transitions(order)[-2:] == [(S.SUBMITTED, S.OPEN), (S.OPEN, S.CANCELLED)]
    assert events(order, EventKind.TRANSITION)[-1].reason == "IOC: unfilled quantity cancelled"
    assert Trade.objects.filter(order=order).count() == 0


def test_ioc_order_that_crosses_fills(strategy, last_price, run_jobs):
    order = place(strategy, order_type="LIMIT", price="812.50", validity="IOC")
    run_jobs()
    order.refresh_from_db()
    assert order.status == S.FILLED
    assert Trade.objects.get(order=order).price == LAST


def test_broker_rejection(strategy, last_price, run_jobs):
    configure(strategy, fault="reject")
    order = place(strategy)
    run_jobs()
    order.refresh_from_db()
    assert order.status == S.REJECTED
    assert order.status_message == "paper broker: simulated rejection"
    assert order.rejected_at is not None
    assert order.broker_order_id is None
    assert transitions(order)[-1] == (S.SUBMITTED, S.REJECTED)
    assert events(order, EventKind.TRANSITION)[-1].source == EventSource.BROKER
    assert not PaperOrder.objects.filter(tag=order.broker_tag).exists()
    assert open_position(strategy) is None


def test_the_paper_exchange_checks_the_tick_size_by_price(strategy, run_jobs):
    market_prices_update([(SYMBOL, "NSE", Decimal("1000.00"))])
    # on the instrument's 0.05 grid, but from 1,000 the exchange's tick is 0.10
    order = place(strategy, order_type="LIMIT", price="1000.05")
    run_jobs()
    order.refresh_from_db()
    assert order.status == S.REJECTED
    assert order.status_message == "price 1000.05 is not a multiple of the tick size 0.10"


def test_day_orders_expire_after_the_close(strategy, last_price, run_jobs):
    resting = place(strategy, order_type="LIMIT", price="810.00")
    stop = place(strategy, order_type="SL", price="815.50", trigger_price="815.00")
    filled = place(strategy)
    ioc = place(strategy, order_type="LIMIT", price="810.00", validity="IOC")
    run_jobs()
    partly = place(strategy, order_type="LIMIT", price="810.00")
    run_jobs()
    partly.refresh_from_db()
    fill_apply(partly, trade_id="MANUAL-P", quantity=3, price=Decimal("810.00"), executed_at=now())
    never_sent = place(strategy, order_type="LIMIT", price="810.00")  # its job is not run
    working = [resting, stop, partly, never_sent]
    statuses = {o.pk: Order.objects.get(pk=o.pk).status for o in working}
    assert statuses == {
        resting.pk: S.OPEN,
        stop.pk: S.TRIGGER_PENDING,
        partly.pk: S.PARTIALLY_FILLED,
        never_sent.pk: S.PENDING,
    }

    # before the close, nothing expires
    assert orders_expire(now=now()) == 0
    tomorrow_after_close = timezone.localtime() + timedelta(days=1)
    tomorrow_after_close = tomorrow_after_close.replace(hour=15, minute=31)

    expired = orders_expire(now=tomorrow_after_close)

    assert expired == len(working)
    for order in working:
        order.refresh_from_db()
        assert order.status == S.EXPIRED, order
        assert order.expired_at is not None
        assert transitions(order)[-1][1] == S.EXPIRED
    assert partly.filled_quantity == 3
    for order in (resting, stop, partly):
        assert PaperOrder.objects.get(tag=order.broker_tag).status == "CANCELLED"
    for order, status in ((filled, S.FILLED), (ioc, S.CANCELLED)):
        order.refresh_from_db()
        assert order.status == status

    assert orders_expire(now=tomorrow_after_close) == 0  # idempotent
    run_jobs()  # the never-sent order's submit job finds it expired
    never_sent.refresh_from_db()
    assert never_sent.status == S.EXPIRED
    assert not PaperOrder.objects.filter(tag=never_sent.broker_tag).exists()


# --- idempotency and pre-trade refusals --------------------------------------------------------


def test_a_replay_returns_the_original_order(strategy, last_price):
    request = order_request(strategy, client_order_id="replay-1")
    first = order_place(request, actor="tester")
    second = order_place(order_request(strategy, client_order_id="replay-1"), actor="tester")

    assert (first.replayed, second.replayed) == (False, True)
    assert second.order_id == first.order_id
    assert second.status == S.PENDING
    assert Order.objects.filter(strategy=strategy).count() == 1
    assert len(jobs(Order.objects.get(pk=first.order_id), "orders.submit")) == 1


def test_same_client_order_id_with_different_content_is_a_conflict(strategy, last_price):
    order_place(order_request(strategy, client_order_id="clash-1"), actor="tester")
    with pytest.raises(IdempotencyConflict) as caught:
        order_place(order_request(strategy, client_order_id="clash-1", quantity=11), actor="x")
    assert caught.value.code == "idempotency_conflict"
    assert "client_order_id 'clash-1'" in caught.value.message
    assert caught.value.fields == {"client_order_id": "already used with different content"}
    assert Order.objects.filter(strategy=strategy).count() == 1


def test_the_same_client_order_id_in_another_strategy_is_another_order(strategy, last_price):
    other = StrategyFactory()
    first = order_place(order_request(strategy, client_order_id="shared"), actor="tester")
    second = order_place(order_request(other, client_order_id="shared"), actor="tester")
    assert first.order_id != second.order_id
    assert not second.replayed


def test_refused_order_is_recorded_rejected_without_a_job(strategy, last_price):
    strategy.status = StrategyStatus.INACTIVE
    strategy.save(update_fields=["status"])

    result = order_place(order_request(strategy, client_order_id="refused-1"), actor="tester")

    assert result.status == S.REJECTED
    assert not result.accepted
    [violation] = result.violations
    assert violation.code == "strategy_inactive"
    assert violation.field == "strategy"
    order = Order.objects.get(pk=result.order_id)
    assert order.status == S.REJECTED
    assert order.metadata["violations"] == [violation.as_dict()]
    assert order.status_message == violation.message
    assert order.rejected_at is not None
    assert transitions(order) == [("", S.PENDING), (S.PENDING, S.REJECTED)]
    rejected = events(order, EventKind.TRANSITION)[-1]
    assert rejected.actor == "pre-trade validator"
    assert rejected.details == {"violations": [violation.as_dict()]}
    assert jobs(order) == []

    replay = order_place(order_request(strategy, client_order_id="refused-1"), actor="tester")
    assert replay.replayed
    assert (replay.order_id, replay.status, replay.violations) == (
        order.pk,
        S.REJECTED,
        result.violations,
    )


# --- a broker that does not answer -------------------------------------------------------------


def test_timeout_after_send_is_resolved_by_tag(strategy, last_price, run_jobs, placements):
    configure(strategy, fault="timeout_after_send")
    order = place(strategy)
    run_jobs()

    order.refresh_from_db()
    assert order.status == S.UNKNOWN
    assert order.broker_order_id is None
    assert transitions(order)[-1] == (S.SUBMITTED, S.UNKNOWN)
    assert jobs(order, "orders.resolve_unknown") == [("orders.resolve_unknown", "todo")]
    assert Trade.objects.filter(order=order).count() == 0

    assert order_resolve_unknown(order.pk, give_up=False) is True

    order.refresh_from_db()
    assert order.status == S.FILLED
    assert order.broker_order_id == f"PB{order.pk:012d}"
    assert PaperOrder.objects.filter(tag=order.broker_tag).count() == 1
    assert placements == [order.pk]
    [trade] = Trade.objects.filter(order=order)
    assert trade.quantity == 10
    assert transitions(order)[-1] == (S.UNKNOWN, S.FILLED)
    assert order_resolve_unknown(order.pk, give_up=True) is True  # settled: nothing more
    assert Trade.objects.filter(order=order).count() == 1


def test_timeout_before_send_gives_up_as_rejected(strategy, last_price, run_jobs, placements):
    configure(strategy, fault="timeout_before_send")
    order = place(strategy)
    run_jobs()
    order.refresh_from_db()
    assert order.status == S.UNKNOWN

    assert order_resolve_unknown(order.pk, give_up=False) is False
    order.refresh_from_db()
    assert order.status == S.UNKNOWN

    assert order_resolve_unknown(order.pk, give_up=True) is True

    order.refresh_from_db()
    assert order.status == S.REJECTED
    assert order.status_message == "not found at the broker after a timeout; not resent"
    assert placements == [order.pk]  # the one attempt that timed out: never resent
    assert not PaperOrder.objects.filter(tag=order.broker_tag).exists()


def test_the_resolve_job_settles_an_unknown_order(strategy, last_price, run_jobs, placements):
    configure(strategy, fault="timeout_after_send")
    order = place(strategy, order_type="LIMIT", price="810.00")
    run_jobs()
    assert Order.objects.get(pk=order.pk).status == S.UNKNOWN
    make_due(order, "orders.resolve_unknown")

    run_jobs()

    order.refresh_from_db()
    assert order.status == S.OPEN
    assert order.broker_order_id == f"PB{order.pk:012d}"
    assert placements == [order.pk]
    assert jobs(order) == [("orders.submit", "succeeded"), ("orders.resolve_unknown", "succeeded")]


def test_the_resolve_job_looks_again_later_then_gives_up(strategy, last_price, run_jobs):
    configure(strategy, fault="timeout_before_send")
    order = place(strategy, order_type="LIMIT", price="810.00")
    run_jobs()
    for _ in range(tasks.UNKNOWN_CHECKS - 1):
        make_due(order, "orders.resolve_unknown")
        run_jobs()
        assert Order.objects.get(pk=order.pk).status == S.UNKNOWN
    make_due(order, "orders.resolve_unknown")
    run_jobs()

    order.refresh_from_db()
    assert order.status == S.REJECTED
    lookups = jobs(order, "orders.resolve_unknown")
    assert lookups == [("orders.resolve_unknown", "succeeded")] * tasks.UNKNOWN_CHECKS
    assert not PaperOrder.objects.filter(tag=order.broker_tag).exists()


# --- cancel while the order is in flight -------------------------------------------------------


def make_due(order, task_name: str) -> None:
    """Time passes: the order's scheduled job (a retry, a later look-up) is due now."""
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE procrastinate_jobs SET scheduled_at = now() "
            "WHERE task_name = %s AND status = 'todo' AND (args->>'order_id')::bigint = %s",
            [task_name, order.pk],
        )


def _mark_submitted(order) -> None:
    """What a worker does first: the order is SUBMITTED, its broker call not yet answered."""
    with transaction.atomic():
        locked = Order.objects.select_for_update().get(pk=order.pk)
        order_transition(
            locked, target=S.SUBMITTED, source=EventSource.SYSTEM, reason="sent to broker"
        )


def test_cancel_while_in_flight_is_sent_once_the_broker_acknowledges(
    strategy, last_price, run_jobs, placements
):
    order = place(strategy, order_type="LIMIT", price="810.00")
    _mark_submitted(order)
    order_cancel(order.pk, actor="alice")
    assert Order.objects.get(pk=order.pk).status == S.CANCEL_PENDING

    run_jobs()

    order.refresh_from_db()
    assert order.status == S.CANCELLED
    assert order.broker_order_id == f"PB{order.pk:012d}"
    assert PaperOrder.objects.get(tag=order.broker_tag).status == "CANCELLED"
    assert placements == [order.pk]
    assert_events_chain(order)


def test_cancel_while_in_flight_then_broker_rejects(strategy, last_price, run_jobs):
    configure(strategy, fault="reject")
    order = place(strategy)
    _mark_submitted(order)
    order_cancel(order.pk, actor="alice")

    run_jobs()

    order.refresh_from_db()
    assert order.status == S.REJECTED
    assert order.status_message == "paper broker: simulated rejection"
    assert events(order, EventKind.REFUSED) == []
    assert_events_chain(order)


def test_cancel_while_in_flight_then_timeout_after_send(strategy, last_price, run_jobs, placements):
    configure(strategy, fault="timeout_after_send")
    order = place(strategy, order_type="LIMIT", price="810.00")
    _mark_submitted(order)
    order_cancel(order.pk, actor="alice")
    run_jobs()
    order.refresh_from_db()
    assert order.status == S.CANCEL_PENDING
    assert order.broker_order_id is None
    assert PaperOrder.objects.get(tag=order.broker_tag).status == "OPEN"

    # the look-up job finds the order at the broker: it is adopted, then the cancel is sent
    make_due(order, "orders.resolve_unknown")
    run_jobs()

    order.refresh_from_db()
    assert order.status == S.CANCELLED
    assert order.broker_order_id == f"PB{order.pk:012d}"
    assert PaperOrder.objects.get(tag=order.broker_tag).status == "CANCELLED"
    assert placements == [order.pk]
    assert events(order, EventKind.REFUSED) == []
    assert_events_chain(order)
    assert_jobs_succeeded(order)


def test_cancel_while_in_flight_then_timeout_before_send(
    strategy, last_price, run_jobs, placements
):
    configure(strategy, fault="timeout_before_send")
    order = place(strategy, order_type="LIMIT", price="810.00")
    _mark_submitted(order)
    order_cancel(order.pk, actor="alice")
    run_jobs()
    assert Order.objects.get(pk=order.pk).status == S.CANCEL_PENDING

    assert order_resolve_unknown(order.pk, give_up=False) is False
    assert order_resolve_unknown(order.pk, give_up=True) is True

    order.refresh_from_db()
    assert order.status == S.CANCELLED  # it never reached the broker, and was to be cancelled
    assert placements == [order.pk]
    assert not PaperOrder.objects.filter(tag=order.broker_tag).exists()
    assert_events_chain(order)


def test_cancel_of_an_unknown_order_is_settled_by_the_resolution(
    strategy, last_price, run_jobs, placements
):
    configure(strategy, fault="timeout_after_send")
    order = place(strategy, order_type="LIMIT", price="810.00")
    run_jobs()
    assert Order.objects.get(pk=order.pk).status == S.UNKNOWN
    order_cancel(order.pk, actor="alice")
    run_jobs()
    assert Order.objects.get(pk=order.pk).status == S.CANCEL_PENDING

    make_due(order, "orders.resolve_unknown")
    run_jobs()

    order.refresh_from_db()
    assert order.status == S.CANCELLED
    assert PaperOrder.objects.get(tag=order.broker_tag).status == "CANCELLED"
    assert placements == [order.pk]


# --- reports that come twice, or out of order ---------------------------------------------------


@pytest.mark.parametrize("fault", ["duplicate_reports", "reverse_reports"])
def test_duplicated_or_reversed_reports_leave_exactly_the_right_trades(
    strategy, last_price, run_jobs, fault
):
    configure(strategy, fault=fault, fill_parts=3)
    market = place(strategy, quantity=90)
    limit = place(strategy, quantity=60, order_type="LIMIT", price="810.00")
    run_jobs()
    tick(run_jobs, "809.80")

    for order in (market, limit):
        order.refresh_from_db()
        assert order.status == S.FILLED
        trades = Trade.objects.filter(order=order)
        assert trades.count() == 3
        assert sum(t.quantity for t in trades) == order.quantity
        assert order.filled_quantity == order.quantity
        assert len(events(order, EventKind.FILL)) == 3
        assert charges_of(order) == whole_order_charges(order)
        assert_events_chain(order)
    assert open_position(strategy).quantity == 150
    strategy.refresh_from_db()
    assert strategy.total_trades == 6


# --- fills that race a cancel, and fills that must not apply -----------------------------------


def now():
    return timezone.now()


def test_a_fill_after_a_cancel_request_is_applied(strategy, last_price, run_jobs):
    order = place(strategy, order_type="LIMIT", price="810.00")
    run_jobs()
    order_cancel(order.pk, actor="alice")

    tick(run_jobs, "809.80", queues=["prices"])  # the exchange fills before seeing the cancel

    order.refresh_from_db()
    assert order.status == S.FILLED
    assert transitions(order)[-1] == (S.CANCEL_PENDING, S.FILLED)
    assert Trade.objects.get(order=order).price == Decimal("809.80")

    run_jobs()  # the cancel job finds the order filled and leaves it

    order.refresh_from_db()
    assert order.status == S.FILLED
    assert Trade.objects.filter(order=order).count() == 1
    assert PaperOrder.objects.get(tag=order.broker_tag).status == "COMPLETE"
    assert_jobs_succeeded(order)
    assert_events_chain(order)


def test_a_partial_fill_during_cancel_pending_stands(strategy, last_price, run_jobs):
    order = place(strategy, order_type="LIMIT", price="810.00")
    run_jobs()
    order_cancel(order.pk, actor="alice")
    order.refresh_from_db()

    fill_apply(order, trade_id="RACE-1", quantity=4, price=Decimal("810.00"), executed_at=now())

    order.refresh_from_db()
    assert (order.status, order.filled_quantity) == (S.CANCEL_PENDING, 4)
    [fill] = events(order, EventKind.FILL)
    assert (fill.from_status, fill.to_status) == (S.CANCEL_PENDING, S.CANCEL_PENDING)

    run_jobs()

    order.refresh_from_db()
    assert (order.status, order.filled_quantity) == (S.CANCELLED, 4)
    assert Trade.objects.filter(order=order).count() == 1
    assert open_position(strategy).quantity == 4


def test_late_fills_on_a_cancelled_order_are_applied(strategy, last_price, run_jobs):
    order = place(strategy, order_type="LIMIT", price="810.00")
    run_jobs()
    order_cancel(order.pk, actor="alice")
    run_jobs()
    order.refresh_from_db()
    assert order.status == S.CANCELLED

    fill_apply(order, trade_id="LATE-1", quantity=4, price=Decimal("810.00"), executed_at=now())
    order.refresh_from_db()
    assert (order.status, order.filled_quantity) == (S.CANCELLED, 4)

    fill_apply(order, trade_id="LATE-2", quantity=6, price=Decimal("809.80"), executed_at=now())
    order.refresh_from_db()
    assert (order.status, order.filled_quantity) == (S.FILLED, 10)
    assert transitions(order)[-1] == (S.CANCELLED, S.FILLED)
    assert open_position(strategy).quantity == 10
    assert charges_of(order) == whole_order_charges(order)


def test_a_fill_on_a_rejected_order_is_refused(strategy, last_price, run_jobs):
    configure(strategy, fault="reject")
    order = place(strategy)
    run_jobs()
    order.refresh_from_db()
    assert order.status == S.REJECTED

    with pytest.raises(FillRefused) as caught:
        fill_apply(order, trade_id="GHOST-1", quantity=5, price=LAST, executed_at=now())

    assert "order is REJECTED: a fill cannot be applied" in str(caught.value)
    order.refresh_from_db()
    assert (order.status, order.filled_quantity) == (S.REJECTED, 0)
    assert not Trade.objects.filter(trade_id="GHOST-1").exists()
    [refused] = events(order, EventKind.REFUSED)
    assert (refused.from_status, refused.to_status) == (S.REJECTED, S.REJECTED)
    assert refused.details == {"trade_id": "GHOST-1", "quantity": 5, "price": str(LAST)}
    assert open_position(strategy) is None
    assert Strategy.objects.get(pk=strategy.pk).total_trades == 0


def test_an_overfill_is_refused(strategy, last_price, run_jobs):
    order = place(strategy, order_type="LIMIT", price="810.00")
    run_jobs()
    order.refresh_from_db()
    fill_apply(order, trade_id="OF-1", quantity=6, price=Decimal("810.00"), executed_at=now())

    with pytest.raises(FillRefused) as caught:
        fill_apply(order, trade_id="OF-2", quantity=5, price=Decimal("810.00"), executed_at=now())

    assert "fill of 5 would overfill: 6 of 10 already filled" in str(caught.value)
    order.refresh_from_db()
    assert (order.status, order.filled_quantity) == (S.PARTIALLY_FILLED, 6)
    assert list(Trade.objects.filter(order=order).values_list("trade_id", flat=True)) == ["OF-1"]
    assert len(events(order, EventKind.REFUSED)) == 1
    assert open_position(strategy).quantity == 6


@pytest.mark.parametrize(
    ("quantity", "price", "message"),
    [
        (0, LAST, "fill quantity 0: must be at least 1"),
        (-1, LAST, "fill quantity -1: must be at least 1"),
        (1, Decimal("810.005"), "fill price 810.005: must be a positive amount in whole paise"),
        (1, Decimal("0"), "fill price 0: must be a positive amount in whole paise"),
    ],
)
def test_a_malformed_fill_is_refused(strategy, last_price, run_jobs, quantity, price, message):
    order = place(strategy, order_type="LIMIT", price="810.00")
    run_jobs()
    with pytest.raises(FillRefused) as caught:
        fill_apply(order, trade_id="Z-1", quantity=quantity, price=price, executed_at=now())
    assert str(caught.value) == message
    assert Trade.objects.filter(order=order).count() == 0
    assert Order.objects.get(pk=order.pk).filled_quantity == 0


def test_a_fill_reported_with_four_decimals_is_kept_on_the_paisa(strategy, last_price, run_jobs):
    order = place(strategy, order_type="LIMIT", price="810.00")
    run_jobs()
    order.refresh_from_db()
    trade = fill_apply(
        order, trade_id="P-1", quantity=2, price=Decimal("809.9500"), executed_at=now()
    )
    assert str(trade.price) == "809.95"
    [fill] = events(order, EventKind.FILL)
    assert fill.details["price"] == "809.95"


def test_the_same_trade_id_twice_changes_nothing(strategy, last_price, run_jobs):
    order = place(strategy, order_type="LIMIT", price="810.00")
    run_jobs()
    order.refresh_from_db()
    first = fill_apply(order, trade_id="DUP-1", quantity=4, price=Decimal("810"), executed_at=now())
    assert first is not None
    snapshot = (
        OrderEvent.objects.filter(order=order).count(),
        Order.objects.get(pk=order.pk).filled_quantity,
        open_position(strategy).quantity,
        Strategy.objects.get(pk=strategy.pk).total_trades,
    )

    again = fill_apply(order, trade_id="DUP-1", quantity=4, price=Decimal("810"), executed_at=now())

    assert again is None
    assert snapshot == (
        OrderEvent.objects.filter(order=order).count(),
        Order.objects.get(pk=order.pk).filled_quantity,
        open_position(strategy).quantity,
        Strategy.objects.get(pk=strategy.pk).total_trades,
    )
    assert Trade.objects.filter(order=order).count() == 1


def test_cumulative_updates_apply_each_increment_once(strategy, last_price, run_jobs):
    order = place(strategy, order_type="LIMIT", price="810.00")
    run_jobs()
    order.refresh_from_db()

    def update(status, filled, average):
        return BrokerOrderUpdate(
            broker_order_id=order.broker_order_id,
            tag=order.broker_tag,
            status=status,
            filled_quantity=filled,
            average_price=Decimal(average),
        )

    four = update(S.OPEN, 4, "809.60")
    order_updates_apply([four], source=EventSource.BROKER)
    order_updates_apply([update(S.FILLED, 10, "809.80")], source=EventSource.BROKER)
    order_updates_apply([four], source=EventSource.BROKER)  # late and out of order
    order_updates_apply([update(S.FILLED, 10, "809.80")], source=EventSource.BROKER)  # twice

    order.refresh_from_db()
    assert order.status == S.FILLED
    trades = list(Trade.objects.filter(order=order).order_by("id"))
    assert [(t.quantity, t.price) for t in trades] == [
        (4, Decimal("809.60")),
        (6, Decimal("809.93")),  # (10 x 809.80 - 4 x 809.60) / 6 = 809.9333, to the paisa
    ]
    assert [t.trade_id for t in trades] == [
        f"{order.broker_order_id}/4",
        f"{order.broker_order_id}/10",
    ]
    # the order's own average is of the trades (the paisa-rounded increment), not the report's
    assert order.average_price == Decimal("809.798000")
    assert events(order, EventKind.REFUSED) == []
    assert_events_chain(order)


# --- crashes and repeated jobs -----------------------------------------------------------------


def test_the_submit_job_is_written_with_the_order(strategy, last_price, run_jobs, placements):
    order = place(strategy)

    # the process "dies" here: the order and its job are both committed, nothing was sent
    [job] = ProcrastinateJob.objects.filter(args__order_id=order.pk)
    assert (job.task_name, job.status, job.queue_name) == ("orders.submit", "todo", "orders")
    assert job.args == {"order_id": order.pk}
    assert job.lock == f"order-{order.pk}"
    assert Order.objects.get(pk=order.pk).status == S.PENDING
    assert placements == []

    run_jobs()

    assert placements == [order.pk]
    assert Order.objects.get(pk=order.pk).status == S.FILLED
    job = ProcrastinateJob.objects.get(pk=job.pk)
    assert job.status == "succeeded"

    # the same job run again (a retry after a lost acknowledgement) does not place twice
    events_before = OrderEvent.objects.filter(order=order).count()
    order_submit(order.pk)
    assert placements == [order.pk]
    assert PaperOrder.objects.filter(tag=order.broker_tag).count() == 1
    assert OrderEvent.objects.filter(order=order).count() == events_before
    assert Trade.objects.filter(order=order).count() == 1


def test_a_rolled_back_placement_leaves_no_job(strategy, last_price):
    class Abort(Exception):
        pass

    with pytest.raises(Abort), transaction.atomic():
        order_place(order_request(strategy, client_order_id="rolled-back"), actor="tester")
        raise Abort
    assert not Order.objects.filter(client_order_id="rolled-back").exists()
    assert ProcrastinateJob.objects.filter(task_name="orders.submit").count() == 0


def test_submitted_without_broker_id_is_adopted_by_tag(strategy, last_price, run_jobs, placements):
    order = place(strategy, order_type="LIMIT", price="810.00")
    # a worker marked it SUBMITTED, the broker received it, and the worker was killed
    _mark_submitted(order)
    PaperBroker(strategy).place(Order.objects.get(pk=order.pk))
    placements.clear()

    run_jobs()

    order.refresh_from_db()
    assert order.status == S.OPEN
    assert order.broker_order_id == f"PB{order.pk:012d}"
    assert placements == []
    assert PaperOrder.objects.filter(tag=order.broker_tag).count() == 1
    assert_jobs_succeeded(order)
    assert_events_chain(order)


def test_a_cancel_requested_after_the_worker_died_follows_the_adoption(
    strategy, last_price, run_jobs, placements
):
    order = place(strategy, order_type="LIMIT", price="810.00")
    _mark_submitted(order)
    PaperBroker(strategy).place(Order.objects.get(pk=order.pk))
    placements.clear()
    order_cancel(order.pk, actor="alice")  # while the order is in doubt

    run_jobs()

    order.refresh_from_db()
    assert order.status == S.CANCELLED
    assert order.broker_order_id == f"PB{order.pk:012d}"
    assert placements == []
    assert PaperOrder.objects.get(tag=order.broker_tag).status == "CANCELLED"
    assert_jobs_succeeded(order)
    assert_events_chain(order)


def test_submitted_without_broker_id_unknown_to_the_broker_is_sent_once(
    strategy, last_price, run_jobs, placements
):
    order = place(strategy, order_type="LIMIT", price="810.00")
    _mark_submitted(order)  # the worker was killed before calling the broker

    run_jobs()

    order.refresh_from_db()
    assert order.status == S.OPEN
    assert placements == [order.pk]
    assert PaperOrder.objects.filter(tag=order.broker_tag).count() == 1
    assert_events_chain(order)


def test_a_second_attempt_never_reaches_the_broker_while_the_first_is_there(
    strategy, last_price, placements
):
    """A stalled-job retry running beside a still-alive first attempt: the broker holds the
    first call's answer for a while; the second attempt is refused until the first is done,
    then finds nothing left to do."""
    from orders.services import SubmissionInFlight

    configure(strategy, place_delay_seconds=1.5)
    order = place(strategy, order_type="LIMIT", price=Decimal("800.00"))
    first_done = threading.Event()
    in_flight = threading.Event()
    original = PaperBroker.place

    def signalling(self, placed_order):
        in_flight.set()
        return original(self, placed_order)

    def first_attempt():
        try:
            with mock.patch.object(PaperBroker, "place", signalling):
                order_submit(order.pk)
        finally:
            connection.close()
            first_done.set()

    thread = threading.Thread(target=first_attempt)
    thread.start()
    assert in_flight.wait(timeout=10)
    with pytest.raises(SubmissionInFlight):
        order_submit(order.pk)
    assert first_done.wait(timeout=20)
    thread.join(timeout=5)
    order_submit(order.pk)  # the retry, once the first is done: nothing to do

    order.refresh_from_db()
    assert order.status == S.OPEN
    assert PaperOrder.objects.filter(tag=order.broker_tag).count() == 1
    assert placements == [order.pk]
