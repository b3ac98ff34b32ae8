"""Modifying a working order: the request (checked like a new order, under the same locks) and
the job that sends it to the broker. The new values are applied when the broker accepts: at
once when its modify call returns the modified order (the paper broker), else when a report
of the order shows them (Kite; orders.services.pending_modification)."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from orders import jobs
from orders.brokers import BrokerRejected, broker_for
from orders.domain import OrderRequest, OrderRequestError
from orders.enums import EventKind, EventSource, OrderType
from orders.models import Order
from orders.services.broker_reports import order_updates_apply
from orders.services.errors import IllegalOrderState, OrderRefused, OrderThrottled
from orders.services.events import order_locked, order_note
from orders.services.pending_modification import (
    PENDING,
    Modification,
    modification_mark_sent,
    modification_settle,
)
from orders.state import MODIFIABLE
from risk.validator import checks_lock, order_rate_take, order_verdict

MAX_MODIFICATIONS = 25  # Kite refuses the 26th modification of an order.

__all__ = ["MAX_MODIFICATIONS", "Modification", "order_modify", "order_modify_at_broker"]


def order_modify(
    order_id: int,
    *,
    actor: str,
    source: EventSource = EventSource.API,
    quantity: int | None = None,
    price: Any = None,
    trigger_price: Any = None,
    order_type: str | None = None,
) -> Order:
    """Request a change of price, trigger, quantity or type of a working order.

    The new values are validated as a whole order and through the pre-trade checks; the
    request is recorded (MODIFY event) and sent by a job; the order's values change when the
    broker accepts. Only OPEN, TRIGGER_PENDING and PARTIALLY_FILLED orders may be modified,
    at most 25 times, and never below what is already filled. The checks run under the same
    locks as a placement's (strategy first, then the order), so they are exact too.
    """
    strategy_id = (
        Order.objects.filter(pk=order_id).values_list("strategy_id", flat=True).first()
    )  # an order's strategy never changes: read before the locks, to take them in order
    with transaction.atomic():
        strategy = checks_lock(strategy_id) if strategy_id is not None else None
        order = order_locked(order_id)
        if order.status not in MODIFIABLE:
            raise IllegalOrderState(
                f"order {order.pk} is {order.status}: only open orders can be modified",
                fields={"status": order.status},
            )
        if (order.metadata.get(PENDING) or {}).get("sent_at"):
            raise IllegalOrderState(
                f"order {order.pk}: a modification is waiting for the broker's confirmation",
                fields={"pending_modification": "confirmed or dropped first"},
            )
        if order.modification_count >= MAX_MODIFICATIONS:
            raise IllegalOrderState(
                f"order {order.pk}: modified {order.modification_count} times, the broker's limit",
                fields={"modification_count": f"at most {MAX_MODIFICATIONS}"},
            )
        new_type = order_type or order.order_type
        keeps_price = new_type in (OrderType.LIMIT, OrderType.SL)
        keeps_trigger = new_type in (OrderType.SL, OrderType.SL_M)
        request = OrderRequest(
            strategy_id=order.strategy_id,
            client_order_id=order.client_order_id,
            symbol=order.symbol,
            side=order.side,
            quantity=order.quantity if quantity is None else quantity,
            order_type=new_type,
            product=order.product,
            exchange=order.exchange,
            validity=order.validity,
            price=price if price is not None else (order.price if keeps_price else None),
            trigger_price=trigger_price
            if trigger_price is not None
            else (order.trigger_price if keeps_trigger else None),
            variety=order.variety,
            iceberg_legs=order.iceberg_legs,
            iceberg_quantity=order.iceberg_quantity,
        )
        if request.quantity <= order.filled_quantity:
            raise OrderRequestError(
                {
                    "quantity": f"quantity {request.quantity}: must exceed the "
                    f"{order.filled_quantity} already filled"
                }
            )
        verdict = order_verdict(request, strategy=strategy, order=order)
        if verdict.violations:
            raise OrderRefused(verdict.violations)
        change = Modification(
            request.quantity, request.price, request.trigger_price, request.order_type
        )
        order_note(
            order,
            kind=EventKind.MODIFY,
            source=source,
            actor=actor,
            reason="modification requested",
            details={"requested": change.as_dict()},
        )
        order.metadata["pending_modification"] = change.as_dict()
        order.save(update_fields=["metadata", "updated_at"])
        # The broker counts a modification as an order: over the rate, nothing is recorded.
        wait, rate = order_rate_take(strategy, limits=verdict.limits)
        if wait > 0:
            raise OrderThrottled.over_rate(strategy, rate=rate, wait=wait)
        jobs.defer_modify(order)
    return order


def order_modify_at_broker(order_id: int) -> None:
    """The modify job: send the pending modification. A broker whose modify returns the
    modified order (paper): applied now. One that only accepts the request (Kite): kept
    pending, marked sent, and applied or dropped on the report that tells
    (orders.services.pending_modification). Refused by the broker: dropped, saying why."""
    order = Order.objects.select_related("strategy").get(pk=order_id)
    pending = order.metadata.get(PENDING)
    if not pending or pending.get("sent_at"):
        return  # settled, or sent already: a report settles it
    if order.status not in MODIFIABLE:
        # Filled, cancelled... before the job ran: the request is dropped, not left pending.
        modification_settle(
            order_id,
            source=EventSource.SYSTEM,
            reason=None,  # not sent: the order's status says why
            details={"dropped": pending},
        )
        return
    change = Modification.from_dict(pending)
    broker = broker_for(order.strategy)
    try:
        updates = broker.modify(
            order,
            quantity=change.quantity,
            price=change.price,
            trigger_price=change.trigger_price,
            order_type=change.order_type,
        )
    except BrokerRejected as error:
        modification_settle(
            order_id,
            source=EventSource.BROKER,
            reason=f"modification refused by broker: {error}",
            details={"refused": change.as_dict()},
        )
        return
    if broker.confirms_modifications:
        modification_mark_sent(order_id, change)
    else:
        modification_settle(
            order_id,
            source=EventSource.BROKER,
            reason="modification accepted by broker",
            details={"applied": change.as_dict()},
            applied=change,
        )
    order_updates_apply(updates, source=EventSource.BROKER)
