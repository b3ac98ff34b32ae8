"""An order's history: its events, and the state machine applied to a locked order.

Every status change of an order goes through ``order_transition`` (one order) or
``transition_staged`` + ``transitions_write`` (many orders in a few statements): a change the
state table refuses is never applied, and is recorded as a REFUSED event.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from django.utils import timezone

from orders.enums import EventKind, EventSource, OrderStatus
from orders.models import Order, OrderEvent
from orders.services.errors import OrderNotFound
from orders.state import STAMPS, can_transition

logger = logging.getLogger("oms.orders")


def log_context(order: Order) -> dict[str, Any]:
    """What every log line about an order carries."""
    return {
        "order_id": order.pk,
        "strategy_id": order.strategy_id,
        "client_order_id": order.client_order_id,
    }


def order_event_record(
    order: Order,
    *,
    kind: EventKind,
    to_status: str,
    from_status: str = "",
    source: EventSource,
    reason: str = "",
    actor: str = "",
    details: dict | None = None,
) -> OrderEvent:
    return OrderEvent.objects.create(
        order=order,
        kind=kind,
        from_status=from_status,
        to_status=to_status,
        source=source,
        reason=reason,
        actor=actor,
        details=details or {},
    )


def order_note(
    order: Order,
    *,
    kind: EventKind = EventKind.NOTE,
    source: EventSource,
    reason: str = "",
    actor: str = "",
    details: dict | None = None,
) -> OrderEvent:
    """An event that changes no status (a note, a modification, a refused fill): recorded with
    the order's status as both its from and its to."""
    return order_event_record(
        order,
        kind=kind,
        from_status=order.status,
        to_status=order.status,
        source=source,
        reason=reason,
        actor=actor,
        details=details,
    )


def order_transition(
    order: Order,
    *,
    target: OrderStatus,
    source: EventSource,
    reason: str = "",
    actor: str = "",
    details: dict | None = None,
    extra_fields: tuple[str, ...] = (),
) -> bool:
    """Move a locked order to ``target`` if the state machine allows it.

    Returns True when applied (one TRANSITION event written). A change to the current status
    is a no-op (duplicate broker reports are normal). An illegal change is refused: nothing
    about the order changes, a REFUSED event records the attempt, and it is logged.
    ``extra_fields``: other fields of the order the caller changed, saved in any case.
    """
    fields, event = transition_staged(
        order, target, source=source, reason=reason, actor=actor, details=details
    )
    if fields or extra_fields:
        order.save(update_fields=sorted({*fields, *extra_fields, "updated_at"}))
    if event is not None:
        event.save(force_insert=True)
    return bool(fields)


def transition_staged(
    order: Order,
    target: OrderStatus,
    *,
    source: EventSource,
    reason: str = "",
    actor: str = "",
    details: dict | None = None,
    now: datetime | None = None,
) -> tuple[list[str], OrderEvent | None]:
    """order_transition's rule applied to ``order`` in memory, for a caller that writes many
    rows at once: returns the order's fields to write and the event to record — TRANSITION;
    REFUSED (logged) for a change the state machine does not allow; None for a change to the
    current status. ``now`` stamps the status's timestamp (default: the current time)."""
    current, target = OrderStatus(order.status), OrderStatus(target)
    if current == target:
        return [], None
    event = OrderEvent(
        order=order,
        from_status=current,
        to_status=target,
        source=source,
        reason=reason,
        actor=actor,
        details=details or {},
    )
    if not can_transition(current, target):
        event.kind = EventKind.REFUSED
        event.reason = reason or f"illegal transition {current} -> {target}"
        logger.warning("refused transition %s -> %s", current, target, extra=log_context(order))
        return [], event
    event.kind = EventKind.TRANSITION
    order.status = target
    fields = ["status", "updated_at"]
    if stamp := STAMPS.get(target):
        setattr(order, stamp, now or timezone.now())
        fields.append(stamp)
    if target == OrderStatus.REJECTED and reason:
        order.status_message = reason
        fields.append("status_message")
    logger.info("order %s -> %s", current, target, extra=log_context(order))
    return fields, event


def transitions_write(changes: list[tuple[Order, list[str]]], events: list[OrderEvent]) -> None:
    """Write many staged transitions: one UPDATE per set of equal new values (a HALT's
    cancels share theirs), then every event in one INSERT. The orders are locked."""
    groups: dict[tuple, list[int]] = {}
    for order, fields in changes:
        values = tuple((name, getattr(order, name)) for name in fields if name != "updated_at")
        if values:
            groups.setdefault(values, []).append(order.pk)
    now = timezone.now()
    for values, ids in groups.items():
        Order.objects.filter(pk__in=ids).update(updated_at=now, **dict(values))
    OrderEvent.objects.bulk_create([event for event in events if event is not None])


def order_locked(order_id: int) -> Order:
    try:
        return Order.objects.select_for_update().get(pk=order_id)
    except Order.DoesNotExist:
        raise OrderNotFound(f"order {order_id}: not found") from None
