"""The limits in force for a strategy: the strictest of the global row, the strategy's row and
the strategy's JSON config (``config["limits"]``, which may tighten but never loosen).

``limits_report`` says, for each limit, its value in force, which level it comes from and
whether it is off: the API's ``GET /strategy/`` and the admin show that one computation.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from decimal import Decimal, InvalidOperation

from django.conf import settings
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

# What each limit bounds, and what its being off lets through (the warning shown for it).
LIMIT_MEANINGS = {
    "max_order_quantity": ("Max order quantity", "an order of any quantity passes"),
    "max_order_value": ("Max order value (Rs)", "an order of any value passes"),
    "max_position_quantity": (
        "Max position quantity",
        "a position in one instrument may grow without bound",
    ),
    "max_strategy_exposure": (
        "Max strategy exposure (Rs)",
        "the strategy's gross exposure is unbounded",
    ),
    "max_total_exposure": ("Max total exposure (Rs)", "all strategies' exposure is unbounded"),
    "max_open_orders": ("Max open orders", "any number of orders may be working at once"),
    "price_band_percent": (
        "Price band around the last price (%)",
        "a LIMIT price at any distance from the market passes (no fat-finger check)",
    ),
    "orders_per_second": ("Orders a second", "no order rate"),
    "daily_loss_limit": (
        "Daily loss limit (Rs)",
        "no loss stops new exposure: the kill switch never goes to REDUCING on the day's PnL",
    ),
    "drawdown_limit": (
        "Drawdown from the day's peak (Rs)",
        "no drawdown halts trading automatically",
    ),
    "rejection_burst": (
        "Broker rejections before a halt",
        "a burst of broker rejections does not halt trading",
    ),
}

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


@dataclass(frozen=True)
class LimitInForce:
    """One limit for one strategy: each level's own value (None: not set there), the strictest
    of them (None: the limit is off), and the levels it comes from ("setting" for the order
    rate's default, OMS_ORDERS_PER_SECOND, which applies when no level sets one)."""

    name: str
    value: int | Decimal | None
    levels: dict[str, int | Decimal | None]
    sources: tuple[str, ...]

    @property
    def label(self) -> str:
        return LIMIT_MEANINGS[self.name][0]

    @property
    def off(self) -> bool:
        return self.value is None

    @property
    def warning(self) -> str | None:
        if not self.off:
            return None
        return f"{self.name} is off (no value at any level): {LIMIT_MEANINGS[self.name][1]}"


def _in_force(name: str, global_row, own_row, strategy) -> LimitInForce:
    levels = {
        "global": getattr(global_row, name, None),
        "strategy": getattr(own_row, name, None),
        "config": _from_config(strategy, name),
    }
    value = _strictest(levels.values())
    if value is not None and name in INTEGER_FIELDS:
        value = int(value)
    sources = tuple(level for level, v in levels.items() if v is not None and v == value)
    if value is None and name == "orders_per_second":
        value, sources = settings.OMS_ORDERS_PER_SECOND, ("setting",)
    return LimitInForce(name=name, value=value, levels=levels, sources=sources)


def limit_in_force(name: str, global_row, own_row, strategy) -> LimitInForce:
    """One limit in force from ``risk_limits`` rows already read (either may be None)."""
    return _in_force(name, global_row, own_row, strategy)


def _combine(global_row, own_row, strategy) -> Limits:
    return _limits_of(
        [_in_force(name, global_row, own_row, strategy) for name in LIMIT_FIELDS],
        own_row or global_row,
    )


def _limits_of(in_force: list[LimitInForce], source) -> Limits:
    values = {limit.name: limit.value for limit in in_force}
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


def _rows(strategy):
    scopes = Q(strategy__isnull=True)
    if strategy is not None:
        scopes |= Q(strategy=strategy)
    rows = {row.strategy_id: row for row in RiskLimit.objects.filter(scopes)}
    return rows.get(None), (rows.get(strategy.pk) if strategy is not None else None)


def limits_for(strategy=None) -> Limits:
    """The limits in force for ``strategy`` (or the global ones for None): one query."""
    global_row, own_row = _rows(strategy)
    return limits_from_rows(global_row, own_row, strategy).strategy


@dataclass(frozen=True)
class LimitsReport:
    """The limits in force for a strategy (or globally), each with where it comes from."""

    limits: Limits
    in_force: tuple[LimitInForce, ...]
    global_row_exists: bool

    @property
    def warnings(self) -> list[str]:
        found = [limit.warning for limit in self.in_force if limit.off]
        if not self.global_row_exists:
            found.insert(0, "no global risk limits row: only a strategy's own limits apply")
        return found


def limits_report(strategy=None) -> LimitsReport:
    """Every limit in force for ``strategy`` (None: the global row alone), its value, the
    levels it comes from, and a warning for each that is off. One query; the same strictest
    rule as the pre-trade checks (``limits_from_rows``)."""
    global_row, own_row = _rows(strategy)
    in_force = [_in_force(name, global_row, own_row, strategy) for name in LIMIT_FIELDS]
    return LimitsReport(
        limits=_limits_of(in_force, own_row or global_row),
        in_force=tuple(in_force),
        global_row_exists=global_row is not None,
    )
