"""Every write to positions and market prices: fills netted into positions, marking to market,
and closing positions through the order services."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from orders.enums import EventSource, OrderSide, OrderStatus, OrderType
from positions import pnl
from positions.models import MarketPrice, Position

logger = logging.getLogger("oms.positions")


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


def position_apply_fill(
    position: Position | None,
    *,
    strategy,
    order,
    quantity: int,
    price: Decimal,
    executed_at: datetime,
) -> FillOutcome:
    """Net one fill into the strategy's position (already locked by the caller).

    Adds move the weighted average price; reductions realize PnL; reaching zero closes the
    position (kept, never deleted); crossing zero closes it and opens a new one at the fill
    price. A closed round trip counts as a win or a loss by its realized PnL.
    """
    signed = quantity * OrderSide(order.side).sign
    now = timezone.now()
    if position is None:
        Position.objects.create(
            strategy=strategy,
            symbol=order.symbol,
            exchange=order.exchange,
            product=order.product,
            quantity=signed,
            average_price=price,
            last_price=price,
            stop_loss=order.stop_loss,
            take_profit=order.take_profit,
            highest_price=price,
            lowest_price=price,
            opened_at=executed_at,
        )
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
        position.save()
        wins, losses = _round_trip(position)
        logger.info("position %s closed, realized %s", position.pk, position.realized_pnl)
        if effect.flipped:
            Position.objects.create(
                strategy=strategy,
                symbol=order.symbol,
                exchange=order.exchange,
                product=order.product,
                quantity=effect.quantity,
                average_price=effect.average_price,
                last_price=price,
                stop_loss=order.stop_loss,
                take_profit=order.take_profit,
                highest_price=price,
                lowest_price=price,
                opened_at=max(executed_at, position.closed_at),
            )
    else:
        if effect.closed_quantity == 0 and order.stop_loss is not None:
            position.stop_loss = order.stop_loss
        if effect.closed_quantity == 0 and order.take_profit is not None:
            position.take_profit = order.take_profit
        position.quantity = effect.quantity
        position.average_price = effect.average_price
        position.mark(position.last_price or price)
        position.save()
    return FillOutcome(realized=effect.realized, wins=wins, losses=losses)


def market_prices_update(prices: list[tuple[str, str, Decimal]]) -> int:
    """Record last prices (symbol, exchange, price); returns how many were stored."""
    stored = 0
    for symbol, exchange, price in prices:
        MarketPrice.objects.update_or_create(
            symbol=symbol.upper(), exchange=exchange.upper(), defaults={"last_price": price}
        )
        stored += 1
    return stored


def positions_mark(prices: list[tuple[str, str, Decimal]], *, strategy=None) -> int:
    """Mark open positions (of one strategy, or all) to market: last price, unrealized PnL,
    extremes, drawdown. Each position is locked for its update, one short transaction each.
    Returns the number of positions marked.
    """
    marked = 0
    for symbol, exchange, price in prices:
        open_positions = Position.objects.filter(
            symbol=symbol.upper(), exchange=exchange.upper(), closed_at__isnull=True
        )
        if strategy is not None:
            open_positions = open_positions.filter(strategy=strategy)
        ids = list(open_positions.values_list("pk", flat=True))
        for position_id in ids:
            with transaction.atomic():
                position = Position.objects.select_for_update().get(pk=position_id)
                if not position.is_open:
                    continue
                position.mark(Decimal(price))
                position.save()
                marked += 1
    return marked


def position_exit_reason(position: Position) -> str | None:
    """Why a position should be closed at its last price: stop-loss or take-profit, or None."""
    if position.last_price is None or not position.is_open:
        return None
    if position.should_trigger_stop_loss(position.last_price):
        return "stop-loss"
    if position.should_trigger_take_profit(position.last_price):
        return "take-profit"
    return None


def position_close(
    position: Position,
    *,
    actor: str,
    reason: str,
    source: EventSource = EventSource.SYSTEM,
    client_order_id: str | None = None,
):
    """Place the opposite MARKET order for the whole open quantity, through order_place.

    Idempotent: the exit order's client_order_id is derived from the position, so asking twice
    for the same position returns the same order instead of closing twice.
    """
    from orders.domain import OrderRequest
    from orders.services import order_place

    side = OrderSide.SELL if position.quantity > 0 else OrderSide.BUY
    request = OrderRequest(
        strategy_id=position.strategy_id,
        client_order_id=client_order_id or f"close-{position.pk}",
        symbol=position.symbol,
        exchange=position.exchange,
        side=side,
        quantity=abs(position.quantity),
        order_type=OrderType.MARKET,
        product=position.product,
        tag=reason[:64],
    )
    result = order_place(request, actor=actor, source=source, metadata={"closes": position.pk})
    with transaction.atomic():
        locked = Position.objects.select_for_update().get(pk=position.pk)
        if result.accepted and locked.exit_order_id != result.order_id:
            locked.exit_order_id = result.order_id
            locked.save(update_fields=["exit_order", "updated_at"])
    logger.info("position %s close requested (%s): order %s", position.pk, reason, result.order_id)
    return result


def positions_check_exits(*, actor: str = "stop-loss monitor", now=None, strategy=None) -> list:
    """Close every open position whose last price crossed its stop-loss or take-profit.

    Never twice for one breach: while an exit order works (or has filled), the position is
    left alone. An exit that died (rejected by the broker or the kill switch, cancelled) is
    tried again, as a new numbered order, once OMS_EXIT_RETRY_SECONDS have passed.
    """
    from orders.models import Order

    now = now or timezone.now()
    retry_after = timedelta(seconds=settings.OMS_EXIT_RETRY_SECONDS)
    results = []
    candidates = Position.objects.filter(closed_at__isnull=True).select_related("exit_order")
    if strategy is not None:
        candidates = candidates.filter(strategy=strategy)
    for position in candidates:
        exit_order = position.exit_order
        if exit_order is not None and (
            exit_order.is_active
            or exit_order.status == OrderStatus.FILLED
            or exit_order.updated_at > now - retry_after
        ):
            continue
        reason = position_exit_reason(position)
        if not reason:
            continue
        attempts = Order.objects.filter(
            strategy_id=position.strategy_id, client_order_id__startswith=f"exit-{position.pk}-"
        )
        last = attempts.order_by("-created_at").first()
        if last is not None and not last.is_active and last.updated_at > now - retry_after:
            continue  # refused a moment ago (kill switch, rate): not again every tick
        if last is not None and last.is_active:
            continue
        results.append(
            position_close(
                position,
                actor=actor,
                reason=reason,
                client_order_id=f"exit-{position.pk}-{attempts.count() + 1}",
            )
        )
    return results
