"""The position ledger: one fill netted into its strategy's position (the fill service calls
this under its locks). Below the order services: it writes positions only, never orders."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from omsproject.write_batch import WriteBatch
from orders.enums import OrderSide
from positions import pnl
from positions.models import Position

logger = logging.getLogger("oms.positions")

# What a fill changes in a position it does not open.
FILL_FIELDS = (
    "quantity",
    "average_price",
    "realized_pnl",
    "unrealized_pnl",
    "last_price",
    "last_price_at",
    "cash_flow",
    "stop_loss",
    "take_profit",
    "highest_price",
    "lowest_price",
    "peak_pnl",
    "max_drawdown",
    "closed_at",
    "updated_at",
)


@dataclass(frozen=True)
class FillOutcome:
    """What a fill did to the strategy's book: realized PnL and round trips won or lost."""

    realized: Decimal
    wins: int = 0
    losses: int = 0


def position_lock(*, strategy, symbol: str, exchange: str, product: str) -> Position | None:
    """Lock and return the open position of an instrument, if there is one."""
    return (
        Position.objects.select_for_update()
        .filter(
            strategy=strategy,
            symbol=symbol,
            exchange=exchange,
            product=product,
            closed_at__isnull=True,
        )
        .first()
    )


def _round_trip(position: Position) -> tuple[int, int]:
    if position.realized_pnl > 0:
        return 1, 0
    if position.realized_pnl < 0:
        return 0, 1
    return 0, 0


@dataclass(frozen=True)
class Adjustment:
    """What the ledger reads of an adjustment fill's source where a fill has its order: the
    instrument and side; it brings no stop-loss or take-profit."""

    symbol: str
    exchange: str
    product: str
    side: str
    stop_loss: None = None
    take_profit: None = None


def _opened(strategy, order, quantity: int, average_price, price, opened_at) -> Position:
    """A position opened by a fill of ``order`` at ``price`` (its stop-loss and take-profit),
    marked at that price as of the fill."""
    return Position(
        strategy=strategy,
        symbol=order.symbol,
        exchange=order.exchange,
        product=order.product,
        quantity=quantity,
        average_price=average_price,
        last_price=price,
        last_price_at=opened_at,
        cash_flow=pnl.cash_flow_of(quantity, price),
        stop_loss=order.stop_loss,
        take_profit=order.take_profit,
        highest_price=price,
        lowest_price=price,
        opened_at=opened_at,
    )


def position_apply_fill(
    position: Position | None,
    *,
    strategy,
    order,
    quantity: int,
    price: Decimal,
    executed_at: datetime,
    writes: WriteBatch,
) -> FillOutcome:
    """Net one fill into the strategy's position (already locked by the caller).

    Adds move the weighted average price; reductions realize PnL; reaching zero closes the
    position (kept, never deleted); crossing zero closes it and opens a new one at the fill
    price. The reduction that closes a position absorbs the paisa rounding of the earlier
    ones: a flat position's realized PnL is exactly its cash flow. Dates come from the fill:
    a position opens and closes at its fills' ``executed_at`` (never before it opened), so
    its PnL lands on its fills' day. The fill re-marks the position at its price unless a
    fresher mark exists. A closed round trip counts as a win or a loss by its realized PnL.
    The rows are added to ``writes`` (the fill's one statement), in that order: closed, then
    opened. ``order``: the fill's order, or an ``Adjustment``.
    """
    signed = quantity * OrderSide(order.side).sign
    if position is None:
        writes.insert(_opened(strategy, order, signed, price, price, opened_at=executed_at))
        return FillOutcome(realized=Decimal("0.00"))

    effect = pnl.apply_fill(
        position.quantity,
        position.average_price,
        signed,
        price,
        cash_flow=position.cash_flow,
        booked=position.realized_pnl,
    )
    position.realized_pnl += effect.realized
    position.cash_flow = effect.cash_flow
    fresh = position.last_price_at is None or executed_at >= position.last_price_at
    wins = losses = 0
    if effect.quantity == 0 or effect.flipped:
        position.quantity = 0
        position.closed_at = max(executed_at, position.opened_at)
        if fresh:
            position.mark(price, at=executed_at)
        else:
            position.mark(position.last_price, at=position.last_price_at)
        writes.update(position, FILL_FIELDS)
        wins, losses = _round_trip(position)
        logger.info("position %s closed, realized %s", position.pk, position.realized_pnl)
        if effect.flipped:
            opened_at = max(executed_at, position.closed_at)
            writes.insert(
                _opened(strategy, order, effect.quantity, effect.average_price, price, opened_at)
            )
    else:
        if effect.closed_quantity == 0 and order.stop_loss is not None:
            position.stop_loss = order.stop_loss
        if effect.closed_quantity == 0 and order.take_profit is not None:
            position.take_profit = order.take_profit
        position.quantity = effect.quantity
        position.average_price = effect.average_price
        if fresh:
            position.mark(price, at=executed_at)
        else:
            position.mark(position.last_price, at=position.last_price_at)
        writes.update(position, FILL_FIELDS)
    return FillOutcome(realized=effect.realized, wins=wins, losses=losses)
