"""An order the broker placed for us without an OMS order (a GTT that triggered), adopted as an
OMS order, so its fills are booked to the strategy's position as any order's, exactly once."""

from __future__ import annotations

import logging

from django.db import transaction
from django.utils import timezone

from orders.domain import segment_for
from orders.enums import EventKind, EventSource, OrderStatus, OrderType
from orders.models import Order, OrderEvent
from orders.services.placement import _new_broker_tag

logger = logging.getLogger("oms.orders")


def order_adopt(
    *,
    strategy_id: int,
    client_order_id: str,
    broker_order_id: str,
    symbol: str,
    exchange: str,
    product: str,
    side: str,
    quantity: int,
    price,
    reason: str,
    actor: str,
    closes_position=None,
    exit_key: str = "",
    metadata: dict | None = None,
) -> Order:
    """Record an order the broker holds already (placed by a GTT) as SUBMITTED with its broker
    id: the broker's reports then move it (orders.services.broker_reports) and book its fills.

    Guarantees: one order per (strategy, client_order_id) and per broker order id (the
    database's unique constraints decide: the order adopted before is returned, nothing
    written twice); the order and its first event in one transaction. No pre-trade check and
    no submission job: the order is at the broker already."""
    existing = Order.objects.filter(broker_order_id=broker_order_id).first()
    if existing is not None:
        return existing
    with transaction.atomic():
        order = Order.objects.create(
            strategy_id=strategy_id,
            client_order_id=client_order_id,
            broker_tag=_new_broker_tag(),
            broker_order_id=broker_order_id,
            symbol=symbol,
            exchange=exchange,
            segment=segment_for(exchange, symbol),
            side=side,
            quantity=quantity,
            order_type=OrderType.LIMIT,
            price=price,
            product=product,
            status=OrderStatus.SUBMITTED,
            submitted_at=timezone.now(),
            tag="gtt",
            metadata={**(metadata or {}), "actor": actor, "adopted": reason},
            closes_position=closes_position,
            exit_key=exit_key,
        )
        OrderEvent.objects.create(
            order=order,
            kind=EventKind.TRANSITION,
            to_status=OrderStatus.SUBMITTED,
            source=EventSource.BROKER,
            reason=reason,
            actor=actor,
            details={"broker_order_id": broker_order_id},
        )
    logger.info("order %s adopted from the broker: %s", order.pk, reason)
    return order
