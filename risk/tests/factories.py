"""Factories for the risk app, and a raw-SQL row builder for the kill switch log."""

from __future__ import annotations

from typing import Any

import factory
from django.utils import timezone

from risk.models import ActorType, KillSwitchEvent, KillSwitchScope, KillSwitchState


class KillSwitchEventFactory(factory.django.DjangoModelFactory):
    """A person halting all trading."""

    class Meta:
        model = KillSwitchEvent

    state = KillSwitchState.HALTED
    scope = KillSwitchScope.GLOBAL
    strategy = None
    reason = "Daily loss limit breached"
    actor = "risk-desk"
    actor_type = ActorType.PERSON


def kill_switch_row(**overrides: Any) -> dict[str, Any]:
    """A valid global halt by a person, as raw columns."""
    row = {
        "state": "HALTED",
        "scope": "GLOBAL",
        "strategy_id": None,
        "reason": "test",
        "actor": "risk-desk",
        "actor_type": "PERSON",
        "details": "{}",
        "created_at": timezone.now(),
    }
    return {**row, **overrides}
