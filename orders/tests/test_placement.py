"""The placement's write (orders.services.placement): the row written by its one statement is
the one the ORM would write, with its event and its submission job; a throttled order writes
nothing."""

from __future__ import annotations

from decimal import Decimal

import pytest
from procrastinate.contrib.django.models import ProcrastinateJob

from orders import services
from orders.enums import EventKind
from orders.models import Order, OrderEvent
from orders.services import order_place
from orders.tests.factories import StrategyFactory
from risk.models import RateBucket
from risk.tests.factories import order_request

pytestmark = pytest.mark.django_db


@pytest.fixture
def strategy():
    return StrategyFactory(name="Gate")


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
