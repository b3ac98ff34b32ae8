"""Every write to orders, their events and their trades goes through these functions.

The API, the admin, the commands and the background jobs all call them; none writes an order
row itself. Locks are always taken in one order (strategy, then position, then order) so two
writers can never deadlock, and no broker is ever called while a lock is held: the intent is
committed first, with the broker call deferred as a job in the same transaction.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone

from orders.brokers import (
    BrokerFill,
    BrokerOrderUpdate,
    BrokerRejected,
    BrokerTimeout,
    broker_for,
)
from orders.charges import attribute_fill_charges
from orders.domain import OrderRequest, OrderRequestError, OrderResult, Violation
from orders.enums import EventKind, EventSource, OrderStatus, OrderType, StrategyStatus
from orders.models import Order, OrderEvent, Strategy, Trade
from orders.state import (
    AFTER_PARTIAL_FILL,
    CANCELLABLE,
    FILLABLE,
    MODIFIABLE,
    STAMPS,
    can_transition,
)

logger = logging.getLogger("oms.orders")

PAISA = Decimal("0.01")
MAX_MODIFICATIONS = 25  # Kite refuses the 26th modification of an order.
CLIENT_ID_CONSTRAINT = "order_client_id_unique_per_strategy"


class OrderError(Exception):
    """A request the OMS refuses; ``code`` is stable for API clients."""

    code = "order_error"

    def __init__(self, message: str, *, fields: dict[str, str] | None = None):
        super().__init__(message)
        self.message = message
        self.fields = fields or {}


class StrategyNotFound(OrderError):
    code = "strategy_not_found"


class OrderNotFound(OrderError):
    code = "order_not_found"


class IdempotencyConflict(OrderError):
    code = "idempotency_conflict"


class IllegalOrderState(OrderError):
    code = "illegal_state"


class FillRefused(OrderError):
    code = "fill_refused"


class OrderRefused(OrderError):
    """A modification the pre-trade checks refuse; ``violations`` lists every one."""

    code = "risk_rejected"

    def __init__(self, violations):
        self.violations = tuple(violations)
        super().__init__(
            "; ".join(v.message for v in self.violations),
            fields={v.field: v.message for v in self.violations},
        )


class OrderThrottled(OrderError):
    """Over the strategy's order rate: nothing was recorded; retry after ``retry_after`` s."""

    code = "order_rate"

    def __init__(self, message: str, *, retry_after: float):
        super().__init__(message, fields={"strategy": message})
        self.retry_after = retry_after


def _take_order_token(strategy: Strategy, *, limits=None) -> None:
    """Count one order against the strategy's rate, or raise OrderThrottled.

    Called as the last statement of the placing transaction: the bucket's row stays locked
    only for the commit, and a throttled order rolls back whole (its client_order_id stays
    free for the retry). ``limits``: the strategy's, as the validator saw them.
    """
    from risk.validator import order_rate_take

    wait, rate = order_rate_take(strategy, limits=limits)
    if wait > 0:
        raise OrderThrottled(
            f"more than {rate} orders a second from strategy {strategy.name}: retry in {wait:.2f}s",
            retry_after=wait,
        )


def log_context(order: Order) -> dict[str, Any]:
    """What every log line about an order carries."""
    return {
        "order_id": order.pk,
        "strategy_id": order.strategy_id,
        "client_order_id": order.client_order_id,
    }


# --- events and transitions ------------------------------------------------------------------


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


def order_transition(
    order: Order,
    target: OrderStatus,
    *,
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
    """
    current = OrderStatus(order.status)
    target = OrderStatus(target)
    if current == target:
        if extra_fields:
            order.save(update_fields=[*extra_fields, "updated_at"])
        return False
    if not can_transition(current, target):
        order_event_record(
            order,
            kind=EventKind.REFUSED,
            from_status=current,
            to_status=target,
            source=source,
            reason=reason or f"illegal transition {current} -> {target}",
            actor=actor,
            details=details,
        )
        logger.warning("refused transition %s -> %s", current, target, extra=log_context(order))
        if extra_fields:
            order.save(update_fields=[*extra_fields, "updated_at"])
        return False
    order.status = target
    fields = ["status", "updated_at", *extra_fields]
    if stamp := STAMPS.get(target):
        setattr(order, stamp, timezone.now())
        fields.append(stamp)
    if target == OrderStatus.REJECTED and reason:
        order.status_message = reason
        fields.append("status_message")
    order.save(update_fields=sorted(set(fields)))
    order_event_record(
        order,
        kind=EventKind.TRANSITION,
        from_status=current,
        to_status=target,
        source=source,
        reason=reason,
        actor=actor,
        details=details,
    )
    logger.info("order %s -> %s", current, target, extra=log_context(order))
    return True


def _locked(order_id: int) -> Order:
    try:
        return Order.objects.select_for_update().get(pk=order_id)
    except Order.DoesNotExist:
        raise OrderNotFound(f"order {order_id}: not found") from None


# --- placement ---------------------------------------------------------------------------------


def _constraint_name(error: IntegrityError) -> str | None:
    diag = getattr(error.__cause__, "diag", None)
    return getattr(diag, "constraint_name", None)


def _replay(order: Order, fingerprint: str) -> OrderResult:
    if order.request_fingerprint != fingerprint:
        raise IdempotencyConflict(
            f"client_order_id {order.client_order_id!r}: already used for order {order.pk} "
            "with different content; use a new client_order_id",
            fields={"client_order_id": "already used with different content"},
        )
    return OrderResult(
        order_id=order.pk,
        client_order_id=order.client_order_id,
        status=OrderStatus(order.status),
        message=order.status_message,
        replayed=True,
        violations=tuple(Violation(**v) for v in order.metadata.get("violations", [])),
        order=order,
    )


def pre_trade_validate(request: OrderRequest, *, strategy: Strategy, order: Order | None = None):
    """The risk checks every order passes (risk.validator owns them): their Verdict, every
    violation and the strategy's limits they applied."""
    from risk.validator import order_verdict

    return order_verdict(request, strategy=strategy, order=order)


def order_place(
    request: OrderRequest,
    *,
    actor: str,
    source: EventSource = EventSource.API,
    metadata: dict | None = None,
    strategy: Strategy | None = None,
) -> OrderResult:
    """Record an order and queue it for the broker, or record why it was refused.

    Guarantees: the order row, its first event and the broker-submission job are written in
    one transaction (if it rolls back, no job exists; if the worker dies, the job is retried).
    The same (strategy, client_order_id) never makes a second order: a replay returns the
    original with ``replayed=True``; the same id with different content raises
    IdempotencyConflict. A refused order is kept as REJECTED with every violation.

    ``strategy``: the request's strategy when the caller has just read it (the API has, with
    the key); it is read here otherwise.
    """
    from orders import tasks

    if strategy is None:
        strategy = Strategy.objects.filter(pk=request.strategy_id).first()
        if strategy is None:
            raise StrategyNotFound(f"strategy {request.strategy_id}: not found")
    elif strategy.pk != request.strategy_id:
        raise ValueError(f"strategy {strategy.pk}: not the request's ({request.strategy_id})")
    fingerprint = request.fingerprint()

    try:
        with transaction.atomic():
            # Requests with one client_order_id queue here: a duplicate waits for the first to
            # commit and is answered as a replay, without being validated or rate-counted. (No
            # look-up before the transaction: it would cost every new order a query to spare
            # the rare replay a transaction.)
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
                    [f"order:{strategy.pk}:{request.client_order_id}"],
                )
            existing = Order.objects.filter(
                strategy=strategy, client_order_id=request.client_order_id
            ).first()
            if existing is not None:
                return _replay(existing, fingerprint)
            verdict = pre_trade_validate(request, strategy=strategy)
            violations = verdict.violations
            order = Order.objects.create(
                strategy=strategy,
                client_order_id=request.client_order_id,
                broker_tag=_new_broker_tag(),
                symbol=request.symbol,
                exchange=request.exchange,
                segment=request.segment,
                side=request.side,
                quantity=request.quantity,
                order_type=request.order_type,
                price=request.price,
                trigger_price=request.trigger_price,
                product=request.product,
                validity=request.validity,
                stop_loss=request.stop_loss,
                take_profit=request.take_profit,
                tag=request.tag,
                request_fingerprint=fingerprint,
                metadata={**(metadata or {}), "actor": actor},
            )
            order_event_record(
                order,
                kind=EventKind.TRANSITION,
                to_status=OrderStatus.PENDING,
                source=source,
                reason="order received",
                actor=actor,
            )
            if violations:
                order.metadata["violations"] = [v.as_dict() for v in violations]
                order.save(update_fields=["metadata", "updated_at"])
                order_transition(
                    order,
                    OrderStatus.REJECTED,
                    source=EventSource.SYSTEM,
                    reason="; ".join(v.message for v in violations),
                    actor="pre-trade validator",
                    details={"violations": order.metadata["violations"]},
                )
            else:
                tasks.defer_submit(order)
                # The limits the checks saw: the order rate is not read again.
                _take_order_token(strategy, limits=verdict.limits)
    except IntegrityError as error:
        if _constraint_name(error) != CLIENT_ID_CONSTRAINT:
            raise
        existing = Order.objects.get(strategy=strategy, client_order_id=request.client_order_id)
        return _replay(existing, fingerprint)
    logger.info(
        "order %s: %s %s %s %s",
        order.status,
        order.side,
        order.quantity,
        order.symbol,
        order.order_type,
        extra=log_context(order),
    )
    return OrderResult(
        order_id=order.pk,
        client_order_id=order.client_order_id,
        status=OrderStatus(order.status),
        message=order.status_message,
        violations=tuple(violations),
        order=order,
    )


def _new_broker_tag() -> str:
    """An alphanumeric reference of 20 characters (Kite's tag limit) unique to one order."""
    import secrets

    return "OMS" + secrets.token_hex(8)[:17].upper()


# --- broker submission (runs in a job) ---------------------------------------------------------


def order_submit(order_id: int) -> None:
    """Send a PENDING order to its broker, exactly once.

    Idempotent: an order no longer PENDING is left alone, except one SUBMITTED without a
    broker id (an earlier attempt died mid-way), which is first looked up by its tag at the
    broker and adopted if found, and only sent when the broker has never seen it.
    """
    with transaction.atomic():
        order = _locked(order_id)
        if order.status == OrderStatus.PENDING:
            resuming = False
            order_transition(
                order, OrderStatus.SUBMITTED, source=EventSource.SYSTEM, reason="sent to broker"
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
    try:
        ack = broker.place(order)
    except BrokerTimeout as error:
        from orders import tasks

        with transaction.atomic():
            order = _locked(order_id)
            reason = f"broker did not answer: {error}"
            if order.status == OrderStatus.CANCEL_PENDING:
                # A cancel was requested while in flight: the order stays CANCEL_PENDING (no
                # broker id) and the resolution looks it up by tag all the same.
                order_event_record(
                    order,
                    kind=EventKind.NOTE,
                    from_status=order.status,
                    to_status=order.status,
                    source=EventSource.BROKER,
                    reason=reason,
                )
            else:
                order_transition(
                    order, OrderStatus.UNKNOWN, source=EventSource.BROKER, reason=reason
                )
            tasks.defer_resolve_unknown(order)
        return
    except BrokerRejected as error:
        with transaction.atomic():
            order = _locked(order_id)
            order_transition(
                order, OrderStatus.REJECTED, source=EventSource.BROKER, reason=str(error)
            )
        return
    with transaction.atomic():
        order = _locked(order_id)
        if not order.broker_order_id:
            order.broker_order_id = ack.broker_order_id
            order.save(update_fields=["broker_order_id", "updated_at"])
        if order.status == OrderStatus.SUBMITTED:
            working = OrderStatus.TRIGGER_PENDING if order.trigger_price else OrderStatus.OPEN
            order_transition(
                order,
                working,
                source=EventSource.BROKER,
                reason="accepted by broker",
                details={"broker_order_id": ack.broker_order_id},
            )
    order_updates_apply(ack.updates, source=EventSource.BROKER)
    if order.status == OrderStatus.CANCEL_PENDING:
        from orders import tasks

        tasks.defer_cancel(order)


def order_resolve_unknown(order_id: int, *, give_up: bool) -> bool:
    """Settle an order the broker did not answer for, by looking its tag up — never resending.

    The order is UNKNOWN, or CANCEL_PENDING without a broker id (its cancel was requested
    while the broker call was in doubt). Returns True when settled. Found at the broker, the
    order is adopted (and a pending cancel is then sent). With ``give_up`` (the grace period
    is over) an order the broker still does not know never reached it: REJECTED, or CANCELLED
    when a cancel was pending.
    """
    from orders import tasks

    order = Order.objects.select_related("strategy").get(pk=order_id)
    if not _in_doubt(order):
        return True
    found = broker_for(order.strategy).find_by_tag(order.broker_tag)
    if found is not None:
        order_updates_apply([found], source=EventSource.BROKER)
        order.refresh_from_db()
        if order.status == OrderStatus.CANCEL_PENDING:
            tasks.defer_cancel(order)
        return True
    if not give_up:
        return False
    with transaction.atomic():
        order = _locked(order_id)
        if not _in_doubt(order):
            return True
        cancelling = order.status == OrderStatus.CANCEL_PENDING
        order_transition(
            order,
            OrderStatus.CANCELLED if cancelling else OrderStatus.REJECTED,
            source=EventSource.SYSTEM,
            reason="not found at the broker after a timeout; not resent",
        )
    return True


def _in_doubt(order: Order) -> bool:
    """Whether the broker may or may not have the order, as far as we know."""
    return order.status == OrderStatus.UNKNOWN or (
        order.status == OrderStatus.CANCEL_PENDING and not order.broker_order_id
    )


# --- cancel and modify -----------------------------------------------------------------------


def order_cancel(
    order_id: int, *, actor: str, source: EventSource = EventSource.API, reason: str = ""
) -> Order:
    """Request a cancel. A PENDING order (never sent) is cancelled here, without a broker call.

    Otherwise the order goes to CANCEL_PENDING and a job asks the broker; fills that race the
    cancel are still applied when they arrive.
    """
    from orders import tasks

    with transaction.atomic():
        order = _locked(order_id)
        if order.status not in CANCELLABLE:
            raise IllegalOrderState(
                f"order {order.pk} is {order.status}: only working orders can be cancelled",
                fields={"status": order.status},
            )
        if order.status == OrderStatus.PENDING:
            order_transition(
                order,
                OrderStatus.CANCELLED,
                source=source,
                actor=actor,
                reason=reason or "cancelled before reaching the broker",
            )
            return order
        order_transition(
            order, OrderStatus.CANCEL_PENDING, source=source, actor=actor, reason=reason
        )
        tasks.defer_cancel(order)
    return order


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
            locked = _locked(order_id)
            order_event_record(
                locked,
                kind=EventKind.NOTE,
                from_status=locked.status,
                to_status=locked.status,
                source=EventSource.BROKER,
                reason=f"cancel refused by broker: {error}",
            )
        if current is not None:
            updates = (current,)
    order_updates_apply(updates, source=EventSource.BROKER)


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
    at most 25 times, and never below what is already filled.
    """
    from orders import tasks

    with transaction.atomic():
        order = _locked(order_id)
        if order.status not in MODIFIABLE:
            raise IllegalOrderState(
                f"order {order.pk} is {order.status}: only open orders can be modified",
                fields={"status": order.status},
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
        )
        if request.quantity <= order.filled_quantity:
            raise OrderRequestError(
                {
                    "quantity": f"quantity {request.quantity}: must exceed the "
                    f"{order.filled_quantity} already filled"
                }
            )
        violations = pre_trade_validate(request, strategy=order.strategy, order=order).violations
        if violations:
            raise OrderRefused(violations)
        change = Modification(
            request.quantity, request.price, request.trigger_price, request.order_type
        )
        order_event_record(
            order,
            kind=EventKind.MODIFY,
            from_status=order.status,
            to_status=order.status,
            source=source,
            actor=actor,
            reason="modification requested",
            details={"requested": change.as_dict()},
        )
        order.metadata["pending_modification"] = change.as_dict()
        order.save(update_fields=["metadata", "updated_at"])
        tasks.defer_modify(order)
        _take_order_token(order.strategy)  # the broker counts modifications as orders
    return order


def order_modify_at_broker(order_id: int) -> None:
    """The modify job: send the pending modification; apply it to the order when accepted."""
    order = Order.objects.select_related("strategy").get(pk=order_id)
    pending = order.metadata.get("pending_modification")
    if not pending:
        return
    if order.status not in MODIFIABLE:
        # Filled, cancelled... before the job ran: the request is dropped, not left pending.
        with transaction.atomic():
            order = _locked(order_id)
            if order.metadata.pop("pending_modification", None) is not None:
                order.save(update_fields=["metadata", "updated_at"])
                order_event_record(
                    order,
                    kind=EventKind.MODIFY,
                    from_status=order.status,
                    to_status=order.status,
                    source=EventSource.SYSTEM,
                    reason=f"modification not sent: the order is {order.status}",
                    details={"dropped": pending},
                )
        return
    change = Modification(
        quantity=int(pending["quantity"]),
        price=Decimal(pending["price"]) if pending["price"] else None,
        trigger_price=Decimal(pending["trigger_price"]) if pending["trigger_price"] else None,
        order_type=OrderType(pending["order_type"]),
    )
    try:
        updates = broker_for(order.strategy).modify(
            order,
            quantity=change.quantity,
            price=change.price,
            trigger_price=change.trigger_price,
            order_type=change.order_type,
        )
    except BrokerRejected as error:
        with transaction.atomic():
            order = _locked(order_id)
            order.metadata.pop("pending_modification", None)
            order.save(update_fields=["metadata", "updated_at"])
            order_event_record(
                order,
                kind=EventKind.MODIFY,
                from_status=order.status,
                to_status=order.status,
                source=EventSource.BROKER,
                reason=f"modification refused by broker: {error}",
                details={"refused": change.as_dict()},
            )
        return
    with transaction.atomic():
        order = _locked(order_id)
        order.quantity = change.quantity
        order.price = change.price
        order.trigger_price = change.trigger_price
        order.order_type = change.order_type
        order.modification_count = F("modification_count") + 1
        order.metadata.pop("pending_modification", None)
        order.save(
            update_fields=[
                "quantity",
                "price",
                "trigger_price",
                "order_type",
                "modification_count",
                "metadata",
                "updated_at",
            ]
        )
        order_event_record(
            order,
            kind=EventKind.MODIFY,
            from_status=order.status,
            to_status=order.status,
            source=EventSource.BROKER,
            reason="modification accepted by broker",
            details={"applied": change.as_dict()},
        )
    order_updates_apply(updates, source=EventSource.BROKER)


# --- broker reports ----------------------------------------------------------------------------


def order_updates_apply(
    updates: tuple[BrokerOrderUpdate, ...] | list[BrokerOrderUpdate], *, source: EventSource
) -> None:
    """Apply broker reports of orders: fills first, then the status.

    Reports may come late, twice or out of order. Explicit fills are deduplicated by trade id;
    cumulative figures (a Kite postback) become one fill for the increment over what we have,
    under a trade id derived from the cumulative quantity, so a repeated or older report adds
    nothing. A status the state machine does not allow is refused and recorded.
    """
    for update in updates:
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
                order = _locked(order.pk)
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


def _status_apply(order_id: int, update: BrokerOrderUpdate, *, source: EventSource) -> None:
    target = OrderStatus(update.status)
    if target in (OrderStatus.PARTIALLY_FILLED, OrderStatus.FILLED, OrderStatus.SUBMITTED):
        return  # fills decide these; SUBMITTED says nothing new
    with transaction.atomic():
        order = _locked(order_id)
        if target == OrderStatus(order.status):
            return
        if order.status == OrderStatus.CANCEL_PENDING and target in (
            OrderStatus.OPEN,
            OrderStatus.TRIGGER_PENDING,
        ):
            return  # the broker has not processed our cancel yet
        if target == OrderStatus.OPEN and order.status in (
            OrderStatus.PARTIALLY_FILLED,
            OrderStatus.FILLED,
        ):
            return  # an older report arriving late
        order_transition(
            order,
            target,
            source=source,
            reason=update.message or f"broker reports {update.raw_status or target}",
            details={"broker_order_id": update.broker_order_id},
        )


# --- fills -------------------------------------------------------------------------------------


def fill_apply(
    order: Order,
    *,
    trade_id: str,
    quantity: int,
    price: Decimal,
    executed_at: datetime,
    source: EventSource = EventSource.BROKER,
) -> Trade | None:
    """Apply one execution to its order, its strategy's position and the strategy's counters.

    Exactly once per broker trade id (a repeat returns None and changes nothing). Refuses an
    overfill or a fill on an order that cannot have one (FillRefused, with a REFUSED event).
    Charges are attributed cumulatively, so an order's fills sum to the charges of the whole
    order. One transaction; locks taken as strategy, position, order.
    """
    from positions.services import position_lock

    price = Decimal(price)
    if quantity <= 0:
        raise FillRefused(f"fill quantity {quantity}: must be at least 1")
    if not price.is_finite() or price <= 0 or price != price.quantize(PAISA):
        raise FillRefused(f"fill price {price}: must be a positive amount in whole paise")
    price = price.quantize(PAISA)  # 812.35, not the 812.3500 of a price column
    refusal = None
    with transaction.atomic():
        strategy = Strategy.objects.select_for_update().get(pk=order.strategy_id)
        if Trade.objects.filter(trade_id=trade_id).exists():
            return None
        order = Order.objects.get(pk=order.pk)
        position = position_lock(
            strategy=strategy, symbol=order.symbol, exchange=order.exchange, product=order.product
        )
        order = _locked(order.pk)
        if order.status not in FILLABLE:
            refusal = f"order is {order.status}: a fill cannot be applied"
        elif order.filled_quantity + quantity > order.quantity:
            refusal = (
                f"fill of {quantity} would overfill: {order.filled_quantity} of "
                f"{order.quantity} already filled"
            )
        if refusal:
            order_event_record(
                order,
                kind=EventKind.REFUSED,
                from_status=order.status,
                to_status=order.status,
                source=source,
                reason=refusal,
                details={"trade_id": trade_id, "quantity": quantity, "price": str(price)},
            )
        else:
            trade = _fill_record(
                strategy, order, position, trade_id, quantity, price, executed_at, source
            )
    if refusal:
        raise FillRefused(f"order {order.pk}, trade {trade_id}: {refusal}")
    return trade


def _fill_record(strategy, order, position, trade_id, quantity, price, executed_at, source):
    from positions.services import position_apply_fill

    previous = list(order.trades.values_list("quantity", "price"))
    charges = attribute_fill_charges(
        order.side,
        order.product,
        exchange=order.exchange,
        segment=order.segment,
        on=timezone.localdate(executed_at),
        previous_fills=previous,
        fill_quantity=quantity,
        fill_price=price,
    )
    gross = price * quantity
    trade = Trade.objects.create(
        order=order,
        strategy=strategy,
        trade_id=trade_id,
        symbol=order.symbol,
        exchange=order.exchange,
        product=order.product,
        side=order.side,
        quantity=quantity,
        price=price,
        gross_value=gross,
        brokerage=charges.brokerage,
        stt=charges.stt,
        exchange_charges=charges.exchange_charges,
        sebi_charges=charges.sebi_charges,
        stamp_duty=charges.stamp_duty,
        gst=charges.gst,
        total_charges=charges.total,
        net_value=gross + charges.total if order.side == "BUY" else gross - charges.total,
        executed_at=executed_at,
    )
    before = order.filled_quantity
    filled = before + quantity
    previous_value = (order.average_price or Decimal(0)) * before
    order.average_price = ((previous_value + gross) / filled).quantize(
        Decimal("0.000001"), rounding=ROUND_HALF_UP
    )
    order.filled_quantity = filled
    order.last_fill_at = executed_at
    from_status = order.status
    if filled == order.quantity:
        target = OrderStatus.FILLED
    else:
        target = AFTER_PARTIAL_FILL.get(OrderStatus(order.status), OrderStatus(order.status))
    order_transition(
        order,
        target,
        source=source,
        reason=f"fill {trade_id}: {quantity} @ {price}",
        details={"trade_id": trade_id},
        extra_fields=("filled_quantity", "average_price", "last_fill_at"),
    )
    order_event_record(
        order,
        kind=EventKind.FILL,
        from_status=from_status,
        to_status=order.status,
        source=source,
        reason=f"{quantity} @ {price}",
        details={
            "trade_id": trade_id,
            "quantity": quantity,
            "price": str(price),
            "filled_quantity": filled,
            "charges": str(charges.total),
        },
    )
    outcome = position_apply_fill(
        position,
        strategy=strategy,
        order=order,
        quantity=quantity,
        price=price,
        executed_at=executed_at,
    )
    Strategy.objects.filter(pk=strategy.pk).update(
        total_trades=F("total_trades") + 1,
        winning_trades=F("winning_trades") + outcome.wins,
        losing_trades=F("losing_trades") + outcome.losses,
        total_pnl=F("total_pnl") + outcome.realized - charges.total,
    )
    logger.info("fill %s: %s @ %s", trade_id, quantity, price, extra=log_context(order))
    return trade


def strategy_status_set(strategy: Strategy, status: StrategyStatus, *, actor: str) -> Strategy:
    """Change a strategy's status (ACTIVE, PAUSED, INACTIVE, ERROR)."""
    with transaction.atomic():
        locked = Strategy.objects.select_for_update().get(pk=strategy.pk)
        locked.status = status
        locked.save(update_fields=["status", "updated_at"])
    logger.info("strategy %s status %s by %s", locked.name, status, actor)
    return locked


# --- market ticks, polling, expiry (run by jobs) ----------------------------------------------


def market_tick(prices: list[tuple[str, str, Decimal]], *, strategy=None) -> None:
    """A batch of last prices: store them, let the paper exchange match its working orders,
    mark positions to market, and close positions whose stop-loss or take-profit was crossed.

    With ``strategy`` (a paper strategy's own feed, through the API) only that strategy's paper
    orders and positions are touched: one strategy's prices never move another's book.
    """
    from orders.brokers.paper import PaperBroker
    from positions.services import market_prices_update, positions_check_exits, positions_mark

    market_prices_update(prices)
    for symbol, exchange, price in prices:
        order_updates_apply(
            PaperBroker.on_price(symbol.upper(), exchange.upper(), price, strategy=strategy),
            source=EventSource.BROKER,
        )
    positions_mark(prices, strategy=strategy)
    positions_check_exits(strategy=strategy)


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


def orders_expire(*, now: datetime | None = None) -> int:
    """Expire DAY orders still working after the market close (idempotent; safe every minute).

    Paper orders are expired at the paper exchange and the reports applied; orders that never
    reached a broker expire here. Live orders are expired by the broker, which reports it.
    Returns how many of the orders due are now EXPIRED, however they got there.
    """
    from datetime import time

    from django.conf import settings

    from orders.brokers.paper import PaperBroker
    from orders.enums import StrategyMode, Validity

    now = timezone.localtime(now or timezone.now())
    close = time.fromisoformat(settings.OMS_MARKET_CLOSE)
    cutoff = now.replace(hour=close.hour, minute=close.minute, second=0, microsecond=0)
    if now < cutoff:
        cutoff -= timedelta(days=1)
    due = Order.objects.filter(
        status__in=OrderStatus.active(), validity=Validity.DAY, created_at__lt=cutoff
    )
    due_ids = list(due.values_list("pk", flat=True))
    paper_strategies = Strategy.objects.filter(
        mode=StrategyMode.PAPER, pk__in=due.values("strategy_id")
    )
    for strategy in paper_strategies:
        updates = PaperBroker(strategy).expire_day_orders()
        order_updates_apply(updates, source=EventSource.BROKER)
    for order_id in due.exclude(strategy__mode=StrategyMode.LIVE).values_list("pk", flat=True):
        with transaction.atomic():
            order = _locked(order_id)
            if order.is_active:
                order_transition(
                    order,
                    OrderStatus.EXPIRED,
                    source=EventSource.SYSTEM,
                    reason="DAY order expired at market close",
                )
    # Paper orders were expired by the paper exchange's reports, the rest here: count both.
    return Order.objects.filter(pk__in=due_ids, status=OrderStatus.EXPIRED).count()


# --- strategy mode (appended for the admin; see strategy_status_set above) --------------------


def strategy_mode_refusal(strategy: Strategy, mode: str) -> str | None:
    """Why ``strategy`` cannot switch to ``mode`` now (None when it can).

    A strategy changes broker only when it is flat: an open position or a working order
    would otherwise be left at a broker the OMS no longer reconciles it against.
    """
    from orders.enums import StrategyMode
    from positions.models import Position

    mode = StrategyMode(mode)
    if mode == strategy.mode:
        return None
    working = Order.objects.filter(strategy=strategy, status__in=sorted(OrderStatus.active()))
    if working.exists():
        return (
            f"mode {mode}: strategy {strategy.name} has {working.count()} working order(s) at "
            f"its {strategy.mode} broker; cancel them first"
        )
    held = Position.objects.filter(strategy=strategy, closed_at__isnull=True)
    if held.exists():
        return (
            f"mode {mode}: strategy {strategy.name} holds {held.count()} open position(s) at "
            f"its {strategy.mode} broker; close them first"
        )
    return None


def strategy_mode_set(strategy: Strategy, mode: str, *, actor: str) -> Strategy:
    """Switch a strategy between PAPER and LIVE (its broker).

    Guarantees: under the strategy's row lock (every fill and placement takes it first), the
    strategy is flat — no working order, no open position — or OrderError is raised with the
    reason (``strategy_mode_refusal``). Setting the current mode is a no-op. Logged with the
    actor.
    """
    from orders.enums import StrategyMode

    mode = StrategyMode(mode)
    with transaction.atomic():
        locked = Strategy.objects.select_for_update().get(pk=strategy.pk)
        refusal = strategy_mode_refusal(locked, mode)
        if refusal:
            raise OrderError(refusal, fields={"mode": refusal})
        if locked.mode != mode:
            before = locked.mode
            locked.mode = mode
            locked.save(update_fields=["mode", "updated_at"])
            logger.warning("strategy %s mode %s -> %s by %s", locked.name, before, mode, actor)
    return locked
