"""Reconciliation of orders, in both directions, against one broker account's order book.

Ours against the broker's: a working order the book does not hold is asked about one by one
(the broker's order_status) once it is older than OMS_RECONCILE_ORDER_GRACE_SECONDS (one in
flight may not be in the book yet), and is ORDER_MISSING_AT_BROKER only if that answer is
none too. A fill the broker has and we miss is MISSING_FILL; fewer fills at the broker than
here, asked again one by one before deciding, is EXTRA_FILLS; a status the broker knows better
(it ended the order) is ORDER_STATUS_MISMATCH, and so is an order working at the broker that
we count as cancelled or expired.

The broker's against ours: an order in its book with neither a broker order id nor a tag of
ours is UNKNOWN_BROKER_ORDER (placed outside the OMS); one carrying the tag of an order of ours
that has no broker order id yet is that order (adopted: its report applied); one carrying the
tag of an order of ours that has another broker order id is a second order sent under it.

Safe fixes (applied with ``run.fixing``, through order_updates_apply as a broker report is):
applying the broker's fills, its end of an order, and adopting its report of an order in doubt.
Everything else is a person's call and offers no fix.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from orders.enums import EventSource, OrderStatus
from orders.models import Order
from orders.services import order_updates_apply
from positions.models import IssueType, Severity
from positions.reconciliation_findings import BookRun, Finding, order_severity

logger = logging.getLogger("oms.reconciliation")

# Orders cancelled or expired longer ago than this are settled: a fill racing a cancel comes
# within the session, and Kite's order book holds only the day's orders.
SETTLED_AFTER = timedelta(days=1)
ROW_FIELDS = (
    "id",
    "strategy_id",
    "client_order_id",
    "symbol",
    "exchange",
    "product",
    "status",
    "filled_quantity",
    "broker_order_id",
    "broker_tag",
    "updated_at",
)


def _grace_cutoff():
    return timezone.now() - timedelta(seconds=settings.OMS_RECONCILE_ORDER_GRACE_SECONDS)


def _orders_to_compare(strategies) -> list:
    """Our orders the broker may know better: the working ones, and the ones cancelled or
    expired lately (a fill can follow a cancel). FILLED and REJECTED ones are final."""
    recent = timezone.now() - SETTLED_AFTER
    return list(
        Order.objects.filter(strategy__in=strategies, broker_order_id__isnull=False)
        .filter(
            Q(status__in=sorted(OrderStatus.active()))
            | Q(status__in=[OrderStatus.CANCELLED, OrderStatus.EXPIRED], created_at__gte=recent)
        )
        .values_list(*ROW_FIELDS, named=True)
    )


def _order_finding(order, update, kind, severity, fingerprint, text, **extra) -> Finding:
    return Finding(
        kind,
        severity,
        fingerprint,
        text,
        strategy_id=order.strategy_id,
        symbol=order.symbol,
        exchange=order.exchange,
        product=order.product,
        order_id=order.id,
        internal_quantity=order.filled_quantity,
        broker_quantity=update.filled_quantity,
        details={
            "ours": order.status,
            "broker": update.raw_status or str(update.status),
            "client_order_id": order.client_order_id,
        },
        **extra,
    )


def compare_orders(orders, broker_orders: dict, *, live: bool, broker: str) -> list[Finding]:
    """Our orders (rows of ROW_FIELDS) against the broker's reports of them (by broker order
    id); pure (no database). Filled quantities are compared first, then the status."""
    active = OrderStatus.active()
    findings = []
    for order in orders:
        update = broker_orders.get(order.broker_order_id)
        if update is None:
            continue
        theirs = OrderStatus(update.status)
        ident = f"{broker}:order:{order.id}"
        if update.filled_quantity > order.filled_quantity:
            findings.append(
                _order_finding(
                    order,
                    update,
                    IssueType.MISSING_FILL,
                    order_severity(live=live, exposure=True),
                    f"FILL:{ident}",
                    f"order {order.id}: broker filled {update.filled_quantity}, we have "
                    f"{order.filled_quantity}",
                    fix=update,
                    safe_fix="apply the broker's fills to the order",
                )
            )
        elif update.filled_quantity < order.filled_quantity:
            findings.append(
                _order_finding(
                    order,
                    update,
                    IssueType.EXTRA_FILLS,
                    order_severity(live=live, exposure=True),
                    f"FILLS:{ident}",
                    f"order {order.id}: {order.filled_quantity} filled here, "
                    f"{update.filled_quantity} at the broker",
                )
            )
        elif theirs in OrderStatus.terminal() and order.status in active:
            findings.append(
                _order_finding(
                    order,
                    update,
                    IssueType.ORDER_STATUS_MISMATCH,
                    order_severity(live=live, exposure=False),
                    f"STATUS:{ident}",
                    f"order {order.id}: {order.status} here, {update.status} at the broker",
                    fix=update,
                    safe_fix=f"mark the order {theirs} as the broker says",
                )
            )
        elif theirs in active and order.status not in active and not update.status_unknown:
            findings.append(
                _order_finding(
                    order,
                    update,
                    IssueType.ORDER_STATUS_MISMATCH,
                    order_severity(live=live, exposure=True),
                    f"STATUS:{ident}",
                    f"order {order.id}: {order.status} here, still working at the broker "
                    f"({update.raw_status or theirs})",
                )
            )
    return findings


def _asked_again(run: BookRun, rows) -> dict:
    """The broker's answer for each of these orders, asked one by one ({} for none)."""
    answers = {}
    for row in rows:
        answer = run.broker.order_status(row)
        if answer is not None:
            answers[row.broker_order_id] = answer
    return answers


def missing_at_broker(rows, *, live: bool, broker: str) -> list[Finding]:
    """Working orders of ours that the broker, asked one by one, does not know."""
    return [
        Finding(
            IssueType.ORDER_MISSING_AT_BROKER,
            order_severity(live=live, exposure=True),
            f"GONE:{broker}:order:{row.id}",
            f"order {row.id}: {row.status} here, the broker has no order {row.broker_order_id}",
            strategy_id=row.strategy_id,
            symbol=row.symbol,
            exchange=row.exchange,
            product=row.product,
            order_id=row.id,
            internal_quantity=row.filled_quantity,
            details={
                "ours": row.status,
                "broker": "not in its book, nor when asked",
                "client_order_id": row.client_order_id,
                "broker_order_id": row.broker_order_id,
            },
        )
        for row in rows
    ]


def unknown_broker_orders(run: BookRun) -> list[Finding]:
    """The broker's orders that no order of ours has the id of: placed outside the OMS, an
    order of ours in doubt (its tag, no id yet: adopted), or a second one under our tag."""
    known = set(
        Order.objects.filter(broker_order_id__in=list(run.orders)).values_list(
            "broker_order_id", flat=True
        )
    )
    strangers = [u for key, u in run.orders.items() if key not in known]
    tagged = {
        row.broker_tag: row
        for row in Order.objects.filter(
            broker_tag__in=[u.tag for u in strangers if u.tag]
        ).values_list(*ROW_FIELDS, named=True)
    }
    cutoff = _grace_cutoff()
    findings = []
    for update in sorted(strangers, key=lambda u: u.broker_order_id):
        ours = tagged.get(update.tag) if update.tag else None
        if run.strategy is not None and (ours is None or ours.strategy_id != run.strategy.pk):
            continue  # one strategy's run: only orders under its own tags are its business
        if ours is not None and not ours.broker_order_id and ours.updated_at > cutoff:
            continue  # being sent right now: its own job records the broker's answer
        findings.append(_unknown_order(update, ours, live=run.live, broker=run.name))
    return findings


def _unknown_order(update, ours, *, live: bool, broker: str) -> Finding:
    working = OrderStatus(update.status) in OrderStatus.active()
    exposure = working or update.filled_quantity > 0
    fields = {
        "symbol": update.symbol,
        "exchange": update.exchange,
        "broker_quantity": update.filled_quantity,
        "broker_price": update.average_price,
        "details": {
            "broker": update.raw_status or str(update.status),
            "broker_order_id": update.broker_order_id,
            "tag": update.tag,
            "side": update.side,
            "quantity": update.quantity,
        },
    }
    what = f"{update.side} {update.symbol}".strip() or "an order"
    text = f"broker order {update.broker_order_id} ({what}, {fields['details']['broker']}"
    text += f", {update.filled_quantity} filled)"
    if ours is None:
        # Ended with nothing filled: nothing held, nothing can be: worth knowing, no more.
        level = order_severity(live=live, exposure=True) if exposure else Severity.INFO
        return Finding(
            IssueType.UNKNOWN_BROKER_ORDER,
            level,
            f"ORDER:{broker}:{update.broker_order_id}",
            f"{text}: no order of ours",
            **fields,
        )
    fields.update(
        strategy_id=ours.strategy_id,
        order_id=ours.id,
        internal_quantity=ours.filled_quantity,
        product=ours.product,
    )
    fields["details"]["client_order_id"] = ours.client_order_id
    fields["details"]["ours"] = ours.status
    if not ours.broker_order_id:
        return Finding(
            IssueType.UNKNOWN_BROKER_ORDER,
            order_severity(live=live, exposure=exposure),
            f"ORDER:{broker}:{update.broker_order_id}",
            f"{text}: carries the tag of order {ours.id} ({ours.status}, no broker order id)",
            fix=update,
            safe_fix=f"adopt the broker's order as order {ours.id} (apply its report)",
            **fields,
        )
    return Finding(
        IssueType.UNKNOWN_BROKER_ORDER,
        order_severity(live=live, exposure=True),
        f"ORDER:{broker}:{update.broker_order_id}",
        f"{text}: a second order under the tag of order {ours.id} "
        f"(broker order {ours.broker_order_id})",
        **fields,
    )


def orders_check(run: BookRun) -> list[Finding]:
    """Every order difference of the book, with the safe ones fixed when ``run.fixing``."""
    rows = _orders_to_compare(run.book.strategies)
    in_book = [row for row in rows if row.broker_order_id in run.orders]
    cutoff = _grace_cutoff()
    absent = [
        row
        for row in rows
        if row.broker_order_id not in run.orders
        and row.status in OrderStatus.active()
        and row.updated_at <= cutoff
    ]
    fewer = [
        r for r in in_book if run.orders[r.broker_order_id].filled_quantity < r.filled_quantity
    ]
    answers = {**run.orders, **_asked_again(run, [*absent, *fewer])}
    found = [row for row in absent if row.broker_order_id in answers]
    compared = [*in_book, *found]
    run.report.orders_compared += len(compared)
    findings = compare_orders(compared, answers, live=run.live, broker=run.name)
    findings += missing_at_broker(
        [row for row in absent if row.broker_order_id not in answers],
        live=run.live,
        broker=run.name,
    )
    findings += unknown_broker_orders(run)
    if run.fixing:
        findings = [_fix(finding) for finding in findings]
    return findings


def unconfirmed_cancels(strategies, broker_orders: dict, *, live: bool, broker: str) -> list:
    """Orders CANCEL_PENDING for longer than OMS_CANCEL_UNCONFIRMED_SECONDS: the broker has not
    confirmed their cancel (its job may have run out of retries), so the order may still be
    working at the broker while we show it being cancelled. CRITICAL for LIVE orders. A HALT
    sends their cancels again; the sweep re-defers their jobs."""
    since = timezone.now() - timedelta(seconds=settings.OMS_CANCEL_UNCONFIRMED_SECONDS)
    pending = Order.objects.filter(
        strategy__in=strategies, status=OrderStatus.CANCEL_PENDING
    ).filter(
        Q(cancel_requested_at__lte=since)
        | Q(cancel_requested_at__isnull=True, updated_at__lte=since)
    )
    findings = []
    for order in pending.order_by("pk"):
        update = broker_orders.get(order.broker_order_id) if order.broker_order_id else None
        at_broker = (update.raw_status or str(update.status)) if update else "not in its book"
        asked = order.cancel_requested_at or order.updated_at
        findings.append(
            Finding(
                IssueType.CANCEL_UNCONFIRMED,
                order_severity(live=live, exposure=True),
                f"CANCEL:{broker}:order:{order.pk}",
                f"order {order.pk}: cancel requested at {timezone.localtime(asked):%H:%M:%S}, "
                f"not confirmed by the broker (broker: {at_broker})",
                strategy_id=order.strategy_id,
                symbol=order.symbol,
                exchange=order.exchange,
                product=order.product,
                order_id=order.pk,
                internal_quantity=order.filled_quantity,
                broker_quantity=update.filled_quantity if update else None,
                details={
                    "ours": order.status,
                    "broker": at_broker,
                    "client_order_id": order.client_order_id,
                    "broker_order_id": order.broker_order_id or "",
                    "cancel_requested_at": asked.isoformat(),
                },
            )
        )
    return findings


def cancels_check(run: BookRun) -> list[Finding]:
    """Cancels the broker has not confirmed (after the order fixes: a cancel the broker's
    book confirms is no longer pending)."""
    return unconfirmed_cancels(run.book.strategies, run.orders, live=run.live, broker=run.name)


FIXABLE = (IssueType.MISSING_FILL, IssueType.ORDER_STATUS_MISMATCH, IssueType.UNKNOWN_BROKER_ORDER)


def _fix(finding: Finding) -> Finding:
    """Apply the broker's report of the order behind ``finding``; say in ``details`` whether
    the order now agrees with the broker (``fixed``) or what is still wrong."""
    if finding.fix is None or finding.issue_type not in FIXABLE:
        return finding
    update = finding.fix
    try:
        order_updates_apply([update], source=EventSource.SYSTEM)
    except Exception as error:  # an order that cannot be fixed stays an open issue
        logger.exception("reconciliation: auto-fix of order %s failed", finding.order_id)
        outcome = {"fixed": False, "error": f"{type(error).__name__}: {error}"}
    else:
        order = Order.objects.only("status", "filled_quantity", "broker_order_id").get(
            pk=finding.order_id
        )
        still = []
        if order.broker_order_id != update.broker_order_id:
            still.append(f"broker order id {order.broker_order_id}, not {update.broker_order_id}")
        if order.filled_quantity < update.filled_quantity:
            still.append(f"filled {order.filled_quantity} of the broker's {update.filled_quantity}")
        if OrderStatus(update.status) in OrderStatus.terminal() and order.is_active:
            still.append(f"still {order.status}, the broker says {update.status}")
        outcome = {"fixed": not still, "status": order.status, "filled": order.filled_quantity}
        if still:
            outcome["error"] = "; ".join(still)
    return replace(finding, details={**finding.details, "auto_fix": outcome})
