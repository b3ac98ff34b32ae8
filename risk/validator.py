"""The pre-trade validator: every order passes it inside order_place and order_modify.

It returns every violation at once (never stops at the first), each with a stable code, the
field it concerns and a message naming the rule and the limit. Limits come from
risk.limits (global row, strategy row, strategy config: the strictest wins).

Every check is exact under concurrency: the caller holds ``checks_lock`` (the kill switch's
shared lock and the strategy's row), so one strategy's orders are checked one at a time, and
the total exposure limit adds a lock of its own across strategies. What the checks need is read
after the locks, in as few statements as that allows: one for the limits, the instrument, the
last price, the position, a staff holiday today and both kill switches; only the checks of a
limit that is set read more (working orders, exposure, the day's PnL).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from functools import cached_property

from django.conf import settings
from django.db import connection
from django.db.models import F, Sum

from omsproject.money_format import amount
from omsproject.rows import column_count, from_row, select_columns
from orders.broker_sessions import session_problem
from orders.domain import OrderRequest, Violation
from orders.enums import OrderSide, OrderStatus, OrderType, StrategyStatus, Variety
from orders.models import BrokerAccount, Order, Strategy
from orders.money import PAISA
from orders.state import CANCELLABLE
from positions.selectors import marks_stale_before, price_age, price_is_stale
from risk import calendar
from risk.limits import Limits, limits_for, limits_from_rows
from risk.models import Instrument, KillSwitchState, RiskLimit
from risk.ratelimit import take_token
from risk.selectors import (
    KILL_SWITCH_LOCK,
    KILL_SWITCH_STATES,
    TOTAL_EXPOSURE_LOCK,
    day_pnl,
    gross_exposure,
    kill_switch_in_force,
)
from risk.variety_checks import iceberg_leg_violations

HUNDRED = Decimal(100)
SESSION_FIELDS = ("user_id", "is_active", "access_token", "token_expires_at")
# Orders that may still fill, but for those being cancelled (the desk asked them to stop).
WORKING = sorted(CANCELLABLE)


@dataclass
class Context:
    """What the checks need to know about the order, gathered once."""

    request: OrderRequest
    strategy: object
    order: object | None
    limits: Limits
    instrument: Instrument | None
    last_price: Decimal | None
    position_quantity: int
    kill_switch: KillSwitchState
    overall_limits: Limits
    now: datetime
    staff_holiday: bool
    placed_order_id: int | None = None  # the order this client_order_id already placed
    # A LIVE strategy's last price that is stale (price_is_stale): last_price is then None, as
    # unknown to every check, and this says when it was seen, for _price_stale.
    stale_price: Decimal | None = None
    stale_price_at: datetime | None = None

    @property
    def signed(self) -> int:
        return self.request.signed_quantity

    @cached_property
    def reduces(self) -> bool:
        """True when the order only shrinks the open position, never opens or flips it, even
        if every working order on the same side fills too (two exits that each fit the
        position could otherwise flip it together). Those orders are read only here, for an
        order against a held position."""
        held = self.position_quantity
        if held == 0 or (held > 0) == (self.signed > 0):
            return False
        return abs(self.signed) + self.working_same_side <= abs(held)

    @cached_property
    def working_same_side(self) -> int:
        """The unfilled quantity of the strategy's other working orders on this instrument and
        product, on this order's side (orders being cancelled are not counted)."""
        request = self.request
        working = Order.objects.filter(
            strategy=self.strategy,
            symbol=request.symbol,
            exchange=request.exchange,
            product=request.product,
            side=request.side,
            status__in=WORKING,
        )
        if self.order is not None:
            working = working.exclude(pk=self.order.pk)
        unfilled = working.aggregate(total=Sum(F("quantity") - F("filled_quantity")))["total"]
        return unfilled or 0

    @property
    def reference_price(self) -> Decimal | None:
        return self.request.price or self.request.trigger_price or self.last_price

    @property
    def value(self) -> Decimal | None:
        price = self.reference_price
        return None if price is None else price * self.request.quantity


_INSTRUMENT_WIDTH = column_count(Instrument)
_LIMITS_WIDTH = column_count(RiskLimit)
# One row whether or not the instrument and the limits exist (their columns are then NULL).
# The last price is the one the strategy sees (positions migration 0006): a PAPER strategy's
# own posted price, else the shared market price; never another strategy's.
# The position is the open one of the order's product (a partial unique constraint keeps it to
# one row); risk_limits holds one global row and one per strategy at most (a unique constraint).
_CONTEXT = f"""
SELECT {", ".join(select_columns("instrument", Instrument))},
    {", ".join(select_columns("global_limits", RiskLimit))},
    {", ".join(select_columns("own_limits", RiskLimit))},
    oms_last_price(%(strategy_id)s, %(symbol)s, %(exchange)s) AS last_price,
    oms_last_price_at(%(strategy_id)s, %(symbol)s, %(exchange)s) AS last_price_at,
    (SELECT quantity FROM positions
      WHERE strategy_id = %(strategy_id)s AND symbol = %(symbol)s AND exchange = %(exchange)s
        AND product = %(product)s AND closed_at IS NULL) AS position_quantity,
    EXISTS (SELECT FROM market_holidays WHERE date = %(today)s) AS staff_holiday,
    (SELECT id FROM orders
      WHERE strategy_id = %(strategy_id)s AND client_order_id = %(client_order_id)s
    ) AS placed_order_id,
    {KILL_SWITCH_STATES}
FROM (SELECT) AS one
LEFT JOIN instruments AS instrument
    ON instrument.tradingsymbol = %(symbol)s AND instrument.exchange = %(exchange)s
LEFT JOIN risk_limits AS global_limits ON global_limits.strategy_id IS NULL
LEFT JOIN risk_limits AS own_limits ON own_limits.strategy_id = %(strategy_id)s
"""  # noqa: S608 - column names and constant fragments only


def _context(request: OrderRequest, strategy, order) -> Context:
    # The caller holds checks_lock's locks: this statement, which began after they were
    # granted, sees everything committed before them.
    now = calendar.ist()
    with connection.cursor() as cursor:
        cursor.execute(
            _CONTEXT,
            {
                "symbol": request.symbol,
                "exchange": request.exchange,
                "product": request.product,
                "strategy_id": strategy.pk,
                "today": now.date(),
                # A new order: the order this client_order_id placed already, if any (a replay).
                "client_order_id": request.client_order_id if order is None else None,
            },
        )
        row = cursor.fetchone()
    own_at = _INSTRUMENT_WIDTH + _LIMITS_WIDTH
    scalars_at = own_at + _LIMITS_WIDTH
    instrument = from_row(Instrument, row[:_INSTRUMENT_WIDTH])
    global_row = from_row(RiskLimit, row[_INSTRUMENT_WIDTH:own_at])
    own_row = from_row(RiskLimit, row[own_at:scalars_at])
    (
        last_price,
        last_price_at,
        position_quantity,
        staff_holiday,
        placed_order_id,
        global_switch,
        strategy_switch,
    ) = row[scalars_at:]
    limits = limits_from_rows(global_row, own_row, strategy)
    stale_price = None
    if (
        strategy.is_live
        and last_price is not None
        and price_is_stale(
            last_price_at, stale_before=marks_stale_before(now, staff_holiday=staff_holiday)
        )
    ):
        stale_price, last_price = last_price, None
    return Context(
        request=request,
        strategy=strategy,
        order=order,
        limits=limits.strategy,
        instrument=instrument,
        last_price=last_price,
        position_quantity=position_quantity or 0,
        kill_switch=kill_switch_in_force(global_switch, strategy_switch),
        overall_limits=limits.overall,
        now=now,
        staff_holiday=staff_holiday,
        placed_order_id=placed_order_id,
        stale_price=stale_price,
        stale_price_at=last_price_at if stale_price is not None else None,
    )


def _strategy_state(ctx: Context) -> list[Violation]:
    strategy = ctx.strategy
    if strategy.status in (StrategyStatus.INACTIVE, StrategyStatus.ERROR):
        return [
            Violation(
                "strategy_inactive",
                "strategy",
                f"strategy {strategy.name} is {strategy.status}: it may not trade",
            )
        ]
    if strategy.status == StrategyStatus.PAUSED and not ctx.reduces:
        return [
            Violation(
                "strategy_paused",
                "strategy",
                f"strategy {strategy.name} is PAUSED: only orders that reduce a position pass",
            )
        ]
    return []


def _broker_session(ctx: Context) -> list[Violation]:
    """A LIVE strategy's order needs its Kite account's session of the day: refused here,
    before anything reaches a broker, rather than stranded in the submission job."""
    strategy = ctx.strategy
    if not strategy.is_live:
        return []
    if strategy.broker_account_id is None:
        return [
            Violation(
                "broker_account_missing",
                "strategy",
                f"strategy {strategy.name} is LIVE without a broker account: staff choose one "
                "(admin: Strategies)",
            )
        ]
    account = BrokerAccount.objects.only(*SESSION_FIELDS).get(pk=strategy.broker_account_id)
    problem = session_problem(account, now=ctx.now)
    if problem:
        return [Violation("broker_session_missing", "strategy", problem)]
    return []


def _kill_switch(ctx: Context) -> list[Violation]:
    state = ctx.kill_switch
    if state == KillSwitchState.HALTED:
        return [
            Violation("kill_switch_halted", "kill_switch", "kill switch is HALTED: no order passes")
        ]
    if state == KillSwitchState.REDUCING and not ctx.reduces:
        return [
            Violation(
                "kill_switch_reducing",
                "kill_switch",
                "kill switch is REDUCING: only orders that reduce a position pass",
            )
        ]
    return []


def _instrument(ctx: Context) -> list[Violation]:
    request, instrument = ctx.request, ctx.instrument
    if instrument is None:
        return [
            Violation(
                "instrument_unknown",
                "symbol",
                f"symbol {request.symbol} on {request.exchange}: not in the instrument master",
            )
        ]
    found = []
    if not instrument.tradable:
        found.append(Violation("instrument_not_tradable", "symbol", f"{instrument}: not tradable"))
    if request.quantity % instrument.lot_size:
        found.append(
            Violation(
                "lot_size",
                "quantity",
                f"quantity {request.quantity}: must be a multiple of the lot size "
                f"{instrument.lot_size}",
            )
        )
    found += iceberg_leg_violations(request, instrument)
    if (
        instrument.freeze_quantity
        and request.variety != Variety.ICEBERG
        and request.quantity > instrument.freeze_quantity
    ):
        found.append(
            Violation(
                "freeze_quantity",
                "quantity",
                f"quantity {request.quantity}: above the freeze quantity "
                f"{instrument.freeze_quantity} for one order",
            )
        )
    for name in ("price", "trigger_price"):
        value = getattr(request, name)
        if value is not None and value % instrument.tick_size:
            found.append(
                Violation(
                    "tick_size",
                    name,
                    f"{name} {value}: must be a multiple of the tick size "
                    f"{instrument.tick_size.normalize()}",
                )
            )
    if instrument.is_option and request.order_type == OrderType.SL_M:
        found.append(
            Violation("sl_m_option", "order_type", "order_type SL-M: not allowed for options")
        )
    return found


def _trigger_side(ctx: Context) -> list[Violation]:
    request = ctx.request
    if request.trigger_price is None or ctx.last_price is None or _at_open(ctx):
        return []
    # A stop-buy waits for the price to rise to its trigger; a stop-sell for it to fall.
    if request.side == OrderSide.BUY and request.trigger_price <= ctx.last_price:
        return [
            Violation(
                "trigger_side",
                "trigger_price",
                f"trigger_price {request.trigger_price}: must be above the last price "
                f"{ctx.last_price} for a stop BUY",
            )
        ]
    if request.side == OrderSide.SELL and request.trigger_price >= ctx.last_price:
        return [
            Violation(
                "trigger_side",
                "trigger_price",
                f"trigger_price {request.trigger_price}: must be below the last price "
                f"{ctx.last_price} for a stop SELL",
            )
        ]
    return []


def _price_band(ctx: Context) -> list[Violation]:
    band = ctx.limits.price_band_percent
    price = ctx.request.price
    if band is None or price is None or ctx.last_price is None or _at_open(ctx):
        return []
    distance = abs(price - ctx.last_price) * HUNDRED / ctx.last_price
    if distance > band:
        return [
            Violation(
                "price_band",
                "price",
                f"price {price}: {distance.quantize(PAISA)}% from the last price "
                f"{ctx.last_price}, beyond the {band}% band",
                value=str(distance.quantize(PAISA)),
                limit=str(band),
            )
        ]
    return []


def _size(ctx: Context) -> list[Violation]:
    found = []
    limits, request = ctx.limits, ctx.request
    if limits.max_order_quantity is not None and request.quantity > limits.max_order_quantity:
        found.append(
            Violation(
                "max_order_quantity",
                "quantity",
                f"quantity {request.quantity}: above the limit {limits.max_order_quantity}",
                value=str(request.quantity),
                limit=str(limits.max_order_quantity),
            )
        )
    value = ctx.value
    if limits.max_order_value is not None and value is not None and value > limits.max_order_value:
        found.append(
            Violation(
                "max_order_value",
                "quantity",
                f"order value {amount(value)}: above the limit {amount(limits.max_order_value)}",
                value=str(value.quantize(PAISA)),
                limit=str(limits.max_order_value),
            )
        )
    if ctx.reduces or limits.max_position_quantity is None:
        return found
    # As if this order and every working order on its side filled: each of several orders
    # may fit the limit alone and break it together.
    direction = 1 if ctx.signed > 0 else -1
    after = abs(ctx.position_quantity + ctx.signed + direction * ctx.working_same_side)
    if after > limits.max_position_quantity:
        found.append(
            Violation(
                "max_position_quantity",
                "quantity",
                f"position would be {after} in {request.symbol} with the working orders on "
                f"its side: above the limit {limits.max_position_quantity}",
                value=str(after),
                limit=str(limits.max_position_quantity),
            )
        )
    return found


def _open_orders(ctx: Context) -> list[Violation]:
    limit = ctx.limits.max_open_orders
    if limit is None or ctx.order is not None:
        return []
    working = Order.objects.filter(strategy=ctx.strategy, status__in=OrderStatus.active()).count()
    if working >= limit:
        return [
            Violation(
                "max_open_orders",
                "strategy",
                f"{working} open orders: the limit is {limit}",
                value=str(working),
                limit=str(limit),
            )
        ]
    return []


def _price_stale(ctx: Context) -> list[Violation]:
    """A LIVE strategy's order with no price of its own (MARKET, SL-M) whose last price is
    stale cannot be valued: refused, whatever the limits, when it opens or adds (exits and
    other reducing orders pass: they must go out)."""
    request = ctx.request
    if ctx.stale_price is None or ctx.reference_price is not None or ctx.reduces or _at_open(ctx):
        return []
    return [
        Violation(
            "price_stale",
            "price",
            f"{request.order_type} order for {request.symbol}: the last price "
            f"{ctx.stale_price.quantize(PAISA)} is {price_age(ctx.stale_price_at)} old, stale "
            f"beyond {settings.OMS_MARK_STALE_SECONDS}s (OMS_MARK_STALE_SECONDS): its value is "
            "unknown until market data is fresh again; send a LIMIT price",
        )
    ]


def _value_unknown(ctx: Context) -> list[Violation]:
    """An order with no price of its own (MARKET, SL-M) and no known last price cannot be
    valued: refused while a value or exposure limit is set, rather than let past the limit
    unchecked. Orders that only reduce a position always pass (exits must go out)."""
    limits = ctx.limits
    value_limits = (
        limits.max_order_value,
        limits.max_strategy_exposure,
        limits.max_total_exposure,
    )
    if ctx.value is not None or ctx.reduces or all(limit is None for limit in value_limits):
        return []
    if ctx.stale_price is not None:
        return []  # _price_stale says why
    request = ctx.request
    return [
        Violation(
            "value_unknown",
            "price",
            f"{request.order_type} order for {request.symbol} with no last price known: its "
            "value cannot be checked against the value and exposure limits; send a price or "
            "feed the last price first",
        )
    ]


def _exposure(ctx: Context) -> list[Violation]:
    if ctx.reduces or ctx.value is None:
        return []
    found = []
    strategy_limit = ctx.limits.max_strategy_exposure
    if strategy_limit is not None:
        total = gross_exposure(ctx.strategy) + ctx.value
        if total > strategy_limit:
            found.append(
                Violation(
                    "max_strategy_exposure",
                    "quantity",
                    f"strategy exposure would be {amount(total)}: above the "
                    f"limit {amount(strategy_limit)}",
                    value=str(total.quantize(PAISA)),
                    limit=str(strategy_limit),
                )
            )
    overall_limit = ctx.limits.max_total_exposure
    if overall_limit is not None:
        # Every strategy's orders count here: they are checked one at a time across
        # strategies (a lock taken after the strategy's, so always in the same order).
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [TOTAL_EXPOSURE_LOCK])
        total = gross_exposure() + ctx.value
        if total > overall_limit:
            found.append(
                Violation(
                    "max_total_exposure",
                    "quantity",
                    f"total exposure would be {amount(total)}: above the "
                    f"limit {amount(overall_limit)}",
                    value=str(total.quantize(PAISA)),
                    limit=str(overall_limit),
                )
            )
    return found


def _paper_ignores_hours(strategy) -> bool:
    if strategy.is_live:
        return False  # live strategies always keep the exchange's hours
    override = (strategy.config or {}).get("paper_market_hours")
    return (override or settings.OMS_PAPER_MARKET_HOURS) == "ignore"


def _at_open(ctx: Context) -> bool:
    """An AMO's checks against the market (AMO_CHECKED_AT_OPEN) are the next session's; once
    the session is on, a modification of it is checked like any order's."""
    if ctx.request.variety != Variety.AMO:
        return False
    return ctx.order is None or not calendar.in_session(ctx.now)


def _market_hours(ctx: Context) -> list[Violation]:
    now = ctx.now
    if _at_open(ctx):
        trading_day = not ctx.staff_holiday and calendar.is_exchange_trading_day(now.date())
        problem = calendar.amo_window_problem(ctx.request.segment, now, trading_day=trading_day)
        return [Violation("amo_window", "variety", problem)] if problem else []
    if _paper_ignores_hours(ctx.strategy):
        return []
    if ctx.staff_holiday or not calendar.is_exchange_trading_day(now.date()):
        return [Violation("market_closed", "market", f"{now.date()} is not an NSE trading day")]
    if not calendar.in_session(now):
        return [
            Violation(
                "market_closed",
                "market",
                f"market closed at {now:%H:%M} IST: orders are taken 09:15-15:30",
            )
        ]
    # Closing an MIS position stays allowed: the square-off itself places such orders.
    if (
        ctx.request.product == "MIS"
        and not ctx.reduces
        and calendar.past_square_off(ctx.request.segment, now)
    ):
        return [
            Violation(
                "mis_after_square_off",
                "product",
                f"product MIS: no new intraday positions after the square-off time "
                f"({calendar.square_off_time(ctx.request.segment):%H:%M} IST)",
            )
        ]
    return []


def _daily_loss(ctx: Context) -> list[Violation]:
    if ctx.reduces:
        return []
    found = []
    scopes = ((ctx.strategy, ctx.limits, "strategy"), (None, ctx.overall_limits, "overall"))
    for strategy, limits, label in scopes:
        limit = limits.daily_loss_limit
        if limit is None:
            continue
        today = day_pnl(strategy).total
        if today <= -limit:
            found.append(
                Violation(
                    "daily_loss_limit",
                    "strategy",
                    f"{label} PnL today {amount(today)}: at or beyond the loss limit "
                    f"{amount(-limit)}; only reducing orders pass",
                    value=str(today),
                    limit=str(-limit),
                )
            )
    return found


def order_rate_bucket(strategy, *, limits: Limits | None = None) -> tuple[str, int]:
    """The strategy's order-rate bucket and its rate (orders a second)."""
    limits = limits or limits_for(strategy)
    # risk.limits falls back to OMS_ORDERS_PER_SECOND when no limit sets the rate.
    return f"orders:strategy:{strategy.pk}", limits.orders_per_second


def order_rate_take(strategy, *, limits: Limits | None = None) -> tuple[float, int]:
    """Take one order from the strategy's rate bucket (in PostgreSQL, shared by every process).

    ``limits``: the strategy's, when the caller has them (they are read otherwise).
    Returns (seconds to wait, orders a second): 0 when the order may go.
    """
    key, rate = order_rate_bucket(strategy, limits=limits)
    return take_token(key, capacity=rate, refill_per_second=rate), rate


CHECKS = (
    _strategy_state,
    _kill_switch,
    _broker_session,
    _instrument,
    _trigger_side,
    _price_band,
    _size,
    _price_stale,
    _value_unknown,
    _open_orders,
    _exposure,
    _market_hours,
    _daily_loss,
)


@dataclass(frozen=True)
class Verdict:
    """The checks' answer: every violation, and the strategy's limits they applied (the caller
    counts the order rate against those).

    ``placed_order_id``: the order the request's client_order_id already placed. The request is
    then a replay: nothing was checked, and order_place answers with that order.
    """

    violations: list[Violation]
    limits: Limits
    placed_order_id: int | None = None


# Strategy columns in model order, for the row checks_lock reads (and from_row builds).
_CHECKS_LOCK = f"""
SELECT pg_advisory_xact_lock_shared(%(kill_switch_lock)s),
    {", ".join(select_columns("strategy", Strategy))}
FROM strategies AS strategy
WHERE strategy.id = %(strategy_id)s
FOR NO KEY UPDATE OF strategy
"""  # noqa: S608 - column names only


def checks_lock(strategy_id: int):
    """Take the locks under which the checks of one strategy's order are exact, and return the
    strategy as it is under them (None when it does not exist). Inside a transaction only.

    One statement: the kill switch's shared lock (a change of the switch takes it exclusively,
    so it waits for the checks under way and none starts until it has committed), and the
    strategy's row, FOR NO KEY UPDATE: placements and modifications of a strategy are checked
    one at a time, and a fill (which locks the strategy's row first) cannot move the position
    under a check. NO KEY UPDATE, not UPDATE: a kill switch event referencing the strategy may
    be inserted meanwhile (its foreign key takes KEY SHARE), so the two locks cannot deadlock.
    The checks then read their context in later statements, which see everything committed
    before the locks were granted.
    """
    if not connection.in_atomic_block:
        raise RuntimeError("checks_lock: the locks last for a transaction; open one first")
    with connection.cursor() as cursor:
        cursor.execute(
            _CHECKS_LOCK, {"kill_switch_lock": KILL_SWITCH_LOCK, "strategy_id": strategy_id}
        )
        row = cursor.fetchone()
    return None if row is None else from_row(Strategy, row[1:])


def order_verdict(request: OrderRequest, *, strategy, order=None) -> Verdict:
    """Every violation of the request against the limits in force, and those limits.

    Call it under ``checks_lock`` (order_place and order_modify do), with the strategy it
    returned: the checks are then exact, whatever else is placed at the same instant. For a
    new order (``order`` None) the same statement as the context looks for the order its
    client_order_id placed already (``Verdict.placed_order_id``). The order rate is not a
    violation: the caller counts an order that passes with order_rate_take.
    """
    ctx = _context(request, strategy, order)
    if ctx.placed_order_id is not None:
        return Verdict([], ctx.limits, placed_order_id=ctx.placed_order_id)
    return Verdict([violation for check in CHECKS for violation in check(ctx)], ctx.limits)
