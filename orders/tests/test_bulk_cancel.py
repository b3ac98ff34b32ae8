"""Cancelling many orders at once (a kill switch's HALT) on the paper exchange, with the worker.

The HALT marks every order in a few statements, the worker's jobs cancel them at the paper
exchange by the batch, and the exchange's reports are applied together; each order ends as
order_cancel would have left it, with the same events (bench/kill_switch.py times it).
"""

from __future__ import annotations

import itertools
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from procrastinate.contrib.django.models import ProcrastinateJob

from orders import jobs
from orders.brokers import BrokerFill, BrokerOrderUpdate
from orders.brokers.paper import PaperBroker
from orders.domain import OrderRequest
from orders.enums import EventKind, EventSource, OrderStatus
from orders.models import Order, OrderEvent, PaperOrder
from orders.services import order_place, order_updates_apply, orders_cancel
from orders.tests.factories import OrderFactory, StrategyFactory
from positions.services import market_prices_update
from risk.kill_switch import kill_switch_set
from risk.models import KillSwitchState

SYMBOL = "SBIN"  # tick 0.05 in the sample instrument master
LAST = Decimal("812.35")
S = OrderStatus
_numbers = itertools.count(1)


@pytest.fixture
def strategy():
    market_prices_update([(SYMBOL, "NSE", LAST)])
    return StrategyFactory()


def place(strategy, price: str = "800.00") -> Order:
    """A LIMIT buy below the market: it stays OPEN at the paper exchange once submitted."""
    request = OrderRequest(
        strategy_id=strategy.pk,
        client_order_id=f"bulk-{next(_numbers)}",
        symbol=SYMBOL,
        side="BUY",
        quantity=10,
        order_type="LIMIT",
        price=Decimal(price),
        product="MIS",
    )
    result = order_place(request, actor="tester")
    assert result.accepted, result
    return Order.objects.get(pk=result.order_id)


def halt(strategy):
    kill_switch_set(KillSwitchState.HALTED, strategy=strategy, reason="stop", actor="risk-desk")


def statuses(orders) -> list[str]:
    by_id = dict(Order.objects.filter(pk__in=[o.pk for o in orders]).values_list("pk", "status"))
    return [by_id[o.pk] for o in orders]


def transitions(order) -> list[tuple[str, str, str, str]]:
    return list(
        order.events.filter(kind=EventKind.TRANSITION)
        .order_by("id")
        .values_list("from_status", "to_status", "source", "actor")
    )


@pytest.mark.django_db(transaction=True)
def test_a_halt_cancels_many_orders_at_the_exchange_in_batches(strategy, run_jobs, monkeypatch):
    monkeypatch.setattr(jobs, "CANCEL_JOB_ORDERS", 3)
    working = [place(strategy) for _ in range(7)]
    run_jobs()
    assert set(statuses(working)) == {S.OPEN}
    pending = place(strategy)  # its submission job has not run

    halt(strategy)

    assert statuses([pending]) == [S.CANCELLED]  # never sent: cancelled at once
    assert set(statuses(working)) == {S.CANCEL_PENDING}
    batches = [
        job.args.get("order_ids") or [job.args["order_id"]]
        for job in ProcrastinateJob.objects.filter(
            task_name__in=["orders.cancel", "orders.cancel_many"], status="todo"
        ).order_by("id")
    ]
    assert batches == [[o.pk for o in working[:3]], [o.pk for o in working[3:6]], [working[6].pk]]
    lone = ProcrastinateJob.objects.get(task_name="orders.cancel", status="todo")
    assert lone.lock == f"order-{working[6].pk}"  # a lone order's job: the per-order one

    run_jobs()

    assert set(statuses(working)) == {S.CANCELLED}
    assert set(
        PaperOrder.objects.filter(tag__in=[o.broker_tag for o in working]).values_list(
            "status", flat=True
        )
    ) == {"CANCELLED"}
    for order in working:
        assert transitions(order)[-2:] == [
            (S.OPEN, S.CANCEL_PENDING, EventSource.SYSTEM, "kill switch (risk-desk)"),
            (S.CANCEL_PENDING, S.CANCELLED, EventSource.BROKER, ""),
        ]
    cancels = ProcrastinateJob.objects.filter(task_name__in=["orders.cancel", "orders.cancel_many"])
    assert set(cancels.values_list("status", flat=True)) == {"succeeded"}


@pytest.mark.django_db(transaction=True)
def test_an_order_filled_at_the_exchange_before_the_cancel_reaches_it_is_filled(strategy, run_jobs):
    crossing = place(strategy, "800.00")
    others = [place(strategy, "790.00") for _ in range(2)]
    run_jobs()
    halt(strategy)
    # The exchange fills the first before the cancel jobs run (its reports are not applied:
    # they are "on the way").
    PaperBroker.on_price(SYMBOL, "NSE", Decimal("799.00"))
    assert PaperOrder.objects.get(tag=crossing.broker_tag).status == "COMPLETE"

    run_jobs()

    assert statuses([crossing, *others]) == [S.FILLED, S.CANCELLED, S.CANCELLED]
    crossing.refresh_from_db()
    assert (crossing.filled_quantity, crossing.trades.count()) == (10, 1)
    note = crossing.events.get(kind=EventKind.NOTE)
    assert note.reason.startswith("cancel refused by broker: order is COMPLETE")


def cancel_pending(strategy, count: int) -> list[Order]:
    return [
        OrderFactory(
            strategy=strategy,
            status=S.CANCEL_PENDING,
            broker_order_id=f"PB-{next(_numbers)}",
            quantity=10,
        )
        for _ in range(count)
    ]


def report(order, status=S.CANCELLED, **fields) -> BrokerOrderUpdate:
    return BrokerOrderUpdate(
        broker_order_id=order.broker_order_id,
        tag=order.broker_tag,
        status=status,
        message=fields.pop("message", "cancelled on request"),
        **fields,
    )


@pytest.mark.django_db
def test_status_reports_are_applied_together_each_as_alone(strategy):
    first, second, filling, unprocessed = cancel_pending(strategy, 4)
    done = OrderFactory(
        strategy=strategy,
        status=S.FILLED,
        filled_quantity=10,
        average_price=Decimal("800.00"),
        broker_order_id="PB-done",
    )
    fill = BrokerFill("PB-fill-1", 4, Decimal("800.00"), timezone.now())

    order_updates_apply(
        [
            report(first),
            report(second),
            report(first),  # twice: nothing new the second time
            report(done),  # FILLED -> CANCELLED is not a move the state machine allows
            report(filling, fills=(fill,), filled_quantity=4, average_price=Decimal("800.00")),
            report(unprocessed, S.OPEN, message=""),  # the exchange has not seen our cancel
        ],
        source=EventSource.BROKER,
    )

    assert statuses([first, second, filling, unprocessed, done]) == [
        S.CANCELLED,
        S.CANCELLED,
        S.CANCELLED,
        S.CANCEL_PENDING,
        S.FILLED,
    ]
    assert transitions(first) == [(S.CANCEL_PENDING, S.CANCELLED, EventSource.BROKER, "")]
    assert first.events.get().reason == "cancelled on request"
    filling.refresh_from_db()
    assert filling.filled_quantity == 4  # its fill first, then its status, one by one
    refused = done.events.get()
    assert (refused.kind, refused.from_status, refused.to_status) == (
        EventKind.REFUSED,
        S.FILLED,
        S.CANCELLED,
    )
    assert unprocessed.events.count() == 0


@pytest.mark.django_db
def test_cancelling_more_orders_takes_no_more_statements(strategy):
    def statements(orders, *, apply) -> int:
        with CaptureQueriesContext(connection) as queries:
            apply(orders)
        return len(queries)

    def cancel(orders):
        orders_cancel([o.pk for o in orders], actor="risk-desk", reason="stop")

    def reports(orders):
        order_updates_apply([report(o) for o in orders], source=EventSource.BROKER)

    few, many = (
        [
            OrderFactory(strategy=strategy, status=S.OPEN, broker_order_id=f"PB-{next(_numbers)}")
            for _ in range(count)
        ]
        for count in (2, 12)
    )
    assert statements(few, apply=cancel) == statements(many, apply=cancel)
    assert set(statuses(few + many)) == {S.CANCEL_PENDING}
    assert statements(few, apply=reports) == statements(many, apply=reports)
    assert set(statuses(few + many)) == {S.CANCELLED}
    assert OrderEvent.objects.filter(to_status=S.CANCELLED).count() == 14
