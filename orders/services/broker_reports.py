"""Applying what brokers report about orders (postbacks, polls, acknowledgements, the paper
exchange): fills first, then the status, whatever order, repetition or lateness they come in.

Every report passes the contradiction rules first (report_contradictions, the rules in
orders.report_checks): one that contradicts its order — another instrument, more filled than
ordered, a BUY filled above its limit, an absurd price — is not applied at all and becomes a
reconciliation issue naming the order and the figures. A Kite postback is only a notification:
its checksum signs the order id and timestamp, not the figures, so the postback view defers
the confirm job (order_confirm_request), which asks the broker (order_confirm_at_broker).
"""

from __future__ import annotations

import logging
from decimal import Decimal

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from orders import jobs
from orders.brokers import BrokerFill, BrokerOrderUpdate, broker_for
from orders.enums import EventKind, EventSource, OrderSide, OrderStatus, OrderType
from orders.models import Order, OrderEvent, Strategy
from orders.money import to_paisa
from orders.report_checks import ReportBounds
from orders.report_checks import report_contradictions as contradictions_of
from orders.services.errors import FillRefused
from orders.services.events import (
    log_context,
    order_locked,
    order_note,
    order_transition,
    transition_staged,
    transitions_write,
)
from orders.services.fills import fill_apply
from positions.models import IssueType, Severity
from positions.selectors import last_price
from positions.services import reconciliation_issue_record
from risk import jobs as risk_jobs

logger = logging.getLogger("oms.orders")

LIMITED = (OrderType.LIMIT, OrderType.SL)  # order types with a limit price


def order_updates_apply(
    updates: tuple[BrokerOrderUpdate, ...] | list[BrokerOrderUpdate], *, source: EventSource
) -> None:
    """Apply broker reports of orders: fills first, then the status.

    Reports may come late, twice or out of order. Explicit fills are deduplicated by trade id;
    cumulative figures (a Kite postback) become one fill for the increment over what we have,
    under a trade id derived from the cumulative quantity, so a repeated or older report adds
    nothing. A status the state machine does not allow is refused and recorded. Reports that
    only move a status are applied together (_statuses_apply). A report that contradicts its
    order (report_contradictions) is not applied at all: it becomes a reconciliation issue.
    """
    for update in _statuses_apply(_credible(list(updates), source=source), source=source):
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


# --- what a report may say about its order ------------------------------------------------------


def report_contradictions(order: Order, update: BrokerOrderUpdate) -> list[str]:
    """Each way ``update`` contradicts ``order`` ([] when it is credible): the rules of
    orders.report_checks, against the order's most permissive terms (_report_bounds).

    Every path that applies broker reports goes through it (order_updates_apply calls it):
    a postback's confirmation, the poll, reconciliation's auto-fix, the paper exchange.
    """
    return contradictions_of(
        _report_bounds(order),
        symbol=update.symbol,
        exchange=update.exchange,
        side=update.side,
        filled_quantity=update.filled_quantity,
        average_price=update.average_price,
        fills=[(fill.quantity, fill.price) for fill in update.fills],
    )


def _report_bounds(order: Order) -> ReportBounds:
    """The order's terms a report is checked against: its own, a modification on its way to
    the broker, and those it had before each accepted modification (the MODIFY events)."""
    terms = [(order.order_type, _paise(order.price), order.quantity)]
    pending = order.metadata.get("pending_modification")
    if pending:
        terms.append(_terms(pending))
    if order.modification_count:
        events = OrderEvent.objects.filter(order=order, kind=EventKind.MODIFY)
        for details in events.values_list("details", flat=True):
            terms += [_terms(details[key]) for key in ("applied", "previous") if key in details]
    limits = [price for order_type, price, _ in terms if order_type in LIMITED and price]
    limit = None
    if len(limits) == len(terms):  # a term without a limit (MARKET, SL-M) allows any price
        limit = max(limits) if order.side == OrderSide.BUY else min(limits)
    if order.order_type in LIMITED and order.price:
        reference = _paise(order.price)
    elif order.trigger_price:
        reference = _paise(order.trigger_price)
    else:  # the last price the order's strategy sees (oms_last_price: the one rule)
        reference = last_price(
            strategy=order.strategy, symbol=order.symbol, exchange=order.exchange
        )
    return ReportBounds(
        symbol=order.symbol,
        exchange=order.exchange,
        side=order.side,
        max_quantity=max(quantity for _, _, quantity in terms),
        limit_price=limit,
        reference_price=reference,
    )


def _paise(price) -> Decimal | None:
    return to_paisa(Decimal(price)) if price else None  # 700.00, not a column's 700.0000


def _terms(values: dict) -> tuple[str, Decimal | None, int]:
    return values.get("order_type", ""), _paise(values.get("price")), int(values["quantity"])


def _credible(updates: list[BrokerOrderUpdate], *, source: EventSource) -> list:
    """The reports that do not contradict the order they name, in their order; the others are
    recorded as issues (_contradiction_record). Reports of orders we do not know pass: the
    one-by-one path logs them."""
    if not updates:
        return updates
    broker_ids = {u.broker_order_id for u in updates if u.broker_order_id}
    tags = {u.tag for u in updates if u.tag}
    orders = list(
        Order.objects.filter(Q(broker_order_id__in=broker_ids) | Q(broker_tag__in=tags))
        .select_related("strategy")
        .order_by("pk")
    )
    by_broker_id = {o.broker_order_id: o for o in orders if o.broker_order_id}
    by_tag = {o.broker_tag: o for o in orders}
    credible = []
    for update in updates:
        # The order the one-by-one path finds: by the broker's id, else by our tag.
        order = by_broker_id.get(update.broker_order_id) if update.broker_order_id else None
        order = order or by_tag.get(update.tag)
        found = report_contradictions(order, update) if order is not None else []
        if found:
            _contradiction_record(order, update, found, source=source)
        else:
            credible.append(update)
    return credible


def _column_price(price) -> Decimal | None:
    """A reported price as the issue's price column can hold it (the details keep the text)."""
    if price is None or not Decimal(price).is_finite() or not 0 < Decimal(price) < 10**10:
        return None
    return Decimal(price)


def _contradiction_record(
    order: Order, update: BrokerOrderUpdate, found: list[str], *, source: EventSource
) -> None:
    """A report that contradicts its order: nothing of it applied; an issue (CRITICAL for a
    LIVE strategy, whose kill switch rule then runs as a job) and a REFUSED event on the order
    say what was refused. The issue's fingerprint names no broker: reconciliation, which
    resolves its own issues once it no longer sees them, leaves it to a person."""
    live = order.strategy.is_live
    broker = "kite" if live else "paper"
    report = {
        "broker": broker,
        "broker_order_id": update.broker_order_id,
        "status": update.raw_status or str(update.status),
        "symbol": update.symbol,
        "exchange": update.exchange,
        "side": update.side,
        "filled_quantity": update.filled_quantity,
        "average_price": None if update.average_price is None else str(update.average_price),
        "fills": [[f.trade_id, f.quantity, str(f.price)] for f in update.fills],
    }
    terms = f"{order.side} {order.quantity} {order.exchange}:{order.symbol} {order.order_type}" + (
        f" {_paise(order.price)}" if order.price else ""
    )
    description = (
        f"order {order.pk} ({terms}): {broker} report refused, nothing applied: " + "; ".join(found)
    )
    with transaction.atomic():
        issue, new_critical = reconciliation_issue_record(
            fingerprint=f"REPORT:order:{order.pk}",
            issue_type=IssueType.CONTRADICTORY_REPORT,
            severity=Severity.CRITICAL if live else Severity.WARNING,
            strategy_id=order.strategy_id,
            symbol=order.symbol,
            exchange=order.exchange,
            product=order.product,
            order_id=order.pk,
            internal_quantity=order.filled_quantity,
            broker_quantity=update.filled_quantity,
            internal_price=order.average_price,
            broker_price=_column_price(update.average_price),
            description=description,
            details={
                "contradictions": found,
                "report": report,
                "source": str(source),
                "order": {
                    "client_order_id": order.client_order_id,
                    "side": order.side,
                    "order_type": order.order_type,
                    "quantity": order.quantity,
                    "price": None if order.price is None else str(_paise(order.price)),
                    "trigger_price": None
                    if order.trigger_price is None
                    else str(order.trigger_price),
                    "filled_quantity": order.filled_quantity,
                },
            },
        )
        order_note(
            order,
            kind=EventKind.REFUSED,
            source=source,
            reason=f"broker report refused: {'; '.join(found)}",
            details={"issue_id": issue.pk, "report": report},
        )
        if new_critical:
            risk_jobs.defer_critical_issue(issue)
    logger.error(
        "broker report refused: %s", description, extra={**log_context(order), "issue": issue.pk}
    )


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
    price = to_paisa((value_after - value_before) / increment)
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


def order_confirm_request(update: BrokerOrderUpdate) -> Order | None:
    """A postback reported ``update``: defer the job that asks the broker for the truth
    (order_confirm_at_broker) and apply nothing of the postback itself. Returns the order the
    postback names, or None when it names none of ours (logged; reconciliation looks at the
    broker's book). At most one confirm job waits per order (orders.jobs.defer_confirm)."""
    order = None
    if update.broker_order_id:
        order = Order.objects.filter(broker_order_id=update.broker_order_id).first()
    if order is None and update.tag:
        order = Order.objects.filter(broker_tag=update.tag).first()
    if order is None:
        logger.warning(
            "postback for an order we do not know",
            extra={"broker_order_id": update.broker_order_id, "tag": update.tag},
        )
        return None
    if not jobs.defer_confirm(order):
        logger.info("postback: a confirmation is already waiting", extra=log_context(order))
    return order


def order_confirm_at_broker(order_id: int) -> None:
    """The confirm job: ask the order's broker for its state (Kite: the order's history, as
    the poll does) and apply that answer through order_updates_apply, which refuses an answer
    that contradicts the order. Idempotent: applying the same answer twice changes nothing."""
    order = Order.objects.select_related("strategy").get(pk=order_id)
    update = broker_for(order.strategy).order_status(order)
    if update is None:
        logger.warning("confirmation: the broker does not know the order", extra=log_context(order))
        return
    order_updates_apply([update], source=EventSource.BROKER)


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
