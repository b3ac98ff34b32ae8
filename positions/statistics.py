"""Daily statistics computed from the book with set-based SQL and upserted: idempotent.

Per IST day, globally (strategy NULL) and per strategy:
- orders created that day, by outcome (FILLED; CANCELLED or EXPIRED; REJECTED);
- trades executed that day, their turnover and charges, plus the DP charge (Rs 13 + GST per
  scrip per day with a CNC sell: the global row counts each scrip once, as the demat account
  is charged, while each strategy is charged for the scrips it sold);
- winning and losing round trips and gross PnL: positions closed that day, by realized PnL;
- net PnL = gross PnL - charges; max intraday drawdown from the PnL snapshots (peak - PnL,
  the day starting flat).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from django.db import connection, transaction

from orders.charges import dp_charge
from orders.models import Strategy

SOURCES = """
WITH dp_rates(day, amount) AS (SELECT * FROM unnest(%(days)s::date[], %(dp)s::numeric[])),
bounds AS (
    SELECT (%(from)s::date)::timestamp AT TIME ZONE 'Asia/Kolkata' AS lower,
           (%(to)s::date + 1)::timestamp AT TIME ZONE 'Asia/Kolkata' AS upper
),
order_counts AS (
    SELECT (o.created_at AT TIME ZONE 'Asia/Kolkata')::date AS day, {key_o} AS strategy_id,
           count(*) AS total,
           count(*) FILTER (WHERE o.status = 'FILLED') AS filled,
           count(*) FILTER (WHERE o.status IN ('CANCELLED', 'EXPIRED')) AS cancelled,
           count(*) FILTER (WHERE o.status = 'REJECTED') AS rejected
    FROM orders o, bounds b
    WHERE o.created_at >= b.lower AND o.created_at < b.upper {filter_o}
    GROUP BY 1, 2
),
trade_sums AS (
    SELECT (t.executed_at AT TIME ZONE 'Asia/Kolkata')::date AS day, {key_t} AS strategy_id,
           count(*) AS trades, sum(t.gross_value) AS turnover, sum(t.total_charges) AS charges,
           count(DISTINCT t.symbol) FILTER (WHERE t.product = 'CNC' AND t.side = 'SELL')
               AS dp_scrips
    FROM trades t, bounds b
    WHERE t.executed_at >= b.lower AND t.executed_at < b.upper {filter_t}
    GROUP BY 1, 2
),
closed AS (
    SELECT (p.closed_at AT TIME ZONE 'Asia/Kolkata')::date AS day, {key_p} AS strategy_id,
           count(*) FILTER (WHERE p.realized_pnl > 0) AS wins,
           count(*) FILTER (WHERE p.realized_pnl < 0) AS losses,
           sum(p.realized_pnl) AS gross
    FROM positions p, bounds b
    WHERE p.closed_at >= b.lower AND p.closed_at < b.upper {filter_p}
    GROUP BY 1, 2
),
drawdowns AS (
    SELECT day, strategy_id, max(peak - total_pnl) AS drawdown
    FROM (
        SELECT (s.taken_at AT TIME ZONE 'Asia/Kolkata')::date AS day, s.strategy_id,
               s.total_pnl,
               greatest(0, max(s.total_pnl) OVER (
                   PARTITION BY s.strategy_id, (s.taken_at AT TIME ZONE 'Asia/Kolkata')::date
                   ORDER BY s.taken_at)) AS peak
        FROM pnl_snapshots s, bounds b
        WHERE s.taken_at >= b.lower AND s.taken_at < b.upper {filter_s}
    ) running
    GROUP BY 1, 2
),
keys AS (
    SELECT day, strategy_id FROM order_counts
    UNION SELECT day, strategy_id FROM trade_sums
    UNION SELECT day, strategy_id FROM closed
),
computed AS (
    SELECT k.day, k.strategy_id,
           coalesce(oc.total, 0) AS total_orders,
           coalesce(oc.filled, 0) AS filled_orders,
           coalesce(oc.cancelled, 0) AS cancelled_orders,
           coalesce(oc.rejected, 0) AS rejected_orders,
           coalesce(ts.trades, 0) AS total_trades,
           coalesce(c.wins, 0) AS winning_trades,
           coalesce(c.losses, 0) AS losing_trades,
           coalesce(c.gross, 0) AS gross_pnl,
           coalesce(ts.charges, 0) + coalesce(ts.dp_scrips, 0) * coalesce(r.amount, 0)
               AS total_charges,
           coalesce(ts.turnover, 0) AS turnover,
           coalesce(d.drawdown, 0) AS max_drawdown
    FROM keys k
    LEFT JOIN order_counts oc
        ON oc.day = k.day AND oc.strategy_id IS NOT DISTINCT FROM k.strategy_id
    LEFT JOIN trade_sums ts
        ON ts.day = k.day AND ts.strategy_id IS NOT DISTINCT FROM k.strategy_id
    LEFT JOIN closed c ON c.day = k.day AND c.strategy_id IS NOT DISTINCT FROM k.strategy_id
    LEFT JOIN drawdowns d ON d.day = k.day AND d.strategy_id IS NOT DISTINCT FROM k.strategy_id
    LEFT JOIN dp_rates r ON r.day = k.day
)
"""

UPSERT = """
INSERT INTO daily_stats (
    date, strategy_id, total_orders, filled_orders, cancelled_orders, rejected_orders,
    total_trades, winning_trades, losing_trades, gross_pnl, total_charges, net_pnl, turnover,
    max_drawdown, created_at, updated_at)
SELECT day, strategy_id, total_orders, filled_orders, cancelled_orders, rejected_orders,
       total_trades, winning_trades, losing_trades, gross_pnl, total_charges,
       gross_pnl - total_charges, turnover, max_drawdown, now(), now()
FROM computed
ON CONFLICT {target} DO UPDATE SET
    total_orders = EXCLUDED.total_orders, filled_orders = EXCLUDED.filled_orders,
    cancelled_orders = EXCLUDED.cancelled_orders, rejected_orders = EXCLUDED.rejected_orders,
    total_trades = EXCLUDED.total_trades, winning_trades = EXCLUDED.winning_trades,
    losing_trades = EXCLUDED.losing_trades, gross_pnl = EXCLUDED.gross_pnl,
    total_charges = EXCLUDED.total_charges, net_pnl = EXCLUDED.net_pnl,
    turnover = EXCLUDED.turnover, max_drawdown = EXCLUDED.max_drawdown
"""


def _sql(per_strategy: bool, strategy_filter: bool) -> str:
    parts = {}
    for alias, suffix in (("o", "o"), ("t", "t"), ("p", "p"), ("s", "s")):
        if per_strategy:
            parts[f"key_{suffix}"] = f"{alias}.strategy_id"
            wanted = f" AND {alias}.strategy_id IS NOT NULL"
            if strategy_filter:
                wanted += f" AND {alias}.strategy_id = %(strategy)s"
            parts[f"filter_{suffix}"] = wanted
        else:
            parts[f"key_{suffix}"] = "NULL::bigint"
            parts[f"filter_{suffix}"] = " AND s.strategy_id IS NULL" if suffix == "s" else ""
    target = (
        "(date, strategy_id) WHERE strategy_id IS NOT NULL"
        if per_strategy
        else "(date) WHERE strategy_id IS NULL"
    )
    return SOURCES.format(**parts) + UPSERT.format(target=target)


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
    days = [date_from + timedelta(days=n) for n in range((date_to - date_from).days + 1)]
    params = {
        "from": date_from,
        "to": date_to,
        "days": days,
        "dp": [dp_charge(on=day) for day in days],
        "strategy": strategy.pk if strategy else None,
    }
    rows = 0
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_sql(per_strategy=True, strategy_filter=strategy is not None), params)
        rows += cursor.rowcount
        if strategy is None:
            cursor.execute(_sql(per_strategy=False, strategy_filter=False), params)
            rows += cursor.rowcount
    return StatsResult(days=len(days), rows=rows)


@dataclass(frozen=True)
class CounterMismatch:
    strategy: str
    counter: str
    stored: object
    recomputed: object


def strategy_counters_check() -> list[CounterMismatch]:
    """Compare each strategy's running counters with figures recomputed from its book."""
    sql = """
        SELECT s.id, s.name, s.total_trades, s.winning_trades, s.losing_trades, s.total_pnl,
               (SELECT count(*) FROM trades t WHERE t.strategy_id = s.id),
               (SELECT count(*) FROM positions p
                 WHERE p.strategy_id = s.id AND p.closed_at IS NOT NULL AND p.realized_pnl > 0),
               (SELECT count(*) FROM positions p
                 WHERE p.strategy_id = s.id AND p.closed_at IS NOT NULL AND p.realized_pnl < 0),
               coalesce((SELECT sum(p.realized_pnl) FROM positions p WHERE p.strategy_id = s.id), 0)
               - coalesce((SELECT sum(t.total_charges) FROM trades t WHERE t.strategy_id = s.id), 0)
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
