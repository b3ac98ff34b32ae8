"""The limits in force for a strategy: the strictest of the global row, the strategy's row and
the strategy's JSON config (``config["limits"]``, which may tighten but never loosen)."""

from __future__ import annotations

from dataclasses import dataclass, fields
from decimal import Decimal, InvalidOperation

from django.db.models import Q

from risk.models import RiskLimit

LIMIT_FIELDS = (
    "max_order_quantity",
    "max_order_value",
    "max_position_quantity",
    "max_strategy_exposure",
    "max_total_exposure",
    "max_open_orders",
    "price_band_percent",
    "orders_per_second",
    "daily_loss_limit",
    "drawdown_limit",
    "rejection_burst",
)

INTEGER_FIELDS = frozenset(
    {
        "max_order_quantity",
        "max_position_quantity",
        "max_open_orders",
        "orders_per_second",
        "rejection_burst",
    }
)


@dataclass(frozen=True)
class Limits:
    max_order_quantity: int | None = None
    max_order_value: Decimal | None = None
    max_position_quantity: int | None = None
    max_strategy_exposure: Decimal | None = None
    max_total_exposure: Decimal | None = None
    max_open_orders: int | None = None
    price_band_percent: Decimal | None = None
    orders_per_second: int | None = None
    daily_loss_limit: Decimal | None = None
    drawdown_limit: Decimal | None = None
    rejection_burst: int | None = None
    rejection_window_seconds: int = 60
    halt_on_critical_issue: bool = True

    def as_dict(self) -> dict:
        return {
            f.name: (str(v) if isinstance(v := getattr(self, f.name), Decimal) else v)
            for f in fields(self)
        }


def _strictest(values):
    present = [v for v in values if v is not None]
    return min(present) if present else None


def _from_config(strategy, name: str):
    raw = ((strategy.config or {}).get("limits") or {}).get(name) if strategy else None
    if raw is None or isinstance(raw, bool):
        return None
    try:
        value = Decimal(str(raw))
    except InvalidOperation:
        return None
    return value if value > 0 else None


def _combine(global_row, own_row, strategy) -> Limits:
    values = {}
    for name in LIMIT_FIELDS:
        candidates = [getattr(global_row, name, None), getattr(own_row, name, None)]
        candidates.append(_from_config(strategy, name))
        value = _strictest(candidates)
        if value is not None and name in INTEGER_FIELDS:
            value = int(value)
        values[name] = value
    source = own_row or global_row
    if source is not None:
        values["rejection_window_seconds"] = source.rejection_window_seconds
        values["halt_on_critical_issue"] = source.halt_on_critical_issue
    return Limits(**values)


@dataclass(frozen=True)
class LimitsInForce:
    """The limits of one order's checks: the strategy's, and the global row's alone (the
    overall daily loss is checked against the latter)."""

    strategy: Limits
    overall: Limits


def limits_from_rows(global_row, own_row, strategy) -> LimitsInForce:
    """The limits in force, from ``risk_limits`` rows already read (either may be None)."""
    overall = _combine(global_row, None, None)
    if strategy is None:
        return LimitsInForce(strategy=overall, overall=overall)
    return LimitsInForce(strategy=_combine(global_row, own_row, strategy), overall=overall)


def limits_for(strategy=None) -> Limits:
    """The limits in force for ``strategy`` (or the global ones for None): one query."""
    scopes = Q(strategy__isnull=True)
    if strategy is not None:
        scopes |= Q(strategy=strategy)
    rows = {row.strategy_id: row for row in RiskLimit.objects.filter(scopes)}
    own_row = rows.get(strategy.pk) if strategy is not None else None
    return limits_from_rows(rows.get(None), own_row, strategy).strategy
