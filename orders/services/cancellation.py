"""Cancelling orders: one (order_cancel), many at once (orders_cancel: a HALT's cancels, which
also sends again the cancels the broker has not confirmed), and the cancel jobs that ask the
broker (order_cancel_at_broker, orders_cancel_at_broker)."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from orders import jobs
from orders.brokers import BrokerRateLimited, BrokerRejected, broker_for
from orders.enums import EventKind, EventSource, OrderStatus
from orders.models import Order, OrderEvent
from orders.services.broker_reports import order_updates_apply
from orders.services.errors import IllegalOrderState
from orders.services.events import (
    order_locked,
    order_note,
    order_transition,
    transition_staged,
    transitions_write,
)
from orders.state import CANCELLABLE


def order_cancel(
    order_id: int, *, actor: str, source: EventSource = EventSource.API, reason: str = ""
) -> Order:
    """Request a cancel. A PENDING order (never sent) is cancelled here, without a broker call.

    Otherwise the order goes to CANCEL_PENDING and a job asks the broker; fills that race the
    cancel are still applied when they arrive.
    """
    with transaction.atomic():
        order = order_locked(order_id)
        if order.status not in CANCELLABLE:
            raise IllegalOrderState(
                f"order {order.pk} is {order.status}: only working orders can be cancelled",
                fields={"status": order.status},
            )
        if order.status == OrderStatus.PENDING:
            order_transition(
                order,
                target=OrderStatus.CANCELLED,
                source=source,
                actor=actor,
                reason=reason or "cancelled before reaching the broker",
            )
            return order
        order_transition(
            order, target=OrderStatus.CANCEL_PENDING, source=source, actor=actor, reason=reason
        )
        jobs.defer_cancel(order)
    return order


CANCEL_BATCH = 1000  # orders a transaction of orders_cancel locks at most


def orders_cancel(
    order_ids,
    *,
    actor: str,
    source: EventSource = EventSource.API,
    reason: str = "",
    resend: bool = False,
) -> int:
    """Request the cancel of many orders, each as order_cancel would, in a few statements.

    A PENDING order is cancelled here; every other working order goes to CANCEL_PENDING with
    its cancel job (the same job order_cancel defers). Each change is a TRANSITION event with
    the actor, source and reason. Orders no longer cancellable are skipped. Orders are locked
    in id order, CANCEL_BATCH to a transaction. Returns how many were cancelled or are being
    cancelled. (The kill switch's HALT: one order_cancel per order took 30 ms an order.)

    ``resend`` (a HALT): orders already CANCEL_PENDING — whose cancel the broker has not
    confirmed, perhaps because its job ran out of retries — get a new cancel job too, with a
    NOTE event; one without a broker id yet gets its cancel from its submission or tag look-up
    (or the sweep), as before.
    """
    ids = sorted(set(order_ids))
    statuses = sorted(CANCELLABLE | {OrderStatus.CANCEL_PENDING} if resend else CANCELLABLE)
    requested = 0
    for start in range(0, len(ids), CANCEL_BATCH):
        with transaction.atomic():
            orders = list(
                Order.objects.select_for_update()
                .filter(pk__in=ids[start : start + CANCEL_BATCH], status__in=statuses)
                .order_by("pk")
            )
            now = timezone.now()
            changes, events, to_broker = [], [], []
            for order in orders:
                if order.status == OrderStatus.CANCEL_PENDING:
                    events.append(_cancel_resent(order, source=source, actor=actor, reason=reason))
                    if order.broker_order_id:
                        to_broker.append(order)
                    continue
                never_sent = order.status == OrderStatus.PENDING
                fields, event = transition_staged(
                    order,
                    OrderStatus.CANCELLED if never_sent else OrderStatus.CANCEL_PENDING,
                    source=source,
                    actor=actor,
                    reason=reason or ("cancelled before reaching the broker" if never_sent else ""),
                    now=now,
                )
                changes.append((order, fields))
                events.append(event)
                if not never_sent:
                    to_broker.append(order)
            transitions_write(changes, events)
            jobs.defer_cancels(to_broker)
        requested += len(orders)
    return requested


def _cancel_resent(order: Order, *, source, actor: str, reason: str) -> OrderEvent:
    """The NOTE event of a cancel sent again (the order stays CANCEL_PENDING)."""
    return OrderEvent(
        order=order,
        kind=EventKind.NOTE,
        from_status=order.status,
        to_status=order.status,
        source=source,
        actor=actor,
        reason=f"cancel sent again, not yet confirmed by the broker: {reason}".rstrip(": "),
        details={"resent": True, "cancel_requested_at": _iso(order.cancel_requested_at)},
    )


def _iso(moment) -> str | None:
    return moment.isoformat() if moment else None


def order_cancel_at_broker(order_id: int) -> None:
    """The cancel job: ask the broker to cancel, then apply what it reports."""
    order = Order.objects.select_related("strategy").get(pk=order_id)
    if order.status != OrderStatus.CANCEL_PENDING:
        return
    if not order.broker_order_id:
        return  # still being submitted: order_submit re-queues the cancel once acknowledged
    try:
        updates = broker_for(order.strategy).cancel(order)
    except BrokerRejected as error:
        # The broker would not cancel (typically: already complete). Ask it what it has.
        updates = ()
        current = broker_for(order.strategy).order_status(order)
        with transaction.atomic():
            locked = order_locked(order_id)
            order_note(
                locked,
                kind=EventKind.NOTE,
                source=EventSource.BROKER,
                reason=f"cancel refused by broker: {error}",
            )
        if current is not None:
            updates = (current,)
    order_updates_apply(updates, source=EventSource.BROKER)


def orders_cancel_at_broker(order_ids: list[int]) -> None:
    """The cancel job of several orders (orders_cancel defers it): each order as
    order_cancel_at_broker would do it, with the broker asked for all of them at once where it
    can (the paper exchange), and its reports applied together (order_updates_apply). Over the
    broker's rate, the orders not yet sent go to a new job that runs when a slot is free."""
    orders = (
        Order.objects.filter(pk__in=order_ids, status=OrderStatus.CANCEL_PENDING)
        .exclude(broker_order_id__isnull=True)
        .exclude(broker_order_id="")  # still being submitted: order_submit re-queues the cancel
        .select_related("strategy")
        .order_by("pk")
    )
    by_strategy: dict[int, list[Order]] = {}
    for order in orders:
        by_strategy.setdefault(order.strategy_id, []).append(order)
    reports, one_by_one = [], []
    for strategy_orders in by_strategy.values():
        cancelled, refused = broker_for(strategy_orders[0].strategy).cancel_many(strategy_orders)
        reports.extend(cancelled)
        one_by_one.extend(refused)
    order_updates_apply(reports, source=EventSource.BROKER)
    for index, order in enumerate(one_by_one):
        try:
            order_cancel_at_broker(order.pk)  # says why the broker refused, and what it has
        except BrokerRateLimited as error:
            # The rest waits for the rate in a job of its own: retrying the whole batch would
            # send again the cancels already sent (Kite confirms them later, by postback),
            # spending the slots the rest needs.
            jobs.defer_cancels(one_by_one[index:], schedule_in=error.retry_in)
            return
