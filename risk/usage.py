"""Limits in use: for each limit in force (global, and each strategy's: the strictest of the
global row, its row and its config, as risk.limits decides), today's usage against it.

Read for every strategy at once, in a fixed number of statements whatever their number: the
limit rows, and one statement for the largest position, the busiest second and the day's PnL
peak; the day's PnL, the gross exposure and the working orders come from the dashboard's own
figures (``desk``) when it has read them, else three more statements. What each usage measures
is what the pre-trade checks and the kill switch's rules measure (risk.validator,
risk.kill_switch), so a cell turning red says an order or a rule is about to be stopped.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from django.db import connection
from django.db.models import Count
from django.utils import timezone

from orders.enums import OrderStatus
from orders.models import Order, Strategy
from risk.limits import LimitInForce, limit_in_force
from risk.models import RiskLimit
from risk.selectors import day_pnl_by_strategy, gross_exposure_by_strategy

AMBER_AT = Decimal(70)  # percent of the limit used
RED_AT = Decimal(90)
RATE_WINDOW_SECONDS = 60  # the order rate shown: the busiest second of the last minute
ZERO = Decimal("0.00")

# (limit, what is measured against it, whether it is money): a strategy's, then the desk's.
STRATEGY_MEASURES = (
    ("daily_loss_limit", "loss today", True),
    ("drawdown_limit", "drop from the day's peak PnL", True),
    ("max_strategy_exposure", "gross exposure", True),
    ("max_open_orders", "working orders", False),
    ("orders_per_second", f"busiest second, last {RATE_WINDOW_SECONDS} s", False),
    ("max_position_quantity", "largest open position (quantity)", False),
)
GLOBAL_MEASURES = (
    ("daily_loss_limit", "the desk's loss today", True),
    ("drawdown_limit", "the desk's drop from the day's peak PnL", True),
    ("max_total_exposure", "every strategy's gross exposure", True),
)


@dataclass(frozen=True)
class LimitUse:
    """One limit in force and what is used of it now (``used`` None: nothing to measure)."""

    limit: LimitInForce
    measure: str
    used: Decimal | int
    money: bool

    @property
    def name(self) -> str:
        return self.limit.name

    @property
    def off(self) -> bool:
        return self.limit.off

    @property
    def percent(self) -> Decimal | None:
        if self.off:
            return None
        if not self.limit.value:
            return Decimal(100)
        share = Decimal(self.used) * 100 / Decimal(self.limit.value)
        return share.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)

    @property
    def tone(self) -> str:
        """``off`` (no limit), ``red`` from RED_AT %, ``amber`` from AMBER_AT %, ``green``."""
        if self.off:
            return "off"
        if self.percent >= RED_AT:
            return "red"
        return "amber" if self.percent >= AMBER_AT else "green"


@dataclass(frozen=True)
class ScopeUsage:
    """The limits of one scope: the desk (``strategy`` None) or one strategy."""

    strategy: Strategy | None
    uses: tuple[LimitUse, ...]

    @property
    def label(self) -> str:
        return self.strategy.name if self.strategy else "Global (the desk)"

    @property
    def warnings(self) -> list[str]:
        return [use.limit.warning for use in self.uses if use.off]

    def use(self, name: str) -> LimitUse | None:
        return next((use for use in self.uses if use.name == name), None)


@dataclass(frozen=True)
class LimitsUsage:
    scopes: tuple[ScopeUsage, ...]  # the desk first, then the strategies by name

    def of(self, strategy) -> ScopeUsage | None:
        key = strategy.pk if strategy is not None else None
        return next(
            (s for s in self.scopes if (s.strategy.pk if s.strategy else None) == key), None
        )

    @property
    def off(self) -> int:
        return sum(use.off for scope in self.scopes for use in scope.uses)

    @property
    def near(self) -> int:
        return sum(use.tone in ("amber", "red") for scope in self.scopes for use in scope.uses)


# Per strategy (NULL: the desk's snapshots): the largest open position, the busiest second of
# orders placed in the window, and the day's highest PnL snapshot.
_FIGURES = """
SELECT 'position', strategy_id, max(abs(quantity)) FROM positions
 WHERE closed_at IS NULL GROUP BY strategy_id
UNION ALL
SELECT 'rate', strategy_id, max(n) FROM (
    SELECT strategy_id, count(*) AS n FROM orders
     WHERE created_at > now() - make_interval(secs => %(window)s)
     GROUP BY strategy_id, date_trunc('second', created_at)) AS seconds
 GROUP BY strategy_id
UNION ALL
SELECT 'peak', strategy_id, max(total_pnl) FROM pnl_snapshots
 WHERE taken_at >= %(day_start)s GROUP BY strategy_id
"""


def _figures(day_start) -> dict[str, dict]:
    found: dict[str, dict] = {"position": {}, "rate": {}, "peak": {}}
    with connection.cursor() as cursor:
        cursor.execute(_FIGURES, {"window": RATE_WINDOW_SECONDS, "day_start": day_start})
        for kind, strategy_id, value in cursor.fetchall():
            found[kind][strategy_id] = value
    return found


def _drawdown(total: Decimal, peak: Decimal | None) -> Decimal:
    """The drop from the day's peak: the day starts flat, so the peak is never below zero."""
    return max(ZERO, peak or ZERO, total) - total


def limits_in_use(*, desk=None, strategy=None, now=None) -> LimitsUsage:
    """Every limit in force and today's usage of it: the desk's, and each strategy's (only
    ``strategy``'s, with one given). ``desk``: the dashboard's DeskToday, whose figures are
    reused rather than read again."""
    now = timezone.localtime(now or timezone.now())
    day_start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if desk is not None:
        strategies = [row.strategy for row in desk.strategies]
        pnl = {row.strategy.pk: row.total_pnl for row in desk.strategies}
        pnl[None] = desk.total_pnl
        exposure = {row.strategy.pk: row.gross_exposure for row in desk.strategies}
        working = {row.strategy.pk: row.open_orders for row in desk.strategies}
    else:
        strategies = list(Strategy.objects.order_by("name"))
        pnl = {key: money.total for key, money in day_pnl_by_strategy(now=now).items()}
        exposure = gross_exposure_by_strategy()
        working = dict(
            Order.objects.filter(status__in=sorted(OrderStatus.active()))
            .values("strategy_id")
            .annotate(n=Count("id"))
            .values_list("strategy_id", "n")
        )
    if strategy is not None:
        strategies = [s for s in strategies if s.pk == strategy.pk]
    rows = {row.strategy_id: row for row in RiskLimit.objects.all()}
    figures = _figures(day_start)
    global_row = rows.get(None)

    def uses(measures, own_row, of, used):
        return tuple(
            LimitUse(
                limit=limit_in_force(name, global_row, own_row, of),
                measure=measure,
                used=used[name],
                money=money,
            )
            for name, measure, money in measures
        )

    desk_total = pnl.get(None, ZERO)
    scopes = [
        ScopeUsage(
            None,
            uses(
                GLOBAL_MEASURES,
                None,
                None,
                {
                    "daily_loss_limit": max(ZERO, -desk_total),
                    "drawdown_limit": _drawdown(desk_total, figures["peak"].get(None)),
                    "max_total_exposure": sum(exposure.values(), ZERO),
                },
            ),
        )
    ]
    for each in strategies:
        total = pnl.get(each.pk, ZERO)
        used = {
            "daily_loss_limit": max(ZERO, -total),
            "drawdown_limit": _drawdown(total, figures["peak"].get(each.pk)),
            "max_strategy_exposure": exposure.get(each.pk, ZERO),
            "max_open_orders": working.get(each.pk, 0),
            "orders_per_second": figures["rate"].get(each.pk, 0),
            "max_position_quantity": figures["position"].get(each.pk, 0),
        }
        scopes.append(ScopeUsage(each, uses(STRATEGY_MEASURES, rows.get(each.pk), each, used)))
    return LimitsUsage(tuple(scopes))
