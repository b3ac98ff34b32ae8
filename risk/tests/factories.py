"""Factories for the risk app, a builder of order requests, and a raw-SQL row builder for the
kill switch log."""

from __future__ import annotations

import itertools
from decimal import Decimal
from typing import Any

import factory
from django.utils import timezone

from orders.domain import OrderRequest
from risk.models import (
    ActorType,
    KillSwitchEvent,
    KillSwitchScope,
    KillSwitchState,
    MarketHoliday,
    PnlSnapshot,
    RiskLimit,
)


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


class MarketHolidayFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = MarketHoliday

    description = "Exchange closed"
    created_by = "risk-desk"


class PnlSnapshotFactory(factory.django.DjangoModelFactory):
    """The day's PnL at one moment; ``total_pnl`` follows from the two parts."""

    class Meta:
        model = PnlSnapshot

    strategy = None
    taken_at = factory.LazyFunction(timezone.now)
    realized_pnl = Decimal("0.00")
    unrealized_pnl = Decimal("0.00")
    total_pnl = factory.LazyAttribute(lambda s: s.realized_pnl + s.unrealized_pnl)


def limits_set(strategy=None, **values: Any) -> RiskLimit:
    """Set limits on the global row (or on ``strategy``'s row), creating the row if needed."""
    row, _ = RiskLimit.objects.update_or_create(strategy=strategy, defaults=values)
    return row


_client_ids = itertools.count(1)


def order_request(strategy, **overrides: Any) -> OrderRequest:
    """A valid request to buy 10 RELIANCE (tick 0.10) at 2450.00 for intraday."""
    fields = {
        "strategy_id": strategy.pk,
        "client_order_id": f"risk-{next(_client_ids)}",
        "symbol": "RELIANCE",
        "side": "BUY",
        "quantity": 10,
        "order_type": "LIMIT",
        "product": "MIS",
        "price": "2450.00",
    }
    if overrides.get("order_type") in ("MARKET", "SL-M"):
        fields.pop("price")
    return OrderRequest(**{**fields, **overrides})


def kill_switch_row(**overrides: Any) -> dict[str, Any]:
    """A valid global halt by a person, as raw columns (``created_at``: the database's clock,
    unless given, as a process with its own clock could)."""
    row = {
        "state": "HALTED",
        "scope": "GLOBAL",
        "strategy_id": None,
        "reason": "test",
        "actor": "risk-desk",
        "actor_type": "PERSON",
        "details": "{}",
    }
    return {**row, **overrides}
