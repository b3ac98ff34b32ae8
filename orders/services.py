"""Every write to orders, their events and their trades goes through these functions.

The API, the admin, the commands and the background jobs all call them; none writes an order
row itself. Locks are always taken in one order (strategy, then position, then order) so two
writers can never deadlock, and no broker is ever called while a lock is held: the intent is
committed first, with the broker call deferred as a job in the same transaction.
"""

from __future__ import annotations

import functools
import logging
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone

from omsproject import rows
from omsproject.rows import insert_columns, insert_json, saved
from omsproject.write_batch import WriteBatch
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
from risk.selectors import KILL_SWITCH_LOCK

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
        raise _throttled(strategy, rate, wait)


def _throttled(strategy: Strategy, rate: int, wait: float) -> OrderThrottled:
    return OrderThrottled(
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
    ``extra_fields``: other fields of the order the caller changed, saved in any case.
    """
    fields, event = _transition_staged(
        order, target, source=source, reason=reason, actor=actor, details=details
    )
    if fields or extra_fields:
        order.save(update_fields=sorted({*fields, *extra_fields, "updated_at"}))
    if event is not None:
        event.save(force_insert=True)
    return bool(fields)


def _transition_staged(
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


def _transitions_write(changes: list[tuple[Order, list[str]]], events: list[OrderEvent]) -> None:
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


def pre_trade_validate(
    request: OrderRequest, *, strategy: Strategy, order: Order | None = None, placing=False
):
    """The risk checks every order passes (risk.validator owns them): their Verdict, every
    violation and the strategy's limits they applied (see order_verdict for ``placing``)."""
    from risk.validator import order_verdict

    return order_verdict(request, strategy=strategy, order=order, placing=placing)


# What oms_order_gate (orders migration 0010) answers, first thing in the writing statement.
GATE_OPEN = "open"  # the order was written
GATE_PLACED = "placed"  # its client_order_id has an order now: a replay
GATE_RECHECK = "recheck"  # a kill switch changed since the checks: check again, locked


def _order_lock_key(strategy_id: int, client_order_id: str) -> str:
    return f"order:{strategy_id}:{client_order_id}"


@functools.cache
def _queued_insert_sql() -> str:
    """The statement of ``_order_write_queued`` (its text never changes, so it is prepared).

    Each step reads the one before, which orders them: the gate, then the rate count (only
    through an open gate), then the order (only with a token), its first event and its job.
    """
    from orders.tasks import defer_submit_sql
    from risk.ratelimit import take_token_sql

    order_columns = insert_columns(Order)
    event_columns = insert_columns(OrderEvent, skip="order")
    job, _ = defer_submit_sql("new_order.id")
    rate = take_token_sql("FROM gate WHERE gate.outcome = 'open'")
    return f"""
        WITH gate AS (
            SELECT oms_order_gate(
                %(order_lock)s, %(strategy_id)s, %(client_order_id)s,
                %(kill_switch_lock)s, %(global_seen)s, %(strategy_seen)s
            ) AS outcome
        ), rate AS ({rate}
        ), new_order AS (
            INSERT INTO orders ({order_columns})
            SELECT {order_columns}
            FROM rate, jsonb_populate_record(NULL::orders, %(order)s::jsonb)
            WHERE rate.last_take_granted
            RETURNING id
        ), first_event AS (
            INSERT INTO order_events (order_id, {event_columns})
            SELECT new_order.id, {event_columns}
            FROM new_order, jsonb_populate_record(NULL::order_events, %(event)s::jsonb)
        )
        SELECT gate.outcome, new_order.id,
            CASE WHEN new_order.id IS NOT NULL THEN {job} END,
            rate.last_take_granted, rate.tokens, rate.refill_per_second
        FROM gate LEFT JOIN rate ON true LEFT JOIN new_order ON true
    """  # noqa: S608 - column names and constant fragments only; values are parameters


def _order_write_queued(order: Order, event: OrderEvent, *, strategy: Strategy, verdict) -> str:
    """Write a new order, its first event and its submission job, and count it against the
    strategy's order rate, behind the gate: one statement, its own transaction in autocommit.

    Returns the gate's answer (GATE_*); the order is written (and ``order`` saved) only on
    GATE_OPEN. Over the order rate nothing is written and OrderThrottled is raised.
    """
    from orders.tasks import defer_submit_sql
    from risk.ratelimit import take_token_statement, token_wait
    from risk.validator import order_rate_bucket

    _, job_params = defer_submit_sql("new_order.id")
    bucket, rate = order_rate_bucket(strategy, limits=verdict.limits)
    _, rate_params = take_token_statement(bucket, capacity=rate, refill_per_second=rate)
    params = {
        "order_lock": _order_lock_key(strategy.pk, order.client_order_id),
        "strategy_id": strategy.pk,
        "client_order_id": order.client_order_id,
        "kill_switch_lock": KILL_SWITCH_LOCK,
        "global_seen": verdict.switches_seen[0],
        "strategy_seen": verdict.switches_seen[1],
        "order": insert_json(order),
        "event": insert_json(event, skip="order"),
        **job_params,
        **rate_params,
    }
    with connection.cursor() as cursor:
        cursor.execute(_queued_insert_sql(), params)
        outcome, order_id, _job_ids, granted, tokens, refill = cursor.fetchone()
    if outcome != GATE_OPEN:
        return outcome
    wait = token_wait(granted, tokens, refill)
    if wait > 0:
        raise _throttled(strategy, rate, wait)
    saved(order, order_id)
    event.order = order
    return outcome


def _new_order(request: OrderRequest, *, strategy, fingerprint, actor, source, metadata):
    """The order a request asks for, unsaved, and its first event."""
    order = Order(
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
    received = OrderEvent(
        order=order,
        kind=EventKind.TRANSITION,
        to_status=OrderStatus.PENDING,
        source=source,
        reason="order received",
        actor=actor,
    )
    return order, received


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
    IdempotencyConflict. A refused order is kept as REJECTED with every violation. No order is
    accepted once a kill switch change that refuses it has committed.

    How: the pre-trade checks read their context (and a replay's original) in one statement;
    an order that passes is then written in one more, behind oms_order_gate, which takes the
    client_order_id's and the kill switch's locks and confirms that nothing the checks relied
    on for those guarantees changed meanwhile. When something did (a replay that committed in
    between, a kill switch set), the request is answered as a replay or checked again under
    the locks (``_order_place_locked``), as is every refused order.

    ``strategy``: the request's strategy when the caller has just read it (the API has, with
    the key); it is read here otherwise.
    """
    if strategy is None:
        strategy = Strategy.objects.filter(pk=request.strategy_id).first()
        if strategy is None:
            raise StrategyNotFound(f"strategy {request.strategy_id}: not found")
    elif strategy.pk != request.strategy_id:
        raise ValueError(f"strategy {strategy.pk}: not the request's ({request.strategy_id})")
    fingerprint = request.fingerprint()
    made = {"strategy": strategy, "fingerprint": fingerprint, "actor": actor, "source": source}

    verdict = pre_trade_validate(request, strategy=strategy, placing=True)
    if verdict.placed_order_id is not None:
        return _replay(Order.objects.get(pk=verdict.placed_order_id), fingerprint)
    if not verdict.violations:
        order, received = _new_order(request, metadata=metadata, **made)
        # In a caller's transaction, a savepoint keeps it usable if the statement fails.
        nested = transaction.atomic() if connection.in_atomic_block else nullcontext()
        try:
            with nested:
                outcome = _order_write_queued(order, received, strategy=strategy, verdict=verdict)
        except IntegrityError as error:
            return _replay_after_clash(error, strategy, request, fingerprint)
        if outcome == GATE_OPEN:
            return _placed(order, violations=())
        if outcome == GATE_PLACED:
            return _replay(
                Order.objects.get(strategy=strategy, client_order_id=request.client_order_id),
                fingerprint,
            )
    return _order_place_locked(request, metadata=metadata, **made)


def _order_place_locked(request, *, strategy, fingerprint, actor, source, metadata):
    """order_place's path for refused orders and for a kill switch changed under it: the
    checks run again inside a transaction holding the client_order_id's and the kill switch's
    locks, and the order is written in it, accepted or REJECTED with every violation."""
    try:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0)),"
                    " pg_advisory_xact_lock_shared(%s)",
                    [_order_lock_key(strategy.pk, request.client_order_id), KILL_SWITCH_LOCK],
                )
            verdict = pre_trade_validate(request, strategy=strategy, placing=True)
            if verdict.placed_order_id is not None:
                return _replay(Order.objects.get(pk=verdict.placed_order_id), fingerprint)
            order, received = _new_order(
                request,
                strategy=strategy,
                fingerprint=fingerprint,
                actor=actor,
                source=source,
                metadata=metadata,
            )
            violations = verdict.violations
            if not violations:
                # Under the locks the gate cannot find anything changed: it opens.
                _order_write_queued(order, received, strategy=strategy, verdict=verdict)
            else:
                order.metadata["violations"] = [v.as_dict() for v in violations]
                order.save(force_insert=True)
                received.order = order
                received.save(force_insert=True)
                order_transition(
                    order,
                    OrderStatus.REJECTED,
                    source=EventSource.SYSTEM,
                    reason="; ".join(v.message for v in violations),
                    actor="pre-trade validator",
                    details={"violations": order.metadata["violations"]},
                )
    except IntegrityError as error:
        return _replay_after_clash(error, strategy, request, fingerprint)
    return _placed(order, violations=violations)


def _replay_after_clash(error: IntegrityError, strategy, request, fingerprint) -> OrderResult:
    """An order written by a path that does not take the client_order_id's lock won the race:
    the unique constraint refused this one, which is then a replay of it."""
    if _constraint_name(error) != CLIENT_ID_CONSTRAINT:
        raise error
    existing = Order.objects.get(strategy=strategy, client_order_id=request.client_order_id)
    return _replay(existing, fingerprint)


def _placed(order: Order, *, violations) -> OrderResult:
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


class SubmissionInFlight(Exception):
    """Another attempt is sending this order to the broker right now; try again later."""


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


CANCEL_BATCH = 1000  # orders a transaction of orders_cancel locks at most


def orders_cancel(
    order_ids, *, actor: str, source: EventSource = EventSource.API, reason: str = ""
) -> int:
    """Request the cancel of many orders, each as order_cancel would, in a few statements.

    A PENDING order is cancelled here; every other working order goes to CANCEL_PENDING with
    its cancel job (the same job order_cancel defers). Each change is a TRANSITION event with
    the actor, source and reason. Orders no longer cancellable are skipped. Orders are locked
    in id order, CANCEL_BATCH to a transaction. Returns how many were cancelled or are being
    cancelled. (The kill switch's HALT: one order_cancel per order took 30 ms an order.)
    """
    from orders import tasks

    ids = sorted(set(order_ids))
    requested = 0
    for start in range(0, len(ids), CANCEL_BATCH):
        with transaction.atomic():
            orders = list(
                Order.objects.select_for_update()
                .filter(pk__in=ids[start : start + CANCEL_BATCH], status__in=CANCELLABLE)
                .order_by("pk")
            )
            now = timezone.now()
            changes, events, to_broker = [], [], []
            for order in orders:
                never_sent = order.status == OrderStatus.PENDING
                fields, event = _transition_staged(
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
            _transitions_write(changes, events)
            tasks.defer_cancels(to_broker)
        requested += len(orders)
    return requested


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


def orders_cancel_at_broker(order_ids: list[int]) -> None:
    """The cancel job of several orders (orders_cancel defers it): each order as
    order_cancel_at_broker would do it, with the broker asked for all of them at once where it
    can (the paper exchange), and its reports applied together (order_updates_apply)."""
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
    for order in one_by_one:
        order_cancel_at_broker(order.pk)  # says why the broker refused, and what it has


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
        order = _locked(order_id)
        target = _status_target(order, update)
        if target is None:
            return
        order_transition(
            order,
            target,
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
                fields, event = _transition_staged(
                    order,
                    target,
                    source=source,
                    reason=_status_reason(update),
                    details={"broker_order_id": update.broker_order_id},
                    now=now,
                )
                changes.append((order, fields))
                events.append(event)
            _transitions_write(changes, events)
    return [u for u in updates if u.broker_order_id in one_by_one]


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
    order. One transaction; locks taken as strategy, position, order. Five statements with the
    BEGIN and the COMMIT: two for the locks (_fill_locks) and one for every write
    (_fill_record); bench/fill_apply.py counts them.
    """
    price = Decimal(price)
    if quantity <= 0:
        raise FillRefused(f"fill quantity {quantity}: must be at least 1")
    if not price.is_finite() or price <= 0 or price != price.quantize(PAISA):
        raise FillRefused(f"fill price {price}: must be a positive amount in whole paise")
    price = price.quantize(PAISA)  # 812.35, not the 812.3500 of a price column
    refusal = None
    with transaction.atomic():
        strategy, position, order, fill_known, earlier_fills = _fill_locks(order.pk, trade_id)
        if fill_known:
            return None
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
                strategy,
                order,
                position,
                earlier_fills,
                trade_id=trade_id,
                quantity=quantity,
                price=price,
                executed_at=executed_at,
                source=source,
            )
    if refusal:
        raise FillRefused(f"order {order.pk}, trade {trade_id}: {refusal}")
    return trade


def _fill_locks(order_id: int, trade_id: str):
    """Lock a fill's rows, strategy then position then order, in two statements; returns
    (strategy, position or None, order, whether ``trade_id`` is recorded, the order's earlier
    fills as (quantity, price)).

    The strategy first, alone: every fill of the strategy takes its lock first, so the next
    statement — with a snapshot taken after the lock was granted — sees every earlier fill.
    Then the order with its open position, joined: PostgreSQL locks the position as the join
    reaches it (the LATERAL subquery's own FOR UPDATE), then the order (the statement's). An
    order's strategy, instrument and product never change. Written in SQL: every fill runs
    these, and the ORM took longer to build them than PostgreSQL to run them.
    """
    from positions.models import Position

    with connection.cursor() as cursor:
        cursor.execute(_FILL_STRATEGY_LOCK, [order_id])
        row = cursor.fetchone()
        if row is None:
            raise OrderNotFound(f"order {order_id}: not found")
        strategy = Strategy.from_db(connection.alias, _FILL_STRATEGY_FIELDS, row)
        cursor.execute(_fill_order_lock_sql(), {"order_id": order_id, "trade_id": trade_id})
        row = cursor.fetchone()
    if row is None:
        raise OrderNotFound(f"order {order_id}: not found")
    *row, fill_known, quantities, prices = row
    split = rows.column_count(Order)
    order = rows.from_row(Order, row[:split])
    position = rows.from_row(Position, row[split:])
    return strategy, position, order, fill_known, list(zip(quantities, prices, strict=True))


_FILL_STRATEGY_FIELDS = ["id", "total_trades", "winning_trades", "losing_trades", "total_pnl"]
_FILL_STRATEGY_LOCK = f"""
    SELECT {", ".join(f"s.{name}" for name in _FILL_STRATEGY_FIELDS)}
    FROM strategies s WHERE s.id = (SELECT strategy_id FROM orders WHERE id = %s)
    FOR UPDATE OF s
"""  # noqa: S608 - column names only


@functools.cache
def _fill_order_lock_sql() -> str:
    from positions.models import Position

    return f"""
        SELECT {", ".join(rows.select_columns("o", Order))},
               {", ".join(rows.select_columns("p", Position))},
               EXISTS (SELECT FROM trades WHERE trade_id = %(trade_id)s),
               ARRAY(SELECT quantity FROM trades WHERE order_id = o.id ORDER BY id),
               ARRAY(SELECT price FROM trades WHERE order_id = o.id ORDER BY id)
        FROM orders o
        LEFT JOIN LATERAL (
            SELECT * FROM positions
            WHERE strategy_id = o.strategy_id AND symbol = o.symbol AND exchange = o.exchange
              AND product = o.product AND closed_at IS NULL
            ORDER BY id LIMIT 1
            FOR UPDATE
        ) p ON true
        WHERE o.id = %(order_id)s
        FOR UPDATE OF o
    """  # noqa: S608 - column names only


def _fill_record(
    strategy, order, position, previous, *, trade_id, quantity, price, executed_at, source
):
    """Record a fill the checks passed: the trade, the order's quantities and status with
    their events, the position and the strategy's counters, written in one statement.
    ``previous``: the order's earlier fills as (quantity, price)."""
    from positions.services import position_apply_fill

    writes = WriteBatch()
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
    trade = Trade(
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
    writes.insert(trade)
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
    _fill_transition(
        order,
        target,
        writes,
        source=source,
        reason=f"fill {trade_id}: {quantity} @ {price}",
        details={"trade_id": trade_id},
    )
    writes.insert(
        OrderEvent(
            order=order,
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
    )
    outcome = position_apply_fill(
        position,
        strategy=strategy,
        order=order,
        quantity=quantity,
        price=price,
        executed_at=executed_at,
        writes=writes,
    )
    # The strategy's row is locked: its counters are set from the values read under the lock.
    strategy.total_trades += 1
    strategy.winning_trades += outcome.wins
    strategy.losing_trades += outcome.losses
    strategy.total_pnl += outcome.realized - charges.total
    writes.update(strategy, ("total_trades", "winning_trades", "losing_trades", "total_pnl"))
    writes.execute()
    logger.info("fill %s: %s @ %s", trade_id, quantity, price, extra=log_context(order))
    return trade


def _fill_transition(order: Order, target: OrderStatus, writes: WriteBatch, **event) -> None:
    """order_transition for a fill, with the order's row and its event added to ``writes``;
    the fill's quantities are written whether the status moves or not."""
    fields, recorded = _transition_staged(order, target, **event)
    quantities = ["filled_quantity", "average_price", "last_fill_at", "updated_at"]
    writes.update(order, list(dict.fromkeys([*quantities, *fields])))
    if recorded is not None:
        writes.insert(recorded)


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
