"""Every write of the risk app: a kill switch change recorded, PnL snapshots, the roles.
(Acting on a change — the HALT's cancels, the automatic rules — is risk.kill_switch's.)"""

from __future__ import annotations

import logging

from django.apps import apps as installed_apps
from django.db import connection, transaction
from django.db.models import Max, Q
from django.utils import timezone

from orders.models import OrderEvent, Strategy
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
