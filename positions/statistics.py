"""Daily statistics read from the book with one set-based query, then upserted: idempotent.

Per IST day, globally (strategy NULL) and per strategy:
- orders created that day, by outcome (FILLED; CANCELLED or EXPIRED; REJECTED);
- the day's money as positions.selectors.DAY_MONEY_CTES defines it, the same rows the live
  PnL reads: trades executed that day (adjustment fills aside), their turnover, gross PnL
  (what the day's fills realized), charges with the DP charge, net PnL = gross - charges;
- winning and losing round trips: positions closed that day (by their closing fill), by
  realized PnL;
- max intraday drawdown from the PnL snapshots (peak - PnL, the day starting flat).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.db import connection, transaction

from orders.models import Strategy
from positions.selectors import DAY_MONEY_CTES, day_money_params

# One read of the book (no writes, so PostgreSQL may run its scans in parallel): every row of
# the range, per strategy and for the account. Trades are read once (DAY_MONEY_CTES: grouped
# by day, strategy and symbol, then per strategy and for the account); the account's row sums
# the strategies' order counts and round trips, and takes its own money row (each scrip's DP
# charge once a day across strategies) and drawdown (the account's own PnL snapshots).
COMPUTE = (
    "WITH "  # noqa: S608 - constant SQL text, parameters bound
    + DAY_MONEY_CTES
    + """,
order_counts AS (
    SELECT (o.created_at AT TIME ZONE 'Asia/Kolkata')::date AS day, o.strategy_id,
           count(*) AS total,
           count(*) FILTER (WHERE o.status = 'FILLED') AS filled,
           count(*) FILTER (WHERE o.status IN ('CANCELLED', 'EXPIRED')) AS cancelled,
           count(*) FILTER (WHERE o.status = 'REJECTED') AS rejected
    FROM orders o
    WHERE o.created_at >= %(lower)s AND o.created_at < %(upper)s {only_o}
    GROUP BY 1, 2
),
closed AS (
    SELECT (p.closed_at AT TIME ZONE 'Asia/Kolkata')::date AS day, p.strategy_id,
           count(*) FILTER (WHERE p.realized_pnl > 0) AS wins,
           count(*) FILTER (WHERE p.realized_pnl < 0) AS losses
    FROM positions p
    WHERE p.closed_at >= %(lower)s AND p.closed_at < %(upper)s {only_p}
    GROUP BY 1, 2
),
drawdowns AS (
    -- Peak minus PnL, the day starting flat (the peak is never below zero).
    SELECT day, strategy_id, max(peak - total_pnl) AS drawdown
    FROM (
        SELECT (s.taken_at AT TIME ZONE 'Asia/Kolkata')::date AS day, s.strategy_id,
               s.total_pnl,
               greatest(0, max(s.total_pnl) OVER (
                   PARTITION BY s.strategy_id, (s.taken_at AT TIME ZONE 'Asia/Kolkata')::date
                   ORDER BY s.taken_at)) AS peak
        FROM pnl_snapshots s
        WHERE s.taken_at >= %(lower)s AND s.taken_at < %(upper)s {only_s}
    ) running
    GROUP BY 1, 2
),
per_strategy AS (
    SELECT k.day, k.strategy_id,
           coalesce(oc.total, 0) AS total_orders,
           coalesce(oc.filled, 0) AS filled_orders,
           coalesce(oc.cancelled, 0) AS cancelled_orders,
           coalesce(oc.rejected, 0) AS rejected_orders,
           coalesce(m.trades, 0) AS total_trades,
           coalesce(c.wins, 0) AS winning_trades,
           coalesce(c.losses, 0) AS losing_trades,
           coalesce(m.gross, 0) AS gross_pnl,
           coalesce(m.trade_charges, 0) + coalesce(m.dp_charges, 0) AS total_charges,
           coalesce(m.turnover, 0) AS turnover,
           coalesce(d.drawdown, 0) AS max_drawdown
    FROM (
        SELECT day, strategy_id FROM order_counts
        UNION SELECT day, strategy_id FROM day_money WHERE strategy_id IS NOT NULL
        UNION SELECT day, strategy_id FROM closed
    ) k
    LEFT JOIN order_counts oc ON oc.day = k.day AND oc.strategy_id = k.strategy_id
    LEFT JOIN day_money m ON m.day = k.day AND m.strategy_id = k.strategy_id
    LEFT JOIN closed c ON c.day = k.day AND c.strategy_id = k.strategy_id
    LEFT JOIN drawdowns d ON d.day = k.day AND d.strategy_id = k.strategy_id
)
SELECT day, strategy_id, total_orders, filled_orders, cancelled_orders, rejected_orders,
       total_trades, winning_trades, losing_trades, gross_pnl, total_charges, turnover,
       max_drawdown
FROM per_strategy
"""
)

ACCOUNT = """
UNION ALL
SELECT a.day, NULL, a.total_orders, a.filled_orders, a.cancelled_orders, a.rejected_orders,
       coalesce(m.trades, 0), a.winning_trades, a.losing_trades, coalesce(m.gross, 0),
       coalesce(m.trade_charges, 0) + coalesce(m.dp_charges, 0), coalesce(m.turnover, 0),
       coalesce(d.drawdown, 0)
FROM (
    SELECT day, sum(total_orders) AS total_orders, sum(filled_orders) AS filled_orders,
           sum(cancelled_orders) AS cancelled_orders, sum(rejected_orders) AS rejected_orders,
           sum(winning_trades) AS winning_trades, sum(losing_trades) AS losing_trades
    FROM per_strategy GROUP BY day
) a
LEFT JOIN day_money m ON m.day = a.day AND m.strategy_id IS NULL
LEFT JOIN drawdowns d ON d.day = a.day AND d.strategy_id IS NULL
"""

COLUMNS = (
    "date",
    "strategy_id",
    "total_orders",
    "filled_orders",
    "cancelled_orders",
    "rejected_orders",
    "total_trades",
    "winning_trades",
    "losing_trades",
    "gross_pnl",
    "total_charges",
    "turnover",
    "max_drawdown",
)
TYPES = (
    "date",
    "bigint",
    "integer",
    "integer",
    "integer",
    "integer",
    "integer",
    "integer",
    "integer",
    "numeric",
    "numeric",
    "numeric",
    "numeric",
)

# The computed rows are few (days x strategies): they go back as arrays, one upsert per kind
# of row (each has its own partial unique index).
UPSERT = """
INSERT INTO daily_stats ({columns}, net_pnl, created_at, updated_at)
SELECT {columns}, gross_pnl - total_charges, now(), now()
FROM unnest({arrays}) AS computed({columns})
WHERE strategy_id IS {kind}
ON CONFLICT {target} DO UPDATE SET
    total_orders = EXCLUDED.total_orders, filled_orders = EXCLUDED.filled_orders,
    cancelled_orders = EXCLUDED.cancelled_orders, rejected_orders = EXCLUDED.rejected_orders,
    total_trades = EXCLUDED.total_trades, winning_trades = EXCLUDED.winning_trades,
    losing_trades = EXCLUDED.losing_trades, gross_pnl = EXCLUDED.gross_pnl,
    total_charges = EXCLUDED.total_charges, net_pnl = EXCLUDED.net_pnl,
    turnover = EXCLUDED.turnover, max_drawdown = EXCLUDED.max_drawdown
"""


def _compute_sql(strategy_filter: bool) -> str:
    """The SELECT of the rows: with a strategy, only its rows (the account's needs them all)."""
    parts = {}
    for alias in ("t", "o", "p", "s"):
        wanted = f" AND {alias}.strategy_id = %(strategy)s" if strategy_filter else ""
        if alias == "s" and not strategy_filter:
            wanted = ""  # the account's snapshots (strategy NULL) are read too
        parts[f"only_{alias}"] = wanted
    return COMPUTE.format(**parts) + ("" if strategy_filter else ACCOUNT)


def _upsert_sql(kind: str) -> str:
    columns = ", ".join(COLUMNS)
    arrays = ", ".join(f"%s::{t}[]" for t in TYPES)
    target = (
        "(date, strategy_id) WHERE strategy_id IS NOT NULL"
        if kind == "NOT NULL"
        else "(date) WHERE strategy_id IS NULL"
    )
    return UPSERT.format(columns=columns, arrays=arrays, kind=kind, target=target)


@dataclass(frozen=True)
class StatsResult:
    days: int
    rows: int


def daily_stats_compute(
    *, date_from: date, date_to: date, strategy: Strategy | None = None
) -> StatsResult:
    """Compute and upsert the daily_stats rows of [date_from, date_to]; running it twice gives
    identical rows. With ``strategy`` only that strategy's rows are computed (not the global)."""
    if date_from > date_to:
        raise ValueError(f"date range {date_from}..{date_to}: the start is after the end")
    params = day_money_params(date_from, date_to, strategy.pk if strategy else None)
    rows = 0
    with transaction.atomic(), connection.cursor() as cursor:
        # The planner cannot tell that a day has few (strategy, symbol) pairs and prepares for
        # hundreds of thousands of groups: with the default work_mem it sorts the trades on
        # disk instead of hashing them, and it judges that gathering that many partial groups
        # from parallel workers costs more than it saves. A few hundred come back: make
        # hashing fit and gathering cheap (for this transaction only).
        cursor.execute("SET LOCAL work_mem = '64MB'")
        cursor.execute("SET LOCAL parallel_tuple_cost = 0.001")
        cursor.execute(_compute_sql(strategy is not None), params)
        computed = cursor.fetchall()
        columns = [list(column) for column in zip(*computed, strict=True)] or [[]] * len(COLUMNS)
        for kind in ("NOT NULL", "NULL"):
            cursor.execute(_upsert_sql(kind), columns)
            rows += cursor.rowcount
    return StatsResult(days=len(params["days"]), rows=rows)


@dataclass(frozen=True)
class CounterMismatch:
    strategy: str
    counter: str
    stored: object
    recomputed: object


def strategy_counters_check() -> list[CounterMismatch]:
    """Compare each strategy's running counters with figures recomputed from its book: trades
    (adjustment fills are not trades), round trips won and lost, and total PnL (what its fills
    realized less their charges)."""
    sql = """
        SELECT s.id, s.name, s.total_trades, s.winning_trades, s.losing_trades, s.total_pnl,
               (SELECT count(*) FROM trades t WHERE t.strategy_id = s.id AND t.kind = 'FILL'),
               (SELECT count(*) FROM positions p
                 WHERE p.strategy_id = s.id AND p.closed_at IS NOT NULL AND p.realized_pnl > 0),
               (SELECT count(*) FROM positions p
                 WHERE p.strategy_id = s.id AND p.closed_at IS NOT NULL AND p.realized_pnl < 0),
               coalesce((SELECT sum(t.realized_pnl - t.total_charges) FROM trades t
                          WHERE t.strategy_id = s.id), 0)
        FROM strategies s ORDER BY s.name
    """
    mismatches = []
    with connection.cursor() as cursor:
        cursor.execute(sql)
        for row in cursor.fetchall():
            name = row[1]
            for counter, stored, recomputed in zip(
                ("total_trades", "winning_trades", "losing_trades", "total_pnl"),
                row[2:6],
                row[6:10],
                strict=True,
            ):
                if Decimal(stored) != Decimal(recomputed):
                    mismatches.append(CounterMismatch(name, counter, stored, recomputed))
    return mismatches
