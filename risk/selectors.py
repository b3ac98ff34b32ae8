"""Reads of risk state shared by the validator, the API, the admin and the commands."""

from __future__ import annotations

from decimal import Decimal

from django.db import connection
from django.db.models import CharField, Count, Func, Q, Sum, Value
from django.db.models.expressions import RawSQL
from django.utils import timezone

from orders.enums import OrderStatus
from orders.models import Order, Strategy
from positions.models import ActivePosition, ReconciliationIssue, Severity
from positions.selectors import DayMoney, day_money, day_money_by_strategy
from risk.models import KillSwitchEvent, KillSwitchScope, KillSwitchState, PnlSnapshot

# The advisory lock key the kill switch takes exclusively while it changes state (and every
# order's checks share: risk.validator.checks_lock).
KILL_SWITCH_LOCK = 0x4B494C4C  # "KILL"
# The advisory lock the checks against the total exposure limit take, after the strategy's.
TOTAL_EXPOSURE_LOCK = 0x45585053  # "EXPS"

# What a switch's state is, defined once in SQL (risk migration 0007): the state of its latest
# event, the one with the highest id (ids follow the order changes commit in, under the kill
# switch's lock; no process's clock orders them). ``v_kill_switch_current`` holds every
# switch's latest event; ``oms_kill_switch_state(scope, strategy_id)`` reads one switch's
# state from it (NULL: never set). Every reader goes through one or the other.

# The latest state of the global switch and of one strategy's (``%(strategy_id)s``; NULL for
# none), NULL where a switch was never set: two select-list items, so the validator reads them
# in the same statement as the rest of an order's context.
KILL_SWITCH_STATES = """
    oms_kill_switch_state('GLOBAL', NULL) AS global_switch,
    oms_kill_switch_state('STRATEGY', %(strategy_id)s) AS strategy_switch
"""


def kill_switch_own_state(strategy_id) -> Func:
    """An ORM expression: the state of a strategy's own switch (None: never set), for a list
    of strategies, e.g. ``Strategy.objects.annotate(own_switch=kill_switch_own_state(F("pk")))``.
    """
    return Func(
        Value(str(KillSwitchScope.STRATEGY)),
        strategy_id,
        function="oms_kill_switch_state",
        output_field=CharField(),
    )


def kill_switch_lock() -> None:
    """Inside a transaction, wait for a kill switch change being committed, and keep the next
    one waiting until this transaction ends (see risk.kill_switch.kill_switch_set).

    Read the state in a later statement: a statement sees the data of the moment it began.
    """
    if connection.in_atomic_block:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock_shared(%s)", [KILL_SWITCH_LOCK])


def kill_switch_in_force(global_switch: str | None, strategy_switch: str | None) -> KillSwitchState:
    """The stricter of the two switches (a switch never set is ACTIVE)."""
    states = (KillSwitchState(s or "ACTIVE") for s in (global_switch, strategy_switch))
    return max(states, key=lambda state: state.severity)


def kill_switch_state(*, strategy=None, lock: bool = False) -> KillSwitchState:
    """The state in force for a strategy: the stricter of the global and its own switch.

    Read from the database on every call, so every process agrees at once. With ``lock``
    (inside a transaction) the read waits for a kill switch change being committed, so an order
    and a HALT cannot pass each other: see risk.kill_switch.kill_switch_set.
    """
    if lock:
        kill_switch_lock()
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {KILL_SWITCH_STATES}",
            {"strategy_id": strategy.pk if strategy is not None else None},
        )
        return kill_switch_in_force(*cursor.fetchone())


# --- today's PnL ---------------------------------------------------------------------------------


def day_pnl(strategy=None, *, now=None) -> DayMoney:
    """Today's (IST) money of a strategy, or of the account with None: the one definition,
    positions.selectors.day_money (gross realized by today's fills, charges with the DP
    charge, net, and the open positions' unrealized). ``.total`` (net realized + unrealized)
    is what the daily loss limit and the kill switch's rules measure."""
    return day_money(strategy=strategy, day=timezone.localdate(now or timezone.now()))


# --- the admin's kill switch board and desk dashboard -------------------------------------------


class KillSwitchBoard:
    """Every switch's latest event, read in one query: the admin's banner and kill switch page.

    ``global_event`` is the global switch's latest event (None: never set, so ACTIVE);
    ``strategy_events`` maps a strategy id to its own switch's latest event.
    """

    def __init__(self, events):
        self.global_event = next((e for e in events if e.scope == KillSwitchScope.GLOBAL), None)
        self.strategy_events = {
            e.strategy_id: e for e in events if e.scope != KillSwitchScope.GLOBAL
        }

    @property
    def global_state(self) -> KillSwitchState:
        return KillSwitchState(self.global_event.state if self.global_event else "ACTIVE")

    def own_state(self, strategy_id: int) -> KillSwitchState:
        """The strategy's own switch (ACTIVE when never set)."""
        event = self.strategy_events.get(strategy_id)
        return KillSwitchState(event.state if event else "ACTIVE")

    def state_for(self, strategy_id: int) -> KillSwitchState:
        """The state in force for the strategy: the stricter of the global and its own."""
        return max(self.global_state, self.own_state(strategy_id), key=lambda state: state.severity)

    @property
    def alerts(self) -> list:
        """The events of the switches not ACTIVE: the global one first, then the strictest."""
        halted = [
            e
            for e in self.strategy_events.values()
            if e.state != KillSwitchState.ACTIVE and e.strategy is not None
        ]
        halted.sort(key=lambda e: (-KillSwitchState(e.state).severity, e.strategy.name))
        if self.global_state != KillSwitchState.ACTIVE:
            halted.insert(0, self.global_event)
        return halted


def kill_switch_board() -> KillSwitchBoard:
    """The latest event of the global switch and of every strategy's (``v_kill_switch_current``,
    the rule oms_kill_switch_state reads), in one query."""
    latest = KillSwitchEvent.objects.select_related("strategy").filter(
        pk__in=RawSQL("SELECT id FROM v_kill_switch_current", ())
    )
    return KillSwitchBoard(list(latest))


def day_pnl_by_strategy(*, now=None) -> dict[int | None, DayMoney]:
    """``day_pnl`` of every strategy with figures today, and of the account (key None), in
    one statement (positions.selectors.day_money_by_strategy: the same rows)."""
    return day_money_by_strategy(day=timezone.localdate(now or timezone.now()))


# Gross exposure, what the exposure limits check (max_strategy_exposure, max_total_exposure)
# and the dashboard shows: |quantity| x average price of each open position, plus the unfilled
# quantity x price of each working order that has a price. At cost, not at the last price: that
# is a position's value (v_active_positions.position_value), a different figure.
# ``{scope}``: " AND strategy_id = ..." for one strategy, "" for all of them.
_GROSS_EXPOSURE = """
SELECT strategy_id, SUM(amount) FROM (
    SELECT strategy_id, ABS(quantity) * average_price AS amount
      FROM positions WHERE closed_at IS NULL{scope}
    UNION ALL
    SELECT strategy_id, (quantity - filled_quantity) * price
      FROM orders WHERE status = ANY(%(active)s) AND price IS NOT NULL{scope}
) AS held_and_working
GROUP BY strategy_id
"""


def gross_exposure_by_strategy(strategy=None) -> dict[int, Decimal]:
    """Each strategy's gross exposure (strategies with none are left out)."""
    scope = " AND strategy_id = %(strategy_id)s" if strategy is not None else ""
    with connection.cursor() as cursor:
        cursor.execute(
            _GROSS_EXPOSURE.format(scope=scope),
            {
                "active": sorted(OrderStatus.active()),
                "strategy_id": strategy.pk if strategy is not None else None,
            },
        )
        return {strategy_id: Decimal(amount or 0) for strategy_id, amount in cursor.fetchall()}


def gross_exposure(strategy=None) -> Decimal:
    """One strategy's gross exposure, or (no strategy) every strategy's together: the figure
    the exposure limits are checked against."""
    return sum(gross_exposure_by_strategy(strategy).values(), Decimal(0))


class StrategyDay:
    """One strategy's line on the dashboard: its day's money (``money``, a DayMoney) labelled
    gross and net as everywhere."""

    def __init__(
        self,
        strategy,
        *,
        money,
        open_orders,
        open_positions,
        gross_exposure,
        position_value,
        kill_switch,
    ):
        self.strategy = strategy
        self.money = money
        self.gross_realized = money.gross_realized
        self.charges = money.charges
        self.realized_pnl = money.net_realized
        self.unrealized_pnl = money.unrealized
        self.total_pnl = money.total
        self.open_orders = open_orders
        self.open_positions = open_positions
        self.gross_exposure = gross_exposure  # what the exposure limits check
        self.position_value = position_value  # open positions at their last price
        self.kill_switch = kill_switch


class DeskToday:
    """What the risk desk reads first: today's PnL per strategy, working orders, gross exposure
    (the limits' figure) and the open positions' value at their last price,
    unresolved reconciliation issues by severity, the kill switch, and the PnL series of the
    day's snapshots (``pnl_series``: [(strategy or None for the desk, [(taken_at, total)])])."""

    def __init__(self, *, day, account, strategies, issues_by_severity, kill_switch, pnl_series):
        self.date = day
        self.strategies = strategies
        self.issues_by_severity = issues_by_severity
        self.kill_switch = kill_switch
        self.pnl_series = pnl_series
        # The account's own figures: its DP charge counts each scrip once across strategies.
        self.money = account
        self.gross_realized = account.gross_realized
        self.charges = account.charges
        self.realized_pnl = account.net_realized
        self.unrealized_pnl = account.unrealized
        self.total_pnl = account.total
        self.open_orders = sum(s.open_orders for s in strategies)
        self.open_positions = sum(s.open_positions for s in strategies)
        self.gross_exposure = sum((s.gross_exposure for s in strategies), Decimal("0.00"))
        self.position_value = sum((s.position_value for s in strategies), Decimal("0.00"))
        self.unresolved_issues = sum(issues_by_severity.values())


def desk_today(*, now=None) -> DeskToday:
    """The dashboard's figures in a fixed number of queries, whatever the number of strategies,
    orders or positions: strategies, PnL (three), working orders, position values, gross
    exposure, issues, kill switch,
    snapshots. Working orders are counted through the partial index of active orders."""
    now = timezone.localtime(now or timezone.now())
    start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    strategies = list(Strategy.objects.order_by("name"))
    pnl = day_pnl_by_strategy(now=now)
    working = dict(
        Order.objects.filter(status__in=sorted(OrderStatus.active()))
        .values("strategy_id")
        .annotate(n=Count("id"))
        .values_list("strategy_id", "n")
    )
    held = {
        row["strategy_id"]: row
        for row in ActivePosition.objects.values("strategy_id").annotate(
            n=Count("id"), position_value=Sum("position_value")
        )
    }
    exposure = gross_exposure_by_strategy()
    issues = dict.fromkeys((Severity.CRITICAL, Severity.WARNING, Severity.INFO), 0)
    issues.update(
        ReconciliationIssue.objects.filter(resolved=False)
        .values("severity")
        .annotate(n=Count("id"))
        .values_list("severity", "n")
    )
    board = kill_switch_board()
    zero = Decimal("0.00")
    nothing = DayMoney(day=now.date())
    rows = [
        StrategyDay(
            strategy,
            money=pnl.get(strategy.pk, nothing),
            open_orders=working.get(strategy.pk, 0),
            open_positions=held.get(strategy.pk, {}).get("n", 0),
            gross_exposure=exposure.get(strategy.pk, zero),
            position_value=held.get(strategy.pk, {}).get("position_value") or zero,
            kill_switch=board.state_for(strategy.pk),
        )
        for strategy in strategies
    ]
    by_id = {s.pk: s for s in strategies}
    series: dict = {}
    snapshots = (
        PnlSnapshot.objects.filter(
            Q(strategy__isnull=True) | Q(strategy_id__in=list(by_id)), taken_at__gte=start
        )
        .order_by("taken_at", "id")
        .values_list("strategy_id", "taken_at", "total_pnl")
    )
    for strategy_id, taken_at, total in snapshots:
        series.setdefault(strategy_id, []).append((taken_at, total))
    pnl_series = [(None, series.pop(None, []))] if None in series else []
    pnl_series += [
        (by_id[k], v) for k, v in sorted(series.items(), key=lambda kv: by_id[kv[0]].name)
    ]
    return DeskToday(
        day=now.date(),
        account=pnl.get(None, nothing),
        strategies=rows,
        issues_by_severity=issues,
        kill_switch=board,
        pnl_series=pnl_series,
    )
