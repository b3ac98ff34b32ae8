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


def _remark(position: Position, price: Decimal, executed_at: datetime, *, marks: bool) -> None:
    """Re-mark at the fill's price unless the position has a fresher mark (or the fill is an
    adjustment, whose price is no market's); otherwise recompute at the mark it has."""
    if marks and (position.last_price_at is None or executed_at >= position.last_price_at):
        position.mark(price, at=executed_at)
    elif position.last_price is not None:
        position.mark(position.last_price, at=position.last_price_at)
    else:
        position.unrealized_pnl = Decimal("0.00")


def _opened(
    strategy, order, quantity: int, average_price, price, opened_at, *, marks: bool = True
) -> Position:
    """A position opened by a fill of ``order`` at ``price`` (its stop-loss and take-profit),
    marked at that price as of the fill (unless the fill does not mark)."""
    mark = price if marks else None
    return Position(
        strategy=strategy,
        symbol=order.symbol,
        exchange=order.exchange,
        product=order.product,
        quantity=quantity,
        average_price=average_price,
        last_price=mark,
        last_price_at=opened_at if marks else None,
        cash_flow=pnl.cash_flow_of(quantity, price),
        stop_loss=order.stop_loss,
        take_profit=order.take_profit,
        highest_price=mark,
        lowest_price=mark,
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
    marks: bool = True,
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
    opened. ``order``: the fill's order, or an ``Adjustment`` (with ``marks`` False: its
    price is no market's).
    """
    signed = quantity * OrderSide(order.side).sign
    if position is None:
        writes.insert(_opened(strategy, order, signed, price, price, executed_at, marks=marks))
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
    wins = losses = 0
    if effect.quantity == 0 or effect.flipped:
        position.quantity = 0
        position.closed_at = max(executed_at, position.opened_at)
        _remark(position, price, executed_at, marks=marks)
        writes.update(position, FILL_FIELDS)
        wins, losses = _round_trip(position)
        logger.info("position %s closed, realized %s", position.pk, position.realized_pnl)
        if effect.flipped:
            opened_at = max(executed_at, position.closed_at)
            quantity_left, average = effect.quantity, effect.average_price
            opened = _opened(strategy, order, quantity_left, average, price, opened_at, marks=marks)
            writes.insert(opened)
    else:
        if effect.closed_quantity == 0 and order.stop_loss is not None:
            position.stop_loss = order.stop_loss
        if effect.closed_quantity == 0 and order.take_profit is not None:
            position.take_profit = order.take_profit
        position.quantity = effect.quantity
        position.average_price = effect.average_price
        _remark(position, price, executed_at, marks=marks)
        writes.update(position, FILL_FIELDS)
    return FillOutcome(realized=effect.realized, wins=wins, losses=losses)
