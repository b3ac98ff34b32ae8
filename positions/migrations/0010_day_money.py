"""PnL booked on the fill's day: the realized PnL of the book so far moved onto its trades, and
``strategy_metrics`` reading the fills' realized PnL (README, *Money*).

Trades are append-only, and what each past reduction realized was never recorded: each
position's realized PnL is booked on its instrument's latest trade inside the position's life
(the fill that closed it, or the latest reduction of an open one). Exact for positions closed
by one fill; for the others the figure lands on the last reduction's day. The append-only
trigger is lifted for this one statement (ALTER TABLE ... DISABLE TRIGGER, in the migration's
transaction).
"""

from django.db import migrations

BACKFILL = """
DO $$
DECLARE protect text;
BEGIN
    SELECT tgname INTO protect FROM pg_trigger
    WHERE tgrelid = 'trades'::regclass AND tgname LIKE 'pgtrigger_append_only_%';
    EXECUTE format('ALTER TABLE trades DISABLE TRIGGER %I', protect);
    UPDATE trades t SET realized_pnl = booked.realized
    FROM (
        SELECT last.id, sum(p.realized_pnl) AS realized
        FROM positions p
        CROSS JOIN LATERAL (
            SELECT t.id FROM trades t
            WHERE t.strategy_id = p.strategy_id AND t.symbol = p.symbol
              AND t.exchange = p.exchange AND t.product = p.product
              AND t.executed_at <= coalesce(p.closed_at, now())
            ORDER BY t.executed_at DESC, t.id DESC LIMIT 1
        ) last
        WHERE p.realized_pnl <> 0
        GROUP BY last.id
    ) booked
    WHERE t.id = booked.id;
    EXECUTE format('ALTER TABLE trades ENABLE TRIGGER %I', protect);
END $$;
"""

STRATEGY_METRICS_FUNCTION = """
CREATE OR REPLACE FUNCTION strategy_metrics(p_strategy_id bigint, p_from date, p_to date)
RETURNS TABLE (
    total_trades bigint,
    buy_trades bigint,
    sell_trades bigint,
    winning_trades bigint,
    losing_trades bigint,
    win_rate numeric,
    gross_pnl numeric,
    total_charges numeric,
    net_pnl numeric,
    turnover numeric
)
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    WITH bounds AS (
        -- IST calendar days [p_from, p_to] as the half-open instant range [starts, ends).
        SELECT p_from::timestamp AT TIME ZONE 'Asia/Kolkata' AS starts,
               (p_to + 1)::timestamp AT TIME ZONE 'Asia/Kolkata' AS ends
    ),
    fills AS (
        SELECT count(*) FILTER (WHERE t.kind = 'FILL') AS total_trades,
               count(*) FILTER (WHERE t.kind = 'FILL' AND t.side = 'BUY') AS buy_trades,
               count(*) FILTER (WHERE t.kind = 'FILL' AND t.side = 'SELL') AS sell_trades,
               coalesce(sum(t.total_charges), 0.00) AS total_charges,
               coalesce(sum(t.gross_value) FILTER (WHERE t.kind = 'FILL'), 0.00) AS turnover,
               coalesce(sum(t.realized_pnl), 0.00) AS gross_pnl
        FROM trades t, bounds b
        WHERE t.strategy_id = p_strategy_id
          AND t.executed_at >= b.starts AND t.executed_at < b.ends
    ),
    round_trips AS (
        SELECT count(*) FILTER (WHERE p.realized_pnl > 0) AS winning_trades,
               count(*) FILTER (WHERE p.realized_pnl < 0) AS losing_trades
        FROM positions p, bounds b
        WHERE p.strategy_id = p_strategy_id
          AND p.closed_at >= b.starts AND p.closed_at < b.ends
    )
    SELECT f.total_trades,
           f.buy_trades,
           f.sell_trades,
           r.winning_trades,
           r.losing_trades,
           CASE WHEN r.winning_trades + r.losing_trades = 0 THEN 0.00
                ELSE round(r.winning_trades * 100.0 / (r.winning_trades + r.losing_trades), 2)
           END,
           f.gross_pnl,
           f.total_charges,
           f.gross_pnl - f.total_charges,
           f.turnover
    FROM fills f, round_trips r
$$;

COMMENT ON FUNCTION strategy_metrics(bigint, date, date) IS
    'Figures of one strategy over the IST calendar days p_from..p_to (both included). '
    'From the fills executed in the range: total_trades, buy_trades, sell_trades and turnover '
    '(adjustment fills are not trades), total_charges (the fills'' charges; the DP charge is a '
    'day''s charge: see daily_stats and positions.selectors.day_money), gross_pnl (the sum of '
    'the fills'' realized_pnl: PnL booked on the day of the fill that realized it). '
    'From the strategy''s positions closed in the range (closed_at''s IST date, the closing '
    'fill''s), each a round trip: winning_trades (realized_pnl > 0), losing_trades '
    '(realized_pnl < 0; a break-even trip is neither). net_pnl = gross_pnl - total_charges; '
    'win_rate = winning * 100 / (winning + losing) to 2 places, half away from zero, 0 when '
    'no trip is decided.';
"""


class Migration(migrations.Migration):
    dependencies = [
        ("positions", "0009_money"),
        ("orders", "0014_money"),
    ]

    operations = [
        migrations.RunSQL(BACKFILL, reverse_sql=migrations.RunSQL.noop),
        migrations.RunSQL(STRATEGY_METRICS_FUNCTION, reverse_sql=migrations.RunSQL.noop),
    ]
