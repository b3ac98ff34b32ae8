"""The position ledger: one fill netted into its strategy's position (the fill service calls
this under its locks). Below the order services: it writes positions only, never orders."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.utils import timezone

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


def _opened(strategy, order, quantity: int, average_price, price, opened_at) -> Position:
    """A position opened by a fill of ``order`` at ``price`` (its stop-loss and take-profit)."""
    return Position(
        strategy=strategy,
        symbol=order.symbol,
        exchange=order.exchange,
        product=order.product,
        quantity=quantity,
        average_price=average_price,
        last_price=price,
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
    price. A closed round trip counts as a win or a loss by its realized PnL. The rows are
    added to ``writes`` (the fill's one statement), in that order: closed, then opened.
    """
    signed = quantity * OrderSide(order.side).sign
    now = timezone.now()
    if position is None:
        writes.insert(_opened(strategy, order, signed, price, price, opened_at=executed_at))
        return FillOutcome(realized=Decimal("0.00"))

    effect = pnl.apply_fill(position.quantity, position.average_price, signed, price)
    position.realized_pnl += effect.realized
    wins = losses = 0
    if effect.quantity == 0 or effect.flipped:
        position.quantity = 0
        position.unrealized_pnl = Decimal("0.00")
        position.closed_at = max(now, position.opened_at)
        position.mark(price)
        position.unrealized_pnl = Decimal("0.00")
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
        position.mark(position.last_price or price)
        writes.update(position, FILL_FIELDS)
    return FillOutcome(realized=effect.realized, wins=wins, losses=losses)
