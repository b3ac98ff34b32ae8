"""Reads of positions, PnL and reconciliation shared by the API, the admin and the commands."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import connection
from django.db.models import (
    BooleanField,
    Case,
    Count,
    DecimalField,
    F,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Coalesce, Now
from django.utils import timezone

from orders.charges import INDIA, dp_charge
from orders.enums import OrderType, StrategyMode
from orders.models import MONEY, Strategy, Trade
from orders.money import PAISA, to_paisa
from orders.state import CANCELLABLE
from positions.models import Position
from risk import calendar

MONEY_FIELD = DecimalField(**MONEY)
ZERO_MONEY = Decimal("0.00")

# --- the day's money: the one definition ---------------------------------------------------------
#
# Realized PnL is booked by each fill on the IST day of its ``executed_at`` (trades.realized_pnl:
# what the fill's reduction realized; the closing one absorbs the rounding). Per IST day and
# strategy, and for the account (strategy NULL, from GROUPING SETS):
#   gross   = the fills' realized PnL;
#   charges = the fills' charges + the DP charge, once per scrip with a CNC sell that day (per
#             strategy for a strategy; each scrip once for the account, as the demat account
#             is charged);
#   net     = gross - charges.
# Adjustment fills (reconciliation) realize PnL like any fill but are not trades: no charges,
# no turnover, no DP charge, not counted. Two CTEs, with the parameters lower / upper (the
# range as instants), days / dp (each day's DP charge, orders.charges.dp_charge) and
# ``{only_t}`` (" AND t.strategy_id = %(strategy)s" or nothing). Read by day_money (the daily
# loss limit, the kill switch's rules, the dashboard, /strategy/) and by
# positions.statistics (daily_stats).
DAY_MONEY_CTES = """
dp_rates(day, amount) AS (SELECT * FROM unnest(%(days)s::date[], %(dp)s::numeric[])),
day_fills AS (
    SELECT (t.executed_at AT TIME ZONE 'Asia/Kolkata')::date AS day, t.strategy_id, t.symbol,
           count(*) FILTER (WHERE t.kind = 'FILL') AS trades,
           coalesce(sum(t.gross_value) FILTER (WHERE t.kind = 'FILL'), 0) AS turnover,
           sum(t.total_charges) AS charges,
           sum(t.realized_pnl) AS gross,
           bool_or(t.kind = 'FILL' AND t.product = 'CNC' AND t.side = 'SELL') AS dp_scrip
    FROM trades t
    WHERE t.executed_at >= %(lower)s AND t.executed_at < %(upper)s {only_t}
    GROUP BY 1, 2, 3
),
day_money AS (
    SELECT f.day, f.strategy_id, sum(f.trades) AS trades, sum(f.turnover) AS turnover,
           sum(f.gross) AS gross, sum(f.charges) AS trade_charges,
           count(DISTINCT f.symbol) FILTER (WHERE f.dp_scrip) * coalesce(max(r.amount), 0)
               AS dp_charges
    FROM day_fills f
    LEFT JOIN dp_rates r ON r.day = f.day
    GROUP BY GROUPING SETS ((f.day, f.strategy_id), (f.day))
)
"""


def day_money_params(date_from: date, date_to: date, strategy_id: int | None = None) -> dict:
    """The parameters of DAY_MONEY_CTES for IST days ``date_from``..``date_to``."""
    days = [date_from + timedelta(days=n) for n in range((date_to - date_from).days + 1)]
    return {
        # The range as instants, so that the planner sees how much of each table it covers.
        "lower": datetime.combine(date_from, time(0), tzinfo=INDIA),
        "upper": datetime.combine(date_to + timedelta(days=1), time(0), tzinfo=INDIA),
        "days": days,
        "dp": [dp_charge(on=day) for day in days],
        "strategy": strategy_id,
    }


@dataclass(frozen=True)
class DayMoney:
    """A strategy's (or the account's) money on one IST day (README, *Money*).

    ``gross_realized``: what that day's fills realized; ``charges``: their charges and the DP
    charge; ``net_realized`` = gross - charges; ``unrealized``: the open positions at their
    marks now; ``total`` = net realized + unrealized (what the daily loss limit and the kill
    switch's rules measure).
    """

    day: date
    gross_realized: Decimal = Decimal("0.00")
    trade_charges: Decimal = Decimal("0.00")
    dp_charges: Decimal = Decimal("0.00")
    unrealized: Decimal = Decimal("0.00")
    trades: int = 0
    turnover: Decimal = Decimal("0.00")

    @property
    def charges(self) -> Decimal:
        return self.trade_charges + self.dp_charges

    @property
    def net_realized(self) -> Decimal:
        return self.gross_realized - self.charges

    @property
    def total(self) -> Decimal:
        return self.net_realized + self.unrealized


_DAY_MONEY = (
    "WITH "  # noqa: S608 - constant SQL text, parameters bound
    + DAY_MONEY_CTES
    + """,
held AS (
    SELECT coalesce(p.strategy_id, 0) AS scope, sum(p.unrealized_pnl) AS unrealized
    FROM positions p WHERE p.closed_at IS NULL {only_p}
    GROUP BY GROUPING SETS ((p.strategy_id), ())
)
-- scope: the strategy's id, 0 for the account (ids start at 1).
SELECT coalesce(m.scope, h.scope), coalesce(m.gross, 0), coalesce(m.trade_charges, 0),
       coalesce(m.dp_charges, 0), coalesce(h.unrealized, 0), coalesce(m.trades, 0),
       coalesce(m.turnover, 0)
FROM (SELECT coalesce(strategy_id, 0) AS scope, * FROM day_money) m
FULL JOIN held h ON h.scope = m.scope
"""
)


def _day_money_rows(day: date, strategy_id: int | None) -> dict:
    scope = " AND {}.strategy_id = %(strategy)s" if strategy_id is not None else ""
    sql = _DAY_MONEY.format(only_t=scope.format("t"), only_p=scope.format("p"))
    figures = {}
    with connection.cursor() as cursor:
        cursor.execute(sql, day_money_params(day, day, strategy_id))
        for scope, gross, charges, dp, unrealized, trades, turnover in cursor:
            figures[scope or None] = DayMoney(
                day=day,
                gross_realized=to_paisa(gross),
                trade_charges=to_paisa(charges),
                dp_charges=to_paisa(dp),
                unrealized=to_paisa(unrealized),
                trades=trades,
                turnover=to_paisa(turnover),
            )
    return figures


def day_money(*, strategy: Strategy | None = None, day: date | None = None) -> DayMoney:
    """One strategy's (or, with None, the account's) money on the IST day ``day`` (today by
    default): the one definition of the day's PnL (see DAY_MONEY_CTES). Unrealized is the
    open positions' now, whatever the day."""
    day = day or timezone.localdate()
    figures = _day_money_rows(day, strategy.pk if strategy is not None else None)
    return figures.get(None, DayMoney(day=day))


def day_money_by_strategy(*, day: date | None = None) -> dict[int | None, DayMoney]:
    """``day_money`` of every strategy with figures, and of the account (key None), in one
    statement: the same rows."""
    day = day or timezone.localdate()
    return _day_money_rows(day, None)


def last_price(*, strategy: Strategy, symbol: str, exchange: str) -> Decimal | None:
    """The last price the strategy's paper fills see (``oms_last_price``, the one rule): its
    own posted price when it is PAPER and posted one, else the shared market price."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT oms_last_price(%s, %s, %s)", [strategy.pk, symbol, exchange])
        return cursor.fetchone()[0]


# --- stale prices: the one rule ---------------------------------------------------------------
#
# A LIVE strategy's price (its position's mark, the shared market price its checks read) seen
# before ``marks_stale_before()`` is STALE, and every decision that needs a price treats it as
# unknown: the stop-loss / take-profit exits do not fire on it (positions.exits), a MARKET or
# SL-M order that opens or adds is refused ``price_stale`` (risk.validator), and health counts
# it (marks_health). The loss rules keep the unrealized PnL of the last mark, the last figure
# a fresh price gave. The instant is OMS_MARK_STALE_SECONDS ago during the normal session of
# a trading day; outside it nothing trades, the last price is the close's, and no price is
# stale. A PAPER strategy's prices are its own (posted when it likes): never stale.


def marks_stale_before(
    now: datetime | None = None, *, staff_holiday: bool | None = None
) -> datetime | None:
    """The instant before which a LIVE strategy's price is stale now; None: none is (the market
    is shut, or OMS_MARK_STALE_SECONDS is 0). ``staff_holiday``: whether staff closed today,
    when the caller has read it already (else it is read here)."""
    age = settings.OMS_MARK_STALE_SECONDS
    moment = calendar.ist(now)
    # The session's hours first: the trading day may cost a query (staff holidays).
    if not age or not calendar.in_session(moment):
        return None
    if staff_holiday is None:
        open_today = calendar.is_trading_day(moment.date())
    else:
        open_today = not staff_holiday and calendar.is_exchange_trading_day(moment.date())
    return timezone.now() - timedelta(seconds=age) if open_today else None


def price_is_stale(seen_at: datetime | None, *, stale_before: datetime | None) -> bool:
    """Whether a price seen at ``seen_at`` (None: when is unknown) is stale, ``stale_before``
    being marks_stale_before()'s answer. Only for a LIVE strategy's prices."""
    return stale_before is not None and (seen_at is None or seen_at < stale_before)


def price_age(seen_at: datetime | None) -> str:
    """How old a price is, for messages: "42s", or "of unknown age"."""
    if seen_at is None:
        return "of unknown age"
    return f"{int((timezone.now() - seen_at).total_seconds())}s"


def marks_flagged(positions: QuerySet[Position]) -> QuerySet[Position]:
    """``positions`` annotated ``mark_stale``: an open LIVE position's mark is stale now."""
    stale_before = marks_stale_before()
    if stale_before is None:
        return positions.annotate(mark_stale=Value(False))
    stale = Q(strategy__mode=StrategyMode.LIVE, closed_at__isnull=True) & (
        Q(last_price_at__isnull=True) | Q(last_price_at__lt=stale_before)
    )
    return positions.annotate(
        mark_stale=Case(When(stale, then=True), default=False, output_field=BooleanField())
    )


@dataclass(frozen=True)
class MarksHealth:
    """How fresh the marks of LIVE strategies' open positions are (what health shows).

    ``newest_age``: seconds since the newest of those marks (None: no open LIVE position with a
    mark); ``stale``: how many of those positions have a stale mark (or none at all) now;
    ``open_positions``: how many open LIVE positions there are.
    """

    newest_age: float | None
    stale: int
    open_positions: int

    @property
    def degraded(self) -> bool:
        return self.stale > 0


def marks_health(*, now: datetime | None = None) -> MarksHealth:
    """The marks of LIVE strategies' open positions, in one statement (``marks_stale_before``
    decides what is stale)."""
    stale_before = marks_stale_before(now)
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT extract(epoch FROM now() - max(p.last_price_at)),
                   count(*) FILTER (WHERE %(stale_before)s::timestamptz IS NOT NULL
                       AND (p.last_price_at IS NULL OR p.last_price_at < %(stale_before)s)),
                   count(*)
            FROM positions p JOIN strategies s ON s.id = p.strategy_id
            WHERE p.closed_at IS NULL AND s.mode = %(live)s
            """,
            {"stale_before": stale_before, "live": StrategyMode.LIVE},
        )
        newest_age, stale, open_positions = cursor.fetchone()
    return MarksHealth(
        newest_age=float(newest_age) if newest_age is not None else None,
        stale=stale,
        open_positions=open_positions,
    )


# The instruments whose prices matter (the market feed follows them): the open positions of
# LIVE strategies, every working order of a LIVE strategy, every working stop order (SL, SL-M:
# the paper exchange triggers PAPER ones on the shared price), and the watch list.
_FOLLOWED = """
SELECT DISTINCT i.instrument_token, i.tradingsymbol, i.exchange
FROM instruments i
JOIN (
    SELECT p.symbol, p.exchange FROM positions p JOIN strategies s ON s.id = p.strategy_id
     WHERE p.closed_at IS NULL AND s.mode = %(live)s
    UNION
    SELECT o.symbol, o.exchange FROM orders o JOIN strategies s ON s.id = o.strategy_id
     WHERE o.status = ANY(%(working)s) AND (s.mode = %(live)s OR o.order_type = ANY(%(stops)s))
    UNION
    SELECT * FROM unnest(%(watch_symbols)s::text[], %(watch_exchanges)s::text[])
) AS followed(symbol, exchange)
  ON i.tradingsymbol = followed.symbol AND i.exchange = followed.exchange
"""


def instruments_to_follow(*, watch: list[str] = ()) -> dict[int, tuple[str, str]]:
    """{instrument_token: (symbol, exchange)} of the instruments whose prices matter now (see
    _FOLLOWED); ``watch``: "EXCHANGE:SYMBOL" names. An instrument missing from the instrument
    master cannot be followed (it has no token): left out."""
    pairs = [name.strip().upper().split(":", 1) for name in watch if ":" in name]
    with connection.cursor() as cursor:
        cursor.execute(
            _FOLLOWED,
            {
                "live": StrategyMode.LIVE,
                "working": sorted(CANCELLABLE),
                "stops": [OrderType.SL, OrderType.SL_M],
                "watch_symbols": [symbol for _, symbol in pairs],
                "watch_exchanges": [exchange for exchange, _ in pairs],
            },
        )
        return {token: (symbol, exchange) for token, symbol, exchange in cursor}


_POSTED_REFERENCE = """
SELECT instrument.tick_size, market.last_price
FROM unnest(%s::text[], %s::text[]) WITH ORDINALITY AS posted(symbol, exchange, n)
LEFT JOIN instruments AS instrument
    ON instrument.tradingsymbol = posted.symbol AND instrument.exchange = posted.exchange
LEFT JOIN market_prices AS market
    ON market.symbol = posted.symbol AND market.exchange = posted.exchange
ORDER BY posted.n
"""


def posted_prices_refusals(
    prices: list[tuple[str, str, Decimal]], *, band_percent: Decimal
) -> dict[int, dict[str, str]]:
    """Why posted prices are refused, by their index: {index: {field: rule}} ({} if none).

    A posted price names an instrument of the master and is on its tick; where a shared market
    price is known, the posted one is within ``band_percent`` of it, so a strategy cannot
    fool even its own checks and fills by 1000x. (Positive, finite, to the paisa: the
    serializer's.) One statement for the whole batch.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            _POSTED_REFERENCE,
            [[symbol for symbol, _, _ in prices], [exchange for _, exchange, _ in prices]],
        )
        references = cursor.fetchall()
    refusals: dict[int, dict[str, str]] = {}
    for index, ((symbol, exchange, price), (tick, market)) in enumerate(
        zip(prices, references, strict=True)
    ):
        if tick is None:
            refusals[index] = {
                "symbol": f"symbol {symbol} on {exchange}: not in the instrument master"
            }
        elif price % tick:
            refusals[index] = {
                "price": f"price {price}: must be a multiple of the tick size {tick.normalize()}"
            }
        elif market is not None:
            distance = abs(price - market) * 100 / market
            if distance > band_percent:
                refusals[index] = {
                    "price": f"price {price}: {distance.quantize(PAISA)}% from the "
                    f"market price {market.quantize(PAISA)} of {symbol} on "
                    f"{exchange}, beyond the {band_percent}% a posted price may stray "
                    "(OMS_PAPER_PRICE_BAND_PERCENT)"
                }
    return refusals


def strategy_metrics(
    *, strategy: Strategy, date_from: date, date_to: date
) -> dict[str, int | Decimal]:
    """A strategy's figures over IST calendar days ``date_from``..``date_to`` (both included).

    Trade counts, turnover and charges come from the trades executed in the range; wins,
    losses and gross PnL from the positions closed in it (see the SQL function's COMMENT).
    """
    if date_from > date_to:
        raise ValueError(f"date_from {date_from}: must not be after date_to {date_to}")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT * FROM strategy_metrics(%s::bigint, %s::date, %s::date)",
            [strategy.pk, date_from, date_to],
        )
        columns = [column.name for column in cursor.description]
        row = cursor.fetchone()
    return dict(zip(columns, row, strict=True))


def positions_of(*, strategy: Strategy | None, status: str = "open") -> QuerySet[Position]:
    """A strategy's (or, with None, every strategy's) positions, newest first.

    ``status``: "open" (the default), "closed" or "all".
    """
    positions = Position.objects.all()
    if strategy is not None:
        positions = positions.filter(strategy=strategy)
    if status == "open":
        positions = positions.filter(closed_at__isnull=True)
    elif status == "closed":
        positions = positions.filter(closed_at__isnull=False)
    return positions.order_by("-opened_at", "-id")


# --- the positions list: charges of each position's fills, and the list's totals ------------------


def positions_with_charges(positions: QuerySet[Position]) -> QuerySet[Position]:
    """``positions`` annotated ``fill_charges``: the charges of the strategy's fills in the
    position's instrument and product from its opening to its closing (or now), read through
    trade_strategy_idx. A fill that flips a position (closes one and opens the next) counts in
    both. ``realized_pnl`` less ``fill_charges`` is the position's realized PnL net of charges.
    """
    fills = (
        Trade.objects.filter(
            strategy_id=OuterRef("strategy_id"),
            symbol=OuterRef("symbol"),
            exchange=OuterRef("exchange"),
            product=OuterRef("product"),
            executed_at__gte=OuterRef("opened_at"),
            executed_at__lte=Coalesce(OuterRef("closed_at"), Now()),
        )
        .order_by()
        .values("strategy_id")
        .annotate(charges=Sum("total_charges"))
        .values("charges")
    )
    return positions.annotate(
        fill_charges=Coalesce(Subquery(fills[:1]), Value(ZERO_MONEY), output_field=MONEY_FIELD)
    )


@dataclass(frozen=True)
class PositionTotals:
    """The sums of a list of positions (``positions_with_charges``): value at the marks (the
    positions without a mark left out), unrealized, realized gross, charges, realized net."""

    count: int
    value: Decimal
    unmarked: int
    unrealized: Decimal
    realized_gross: Decimal
    charges: Decimal

    @property
    def realized_net(self) -> Decimal:
        return self.realized_gross - self.charges


def positions_totals(positions: QuerySet[Position]) -> PositionTotals:
    """The totals row of a positions list: one aggregate query over ``positions``."""
    sums = positions.order_by().aggregate(
        count=Count("id"),
        value=Sum(F("quantity") * F("last_price"), output_field=MONEY_FIELD),
        unmarked=Count("id", filter=Q(last_price__isnull=True) & ~Q(quantity=0)),
        unrealized=Sum("unrealized_pnl"),
        realized_gross=Sum("realized_pnl"),
        charges=Sum("fill_charges"),
    )
    return PositionTotals(
        count=sums["count"],
        value=to_paisa(sums["value"] or ZERO_MONEY),
        unmarked=sums["unmarked"],
        unrealized=sums["unrealized"] or ZERO_MONEY,
        realized_gross=sums["realized_gross"] or ZERO_MONEY,
        charges=sums["charges"] or ZERO_MONEY,
    )
