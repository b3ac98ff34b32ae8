"""A strategy's status and mode, changed by staff under the strategy's row lock."""

from __future__ import annotations

import logging

from django.db import transaction

from omsproject.money_format import plural
from orders.enums import OrderStatus, PausedBy, StrategyMode, StrategyStatus
from orders.models import Order, Strategy
from orders.services.errors import OrderError, StrategyStatusRefused
from positions.jobs import defer_protection_sync
from positions.models import Position
from positions.services import strategy_prices_clear
from risk.audit import (
    ChangeReasonMissing,
    admin_change_record,
    change_reason_clean,
    changes_between,
)
from risk.models import AdminAction

logger = logging.getLogger("oms.orders")


MAX_REASON_LENGTH = 500


def _audited_reason(reason: str, user) -> str:
    """A person's change in the back office (``user`` given) needs a reason: OrderError
    naming ``reason`` otherwise."""
    if user is None:
        return reason
    try:
        return change_reason_clean(reason)
    except ChangeReasonMissing as error:
        raise OrderError(str(error), fields={"reason": str(error)}) from None


def strategy_status_set(
    strategy: Strategy, *, status: StrategyStatus, actor: str, reason: str = "", user=None
) -> Strategy:
    """Staff change a strategy's status (ACTIVE, PAUSED, INACTIVE, ERROR).

    Guarantees: under the strategy's row lock; a pause set here is staff's (``paused_by``
    STAFF), which the strategy itself can never lift — pausing a strategy that paused itself
    takes its pause over. The change, its reason and actor reach the strategy's event feed
    (a ``strategy.status`` event, written by the database). Made by a person in the back
    office (``user``), the reason is required (OrderError naming ``reason``, nothing changed)
    and the change is recorded in the admin's change log (AdminChange and LogEntry, old → new)
    in the same transaction.
    """
    reason = _audited_reason(reason, user)
    with transaction.atomic():
        locked = Strategy.objects.select_for_update().get(pk=strategy.pk)
        before = {"status": locked.status, "paused_by": locked.paused_by}
        _status_write(
            locked,
            status=status,
            paused_by=PausedBy.STAFF,
            actor=actor,
            reason=reason or "changed by staff",
        )
        changes = changes_between(before, {"status": status, "paused_by": locked.paused_by})
        if user is not None and changes:
            admin_change_record(
                user=user,
                target=locked,
                action=AdminAction.STRATEGY_STATUS,
                reason=reason,
                changes=changes,
            )
    logger.info("strategy %s status %s by %s: %s", locked.name, status, actor, reason)
    return locked


def strategy_steer(strategy: Strategy, *, status: str, reason: str, actor: str) -> Strategy:
    """The strategy pauses or resumes itself (PATCH /api/v1/strategy/).

    Guarantees: under the strategy's row lock, an ACTIVE strategy may pause itself, and a
    strategy may resume only a pause it made itself; a staff pause, INACTIVE and ERROR are
    refused (StrategyStatusRefused, nothing changed), and so is a blank reason (OrderError
    naming ``reason``). Asking for the status it already has changes nothing (no event). The
    kill switch is not touched: resuming lifts the strategy's own pause only. Each change is a
    ``strategy.status`` event with the reason, written by the database.
    """
    reason = (reason or "").strip()
    if not reason:
        raise OrderError("reason: required", fields={"reason": "reason: required"})
    if len(reason) > MAX_REASON_LENGTH:
        rule = f"reason: at most {MAX_REASON_LENGTH} characters"
        raise OrderError(rule, fields={"reason": rule})
    if status not in (StrategyStatus.ACTIVE, StrategyStatus.PAUSED):
        rule = f"status {status}: a strategy may set PAUSED or ACTIVE only"
        raise OrderError(rule, fields={"status": rule})
    with transaction.atomic():
        locked = Strategy.objects.select_for_update().get(pk=strategy.pk)
        refusal = _steering_refusal(locked, status=status)
        if refusal:
            raise StrategyStatusRefused(refusal, fields={"status": refusal})
        if locked.status != status:
            _status_write(
                locked,
                status=StrategyStatus(status),
                paused_by=PausedBy.STRATEGY,
                actor=actor,
                reason=reason,
            )
            logger.warning("strategy %s set itself %s (%s): %s", locked.name, status, actor, reason)
    return locked


def _steering_refusal(strategy: Strategy, *, status: str) -> str | None:
    current = strategy.status
    if current in (StrategyStatus.INACTIVE, StrategyStatus.ERROR):
        return f"status {status}: strategy {strategy.name} is {current}; only staff change that"
    if (
        status == StrategyStatus.ACTIVE
        and current == StrategyStatus.PAUSED
        and strategy.paused_by != PausedBy.STRATEGY
    ):
        return f"status ACTIVE: strategy {strategy.name} was paused by staff; only staff resume it"
    return None


def _status_write(
    strategy: Strategy, *, status: StrategyStatus, paused_by: PausedBy, actor: str, reason: str
) -> None:
    strategy.status = status
    strategy.paused_by = paused_by if status == StrategyStatus.PAUSED else ""
    strategy.status_reason = reason
    strategy.status_actor = actor
    strategy.save(
        update_fields=["status", "paused_by", "status_reason", "status_actor", "updated_at"]
    )


def strategy_mode_refusal(strategy: Strategy, *, mode: str) -> str | None:
    """Why ``strategy`` cannot switch to ``mode`` now (None when it can).

    A strategy changes broker only when it is flat: an open position or a working order
    would otherwise be left at a broker the OMS no longer reconciles it against.
    """
    mode = StrategyMode(mode)
    if mode == strategy.mode:
        return None
    return _not_flat(strategy, f"mode {mode}")


def strategy_account_refusal(strategy: Strategy, *, account_id: int | None) -> str | None:
    """Why ``strategy`` cannot move to another broker account now (None when it can): as for
    the mode, its orders and positions live at the account it trades through."""
    if account_id == strategy.broker_account_id:
        return None
    return _not_flat(strategy, "broker account")


def _not_flat(strategy: Strategy, change: str) -> str | None:
    working = Order.objects.filter(strategy=strategy, status__in=sorted(OrderStatus.active()))
    if working.exists():
        return (
            f"{change}: strategy {strategy.name} has {plural(working.count(), 'working order')} at "
            f"its {strategy.mode} broker; cancel them first"
        )
    held = Position.objects.filter(strategy=strategy, closed_at__isnull=True)
    if held.exists():
        return (
            f"{change}: strategy {strategy.name} holds {plural(held.count(), 'open position')} at "
            f"its {strategy.mode} broker; close them first"
        )
    return None


def strategy_mode_set(
    strategy: Strategy, *, mode: str, actor: str, reason: str = "", user=None
) -> Strategy:
    """Switch a strategy between PAPER and LIVE (its broker).

    Guarantees: under the strategy's row lock (every fill and placement takes it first), the
    strategy is flat — no working order, no open position — or OrderError is raised with the
    reason (``strategy_mode_refusal``). The prices it posted for itself as a paper strategy
    are forgotten. Setting the current mode is a no-op. Logged with the actor; made by a person
    in the back office (``user``), it needs a reason and is recorded in the admin's change log.
    """
    mode = StrategyMode(mode)
    reason = _audited_reason(reason, user)
    with transaction.atomic():
        locked = Strategy.objects.select_for_update().get(pk=strategy.pk)
        refusal = strategy_mode_refusal(locked, mode=mode)
        if refusal:
            raise OrderError(refusal, fields={"mode": refusal})
        if locked.mode != mode:
            before = locked.mode
            locked.mode = mode
            locked.save(update_fields=["mode", "updated_at"])
            strategy_prices_clear(strategy=locked)
            if user is not None:
                admin_change_record(
                    user=user,
                    target=locked,
                    action=AdminAction.STRATEGY_MODE,
                    reason=reason,
                    changes={"mode": [str(before), str(mode)]},
                )
            logger.warning("strategy %s mode %s -> %s by %s", locked.name, before, mode, actor)
    return locked


SETTINGS_FIELDS = ("name", "description", "broker_account", "config", "protection_mode")


def strategy_settings_set(strategy: Strategy, *, values: dict, user, reason: str) -> Strategy:
    """A person changes a strategy's name, description, broker account, config (its
    ``config.limits`` tighten its limits) or protection mode (where its stops are held:
    positions.protection follows) in the back office.

    Guarantees: under the strategy's row lock; a new broker account only while the strategy
    is flat (OrderError naming ``broker_account``); when something changes, the reason is
    required (OrderError naming ``reason``) and the fields that changed are recorded old →
    new in the admin's change log in the same transaction. Other fields in ``values`` are
    refused (ValueError).
    """
    unknown = set(values) - set(SETTINGS_FIELDS)
    if unknown:
        raise ValueError(f"fields {sorted(unknown)}: not settings of a strategy")
    with transaction.atomic():
        locked = Strategy.objects.select_for_update().get(pk=strategy.pk)
        if "broker_account" in values:
            account = values["broker_account"]
            refusal = strategy_account_refusal(locked, account_id=account.pk if account else None)
            if refusal:
                raise OrderError(refusal, fields={"broker_account": refusal})
        before = {field: getattr(locked, field) for field in values}
        changes = changes_between(before, values)
        if not changes:
            return locked
        reason = _audited_reason(reason, user)
        for field in changes:
            setattr(locked, field, values[field])
        locked.save(update_fields=[*changes, "updated_at"])
        admin_change_record(
            user=user,
            target=locked,
            action=AdminAction.STRATEGY_SETTINGS,
            reason=reason,
            changes=changes,
        )
        if "protection_mode" in changes:
            # Where the stops live changed: the GTTs follow, after the commit.
            defer_protection_sync(locked.pk)
    logger.info("strategy %s settings %s by %s", locked.name, sorted(changes), user)
    return locked
