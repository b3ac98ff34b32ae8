"""The pre-trade validator: every order passes it inside order_place and order_modify.

It returns every violation at once (never stops at the first), each with a stable code, the
field it concerns and a message naming the rule and the limit. Limits come from
risk.limits.limits_for (global row, strategy row, strategy config: the strictest wins).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.db.models import F, Sum
from django.db.models.functions import Abs

from orders.domain import OrderRequest, Violation
from orders.enums import OrderSide, OrderStatus, OrderType, StrategyStatus
from risk import calendar
from risk.limits import Limits, limits_for
from risk.models import Instrument, KillSwitchState
from risk.selectors import kill_switch_state

HUNDRED = Decimal(100)


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

    @property
    def signed(self) -> int:
        return self.request.signed_quantity

    @property
    def reduces(self) -> bool:
        """True when the order only shrinks the open position (never opens or flips it)."""
        held = self.position_quantity
        return held != 0 and (held > 0) != (self.signed > 0) and abs(self.signed) <= abs(held)

    @property
    def reference_price(self) -> Decimal | None:
        return self.request.price or self.request.trigger_price or self.last_price

    @property
    def value(self) -> Decimal | None:
        price = self.reference_price
        return None if price is None else price * self.request.quantity


def _context(request: OrderRequest, strategy, order) -> Context:
    from positions.models import MarketPrice, Position

    instrument = Instrument.objects.filter(
        tradingsymbol=request.symbol, exchange=request.exchange
    ).first()
    market = MarketPrice.objects.filter(symbol=request.symbol, exchange=request.exchange).first()
    position = Position.objects.filter(
        strategy=strategy,
        symbol=request.symbol,
        exchange=request.exchange,
        product=request.product,
        closed_at__isnull=True,
    ).first()
    return Context(
        request=request,
        strategy=strategy,
        order=order,
        limits=limits_for(strategy),
        instrument=instrument,
        last_price=market.last_price if market else None,
        position_quantity=position.quantity if position else 0,
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


def _kill_switch(ctx: Context) -> list[Violation]:
    state = kill_switch_state(strategy=ctx.strategy, lock=True)
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
    if instrument.freeze_quantity and request.quantity > instrument.freeze_quantity:
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
    if request.trigger_price is None or ctx.last_price is None:
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
    if band is None or price is None or ctx.last_price is None:
        return []
    distance = abs(price - ctx.last_price) * HUNDRED / ctx.last_price
    if distance > band:
        return [
            Violation(
                "price_band",
                "price",
                f"price {price}: {distance.quantize(Decimal('0.01'))}% from the last price "
                f"{ctx.last_price}, beyond the {band}% band",
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
            )
        )
    value = ctx.value
    if limits.max_order_value is not None and value is not None and value > limits.max_order_value:
        found.append(
            Violation(
                "max_order_value",
                "quantity",
                f"order value {value.quantize(Decimal('0.01'))}: above the limit "
                f"{limits.max_order_value}",
            )
        )
    if ctx.reduces:
        return found
    after = abs(ctx.position_quantity + ctx.signed)
    if limits.max_position_quantity is not None and after > limits.max_position_quantity:
        found.append(
            Violation(
                "max_position_quantity",
                "quantity",
                f"position would be {after} in {request.symbol}: above the limit "
                f"{limits.max_position_quantity}",
            )
        )
    return found


def _open_orders(ctx: Context) -> list[Violation]:
    from orders.models import Order

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
            )
        ]
    return []


def gross_exposure(strategy=None) -> Decimal:
    """Sum of |quantity| x price of open positions plus the unfilled part of working orders."""
    from orders.models import Order
    from positions.models import Position

    positions = Position.objects.filter(closed_at__isnull=True)
    orders = Order.objects.filter(status__in=OrderStatus.active()).exclude(price__isnull=True)
    if strategy is not None:
        positions = positions.filter(strategy=strategy)
        orders = orders.filter(strategy=strategy)
    held = positions.aggregate(v=Sum(Abs(F("quantity")) * F("average_price")))["v"] or Decimal(0)
    working = orders.aggregate(v=Sum((F("quantity") - F("filled_quantity")) * F("price")))[
        "v"
    ] or Decimal(0)
    return Decimal(held) + Decimal(working)


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
                    f"strategy exposure would be {total.quantize(Decimal('0.01'))}: above the "
                    f"limit {strategy_limit}",
                )
            )
    overall_limit = ctx.limits.max_total_exposure
    if overall_limit is not None:
        total = gross_exposure() + ctx.value
        if total > overall_limit:
            found.append(
                Violation(
                    "max_total_exposure",
                    "quantity",
                    f"total exposure would be {total.quantize(Decimal('0.01'))}: above the "
                    f"limit {overall_limit}",
                )
            )
    return found


def _paper_ignores_hours(strategy) -> bool:
    if strategy.is_live:
        return False  # live strategies always keep the exchange's hours
    override = (strategy.config or {}).get("paper_market_hours")
    return (override or settings.OMS_PAPER_MARKET_HOURS) == "ignore"


def _market_hours(ctx: Context) -> list[Violation]:
    if _paper_ignores_hours(ctx.strategy):
        return []
    now = calendar.ist()
    if not calendar.is_trading_day(now.date()):
        return [Violation("market_closed", "market", f"{now.date()} is not an NSE trading day")]
    if not calendar.market_is_open(now):
        return [
            Violation(
                "market_closed",
                "market",
                f"market closed at {now:%H:%M} IST: orders are taken 09:15-15:30",
            )
        ]
    if ctx.request.product == "MIS" and calendar.past_square_off(ctx.request.segment, now):
        return [
            Violation(
                "mis_after_square_off",
                "product",
                f"product MIS: no new intraday orders after the square-off time "
                f"({calendar.SQUARE_OFF[ctx.request.segment]:%H:%M} IST)",
            )
        ]
    return []


def _daily_loss(ctx: Context) -> list[Violation]:
    from risk.services import day_pnl

    if ctx.reduces:
        return []
    found = []
    for strategy, label in ((ctx.strategy, "strategy"), (None, "overall")):
        limit = limits_for(strategy).daily_loss_limit
        if limit is None:
            continue
        realized, unrealized = day_pnl(strategy)
        if realized + unrealized <= -limit:
            found.append(
                Violation(
                    "daily_loss_limit",
                    "strategy",
                    f"{label} PnL today {realized + unrealized}: at or beyond the loss limit "
                    f"-{limit}; only reducing orders pass",
                )
            )
    return found


def order_rate_take(strategy) -> tuple[float, int]:
    """Take one order from the strategy's rate bucket (in PostgreSQL, shared by every process).

    Returns (seconds to wait, orders a second): 0 when the order may go.
    """
    from risk.ratelimit import take_token

    rate = limits_for(strategy).orders_per_second or settings.OMS_ORDERS_PER_SECOND
    wait = take_token(f"orders:strategy:{strategy.pk}", capacity=rate, refill_per_second=rate)
    return wait, rate


CHECKS = (
    _strategy_state,
    _kill_switch,
    _instrument,
    _trigger_side,
    _price_band,
    _size,
    _open_orders,
    _exposure,
    _market_hours,
    _daily_loss,
)


def validate_order(request: OrderRequest, *, strategy, order=None) -> list[Violation]:
    """Every violation of the request against the limits in force, or [] when it may pass.

    The order rate is not a violation: order_place counts an order that passes every check
    with order_rate_take as its last step, and refuses it whole (OrderThrottled) when over.
    """
    ctx = _context(request, strategy, order)
    return [violation for check in CHECKS for violation in check(ctx)]
