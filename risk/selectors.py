"""Reads of risk state shared by the validator, the API, the admin and the commands."""

from __future__ import annotations

from django.db import connection

from risk.models import KillSwitchEvent, KillSwitchScope, KillSwitchState

SEVERITY = {KillSwitchState.ACTIVE: 0, KillSwitchState.REDUCING: 1, KillSwitchState.HALTED: 2}


def _current(scope: str, strategy=None) -> KillSwitchState:
    event = (
        KillSwitchEvent.objects.filter(scope=scope, strategy=strategy)
        .order_by("-created_at", "-id")
        .only("state")
        .first()
    )
    return KillSwitchState(event.state) if event else KillSwitchState.ACTIVE


def kill_switch_state(*, strategy=None, lock: bool = False) -> KillSwitchState:
    """The state in force for a strategy: the stricter of the global and its own switch.

    Read from the database on every call, so every process agrees at once. With ``lock``
    (inside a transaction) the read waits for a kill switch change being committed, so an order
    and a HALT cannot pass each other: see risk.services.kill_switch_set.
    """
    if lock and connection.in_atomic_block:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock_shared(%s)", [KILL_SWITCH_LOCK])
    states = [_current(KillSwitchScope.GLOBAL)]
    if strategy is not None:
        states.append(_current(KillSwitchScope.STRATEGY, strategy))
    return max(states, key=SEVERITY.__getitem__)


# The advisory lock key the kill switch takes exclusively while it changes state.
KILL_SWITCH_LOCK = 0x4B494C4C  # "KILL"
