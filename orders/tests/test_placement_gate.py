"""The placement's write: one statement behind oms_order_gate (orders migration 0010).

order_place reads the checks' context without locks, then writes the order in one statement
whose gate takes the client_order_id's and the kill switch's locks and re-reads what the
guarantees depend on. These tests change that state between the two statements, and check
the statement's row against what the ORM would have written.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import connection
from procrastinate.contrib.django.models import ProcrastinateJob

from orders import services
from orders.enums import EventKind, OrderStatus
from orders.models import Order, OrderEvent
from orders.services import GATE_OPEN, GATE_PLACED, GATE_RECHECK, order_place
from orders.tests.factories import StrategyFactory
from risk.models import KillSwitchState, RateBucket
from risk.selectors import KILL_SWITCH_LOCK
from risk.services import kill_switch_set
from risk.tests.factories import order_request

pytestmark = pytest.mark.django_db


@pytest.fixture
def strategy():
    return StrategyFactory(name="Gate")


def gate(strategy, client_order_id: str, seen=(None, None)) -> str:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT oms_order_gate(%s, %s, %s, %s, %s, %s)",
            [
                f"order:{strategy.pk}:{client_order_id}",
                strategy.pk,
                client_order_id,
                KILL_SWITCH_LOCK,
                *seen,
            ],
        )
        return cursor.fetchone()[0]


def test_the_gate_opens_when_nothing_changed(strategy):
    assert gate(strategy, "new-1") == GATE_OPEN


def test_the_gate_finds_an_order_placed_with_the_client_order_id(strategy):
    placed = order_place(order_request(strategy, client_order_id="taken"), actor="algo")

    assert placed.accepted
    assert gate(strategy, "taken") == GATE_PLACED


def test_the_gate_asks_for_a_recheck_when_a_kill_switch_changed(strategy):
    kill_switch_set(KillSwitchState.HALTED, reason="desk", actor="risk", strategy=strategy)

    assert gate(strategy, "new-2") == GATE_RECHECK
    assert gate(strategy, "new-2", seen=(None, "HALTED")) == GATE_OPEN
    assert gate(strategy, "new-2", seen=("HALTED", "HALTED")) == GATE_RECHECK


def between_checks_and_write(monkeypatch, action):
    """Run ``action`` once, after order_place's checks and before its writing statement."""
    write = services._order_write_queued
    done = []

    def racing(*args, **kwargs):
        if not done:
            done.append(True)
            action()
        return write(*args, **kwargs)

    monkeypatch.setattr(services, "_order_write_queued", racing)


def test_a_halt_between_the_checks_and_the_write_refuses_the_order(strategy, monkeypatch):
    between_checks_and_write(
        monkeypatch,
        lambda: kill_switch_set(KillSwitchState.HALTED, reason="desk", actor="risk"),
    )

    result = order_place(order_request(strategy, client_order_id="late"), actor="algo")

    order = Order.objects.get(client_order_id="late")
    assert result.status == OrderStatus.REJECTED
    assert [v.code for v in result.violations] == ["kill_switch_halted"]
    assert order.status == OrderStatus.REJECTED
    assert not ProcrastinateJob.objects.filter(args__order_id=order.pk).exists()


def test_a_replay_committed_between_the_checks_and_the_write_is_answered_with_it(
    strategy, monkeypatch
):
    request = order_request(strategy, client_order_id="twice")
    between_checks_and_write(monkeypatch, lambda: order_place(request, actor="algo"))

    result = order_place(request, actor="algo")

    assert result.replayed
    assert Order.objects.filter(client_order_id="twice").count() == 1
    assert result.order_id == Order.objects.get(client_order_id="twice").pk


def test_the_written_row_is_the_one_the_orm_would_write(strategy):
    result = order_place(
        order_request(
            strategy,
            client_order_id="exact",
            stop_loss="2400.00",
            take_profit="2500.50",
            tag="swing",
        ),
        actor="algo",
        metadata={"note": "from a test"},
    )

    stored = Order.objects.get(pk=result.order_id)
    for field in Order._meta.concrete_fields:
        assert getattr(stored, field.attname) == getattr(result.order, field.attname), field.name
    assert stored.price == Decimal("2450.00")
    assert stored.stop_loss == Decimal("2400.00")
    assert stored.metadata == {"note": "from a test", "actor": "algo"}
    event = OrderEvent.objects.get(order=stored)
    assert (event.kind, event.to_status, event.actor) == (EventKind.TRANSITION, "PENDING", "algo")
    job = ProcrastinateJob.objects.get(args__order_id=stored.pk)
    assert (job.task_name, job.queue_name, job.lock) == (
        "orders.submit",
        "orders",
        f"order-{stored.pk}",
    )


def test_a_throttled_order_writes_nothing(strategy, settings):
    settings.OMS_ORDERS_PER_SECOND = 1
    order_place(order_request(strategy, client_order_id="first"), actor="algo")

    with pytest.raises(services.OrderThrottled):
        order_place(order_request(strategy, client_order_id="second"), actor="algo")

    assert not Order.objects.filter(client_order_id="second").exists()
    assert not OrderEvent.objects.filter(order__client_order_id="second").exists()
    assert ProcrastinateJob.objects.count() == 1  # the first order's
    # The first order took the only token; the refused one spent nothing.
    assert RateBucket.objects.get(key=f"orders:strategy:{strategy.pk}").tokens < 1
