"""Applying what brokers report about orders (postbacks, polls, acknowledgements, the paper
exchange): fills first, then the status, whatever order, repetition or lateness they come in."""

from __future__ import annotations

import logging
from decimal import ROUND_HALF_UP, Decimal

from django.db import transaction
from django.utils import timezone

from orders.brokers import BrokerFill, BrokerOrderUpdate, broker_for
from orders.enums import EventSource, OrderStatus
from orders.models import Order, Strategy
from orders.services.errors import FillRefused
from orders.services.events import (
    log_context,
    order_locked,
    order_transition,
    transition_staged,
    transitions_write,
)
from orders.services.fills import fill_apply

logger = logging.getLogger("oms.orders")


def order_updates_apply(
    updates: tuple[BrokerOrderUpdate, ...] | list[BrokerOrderUpdate], *, source: EventSource
) -> None:
    """Apply broker reports of orders: fills first, then the status.

    Reports may come late, twice or out of order. Explicit fills are deduplicated by trade id;
    cumulative figures (a Kite postback) become one fill for the increment over what we have,
    under a trade id derived from the cumulative quantity, so a repeated or older report adds
    nothing. A status the state machine does not allow is refused and recorded. Reports that
    only move a status are applied together (_statuses_apply).
    """
    for update in _statuses_apply(list(updates), source=source):
        order = (
            Order.objects.filter(broker_order_id=update.broker_order_id).first()
            if update.broker_order_id
            else None
        )
        if order is None and update.tag:
            order = Order.objects.filter(broker_tag=update.tag).first()
        if order is None:
            logger.warning(
                "broker report for an order we do not know",
                extra={"broker_order_id": update.broker_order_id, "tag": update.tag},
            )
            continue
        if update.broker_order_id and not order.broker_order_id:
            with transaction.atomic():
                order = order_locked(order.pk)
                order.broker_order_id = update.broker_order_id
                order.save(update_fields=["broker_order_id", "updated_at"])
        if update.fills:
            _fills_apply(order, update.fills, source=source)
        else:
            # The increment is measured under the strategy lock that every fill takes first:
            # two cumulative reports racing (a postback and a poll) must not both measure it
            # from the same filled quantity, or the larger one is refused as an overfill.
            with transaction.atomic():
                Strategy.objects.select_for_update().get(pk=order.strategy_id)
                _fills_apply(order, _fill_from_cumulative(order, update), source=source)
        _status_apply(order.pk, update, source=source)


def _fills_apply(order: Order, fills, *, source: EventSource) -> None:
    for fill in fills:
        try:
            fill_apply(
                order,
                trade_id=fill.trade_id,
                quantity=fill.quantity,
                price=fill.price,
                executed_at=fill.executed_at,
                source=source,
            )
        except FillRefused as error:
            logger.error("fill refused: %s", error, extra=log_context(order))


def _fill_from_cumulative(order: Order, update: BrokerOrderUpdate) -> tuple[BrokerFill, ...]:
    order.refresh_from_db(fields=["filled_quantity"])
    increment = update.filled_quantity - order.filled_quantity
    if increment <= 0 or update.average_price is None:
        return ()
    value_before = sum(
        (t.quantity * t.price for t in order.trades.only("quantity", "price")), Decimal(0)
    )
    value_after = Decimal(update.average_price) * update.filled_quantity
    price = ((value_after - value_before) / increment).quantize(
        Decimal("0.01"), rounding=ROUND_HALF_UP
    )
    return (
        BrokerFill(
            trade_id=f"{update.broker_order_id}/{update.filled_quantity}",
            quantity=increment,
            price=price,
            executed_at=update.timestamp or timezone.now(),
        ),
    )


def _status_target(order: Order, update: BrokerOrderUpdate) -> OrderStatus | None:
    """The status a broker report moves the order to, or None when it says nothing new."""
    target = OrderStatus(update.status)
    if target in (OrderStatus.PARTIALLY_FILLED, OrderStatus.FILLED, OrderStatus.SUBMITTED):
        return None  # fills decide these; SUBMITTED says nothing new
    if target == OrderStatus(order.status):
        return None
    if order.status == OrderStatus.CANCEL_PENDING and target in (
        OrderStatus.OPEN,
        OrderStatus.TRIGGER_PENDING,
    ):
        return None  # the broker has not processed our cancel yet
    if target == OrderStatus.OPEN and order.status in (
        OrderStatus.PARTIALLY_FILLED,
        OrderStatus.FILLED,
    ):
        return None  # an older report arriving late
    return target


def _status_reason(update: BrokerOrderUpdate) -> str:
    return update.message or f"broker reports {update.raw_status or update.status}"


def _status_apply(order_id: int, update: BrokerOrderUpdate, *, source: EventSource) -> None:
    if OrderStatus(update.status) in (
        OrderStatus.PARTIALLY_FILLED,
        OrderStatus.FILLED,
        OrderStatus.SUBMITTED,
    ):
        return  # nothing to lock for
    with transaction.atomic():
        order = order_locked(order_id)
        target = _status_target(order, update)
        if target is None:
            return
        order_transition(
            order,
            target=target,
            source=source,
            reason=_status_reason(update),
            details={"broker_order_id": update.broker_order_id},
        )


def _statuses_apply(updates: list[BrokerOrderUpdate], *, source: EventSource) -> list:
    """Apply together the reports that only move a status — of orders we know by their broker
    id, with no fill in them (none listed, no more filled than we have) — each as _status_apply
    decides it: one transaction locks those orders in id order and writes every change in a
    few statements (a HALT's cancels, the close's expiries). Returns the other reports, in
    their order, for the one-by-one path; an order with one of those sends all its reports
    that way, so each order's reports are applied in the order they came."""
    if len(updates) < 2:
        return updates
    known = {
        order.broker_order_id: order
        for order in Order.objects.filter(
            broker_order_id__in={u.broker_order_id for u in updates if u.broker_order_id}
        ).only("pk", "broker_order_id", "filled_quantity")
    }
    one_by_one = {
        update.broker_order_id
        for update in updates
        if update.broker_order_id not in known
        or update.fills
        or update.filled_quantity > known[update.broker_order_id].filled_quantity
    }
    batch = [u for u in updates if u.broker_order_id not in one_by_one]
    if batch:
        with transaction.atomic():
            locked = {
                order.broker_order_id: order
                for order in Order.objects.select_for_update()
                .filter(pk__in=sorted({known[u.broker_order_id].pk for u in batch}))
                .order_by("pk")
            }
            now = timezone.now()
            changes, events = [], []
            for update in batch:
                order = locked[update.broker_order_id]
                target = _status_target(order, update)
                if target is None:
                    continue
                fields, event = transition_staged(
                    order,
                    target,
                    source=source,
                    reason=_status_reason(update),
                    details={"broker_order_id": update.broker_order_id},
                    now=now,
                )
                changes.append((order, fields))
                events.append(event)
            transitions_write(changes, events)
    return [u for u in updates if u.broker_order_id in one_by_one]


def orders_poll(*, stale_after) -> int:
    """Ask the broker for the state of working orders not updated for ``stale_after``.

    Postbacks can be lost; this is how the OMS catches up. Returns how many were asked about.
    """
    cutoff = timezone.now() - stale_after
    working = Order.objects.filter(
        status__in=[s for s in OrderStatus.active() if s != OrderStatus.PENDING],
        broker_order_id__isnull=False,
        updated_at__lt=cutoff,
    ).select_related("strategy")
    asked = 0
    for order in working.iterator():
        update = broker_for(order.strategy).order_status(order)
        if update is not None:
            order_updates_apply([update], source=EventSource.BROKER)
        asked += 1
    return asked
