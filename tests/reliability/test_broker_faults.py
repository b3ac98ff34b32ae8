"""The broker call in doubt: a timeout after the broker took the order, and a worker killed
(SIGKILL) in the middle of sending one. Either way the order reaches the broker exactly once:
it is found again by its tag, never sent a second time.
"""

from __future__ import annotations

import time
from decimal import Decimal

import pytest

from orders import tasks
from orders.enums import EventKind, OrderStatus
from orders.models import Order, OrderEvent, PaperOrder, PaperTrade
from orders.tests.api.conftest import make_caller, order_body
from positions.models import StrategyPrice
from tests.reliability.cluster import STALLED_SECONDS
from tests.reliability.conftest import client_session, wait_until

pytestmark = [pytest.mark.reliability, pytest.mark.django_db(transaction=True)]

SYMBOL = "SBIN"
LAST = "812.60"
RESENT = "sent again under tag"  # the paper broker's warning when an order is sent twice


def feed_price(session, url: str, strategy) -> None:
    response = session.post(
        f"{url}/api/v1/prices/",
        json={"prices": [{"symbol": SYMBOL, "exchange": "NSE", "price": LAST}]},
        timeout=30,
    )
    assert response.status_code == 202, response.text
    wait_until(
        lambda: StrategyPrice.objects.filter(
            strategy=strategy, symbol=SYMBOL, last_price=Decimal(LAST)
        ).exists(),
        timeout=30,
        message="the price applied by a worker",
    )


def place(session, url: str, **fields) -> Order:
    response = session.post(
        f"{url}/api/v1/orders/", json=order_body(symbol=SYMBOL, **fields), timeout=30
    )
    assert response.status_code == 201, response.text
    return Order.objects.get(pk=response.json()["id"])


def transitions(order: Order) -> list[tuple[str, str, str]]:
    return list(
        OrderEvent.objects.filter(order=order, kind=EventKind.TRANSITION)
        .order_by("id")
        .values_list("from_status", "to_status", "reason")
    )


def submit_job(cluster, order: Order) -> tuple[str, int, int | None]:
    """(status, attempts, worker id) of the order's one submission job."""
    [row] = cluster.query(
        "SELECT status, attempts, worker_id FROM procrastinate_jobs "
        "WHERE task_name = 'orders.submit' AND (args->>'order_id')::bigint = %s",
        [order.pk],
    )
    return row


def test_a_timeout_after_the_broker_took_the_order_is_resolved_by_tag(cluster, figures):
    caller = make_caller(name="Timeouts", config={"paper": {"fault": "timeout_after_send"}})
    url = cluster.urls[0]
    session = client_session(caller.plaintext)
    feed_price(session, url, caller.strategy)

    began = time.monotonic()
    working = place(session, url, client_order_id="timeout-limit", price="812.35")
    filled = place(session, url, client_order_id="timeout-market", order_type="MARKET", price=...)
    settled = (OrderStatus.OPEN, OrderStatus.FILLED)
    wait_until(
        lambda: (
            set(
                Order.objects.filter(pk__in=[working.pk, filled.pk]).values_list(
                    "status", flat=True
                )
            )
            <= set(settled)
        ),
        timeout=60,
        message="both orders resolved",
    )
    seconds = time.monotonic() - began

    for order, final in ((working, OrderStatus.OPEN), (filled, OrderStatus.FILLED)):
        order.refresh_from_db()
        assert order.status == final
        [paper_order] = PaperOrder.objects.filter(tag=order.broker_tag)  # one, at the broker
        assert order.broker_order_id == paper_order.broker_order_id
        steps = [(source, target) for source, target, _ in transitions(order)]
        assert steps[:3] == [
            ("", OrderStatus.PENDING),
            (OrderStatus.PENDING, OrderStatus.SUBMITTED),
            (OrderStatus.SUBMITTED, OrderStatus.UNKNOWN),  # the broker did not answer
        ]
        assert steps[3][1] in (OrderStatus.OPEN, OrderStatus.FILLED)  # found by its tag
        assert Order.objects.filter(broker_tag=order.broker_tag).count() == 1
        assert submit_job(cluster, order)[:2] == ("succeeded", 1)  # sent once, not retried
    assert list(filled.trades.values_list("trade_id", "quantity")) == list(
        PaperTrade.objects.filter(paper_order__tag=filled.broker_tag).values_list(
            "trade_id", "quantity"
        )
    )
    assert filled.filled_quantity == filled.quantity
    assert not cluster.log_lines(RESENT)

    figures(
        f"timeout after the broker took the order: 2 orders UNKNOWN then found by tag "
        f"(OPEN, FILLED) in {seconds:.1f}s; 1 paper order each, submit job run once"
    )


def test_a_worker_killed_while_sending_an_order_is_retried_and_sends_it_once(cluster, figures):
    # The paper broker holds its answer 3 s after recording the order: the kill lands then.
    caller = make_caller(name="Killed worker", config={"paper": {"place_delay_seconds": 3}})
    url = cluster.urls[1]
    session = client_session(caller.plaintext)
    feed_price(session, url, caller.strategy)

    order = place(session, url, client_order_id="killed-1", price="812.35")  # stays OPEN
    # The process holding the answer says so in its log: that is the one to kill.
    [victim] = wait_until(
        lambda: cluster.members_logging(f"order {order.pk} recorded; holding the answer"),
        timeout=30,
        message="the order recorded at the broker, its answer held",
    )
    assert victim.kind == "worker"
    paper_order = PaperOrder.objects.get(tag=order.broker_tag)
    status, attempts, worker_id = submit_job(cluster, order)
    assert (status, attempts) == ("doing", 0)
    cluster.kill(victim)
    killed_at = time.monotonic()

    # The broker has the order; we never heard back.
    order.refresh_from_db()
    assert (order.status, order.broker_order_id) == (OrderStatus.SUBMITTED, None)
    replacement = cluster.start_worker(f"{victim.name}-replacement")

    # Dead once silent for the stalled threshold; then the retry job (every minute in
    # production, deferred here at once) hands its job to a live worker.
    wait_until(
        lambda: (
            not cluster.query(
                "SELECT 1 FROM procrastinate_workers WHERE id = %s "
                "AND last_heartbeat > now() - make_interval(secs => %s)",
                [worker_id, STALLED_SECONDS],
            )
        ),
        timeout=STALLED_SECONDS + 10,
        message="the killed worker counted as stalled",
    )
    tasks.retry_stalled_jobs.defer(timestamp=int(time.time()))
    wait_until(
        lambda: Order.objects.get(pk=order.pk).status == OrderStatus.OPEN,
        timeout=60,
        message="the order adopted after the retry",
    )
    recovered = time.monotonic() - killed_at

    order.refresh_from_db()
    assert order.broker_order_id == paper_order.broker_order_id
    assert PaperOrder.objects.filter(tag=order.broker_tag).count() == 1
    assert not cluster.log_lines(RESENT)  # the retry looked the tag up and did not send
    # Adopted from the broker's book ("broker reports OPEN"), not acknowledged by a send.
    last_source, last_target, reason = transitions(order)[-1]
    assert (last_source, last_target) == (OrderStatus.SUBMITTED, OrderStatus.OPEN)
    assert reason == "broker reports OPEN"
    status, attempts, final_worker = submit_job(cluster, order)
    assert (status, attempts) == ("succeeded", 2)  # the killed attempt, then the retry
    assert final_worker != worker_id
    assert cluster.log_lines("retrying stalled job")

    figures(
        f"worker SIGKILLed mid-submit (the broker had recorded the order; its answer held 3 s): "
        f"job retried after the {STALLED_SECONDS} s stalled threshold, order adopted by tag "
        f"{recovered:.1f}s after the kill; 1 paper order, submit attempts 2 "
        f"(replacement {replacement.name} took over)"
    )
