"""Orders in flight never stranded: their jobs' failures recorded (order_job_failed), and the
sweep (orders_sweep, every minute) that gives an order its job again, or a person.

An order is in flight while the broker's word on it is awaited: SUBMITTED without a broker id
(being sent), UNKNOWN (the send's answer was lost), CANCEL_PENDING (a cancel asked for) or
with a modification pending. A job settles each of them; a job can run out of retries (a Kite
session expired for minutes, the network down), and the order would stay in flight for good.

Imported as ``orders.services.sweep``, not through the package: it records issues through
positions.services, which itself imports orders.services.fills.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from orders import jobs
from orders.brokers import BrokerError
from orders.enums import EventSource, OrderStatus
from orders.models import Order
from orders.selectors import IN_FLIGHT, orders_in_flight
from orders.services.events import log_context, order_locked, order_note
from positions.models import IssueType, ReconciliationIssue, Severity
from positions.services import reconciliation_issue_record, reconciliation_issue_resolve

logger = logging.getLogger("oms.orders")

SWEEP = "sweep"  # the actor of what the sweep does


def order_job_failed(
    order_ids, *, job: str, error: BrokerError, attempt: int, retry_in: float | None
) -> int:
    """Record a failed attempt of an order's job at the broker: a NOTE event on each of the
    orders still in flight, saying what failed and when it is tried again (``retry_in`` None:
    it is not; the sweep takes it from there). At most one event per order and attempt; a
    failure worded exactly as the order's latest event is not repeated (a session expired for
    an hour says so once, not sixty times). Returns how many events were written."""
    if retry_in is None:
        reason = f"broker call failed: {error}; no retry left (the sweep resumes it)"
    else:
        wait = f"{retry_in:.1f}" if retry_in >= 1 else f"{retry_in:.3f}"
        reason = f"broker call failed: {error}, retry in {wait}s"
    written = 0
    for order in Order.objects.filter(IN_FLIGHT, pk__in=list(order_ids)).order_by("pk"):
        latest = order.events.order_by("-created_at", "-id").values_list("reason", flat=True)
        if latest.first() == reason:
            continue
        order_note(
            order,
            source=EventSource.BROKER,
            actor=job,
            reason=reason,
            details={"job": job, "attempt": attempt, "error": type(error).__name__},
        )
        written += 1
        logger.warning("%s: %s", job, reason, extra=log_context(order))
    return written


@dataclass
class SweepReport:
    resumed: dict[int, str] = field(default_factory=dict)  # order id: the job deferred again
    flagged: list[ReconciliationIssue] = field(default_factory=list)  # new "needs a person"
    critical: list[ReconciliationIssue] = field(default_factory=list)  # of them, new CRITICAL
    settled: int = 0  # earlier "needs a person" issues whose order has settled since


def orders_sweep(*, now=None) -> SweepReport:
    """Every order in flight reaches a final state or a person, within bounded time.

    Guarantees: an order in flight unchanged for OMS_ORDER_RESUME_SECONDS with no job of its
    own queued or running gets the job that settles it again, with a NOTE event saying so:
    - SUBMITTED without a broker id: the submission, which looks the tag up at the broker
      first and adopts what it finds, sending only what the broker never saw;
    - UNKNOWN, or CANCEL_PENDING without a broker id: the tag look-up (order_resolve_unknown),
      never a resend;
    - CANCEL_PENDING: the cancel; a modification pending: the modification.
    One unchanged for OMS_ORDER_STUCK_SECONDS needs a person: an ORDER_STUCK reconciliation
    issue (CRITICAL for LIVE orders; one per order, its occurrences counted) and a NOTE event
    when it opens. Its issue is resolved once the order has settled. Each order is resumed
    under its row lock after checking it is still as seen, so a job that settled it meanwhile
    wins; a job deferred twice is harmless (every job looks at the order first).
    """
    now = now or timezone.now()
    resume_before = now - timedelta(seconds=settings.OMS_ORDER_RESUME_SECONDS)
    stuck_before = now - timedelta(seconds=settings.OMS_ORDER_STUCK_SECONDS)
    report = SweepReport()
    stale = (
        orders_in_flight()
        .filter(updated_at__lte=resume_before)
        .select_related("strategy")
        .order_by("pk")
    )
    stuck_ids = set()
    for order in stale:
        if not order.job_waiting:
            job = _resume(order, now=now)
            if job:
                report.resumed[order.pk] = job
        if order.updated_at <= stuck_before:
            stuck_ids.add(order.pk)
            issue, new_critical = _flag(order, now=now)
            if issue.occurrences == 1:
                report.flagged.append(issue)
            if new_critical:
                report.critical.append(issue)
    report.settled = _settled_issues_resolve(still_stuck=stuck_ids)
    return report


def _resume(order: Order, *, now) -> str:
    """Defer ``order``'s job again, with a NOTE event; the job's name, or "" if the order has
    changed since it was read (a job or a report settled it)."""
    with transaction.atomic():
        locked = order_locked(order.pk)
        if (locked.status, locked.updated_at) != (order.status, order.updated_at):
            return ""
        no_broker_id = not locked.broker_order_id
        if locked.status == OrderStatus.SUBMITTED:
            job, defer = jobs.SUBMIT, jobs.defer_submit
        elif locked.status == OrderStatus.UNKNOWN or (
            locked.status == OrderStatus.CANCEL_PENDING and no_broker_id
        ):
            job, defer = jobs.RESOLVE_UNKNOWN, jobs.defer_resolve_unknown
        elif locked.status == OrderStatus.CANCEL_PENDING:
            job, defer = jobs.CANCEL, jobs.defer_cancel
        else:
            job, defer = jobs.MODIFY, jobs.defer_modify
        defer(locked)
        age = int((now - locked.updated_at).total_seconds())
        order_note(
            locked,
            source=EventSource.SYSTEM,
            actor=SWEEP,
            reason=f"no job at work on it for {age}s: {job} deferred again",
            details={"job": job, "unchanged_seconds": age},
        )
    logger.warning("sweep: %s deferred again", job, extra=log_context(order))
    return job


def _flag(order: Order, *, now) -> tuple[ReconciliationIssue, bool]:
    """The order's ORDER_STUCK issue, opened (with a NOTE event) or seen once more."""
    age = int((now - order.updated_at).total_seconds())
    what = "being sent" if order.status == OrderStatus.SUBMITTED else order.status
    live = order.strategy.is_live
    with transaction.atomic():
        issue, new_critical = reconciliation_issue_record(
            fingerprint=f"STUCK:order:{order.pk}",
            now=now,
            issue_type=IssueType.ORDER_STUCK,
            severity=Severity.CRITICAL if live else Severity.WARNING,
            strategy_id=order.strategy_id,
            symbol=order.symbol,
            exchange=order.exchange,
            product=order.product,
            order_id=order.pk,
            internal_quantity=order.filled_quantity,
            description=(
                f"order {order.pk} ({order.client_order_id}): {what} for {age}s and not "
                f"settled; check it at the broker (tag {order.broker_tag})"
            ),
            details={
                "status": order.status,
                "broker_order_id": order.broker_order_id or "",
                "broker_tag": order.broker_tag,
                "client_order_id": order.client_order_id,
                "unchanged_since": order.updated_at.isoformat(),
                "job_waiting": order.job_waiting,
                "pending_modification": order.metadata.get("pending_modification"),
            },
        )
        if issue.occurrences == 1:
            order_note(
                order,
                source=EventSource.SYSTEM,
                actor=SWEEP,
                reason=f"needs a person: in flight for {age}s (reconciliation issue #{issue.pk})",
                details={"issue_id": issue.pk},
            )
    if issue.occurrences == 1:
        logger.error("sweep: order stuck in flight", extra=log_context(order))
    return issue, new_critical


def _settled_issues_resolve(*, still_stuck: set[int]) -> int:
    """Resolve the open ORDER_STUCK issues whose order is no longer in flight."""
    resolved = 0
    open_issues = ReconciliationIssue.objects.filter(
        issue_type=IssueType.ORDER_STUCK, resolved=False
    ).exclude(order_id__in=still_stuck)
    for issue in open_issues.select_related("order"):
        if Order.objects.filter(IN_FLIGHT, pk=issue.order_id).exists():
            continue  # still in flight, though no longer unchanged for the whole bound
        reconciliation_issue_resolve(
            issue,
            note=f"the order settled: {issue.order.status}",
            actor=SWEEP,
        )
        resolved += 1
    return resolved
