"""Every write of the risk app: a kill switch change recorded, PnL snapshots, the roles.
(Acting on a change — the HALT's cancels, the automatic rules — is risk.kill_switch's.)"""

from __future__ import annotations

import logging

from django.apps import apps as installed_apps
from django.db import IntegrityError, connection, transaction
from django.db.models import Max, Q
from django.utils import timezone

from omsproject.constraint_words import integrity_words
from orders.models import OrderEvent, Strategy
from risk.audit import (
    ChangeReasonMissing,
    admin_change_record,
    change_reason_clean,
    changes_between,
)
from risk.models import (
    ActorType,
    AdminAction,
    KillSwitchEvent,
    KillSwitchScope,
    KillSwitchState,
    PnlSnapshot,
    RiskLimit,
)
from risk.roles import ROLES
from risk.selectors import KILL_SWITCH_LOCK, day_pnl, kill_switch_state

logger = logging.getLogger("oms.risk")


class KillSwitchError(Exception):
    """A kill switch change that is not allowed; the message names the rule."""


def kill_switch_record(
    state: KillSwitchState,
    *,
    reason: str,
    actor: str,
    strategy=None,
    actor_type: ActorType = ActorType.PERSON,
    details: dict | None = None,
) -> KillSwitchEvent:
    """Record a change of the kill switch for one strategy or globally (risk.kill_switch's
    kill_switch_set records it with this, then acts on it: a reaction).

    Guarantees: the change is one kill_switch_events row, written under the kill switch's
    exclusive advisory lock, so its id is higher than that of every change committed before
    it: the switch's state is its highest id's (``v_kill_switch_current``), whatever any
    process's clock says. The lock waits for every placement and modification holding the
    shared one (risk.validator.checks_lock: taken before their checks, held until they
    commit), and none takes it until the change commits: no order is accepted after a change
    that refuses it. Going back to ACTIVE is a person's act only, and a person's actor name
    may not pose as a rule's ("rule:..."); the resume records in ``details["levels"]`` what
    the automatic rules measure from afterwards. Its own transaction: call it outside one, or
    the exclusive lock lasts until the caller commits.
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
        details = {**(details or {}), "previous_state": str(previous)}
        if state == KillSwitchState.ACTIVE:
            details["levels"] = _resume_levels(strategy)
        return KillSwitchEvent.objects.create(
            state=state,
            scope=scope,
            strategy=strategy,
            reason=reason.strip(),
            actor=actor,
            actor_type=actor_type,
            details=details,
        )


def _resume_levels(strategy) -> dict:
    """What the automatic rules measure from once a person resumes the switch: the latest PnL
    snapshot of its scope (its id and total: later snapshots have higher ids) and the latest
    order event (rejections with a higher id are the ones after the resume). Ids, not times:
    they need no clock to compare."""
    snapshot = (
        PnlSnapshot.objects.filter(strategy=strategy)
        .order_by("-taken_at", "-id")
        .values_list("id", "total_pnl")
        .first()
    )
    return {
        "pnl_snapshot_id": snapshot[0] if snapshot else None,
        "pnl": str(snapshot[1]) if snapshot else None,
        "order_event_id": OrderEvent.objects.aggregate(last=Max("id"))["last"],
    }


# --- limits ------------------------------------------------------------------------------------

LIMIT_FIELDS = tuple(
    field.name
    for field in RiskLimit._meta.concrete_fields
    if field.name not in ("id", "strategy", "updated_at")
)


class RiskLimitError(Exception):
    """A limit change refused; ``field`` names the field, the message the rule in words."""

    def __init__(self, message: str, *, field: str = "__all__"):
        super().__init__(message)
        self.field = field


def risk_limit_set(
    *, user, reason: str, values: dict, limit: RiskLimit | None = None, strategy=None
) -> RiskLimit:
    """A person sets limits: changes ``limit`` (a saved row), or, without one, makes the row
    of ``strategy`` (None: the global row).

    Guarantees: one transaction, under the row's lock; the reason is required (RiskLimitError
    naming ``reason``) when something changes; the fields
    that changed are recorded old → new in the admin's change log (AdminChange and LogEntry)
    in the same transaction, and nothing is written when nothing changed. A value the
    database refuses is a RiskLimitError naming the field and the rule in words (never a
    constraint's name), with nothing written. Only limit fields may be set (ValueError).
    """
    unknown = set(values) - set(LIMIT_FIELDS)
    if unknown:
        raise ValueError(f"fields {sorted(unknown)}: not limits")
    try:
        with transaction.atomic():
            if limit is not None and limit.pk:
                row = RiskLimit.objects.select_for_update().get(pk=limit.pk)
                before = {field: getattr(row, field) for field in values}
                action = AdminAction.LIMIT_CHANGE
            else:
                row = RiskLimit(strategy=strategy)
                before = dict.fromkeys(values)
                action = AdminAction.LIMIT_ADD
            changes = changes_between(before, values)
            if not changes and row.pk:
                return row
            try:
                reason = change_reason_clean(reason)
            except ChangeReasonMissing as error:
                raise RiskLimitError(str(error), field="reason") from None
            for field, value in values.items():
                setattr(row, field, value)
            row.save()
            # Recorded as stored (40000 typed is 40000.00 kept).
            row.refresh_from_db(fields=list(values))
            changes = changes_between(before, {field: getattr(row, field) for field in values})
            admin_change_record(
                user=user,
                target=row,
                action=action,
                reason=reason,
                changes=changes,
                label=f"limits: {row.strategy.name if row.strategy else 'global'}",
            )
    except IntegrityError as error:
        words = integrity_words(error)
        if words is None:
            raise
        raise RiskLimitError(words[1], field=words[0]) from None
    logger.warning("limits %s changed by %s: %s (%s)", row, user, changes, reason)
    return row


# --- PnL of the day and automatic triggers -----------------------------------------------------


def pnl_snapshot_take(*, now=None) -> list[PnlSnapshot]:
    """Record the day's PnL now, per strategy that traded and globally."""
    now = now or timezone.now()
    snapshots = []
    for strategy in [None, *Strategy.objects.filter(positions__isnull=False).distinct()]:
        today = day_pnl(strategy, now=now)
        snapshots.append(
            PnlSnapshot(
                strategy=strategy,
                taken_at=now,
                realized_pnl=today.net_realized,
                unrealized_pnl=today.unrealized,
                total_pnl=today.total,
            )
        )
    return PnlSnapshot.objects.bulk_create(snapshots)


# --- roles -------------------------------------------------------------------------------------


def roles_sync(*, apps=None, roles: dict | None = None) -> dict[str, int]:
    """Create the back office's groups (risk.roles.ROLES) and give each exactly its permissions.

    Idempotent; a permission removed from a role is taken away from the group. ``apps`` is a
    migration's app registry (the data migration passes its own); ``roles`` the roles as a
    migration knew them (default: ROLES). Raises LookupError naming any permission that does
    not exist. Returns {group name: permissions held}.
    """
    roles = ROLES if roles is None else roles
    apps = apps or installed_apps
    group_model = apps.get_model("auth", "Group")
    permission_model = apps.get_model("auth", "Permission")
    wanted = {tuple(name.split(".", 1)) for names in roles.values() for name in names}
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
        for name, permissions in roles.items():
            group, _ = group_model.objects.get_or_create(name=name)
            group.permissions.set([found[tuple(p.split(".", 1))] for p in permissions])
            held[name] = len(permissions)
    logger.info("roles synced: %s", held)
    return held
