"""Every write of the risk app: the kill switch, its automatic triggers, PnL snapshots."""

from __future__ import annotations

import logging
from datetime import timedelta
from decimal import Decimal

from django.apps import apps as installed_apps
from django.conf import settings
from django.core.mail import send_mail
from django.db import connection, transaction
from django.db.models import Max, Q
from django.utils import timezone

from orders.enums import EventKind, EventSource, OrderStatus
from orders.models import OrderEvent, Strategy
from orders.selectors import orders_cancellable
from orders.services import orders_cancel
from risk.limits import limits_for
from risk.models import (
    ActorType,
    KillSwitchEvent,
    KillSwitchScope,
    KillSwitchState,
    PnlSnapshot,
)
from risk.roles import ROLES
from risk.selectors import KILL_SWITCH_LOCK, day_pnl, kill_switch_state

logger = logging.getLogger("oms.risk")


class KillSwitchError(Exception):
    """A kill switch change that is not allowed; the message names the rule."""


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

    Guarantees: the change is one kill_switch_events row; it waits for every order placement
    already validating (an exclusive lock against the placements' shared one), so no order is
    accepted after it commits. HALTED then asks the broker to cancel every open order of its
    scope (as jobs); the order that was accepted last committed before the change, so none is
    missed. Going back to ACTIVE is a person's act only, and a person's actor name may not pose
    as a rule's ("rule:..."). A notification goes out after the commit.

    Call it outside any transaction: inside one, the exclusive lock (and the cancels) would
    last until the caller commits.
    """
    state = KillSwitchState(state)
    if not reason or not reason.strip():
        raise KillSwitchError("reason missing: every kill switch change needs a reason")
    if state == KillSwitchState.ACTIVE and actor_type != ActorType.PERSON:
        raise KillSwitchError("only a person may set the kill switch back to ACTIVE")
    if actor_type == ActorType.PERSON and actor.startswith("rule:"):
        raise KillSwitchError(f"actor {actor!r}: names starting with 'rule:' are the rules'")
    scope = KillSwitchScope.STRATEGY if strategy is not None else KillSwitchScope.GLOBAL
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [KILL_SWITCH_LOCK])
        previous = kill_switch_state(strategy=strategy)
        event = KillSwitchEvent.objects.create(
            state=state,
            scope=scope,
            strategy=strategy,
            reason=reason.strip(),
            actor=actor,
            actor_type=actor_type,
            details={**(details or {}), "previous_state": str(previous)},
        )
    # Cancelled after the commit, never under the exclusive lock: order_modify holds an
    # order's row lock while it waits for the shared one, so locking orders here would
    # deadlock with it (and PostgreSQL might abort the halt).
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
    """Cancel every open order of the scope (orders_cancel: a few statements for them all,
    not a transaction each); returns how many."""
    return orders_cancel(
        orders_cancellable(strategy=strategy).values_list("pk", flat=True),
        actor=f"kill switch ({actor})",
        source=EventSource.SYSTEM,
        reason=f"kill switch HALTED: {reason}",
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


# --- PnL of the day and automatic triggers -----------------------------------------------------


def pnl_snapshot_take(*, now=None) -> list[PnlSnapshot]:
    """Record the day's PnL now, per strategy that traded and globally."""
    now = now or timezone.now()
    snapshots = []
    for strategy in [None, *Strategy.objects.filter(positions__isnull=False).distinct()]:
        realized, unrealized = day_pnl(strategy, now=now)
        snapshots.append(
            PnlSnapshot(
                strategy=strategy,
                taken_at=now,
                realized_pnl=realized,
                unrealized_pnl=unrealized,
                total_pnl=realized + unrealized,
            )
        )
    return PnlSnapshot.objects.bulk_create(snapshots)


def _already(state: KillSwitchState, strategy) -> bool:
    current = kill_switch_state(strategy=strategy)
    order = [KillSwitchState.ACTIVE, KillSwitchState.REDUCING, KillSwitchState.HALTED]
    return order.index(current) >= order.index(state)


def risk_auto_triggers(*, now=None) -> list[KillSwitchEvent]:
    """Fire the automatic kill switch rules, each recorded with its figures:

    - loss from the day's peak PnL beyond ``drawdown_limit`` -> HALTED;
    - the day's PnL at or below ``-daily_loss_limit`` -> REDUCING (where the validator starts
      refusing orders that do not reduce);
    - ``rejection_burst`` broker rejections within ``rejection_window_seconds`` -> HALTED.
    """
    now = now or timezone.now()
    start = timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)
    fired = []
    for strategy in [None, *Strategy.objects.filter(status="ACTIVE")]:
        limits = limits_for(strategy)
        snapshots = PnlSnapshot.objects.filter(strategy=strategy, taken_at__gte=start)
        latest = snapshots.order_by("-taken_at").first()
        if latest is not None and limits.drawdown_limit is not None:
            # The day starts flat, so the peak is never below zero.
            peak = max(Decimal(0), snapshots.aggregate(p=Max("total_pnl"))["p"])
            drop = peak - latest.total_pnl
            if drop > limits.drawdown_limit and not _already(KillSwitchState.HALTED, strategy):
                fired.append(
                    kill_switch_set(
                        KillSwitchState.HALTED,
                        strategy=strategy,
                        actor="rule:drawdown-from-peak",
                        actor_type=ActorType.RULE,
                        reason=f"PnL {latest.total_pnl} is {drop} below the day's peak {peak} "
                        f"(limit {limits.drawdown_limit})",
                        details={
                            "peak": str(peak),
                            "pnl": str(latest.total_pnl),
                            "limit": str(limits.drawdown_limit),
                        },
                    )
                )
        if (
            latest is not None
            and limits.daily_loss_limit is not None
            and latest.total_pnl <= -limits.daily_loss_limit
            and not _already(KillSwitchState.REDUCING, strategy)
        ):
            fired.append(
                kill_switch_set(
                    KillSwitchState.REDUCING,
                    strategy=strategy,
                    actor="rule:daily-loss-limit",
                    actor_type=ActorType.RULE,
                    reason=f"day's PnL {latest.total_pnl} at or beyond the loss limit "
                    f"{limits.daily_loss_limit}",
                    details={"pnl": str(latest.total_pnl), "limit": str(limits.daily_loss_limit)},
                )
            )
        if limits.rejection_burst is not None and strategy is not None:
            since = now - timedelta(seconds=limits.rejection_window_seconds)
            rejections = OrderEvent.objects.filter(
                order__strategy=strategy,
                kind=EventKind.TRANSITION,
                to_status=OrderStatus.REJECTED,
                source=EventSource.BROKER,
                created_at__gte=since,
            ).count()
            if rejections >= limits.rejection_burst and not _already(
                KillSwitchState.HALTED, strategy
            ):
                fired.append(
                    kill_switch_set(
                        KillSwitchState.HALTED,
                        strategy=strategy,
                        actor="rule:rejection-burst",
                        actor_type=ActorType.RULE,
                        reason=f"{rejections} broker rejections in "
                        f"{limits.rejection_window_seconds}s (limit {limits.rejection_burst})",
                        details={"rejections": rejections, "limit": limits.rejection_burst},
                    )
                )
    return fired


def kill_switch_on_critical_issue(issue) -> KillSwitchEvent | None:
    """Reconciliation found a CRITICAL issue: halt its strategy (or everything), if configured."""
    strategy = issue.strategy
    if not limits_for(strategy).halt_on_critical_issue:
        return None
    if _already(KillSwitchState.HALTED, strategy):
        return None
    return kill_switch_set(
        KillSwitchState.HALTED,
        strategy=strategy,
        actor="rule:critical-reconciliation",
        actor_type=ActorType.RULE,
        reason=f"CRITICAL reconciliation issue #{issue.pk}: {issue.issue_type} {issue.symbol}",
        details={
            "issue_id": issue.pk,
            "internal_quantity": issue.internal_quantity,
            "broker_quantity": issue.broker_quantity,
        },
    )


# --- roles -------------------------------------------------------------------------------------


def roles_sync(*, apps=None) -> dict[str, int]:
    """Create the back office's groups (risk.roles.ROLES) and give each exactly its permissions.

    Idempotent; a permission removed from a role is taken away from the group. ``apps`` is a
    migration's app registry (the data migration passes its own). Raises LookupError naming
    any permission that does not exist. Returns {group name: permissions held}.
    """

    apps = apps or installed_apps
    group_model = apps.get_model("auth", "Group")
    permission_model = apps.get_model("auth", "Permission")
    wanted = {tuple(name.split(".", 1)) for names in ROLES.values() for name in names}
    match = Q(pk__in=[])
    for app_label, codename in wanted:
        match |= Q(content_type__app_label=app_label, codename=codename)
    found = {
        (p.content_type.app_label, p.codename): p
        for p in permission_model.objects.filter(match).select_related("content_type")
    }
    missing = sorted(".".join(key) for key in wanted - set(found))
    if missing:
        raise LookupError(f"permissions {', '.join(missing)}: not found (run migrate first)")
    held = {}
    with transaction.atomic():
        for name, permissions in ROLES.items():
            group, _ = group_model.objects.get_or_create(name=name)
            group.permissions.set([found[tuple(p.split(".", 1))] for p in permissions])
            held[name] = len(permissions)
    logger.info("roles synced: %s", held)
    return held
