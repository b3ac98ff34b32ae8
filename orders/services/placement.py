"""Placing an order, the whole sequence in one place, top to bottom (``order_place``):

1. Locks (one statement, ``risk.validator.checks_lock``): the kill switch's shared lock, then
   the strategy's row (FOR NO KEY UPDATE). Placements and modifications of one strategy take
   them first, so their checks run one at a time, each seeing every order the one before it
   wrote; a fill takes the strategy's row too, so the position the checks read is the one in
   force. A kill switch change takes its lock exclusively: it waits for the placements under
   way, and none starts its checks until the change has committed.
2. Context (one statement, after the locks, so it sees everything committed before them): the
   limits, the instrument, the last price, the position, a staff holiday, both kill switches,
   and the order this client_order_id placed already — a replay is answered with that order.
3. Checks (``risk.validator``, in Python): every violation at once. The few that need more
   (working orders, exposure, today's PnL) read it now, still under the locks, so each check is
   exact however many placements of the strategy arrive at the same instant.
4. Write (one statement): one token from the strategy's order rate (``oms_take_token``) and,
   only if granted, the order, its first event and its submission job. Over the rate nothing
   is written and OrderThrottled is raised (its client_order_id stays free for the retry).
   Refused by the checks: the order is written REJECTED with every violation, and counts no
   rate. The commit releases the locks; a worker sends the order.
"""

from __future__ import annotations

import functools
import logging
import secrets

from django.db import IntegrityError, connection, transaction

from omsproject.rows import insert_columns, insert_json, saved
from orders import jobs
from orders.domain import OrderRequest, OrderResult, Violation
from orders.enums import EventKind, EventSource, OrderStatus
from orders.models import Order, OrderEvent
from orders.services.errors import IdempotencyConflict, OrderThrottled, StrategyNotFound
from orders.services.events import log_context, order_transition
from risk import ratelimit
from risk.validator import checks_lock, order_rate_bucket, order_verdict
from risk.variety_checks import variety_checks

logger = logging.getLogger("oms.orders")

CLIENT_ID_CONSTRAINT = "order_client_id_unique_per_strategy"


def order_place(
    request: OrderRequest,
    *,
    actor: str,
    source: EventSource = EventSource.API,
    metadata: dict | None = None,
    closes_position=None,
    exit_key: str = "",
) -> OrderResult:
    """Record an order and queue it for the broker, or record why it was refused.

    Guarantees: the order row, its first event and the broker-submission job are written in
    one transaction (if it rolls back, no job exists; if the worker dies, the job is retried).
    The same (strategy, client_order_id) never makes a second order: a replay returns the
    original with ``replayed=True``; the same id with different content raises
    IdempotencyConflict. A refused order is kept as REJECTED with every violation. Every check
    holds when orders of one strategy arrive at once (they are checked one at a time), and no
    order is accepted once a kill switch change that refuses it has committed. Over the order
    rate nothing is written (OrderThrottled).

    ``closes_position`` and ``exit_key``: the position an exit closes and its exit (for
    positions.exits.position_close, the one owner of exits; nobody else passes them).
    """
    fingerprint = request.fingerprint()
    try:
        with transaction.atomic():
            strategy = checks_lock(request.strategy_id)
            if strategy is None:
                raise StrategyNotFound(f"strategy {request.strategy_id}: not found")
            verdict = order_verdict(request, strategy=strategy)
            if verdict.placed_order_id is not None:
                return _replay(Order.objects.get(pk=verdict.placed_order_id), fingerprint)
            order, received = _new_order(
                request,
                strategy=strategy,
                fingerprint=fingerprint,
                actor=actor,
                source=source,
                metadata=metadata,
                closes_position=closes_position,
                exit_key=exit_key,
            )
            if verdict.violations:
                _write_refused(order, received, violations=verdict.violations)
            else:
                _write_accepted(order, received, strategy=strategy, limits=verdict.limits)
    except IntegrityError as error:
        return _replay_after_clash(error, request, fingerprint)
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
        violations=tuple(verdict.violations),
        order=order,
    )


def _new_order(
    request: OrderRequest,
    *,
    strategy,
    fingerprint,
    actor,
    source,
    metadata,
    closes_position=None,
    exit_key: str = "",
    basket=None,
    parent=None,
):
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
        metadata=_metadata(request, metadata, actor),
        closes_position=closes_position,
        exit_key=exit_key,
        variety=request.variety,
        iceberg_legs=request.iceberg_legs,
        iceberg_quantity=request.iceberg_quantity,
        basket=basket,
        parent=parent,
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


def _metadata(request: OrderRequest, metadata: dict | None, actor: str) -> dict:
    written = {**(metadata or {}), "actor": actor}
    if checks := variety_checks(request):
        written["checks"] = checks  # an AMO: which checks ran now, which wait for the open
    return written


def _new_broker_tag() -> str:
    """An alphanumeric reference of 20 characters (Kite's tag limit) unique to one order."""
    return "OMS" + secrets.token_hex(8)[:17].upper()


@functools.cache
def _accepted_sql() -> str:
    """One token from the strategy's order rate and, only if granted, the order, its first
    event and its submission job (procrastinate's own SQL function, with the job's per-order
    lock); its text never changes, so it is prepared once per connection."""
    order_columns = insert_columns(Order)
    event_columns = insert_columns(OrderEvent, skip="order")
    return f"""
        WITH rate AS (
            SELECT * FROM oms_take_token(
                %(rate_key)s::varchar, %(rate)s::integer, %(rate)s::numeric,
                %(rate_now)s::timestamptz
            )
        ), new_order AS (
            INSERT INTO orders ({order_columns})
            SELECT {order_columns}
            FROM rate, jsonb_populate_record(NULL::orders, %(order)s::jsonb)
            WHERE rate.granted
            RETURNING id
        ), first_event AS (
            INSERT INTO order_events (order_id, {event_columns})
            SELECT new_order.id, {event_columns}
            FROM new_order, jsonb_populate_record(NULL::order_events, %(event)s::jsonb)
        )
        SELECT rate.granted, rate.tokens, rate.refill_per_second, new_order.id,
            CASE WHEN new_order.id IS NOT NULL THEN procrastinate_defer_jobs_v1(ARRAY[ROW(
                %(job_queue)s, %(job_task)s, %(job_priority)s, 'order-' || new_order.id, NULL,
                jsonb_build_object('order_id', new_order.id), NULL
            )::procrastinate_job_to_defer_v1]) END
        FROM rate LEFT JOIN new_order ON true
    """  # noqa: S608 - column names only; values are parameters


def _write_accepted(order: Order, received: OrderEvent, *, strategy, limits) -> None:
    """Write an accepted order, or raise OrderThrottled (nothing written) over the order rate."""
    rate_key, rate = order_rate_bucket(strategy, limits=limits)
    queue, task, priority = jobs.submit_job_fields()
    with connection.cursor() as cursor:
        cursor.execute(
            _accepted_sql(),
            {
                "rate_key": rate_key,
                "rate": rate,
                "rate_now": ratelimit.bucket_clock(),  # None: the database's clock
                "order": insert_json(order),
                "event": insert_json(received, skip="order"),
                "job_queue": queue,
                "job_task": task,
                "job_priority": priority,
            },
        )
        granted, tokens, refill, order_id, _job_ids = cursor.fetchone()
    if not granted:
        raise OrderThrottled.over_rate(
            strategy, rate=rate, wait=ratelimit.token_wait(granted, tokens, refill)
        )
    saved(order, order_id)
    received.order = order


def _write_refused(order: Order, received: OrderEvent, *, violations) -> None:
    order.metadata["violations"] = [v.as_dict() for v in violations]
    order.save(force_insert=True)
    received.order = order
    received.save(force_insert=True)
    order_transition(
        order,
        target=OrderStatus.REJECTED,
        source=EventSource.SYSTEM,
        reason="; ".join(v.message for v in violations),
        actor="pre-trade validator",
        details={"violations": order.metadata["violations"]},
    )


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


def _replay_after_clash(error: IntegrityError, request: OrderRequest, fingerprint) -> OrderResult:
    """An order written by a path that does not take the strategy's lock won the race: the
    unique constraint refused this one, which is then a replay of it."""
    diag = getattr(error.__cause__, "diag", None)
    if getattr(diag, "constraint_name", None) != CLIENT_ID_CONSTRAINT:
        raise error
    existing = Order.objects.get(
        strategy_id=request.strategy_id, client_order_id=request.client_order_id
    )
    return _replay(existing, fingerprint)
