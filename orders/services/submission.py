"""Sending an order to its broker, exactly once (the submission job runs this).

No lock is held during the broker call: the order is moved to SUBMITTED and committed first;
the broker's answer is recorded in a new transaction. An order the broker did not answer for
is UNKNOWN until its tag is looked up at the broker — never resent blindly.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager

from django.db import connection, transaction

from orders import jobs
from orders.brokers import BrokerRejected, BrokerTimeout, broker_for
from orders.enums import EventKind, EventSource, OrderStatus
from orders.models import Order
from orders.services.broker_reports import order_updates_apply
from orders.services.errors import SubmissionInFlight
from orders.services.events import (
    log_context,
    order_locked,
    order_note,
    order_transition,
)
from orders.services.margins import order_margin_verdict

logger = logging.getLogger("oms.orders")


@contextmanager
def _one_submission_at_a_time(order_id: int):
    """Hold the order's submission lock (a session-level advisory lock) across the broker call,
    or raise SubmissionInFlight.

    A job retried as stalled while its first attempt is still alive (a worker whose heartbeat
    stopped, one waiting for a connection) would otherwise find the order SUBMITTED without a
    broker id, look its tag up while the first call is still on its way, not find it, and
    send it again. The lock dies with the session of a worker that dies, so a real orphan is
    resumed at once.
    """
    key = f"submit:order:{order_id}"
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(hashtextextended(%s, 0))", [key])
        if not cursor.fetchone()[0]:
            raise SubmissionInFlight(f"order {order_id}: another attempt is at the broker")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", [key])


def order_submit(order_id: int) -> None:
    """Send a PENDING order to its broker, exactly once.

    Idempotent: an order no longer PENDING is left alone, except one SUBMITTED without a
    broker id (an earlier attempt died mid-way), which is first looked up by its tag at the
    broker and adopted if found, and only sent when the broker has never seen it. Two
    attempts never talk to the broker about the order at once (SubmissionInFlight).
    """
    with _one_submission_at_a_time(order_id):
        _order_submit(order_id)


def _order_submit(order_id: int) -> None:
    with transaction.atomic():
        order = order_locked(order_id)
        if order.status == OrderStatus.PENDING:
            resuming = False
            order_transition(
                order,
                target=OrderStatus.SUBMITTED,
                source=EventSource.SYSTEM,
                reason="sent to broker",
            )
        elif order.status in (OrderStatus.SUBMITTED, OrderStatus.CANCEL_PENDING) and (
            not order.broker_order_id
        ):
            resuming = True
        else:
            return
        strategy = order.strategy
    broker = broker_for(strategy)
    if resuming:
        found = broker.find_by_tag(order.broker_tag)
        if found is not None:
            logger.info("adopted broker order found by tag", extra=log_context(order))
            order_updates_apply([found], source=EventSource.BROKER)
            return
    if not order_margin_verdict(broker, order).send:
        return  # refused for margin: REJECTED, never sent
    try:
        ack = broker.place(order)
    except BrokerTimeout as error:
        with transaction.atomic():
            order = order_locked(order_id)
            reason = f"broker did not answer: {error}"
            if order.status == OrderStatus.CANCEL_PENDING:
                # A cancel was requested while in flight: the order stays CANCEL_PENDING (no
                # broker id) and the resolution looks it up by tag all the same.
                order_note(
                    order,
                    kind=EventKind.NOTE,
                    source=EventSource.BROKER,
                    reason=reason,
                )
            else:
                order_transition(
                    order, target=OrderStatus.UNKNOWN, source=EventSource.BROKER, reason=reason
                )
            jobs.defer_resolve_unknown(order)
        return
    except BrokerRejected as error:
        with transaction.atomic():
            order = order_locked(order_id)
            order_transition(
                order, target=OrderStatus.REJECTED, source=EventSource.BROKER, reason=str(error)
            )
        return
    with transaction.atomic():
        order = order_locked(order_id)
        if not order.broker_order_id:
            order.broker_order_id = ack.broker_order_id
            order.save(update_fields=["broker_order_id", "updated_at"])
        if order.status == OrderStatus.SUBMITTED:
            working = OrderStatus.TRIGGER_PENDING if order.trigger_price else OrderStatus.OPEN
            order_transition(
                order,
                target=working,
                source=EventSource.BROKER,
                reason="accepted by broker",
                details={"broker_order_id": ack.broker_order_id},
            )
    order_updates_apply(ack.updates, source=EventSource.BROKER)
    if order.status == OrderStatus.CANCEL_PENDING:
        jobs.defer_cancel(order)


def order_resolve_unknown(order_id: int, *, give_up: bool) -> bool:
    """Settle an order the broker did not answer for, by looking its tag up — never resending.

    The order is UNKNOWN, or CANCEL_PENDING without a broker id (its cancel was requested
    while the broker call was in doubt). Returns True when settled. Found at the broker, the
    order is adopted (and a pending cancel is then sent). With ``give_up`` (the grace period
    is over) an order the broker still does not know never reached it: REJECTED, or CANCELLED
    when a cancel was pending.
    """
    order = Order.objects.select_related("strategy").get(pk=order_id)
    if not _in_doubt(order):
        return True
    found = broker_for(order.strategy).find_by_tag(order.broker_tag)
    if found is not None:
        order_updates_apply([found], source=EventSource.BROKER)
        order.refresh_from_db()
        if order.status == OrderStatus.CANCEL_PENDING:
            jobs.defer_cancel(order)
        return True
    if not give_up:
        return False
    with transaction.atomic():
        order = order_locked(order_id)
        if not _in_doubt(order):
            return True
        cancelling = order.status == OrderStatus.CANCEL_PENDING
        order_transition(
            order,
            target=OrderStatus.CANCELLED if cancelling else OrderStatus.REJECTED,
            source=EventSource.SYSTEM,
            reason="not found at the broker after a timeout; not resent",
        )
    return True


def _in_doubt(order: Order) -> bool:
    """Whether the broker may or may not have the order, as far as we know."""
    return order.status == OrderStatus.UNKNOWN or (
        order.status == OrderStatus.CANCEL_PENDING and not order.broker_order_id
    )
