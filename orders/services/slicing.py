"""An order above the instrument's freeze quantity, sliced (``parent_place``, ``parent_cancel``).

Where the broker's own auto-slicing is not used (and an iceberg is not wanted), the OMS cuts
the quantity into child orders within the freeze quantity (whole lots, the largest first) under
one parent (orders.models_baskets.OrderParent), which is no order at the broker. The children
are written together, all or nothing, exactly like a basket's legs: each passes the pre-trade
checks and takes its own token from the strategy's order rate (a parent of more children than
the rate allows is refused, 429, nothing written); each is then sent as its own broker order,
filled, charged (brokerage per executed order) and booked to the position on its own. The
parent's status, filled quantity and average price are derived from its children when read
(orders.selectors.parent_summary), so they are never stale and never counted twice.
"""

from __future__ import annotations

import dataclasses

from django.db import IntegrityError, transaction
from django.utils import timezone

from orders.domain import OrderRequest
from orders.enums import EventSource, OrderStatus
from orders.models import Order, OrderParent
from orders.services.baskets import legs_write
from orders.services.cancellation import order_cancel
from orders.services.errors import (
    IdempotencyConflict,
    IllegalOrderState,
    OrderError,
    StrategyNotFound,
)
from orders.varieties import freeze_slices
from risk.models import Instrument
from risk.validator import checks_lock

PARENT_CONSTRAINT = "order_parent_client_id_unique"


class WithinFreezeQuantity(OrderError):
    code = "within_freeze_quantity"


@dataclasses.dataclass(frozen=True)
class ParentResult:
    parent: OrderParent
    children: list[Order]
    replayed: bool = False


def parent_place(
    request: OrderRequest, *, actor: str, source: EventSource = EventSource.API
) -> ParentResult:
    """Write a parent and its children (``<client_order_id>.<n>``), each queued for the broker,
    or nothing. Idempotent on (strategy, client_order_id) like an order; the children's checks
    refuse it all together (BasketRefused naming the child)."""
    fingerprint = request.fingerprint()
    try:
        with transaction.atomic():
            strategy = checks_lock(request.strategy_id)
            if strategy is None:
                raise StrategyNotFound(f"strategy {request.strategy_id}: not found")
            existing = _existing(request)
            if existing is not None:
                return _replay(existing, fingerprint)
            instrument = Instrument.objects.filter(
                tradingsymbol=request.symbol, exchange=request.exchange
            ).first()
            freeze = instrument.freeze_quantity if instrument else None
            if not freeze or request.quantity <= freeze:
                raise WithinFreezeQuantity(
                    f"quantity {request.quantity}: within the freeze quantity "
                    f"{freeze or 'of none'} of {request.symbol}; place it as one order",
                    fields={"quantity": "within the freeze quantity: place one order"},
                )
            parent = OrderParent.objects.create(
                strategy=strategy,
                client_order_id=request.client_order_id,
                request_fingerprint=fingerprint,
                symbol=request.symbol,
                exchange=request.exchange,
                side=request.side,
                quantity=request.quantity,
                order_type=request.order_type,
                price=request.price,
                trigger_price=request.trigger_price,
                product=request.product,
                validity=request.validity,
                freeze_quantity=freeze,
                actor=actor,
            )
            slices = freeze_slices(request.quantity, freeze, instrument.lot_size)
            children = [
                dataclasses.replace(
                    request, client_order_id=f"{request.client_order_id}.{n}", quantity=quantity
                )
                for n, quantity in enumerate(slices, start=1)
            ]
            orders = legs_write(
                children, strategy=strategy, actor=actor, source=source, parent=parent
            )
    except IntegrityError as error:
        diag = getattr(error.__cause__, "diag", None)
        if getattr(diag, "constraint_name", None) != PARENT_CONSTRAINT:
            raise
        return _replay(_existing(request), fingerprint)
    return ParentResult(parent, orders)


def parent_cancel(parent_id: int, *, actor: str, reason: str = "", strategy=None) -> OrderParent:
    """Cancel every working child of the parent (each as its own order: one not yet sent is
    cancelled at once, one at the broker goes CANCEL_PENDING); its fills stay. Idempotent."""
    parents = OrderParent.objects.all()
    if strategy is not None:
        parents = parents.filter(strategy=strategy)
    with transaction.atomic():
        parent = parents.select_for_update().get(pk=parent_id)
        if parent.cancel_requested_at is None:
            parent.cancel_requested_at = timezone.now()
            parent.save(update_fields=["cancel_requested_at"])
    working = parent.children.filter(status__in=OrderStatus.active()).exclude(
        status=OrderStatus.CANCEL_PENDING
    )
    for child_id in working.order_by("id").values_list("id", flat=True):
        try:
            order_cancel(
                child_id,
                actor=actor,
                source=EventSource.API,
                reason=reason or f"parent {parent.pk} cancelled",
            )
        except IllegalOrderState:
            continue  # it finished meanwhile (filled, rejected): nothing left to cancel
    return parent


def _existing(request: OrderRequest) -> OrderParent | None:
    return OrderParent.objects.filter(
        strategy_id=request.strategy_id, client_order_id=request.client_order_id
    ).first()


def _replay(parent: OrderParent, fingerprint: str) -> ParentResult:
    if parent.request_fingerprint != fingerprint:
        raise IdempotencyConflict(
            f"client_order_id {parent.client_order_id!r}: already used for parent {parent.pk} "
            "with different content; use a new client_order_id",
            fields={"client_order_id": "already used with different content"},
        )
    return ParentResult(parent, list(parent.children.order_by("id")), replayed=True)
