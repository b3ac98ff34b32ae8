"""Applying what brokers report about orders (postbacks, polls, acknowledgements, the paper
exchange): fills first, then the status, whatever order, repetition or lateness they come in.

Every report passes the contradiction rules first (report_contradictions, the rules in
orders.report_checks): one that contradicts its order — another instrument, more filled than
ordered, a BUY filled above its limit, an absurd price — is not applied at all and becomes a
reconciliation issue naming the order and the figures. A Kite postback is only a notification:
its checksum signs the order id and timestamp, not the figures, so the postback view defers
the confirm job (order_confirm_request), which asks the broker (order_confirm_at_broker). The
ticker's order updates are notifications the same way (order_update_notified). The broker's
answer carries Kite's own trades of the order once anything is filled, each fill at its exact
price; the poll (orders_poll) asks about working orders nothing was heard of.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import timedelta
from decimal import Decimal

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from orders import jobs
from orders.brokers import BrokerError, BrokerFill, BrokerOrderUpdate, broker_for
from orders.enums import EventKind, EventSource, OrderSide, OrderStatus, OrderType
from orders.models import Order, OrderEvent, Strategy, Trade
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
from orders.services.pending_modification import (
    PENDING,
    SENT_COUNT,
    modification_confirm,
    modification_follow,
)
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
    a report listing every execution of the order (``fills_complete``: Kite's trades) adds
    only those not booked yet, skipping the quantity booked from cumulative figures before
    (_fills_not_booked); cumulative figures (the order book) become one fill for the increment
    over what we have, under a trade id derived from the cumulative quantity, so a repeated or
    older report adds nothing. A status the state machine does not allow is refused and
    recorded; a status the broker's adapter does not know moves nothing and raises an alert
    (_unknown_status_record). A pending modification the broker confirms by report is applied
    (before the fills) or dropped as the report shows (orders.services.pending_modification).
    Reports that only move a status are applied together (_statuses_apply). A report that
    contradicts its order (report_contradictions) is not applied at all: it becomes a
    reconciliation issue.
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
        if update.status_unknown:
            _unknown_status_record(order, update, source=source)
        awaiting_confirmation = bool((order.metadata.get(PENDING) or {}).get("sent_at"))
        if awaiting_confirmation:
            modification_confirm(order, update, source=source)
        if update.fills and not update.fills_complete:
            _fills_apply(order, update.fills, source=source)
        else:
            # The increment is measured under the strategy lock that every fill takes first:
            # two cumulative reports racing (a postback and a poll) must not both measure it
            # from the same filled quantity, or the larger one is refused as an overfill.
            with transaction.atomic():
                Strategy.objects.select_for_update().get(pk=order.strategy_id)
                if update.fills_complete:
                    _fills_apply(order, _fills_not_booked(order, update.fills), source=source)
                # What the trades do not cover yet (Kite's trades lag its order status).
                _fills_apply(order, _fill_from_cumulative(order, update), source=source)
        _status_apply(order.pk, update, source=source)
        if awaiting_confirmation:
            modification_follow(order.pk, update, source=source)


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
    the broker, those it had before each accepted modification and those of every
    modification sent to the broker, whatever became of it (the MODIFY events)."""
    terms = [(order.order_type, _paise(order.price), order.quantity)]
    pending = order.metadata.get(PENDING)
    if pending:
        terms.append(_terms(pending))
    if order.modification_count or order.metadata.get(SENT_COUNT):
        events = OrderEvent.objects.filter(order=order, kind=EventKind.MODIFY)
        for details in events.values_list("details", flat=True):
            terms += [
                _terms(details[key]) for key in ("applied", "previous", "sent") if key in details
            ]
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


def _fills_not_booked(order: Order, fills) -> list[BrokerFill]:
    """Of every execution of the order (``fills``, a fills_complete report), those not booked
    yet, oldest first. Booked are those recorded under their trade id, and the oldest of the
    others up to the quantity booked under other ids (fills derived from cumulative figures,
    which cover the order's earliest executions): the same execution is never counted twice,
    whichever way it was first reported. Call under the strategy lock."""
    order.refresh_from_db(fields=["filled_quantity"])
    booked = dict(
        Trade.objects.filter(order=order, trade_id__in=[f.trade_id for f in fills]).values_list(
            "trade_id", "quantity"
        )
    )
    covered = order.filled_quantity - sum(booked.values())
    new = []
    for fill in sorted(fills, key=lambda fill: fill.executed_at):
        if fill.trade_id in booked:
            continue
        if covered >= fill.quantity:
            covered -= fill.quantity
            continue
        if covered > 0:  # half covered: its remainder is booked under its own id
            fill = replace(fill, quantity=fill.quantity - covered)
            covered = 0
        new.append(fill)
    return new


def _unknown_status_record(order: Order, update: BrokerOrderUpdate, *, source: EventSource):
    """A status the broker's adapter does not know: the order's status is not moved (the
    report's credible figures still apply), a WARNING issue names the order and the raw
    status, and the first time it is seen a confirmation of the order is deferred (a job
    that asks the broker again; not each time, or the job would defer itself for ever).
    The fingerprint names no broker: reconciliation leaves it to a person."""
    raw = update.raw_status[:60]
    with transaction.atomic():
        issue, _ = reconciliation_issue_record(
            fingerprint=f"BROKER_STATUS:order:{order.pk}:{raw}",
            issue_type=IssueType.UNKNOWN_BROKER_STATUS,
            severity=Severity.WARNING,
            strategy_id=order.strategy_id,
            symbol=order.symbol,
            exchange=order.exchange,
            product=order.product,
            order_id=order.pk,
            internal_quantity=order.filled_quantity,
            broker_quantity=update.filled_quantity,
            internal_price=order.average_price,
            broker_price=_column_price(update.average_price),
            description=(
                f"order {order.pk}: the broker reports status {raw!r}, which the OMS does not "
                f"know: the order stays {order.status} (fills applied when credible); "
                "check the order at the broker"
            ),
            details={
                "raw_status": update.raw_status,
                "broker_order_id": update.broker_order_id,
                "message": update.message,
                "filled_quantity": update.filled_quantity,
                "source": str(source),
                "client_order_id": order.client_order_id,
            },
        )
        if issue.occurrences == 1:
            jobs.defer_confirm(order)
    logger.error(
        "unknown broker status %r: order status not moved",
        update.raw_status,
        extra={**log_context(order), "issue": issue.pk},
    )


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
        ).only("pk", "broker_order_id", "filled_quantity", "metadata")
    }
    one_by_one = {
        update.broker_order_id
        for update in updates
        if update.broker_order_id not in known
        or update.fills
        or update.status_unknown
        or update.filled_quantity > known[update.broker_order_id].filled_quantity
        or (known[update.broker_order_id].metadata.get(PENDING) or {}).get("sent_at")
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


def order_update_notified(update: BrokerOrderUpdate, *, channel: str) -> Order | None:
    """A broker notified ``update`` (``channel``: "postback", Kite's HTTP postback; "ticker",
    KiteTicker's on_order_update): defer the job that asks the broker for the truth
    (order_confirm_at_broker) and apply nothing of the notification itself. Every channel
    is deduplicated the same way: at most one confirm job waits per order
    (orders.jobs.defer_confirm), so the same update by postback and by ticker asks once.
    Returns the order it names, or None when it names none of ours (logged; reconciliation
    looks at the broker's book)."""
    order = None
    if update.broker_order_id:
        order = Order.objects.filter(broker_order_id=update.broker_order_id).first()
    if order is None and update.tag:
        order = Order.objects.filter(broker_tag=update.tag).first()
    if order is None:
        # Kite posts back only our app's orders; the ticker tells of every order of the user
        # (the desk's own, placed on Kite's web or mobile apps, too).
        logger.log(
            logging.WARNING if channel == "postback" else logging.INFO,
            "%s order update for an order we do not know",
            channel,
            extra={"broker_order_id": update.broker_order_id, "tag": update.tag},
        )
        return None
    if not jobs.defer_confirm(order):
        logger.info(
            "%s order update: a confirmation is already waiting", channel, extra=log_context(order)
        )
    return order


def order_confirm_request(update: BrokerOrderUpdate) -> Order | None:
    """A postback reported ``update``: order_update_notified by the "postback" channel."""
    return order_update_notified(update, channel="postback")


def order_confirm_at_broker(order_id: int) -> None:
    """The confirm job: ask the order's broker for its state (Kite: the order's history and,
    once filled, its trades, as the poll does) and apply that answer through
    order_updates_apply, which refuses an answer that contradicts the order. Idempotent:
    applying the same answer twice changes nothing."""
    order = Order.objects.select_related("strategy").get(pk=order_id)
    update = broker_for(order.strategy).order_status(order)
    if update is None:
        logger.warning("confirmation: the broker does not know the order", extra=log_context(order))
        return
    order_updates_apply([update], source=EventSource.BROKER)


POLL_FAILURE_NOTE_EVERY = timedelta(minutes=10)  # at most one NOTE a failing order gets


@dataclass(frozen=True)
class PollOutcome:
    """How many working orders a poll asked the broker about, and how many of those failed."""

    asked: int
    failed: int


def orders_poll(*, stale_after) -> PollOutcome:
    """Ask the broker for the state of working orders not updated for ``stale_after``.

    Postbacks can be lost; this is how the OMS catches up. One order failing (the broker
    refuses or does not answer about it, its report cannot be applied) does not end the
    poll: it is logged with the order, noted on it (a NOTE event, at most one per
    POLL_FAILURE_NOTE_EVERY), counted, and the next order is asked.
    """
    cutoff = timezone.now() - stale_after
    working = Order.objects.filter(
        status__in=[s for s in OrderStatus.active() if s != OrderStatus.PENDING],
        broker_order_id__isnull=False,
        updated_at__lt=cutoff,
    ).select_related("strategy")
    asked = failed = 0
    for order in working.iterator():
        asked += 1
        try:
            update = broker_for(order.strategy).order_status(order)
            if update is not None:
                order_updates_apply([update], source=EventSource.BROKER)
        except BrokerError as error:
            failed += 1
            logger.warning("poll: order %s failed: %s", order.pk, error, extra=log_context(order))
            _poll_failure_note(order, error)
        except Exception:  # a bug or the database: logged with its traceback, the poll goes on
            failed += 1
            logger.exception("poll: order %s failed", order.pk, extra=log_context(order))
    if failed:
        logger.warning("poll: %s of %s orders failed", failed, asked)
    return PollOutcome(asked=asked, failed=failed)


def _poll_failure_note(order: Order, error: BrokerError) -> None:
    since = timezone.now() - POLL_FAILURE_NOTE_EVERY
    noted = OrderEvent.objects.filter(
        order=order, kind=EventKind.NOTE, details__has_key="poll_failed", created_at__gte=since
    ).exists()
    if not noted:
        order_note(
            order,
            source=EventSource.SYSTEM,
            reason=f"poll: the broker could not be asked about the order: {error}",
            details={"poll_failed": type(error).__name__, "error": str(error)},
        )
