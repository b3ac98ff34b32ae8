"""An order's pending modification and how it settles: applied, refused or dropped.

A modification is requested (orders.services.modification.order_modify), kept in the order's
metadata as ``pending_modification`` and sent by a job. A broker whose modify call returns
the modified order (the paper broker) settles it there and then. Kite's 200 only says
"request accepted": the modification is marked sent (``sent_at``) and settles on the order
report that tells (modification_follow, called for every report order_updates_apply takes):

- the report shows the pending terms (quantity, type, price, trigger): applied, with the
  terms the order had (``previous``) in its MODIFY event;
- the order is final (filled, cancelled, rejected, expired), or the broker says it refused
  the modification (Kite's NOT MODIFIED): dropped;
- the modification is no longer in flight at the broker and the report shows the order's old
  terms, with the broker's message (Kite: a modification refused by its risk checks or the
  exchange) or MODIFICATION_CONFIRM_GRACE after it was sent: dropped, saying why.

Every terms a modification was sent with stay in the order's MODIFY events (``sent``): fills
made under them are credible (broker_reports._report_bounds), whatever became of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from orders.brokers import BrokerOrderUpdate
from orders.enums import EventKind, EventSource, OrderStatus, OrderType
from orders.models import Order
from orders.money import to_paisa
from orders.services.events import order_locked, order_note

# How long a sent modification may go unconfirmed while the broker shows the old terms with
# no reason, before it is taken as not applied (Kite confirms within seconds).
MODIFICATION_CONFIRM_GRACE = timedelta(seconds=60)
PENDING = "pending_modification"
SENT_COUNT = "modifications_sent"  # metadata: how many were sent (bounds read their terms)
LIMITED = (OrderType.LIMIT, OrderType.SL)
TRIGGERED = (OrderType.SL, OrderType.SL_M)


@dataclass(frozen=True)
class Modification:
    quantity: int
    price: Decimal | None
    trigger_price: Decimal | None
    order_type: OrderType

    def as_dict(self) -> dict[str, Any]:
        return {
            "quantity": self.quantity,
            "price": None if self.price is None else str(self.price),
            "trigger_price": None if self.trigger_price is None else str(self.trigger_price),
            "order_type": str(self.order_type),
        }

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Modification:
        return cls(
            quantity=int(values["quantity"]),
            price=Decimal(values["price"]) if values.get("price") else None,
            trigger_price=Decimal(values["trigger_price"]) if values.get("trigger_price") else None,
            order_type=OrderType(values["order_type"]),
        )

    @classmethod
    def of(cls, order: Order) -> Modification:
        """The terms ``order`` has now (its prices to the paisa: 2450.50, not the column's
        2450.5000)."""
        return cls(
            order.quantity,
            _paise(order.price),
            _paise(order.trigger_price),
            OrderType(order.order_type),
        )


def reported_terms_match(update: BrokerOrderUpdate, terms: Modification) -> bool:
    """Whether the broker's report shows ``terms``. A MARKET (SL-M) order the broker protected
    shows as LIMIT (SL) at a protection price: that is a MARKET (SL-M) order, at any price."""
    if update.quantity is None or not update.order_type:
        return False
    order_type = update.order_type
    if update.market_protected and terms.order_type in (OrderType.MARKET, OrderType.SL_M):
        order_type = {"LIMIT": OrderType.MARKET, "SL": OrderType.SL_M}.get(order_type, order_type)
    if (update.quantity, order_type) != (terms.quantity, terms.order_type):
        return False
    price_differs = _paise(update.price) != _paise(terms.price)
    trigger_differs = _paise(update.trigger_price) != _paise(terms.trigger_price)
    return not (
        (terms.order_type in LIMITED and price_differs)
        or (terms.order_type in TRIGGERED and trigger_differs)
    )


def _paise(price) -> Decimal | None:
    return to_paisa(Decimal(price)) if price else None


def _sent_at(pending: dict | None) -> datetime | None:
    if not pending or not pending.get("sent_at"):
        return None
    return datetime.fromisoformat(pending["sent_at"])


def modification_settle(
    order_id: int,
    *,
    source: EventSource,
    reason: str | None,
    details: dict,
    applied: Modification | None = None,
) -> bool:
    """Settle an order's pending modification once, under its row lock: apply ``applied``
    (the broker accepted it) or drop it, and record why in a MODIFY event (``reason`` None:
    it was not sent, the order's status being what it is). One already settled is left
    alone (False)."""
    with transaction.atomic():
        order = order_locked(order_id)
        if order.metadata.pop(PENDING, None) is None:
            return False
        fields = ["metadata", "updated_at"]
        if applied is not None:
            # The terms it had: fills made before the change may hold to them (report_checks).
            details = {**details, "previous": Modification.of(order).as_dict()}
            order.quantity = applied.quantity
            order.price = applied.price
            order.trigger_price = applied.trigger_price
            order.order_type = applied.order_type
            order.modification_count = F("modification_count") + 1
            fields += ["quantity", "price", "trigger_price", "order_type", "modification_count"]
        order.save(update_fields=fields)
        order_note(
            order,
            kind=EventKind.MODIFY,
            source=source,
            reason=reason or f"modification not sent: the order is {order.status}",
            details=details,
        )
    return True


def modification_mark_sent(order_id: int, change: Modification) -> bool:
    """The broker accepted the request to modify (Kite's 200): the modification stays pending,
    marked sent, until a report settles it (modification_follow). False when it was settled
    meanwhile or replaced by another request."""
    with transaction.atomic():
        order = order_locked(order_id)
        pending = order.metadata.get(PENDING)
        if not pending or Modification.from_dict(pending) != change:
            return False
        pending["sent_at"] = timezone.now().isoformat()
        order.metadata[SENT_COUNT] = int(order.metadata.get(SENT_COUNT, 0)) + 1
        order.save(update_fields=["metadata", "updated_at"])
        order_note(
            order,
            kind=EventKind.MODIFY,
            source=EventSource.BROKER,
            reason="modification sent: the broker accepted the request; applied when its "
            "report shows the new terms",
            details={"sent": change.as_dict()},
        )
    return True


def modification_confirm(order: Order, update: BrokerOrderUpdate, *, source: EventSource) -> None:
    """Apply the order's sent modification when ``update`` shows its terms, settled (no
    modification in flight). Called before the report's fills: a quantity raised by the
    modification is what they fill."""
    pending = order.metadata.get(PENDING)
    if _sent_at(pending) is None or update.modifying or update.modification_refused:
        return
    change = Modification.from_dict(pending)
    if reported_terms_match(update, change):
        modification_settle(
            order.pk,
            source=source,
            reason=f"modification confirmed by the broker ({update.raw_status or update.status})",
            details={"applied": change.as_dict()},
            applied=change,
        )


def modification_follow(order_id: int, update: BrokerOrderUpdate, *, source: EventSource) -> None:
    """Drop the order's sent modification when ``update`` (applied already) shows it did not
    happen: the order is final, or the broker settled it with the old terms (see the
    module's docstring). Otherwise it stays pending for the next report."""
    order = Order.objects.only(
        "status", "quantity", "price", "trigger_price", "order_type", "metadata"
    ).get(pk=order_id)
    pending = order.metadata.get(PENDING)
    sent_at = _sent_at(pending)
    if sent_at is None:
        return
    change = Modification.from_dict(pending)
    details = {
        "dropped": change.as_dict(),
        "broker": {
            "status": update.raw_status or str(update.status),
            "quantity": update.quantity,
            "order_type": update.order_type,
            "price": None if update.price is None else str(update.price),
            "trigger_price": None if update.trigger_price is None else str(update.trigger_price),
            "message": update.message,
        },
    }
    if order.status in OrderStatus.terminal():
        reason = f"modification dropped: the order is {order.status}"
    elif update.modification_refused:
        reason = f"modification refused by the broker: {update.message or update.raw_status}"
    elif update.modifying or not reported_terms_match(update, Modification.of(order)):
        return  # in flight, or terms that are neither: a later report tells
    elif update.message:
        reason = f"modification not applied by the broker: {update.message}"
    elif (waited := timezone.now() - sent_at) >= MODIFICATION_CONFIRM_GRACE:
        reason = (
            "modification not applied by the broker: it still shows the order's old terms "
            f"{int(waited.total_seconds())}s after the modification was sent"
        )
    else:
        return
    modification_settle(order_id, source=source, reason=reason, details=details)
