"""The kill switch acting: a change recorded, then the HALT's cancels and the notification;
the automatic rules that pull it; the rule for a CRITICAL reconciliation issue. A reaction: it
records through risk.services and cancels through the order services, below it."""

from __future__ import annotations

import logging
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from omsproject.money_format import amount
from orders.enums import EventKind, EventSource, OrderStatus
from orders.models import Order, OrderEvent, Strategy
from orders.selectors import orders_cancellable
from orders.services import orders_cancel
from risk.limits import limits_for
from risk.models import ActorType, KillSwitchEvent, KillSwitchScope, KillSwitchState, PnlSnapshot
from risk.selectors import kill_switch_state
from risk.services import kill_switch_record

logger = logging.getLogger("oms.risk")


def kill_switch_set(
    state: KillSwitchState,
    *,
    reason: str,
    actor: str,
    strategy=None,
    actor_type: ActorType = ActorType.PERSON,
    details: dict | None = None,
) -> KillSwitchEvent:
    """Change the kill switch for one strategy or globally, and act on it.

    Guarantees: the change is recorded by risk.services.kill_switch_record (its rules and
    ordering are there: no order is accepted after a change that refuses it). HALTED then asks
    the broker to cancel every open order of its scope (as jobs); the order that was accepted
    last committed before the change, so none is missed. A notification goes out after the
    commit.

    Call it outside any transaction: inside one, the exclusive lock (and the cancels) would
    last until the caller commits.
    """
    event = kill_switch_record(
        state,
        reason=reason,
        actor=actor,
        strategy=strategy,
        actor_type=actor_type,
        details=details,
    )
    # Cancelled after the change committed, not under its exclusive lock: that lock stops
    # every placement and modification, so it is held for the change alone.
    cancelled = 0
    try:
        if state == KillSwitchState.HALTED:
            cancelled = _scope_orders_cancel(strategy, actor=actor, reason=reason)
    finally:
        # The change is committed: it is announced even if a cancel failed.
        transaction.on_commit(lambda: _notify(event, cancelled))
    logger.warning(
        "kill switch %s (%s) by %s: %s; %s orders cancelling",
        state,
        strategy or "global",
        actor,
        reason,
        cancelled,
    )
    return event


def _scope_orders_cancel(strategy, *, actor: str, reason: str) -> int:
    """Cancel every open order of the scope, and send again every cancel the broker has not
    confirmed (orders CANCEL_PENDING: their job may have run out of retries while the session
    was expired). orders_cancel: a few statements for them all, not a transaction each;
    returns how many."""
    unconfirmed = Order.objects.filter(status=OrderStatus.CANCEL_PENDING)
    if strategy is not None:
        unconfirmed = unconfirmed.filter(strategy=strategy)
    return orders_cancel(
        [
            *orders_cancellable(strategy=strategy).values_list("pk", flat=True),
            *unconfirmed.values_list("pk", flat=True),
        ],
        actor=f"kill switch ({actor})",
        source=EventSource.SYSTEM,
        reason=f"kill switch HALTED: {reason}",
        resend=True,
    )


def _notify(event: KillSwitchEvent, cancelled: int) -> None:
    where = event.strategy.name if event.strategy else "ALL strategies"
    subject = f"[OMS] kill switch {event.state} for {where}"
    body = (
        f"State: {event.state}\nScope: {where}\nBy: {event.actor} ({event.actor_type})\n"
        f"Reason: {event.reason}\nOpen orders being cancelled: {cancelled}\n"
        f"Details: {event.details}\nAt: {timezone.localtime(event.created_at)}\n"
    )
    logger.warning("notification: %s", subject)
    if settings.OMS_RISK_EMAILS:
        send_mail(subject, body, None, settings.OMS_RISK_EMAILS, fail_silently=True)


# --- automatic rules ---------------------------------------------------------------------------


def _already(state: KillSwitchState, strategy) -> bool:
    return kill_switch_state(strategy=strategy).severity >= KillSwitchState(state).severity


def _last_resume(strategy) -> KillSwitchEvent | None:
    """The switch's latest change back to ACTIVE (always a person's), if any."""
    scope = KillSwitchScope.STRATEGY if strategy is not None else KillSwitchScope.GLOBAL
    return (
        KillSwitchEvent.objects.filter(scope=scope, strategy=strategy, state=KillSwitchState.ACTIVE)
        .order_by("-id")
        .first()
    )


def risk_auto_triggers(*, now=None) -> list[KillSwitchEvent]:
    """Fire the automatic kill switch rules, each recorded with its figures:

    - loss from the day's peak PnL beyond ``drawdown_limit`` -> HALTED;
    - the day's PnL at or below ``-daily_loss_limit`` -> REDUCING (where the validator starts
      refusing orders that do not reduce);
    - ``rejection_burst`` broker rejections within ``rejection_window_seconds`` -> HALTED.

    A rule does not fire on a switch already at its state or stricter.

    After a person resumes a switch (sets it back to ACTIVE), a rule fires again only on a new
    breach, measured from the levels recorded in the resume event (``details["levels"]``):
    - drawdown: the peak is measured from the resume: the PnL at the resume, or any higher
      snapshot since; it fires when the PnL falls more than ``drawdown_limit`` below that;
    - daily loss: the PnL must be beyond the limit *and* below the PnL at the resume;
    - rejections: only those after the resume count (and within the window).
    The same figures as at the resume never fire again. A resume on an earlier day leaves
    today's PnL rules as they are (the day starts flat).
    """
    now = now or timezone.now()
    start = timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)
    fired = []
    for strategy in [None, *Strategy.objects.filter(status="ACTIVE")]:
        limits = limits_for(strategy)
        resume = _last_resume(strategy)
        levels = resume.details.get("levels", {}) if resume is not None else {}
        snapshots = PnlSnapshot.objects.filter(strategy=strategy, taken_at__gte=start)
        latest = snapshots.order_by("-taken_at", "-id").first()
        # The snapshot the resume saw, if it is today's: the PnL rules measure from it.
        at_resume = (
            snapshots.filter(pk=levels["pnl_snapshot_id"]).first()
            if levels.get("pnl_snapshot_id") is not None
            else None
        )
        since = resume.pk if at_resume is not None else None
        if latest is not None and limits.drawdown_limit is not None:
            if at_resume is None:
                # The day starts flat, so the peak is never below zero.
                floor, measured, peak_of = Decimal(0), snapshots, "the day's peak"
            else:
                floor = at_resume.total_pnl
                measured = snapshots.filter(pk__gt=at_resume.pk)
                peak_of = "the peak since the resume"
            highest = measured.aggregate(p=Max("total_pnl"))["p"]
            peak = max(floor, highest if highest is not None else floor)
            drop = peak - latest.total_pnl
            if drop > limits.drawdown_limit and not _already(KillSwitchState.HALTED, strategy):
                fired.append(
                    _rule_fires(
                        KillSwitchState.HALTED,
                        strategy,
                        rule="drawdown-from-peak",
                        reason=f"PnL {amount(latest.total_pnl)} is {amount(drop)} below "
                        f"{peak_of} {amount(peak)} (limit {amount(limits.drawdown_limit)})",
                        figures={
                            "peak": str(peak),
                            "pnl": str(latest.total_pnl),
                            "limit": str(limits.drawdown_limit),
                        },
                        since=since,
                    )
                )
        if (
            latest is not None
            and limits.daily_loss_limit is not None
            and latest.total_pnl <= -limits.daily_loss_limit
            and (at_resume is None or latest.total_pnl < at_resume.total_pnl)
            and not _already(KillSwitchState.REDUCING, strategy)
        ):
            deeper = ""
            if at_resume is not None:
                deeper = f", below {amount(at_resume.total_pnl)} at the resume"
            fired.append(
                _rule_fires(
                    KillSwitchState.REDUCING,
                    strategy,
                    rule="daily-loss-limit",
                    reason=f"day's PnL {amount(latest.total_pnl)} at or beyond the loss limit "
                    f"{amount(-limits.daily_loss_limit)}{deeper}",
                    figures={"pnl": str(latest.total_pnl), "limit": str(limits.daily_loss_limit)},
                    since=since,
                )
            )
        if limits.rejection_burst is not None and strategy is not None:
            window_start = now - timedelta(seconds=limits.rejection_window_seconds)
            rejections = OrderEvent.objects.filter(
                order__strategy=strategy,
                kind=EventKind.TRANSITION,
                to_status=OrderStatus.REJECTED,
                source=EventSource.BROKER,
                created_at__gte=window_start,
            )
            after = levels.get("order_event_id")
            if after is not None:
                rejections = rejections.filter(pk__gt=after)
            count = rejections.count()
            if count >= limits.rejection_burst and not _already(KillSwitchState.HALTED, strategy):
                fired.append(
                    _rule_fires(
                        KillSwitchState.HALTED,
                        strategy,
                        rule="rejection-burst",
                        reason=f"{count} broker rejections in "
                        f"{limits.rejection_window_seconds}s (limit {limits.rejection_burst})"
                        + (" since the resume" if after is not None else ""),
                        figures={"rejections": count, "limit": limits.rejection_burst},
                        since=resume.pk if after is not None else None,
                    )
                )
    return fired


def _rule_fires(state, strategy, *, rule: str, reason: str, figures: dict, since=None):
    """A rule pulling the switch: the change recorded as the rule's act (actor "rule:<rule>"),
    with its figures and, after a resume, the resume they were measured from."""
    if since is not None:
        figures = {**figures, "since_resume_event_id": since}
    return kill_switch_set(
        state,
        strategy=strategy,
        actor=f"rule:{rule}",
        actor_type=ActorType.RULE,
        reason=reason,
        details=figures,
    )


def kill_switch_on_critical_issue(issue) -> KillSwitchEvent | None:
    """Reconciliation found a CRITICAL issue: halt its strategy (or everything), if configured."""
    strategy = issue.strategy
    if not limits_for(strategy).halt_on_critical_issue:
        return None
    if _already(KillSwitchState.HALTED, strategy):
        return None
    return _rule_fires(
        KillSwitchState.HALTED,
        strategy,
        rule="critical-reconciliation",
        reason=f"CRITICAL reconciliation issue #{issue.pk}: {issue.get_issue_type_display()} "
        f"{issue.symbol}",
        figures={
            "issue_id": issue.pk,
            "internal_quantity": issue.internal_quantity,
            "broker_quantity": issue.broker_quantity,
        },
    )
