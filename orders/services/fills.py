"""Applying one execution (a fill) to its order, its strategy's position and the strategy's
counters: exactly once per broker trade id, in one transaction and five statements."""

from __future__ import annotations

import functools
import logging
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from django.db import connection, transaction
from django.utils import timezone

from omsproject import rows
from omsproject.write_batch import WriteBatch
from orders.charges import attribute_fill_charges
from orders.enums import EventKind, EventSource, OrderSide, OrderStatus, ProtectionMode, TradeKind
from orders.models import Order, OrderEvent, Strategy, Trade
from orders.money import PAISA, to_paisa
from orders.services.errors import FillRefused, OrderNotFound
from orders.services.events import log_context, order_note, transition_staged
from orders.state import AFTER_PARTIAL_FILL, FILLABLE
from positions.jobs import defer_protection_sync
from positions.ledger import Adjustment, position_apply_fill
from positions.models import Position

logger = logging.getLogger("oms.orders")


def fill_apply(
    order: Order,
    *,
    trade_id: str,
    quantity: int,
    price: Decimal,
    executed_at: datetime,
    source: EventSource = EventSource.BROKER,
) -> Trade | None:
    """Apply one execution to its order, its strategy's position and the strategy's counters.

    Exactly once per broker trade id (a repeat returns None and changes nothing). Refuses an
    overfill or a fill on an order that cannot have one (FillRefused, with a REFUSED event).
    Charges are attributed cumulatively, so an order's fills sum to the charges of the whole
    order. One transaction; locks taken as strategy, position, order. Five statements with the
    BEGIN and the COMMIT: two for the locks (_fill_locks) and one for every write
    (_fill_record); bench/fill_apply.py counts them.
    """
    price = Decimal(price)
    if quantity <= 0:
        raise FillRefused(f"fill quantity {quantity}: must be at least 1")
    if not price.is_finite() or price <= 0 or price != price.quantize(PAISA):
        raise FillRefused(f"fill price {price}: must be a positive amount in whole paise")
    price = price.quantize(PAISA)  # 812.35, not the 812.3500 of a price column
    refusal = None
    with transaction.atomic():
        strategy, position, order, fill_known, earlier_fills = _fill_locks(order.pk, trade_id)
        if fill_known:
            return None
        if order.status not in FILLABLE:
            refusal = f"order is {order.status}: a fill cannot be applied"
        elif order.filled_quantity + quantity > order.quantity:
            refusal = (
                f"fill of {quantity} would overfill: {order.filled_quantity} of "
                f"{order.quantity} already filled"
            )
        if refusal:
            order_note(
                order,
                kind=EventKind.REFUSED,
                source=source,
                reason=refusal,
                details={"trade_id": trade_id, "quantity": quantity, "price": str(price)},
            )
        else:
            trade = _fill_record(
                strategy,
                order,
                position,
                earlier_fills,
                trade_id=trade_id,
                quantity=quantity,
                price=price,
                executed_at=executed_at,
                source=source,
            )
            if strategy.protection_mode != ProtectionMode.OMS:
                # The position changed: its GTT follows, after the commit (positions.protection).
                defer_protection_sync(strategy.pk)
    if refusal:
        raise FillRefused(f"order {order.pk}, trade {trade_id}: {refusal}")
    return trade


def _fill_locks(order_id: int, trade_id: str):
    """Lock a fill's rows, strategy then position then order, in two statements; returns
    (strategy, position or None, order, whether ``trade_id`` is recorded, the order's earlier
    fills as (quantity, price)).

    The strategy first, alone: every fill of the strategy takes its lock first, so the next
    statement — with a snapshot taken after the lock was granted — sees every earlier fill.
    Then the order with its open position, joined: PostgreSQL locks the position as the join
    reaches it (the LATERAL subquery's own FOR UPDATE), then the order (the statement's). An
    order's strategy, instrument and product never change. Written in SQL: every fill runs
    these, and the ORM took longer to build them than PostgreSQL to run them.
    """
    with connection.cursor() as cursor:
        cursor.execute(_FILL_STRATEGY_LOCK, [order_id])
        row = cursor.fetchone()
        if row is None:
            raise OrderNotFound(f"order {order_id}: not found")
        strategy = Strategy.from_db(connection.alias, _FILL_STRATEGY_FIELDS, row)
        cursor.execute(_fill_order_lock_sql(), {"order_id": order_id, "trade_id": trade_id})
        row = cursor.fetchone()
    if row is None:
        raise OrderNotFound(f"order {order_id}: not found")
    *row, fill_known, quantities, prices = row
    split = rows.column_count(Order)
    order = rows.from_row(Order, row[:split])
    position = rows.from_row(Position, row[split:])
    return strategy, position, order, fill_known, list(zip(quantities, prices, strict=True))


# In the model's column order (Model.from_db reads them so).
_FILL_STRATEGY_FIELDS = [
    "id",
    "protection_mode",
    "total_trades",
    "winning_trades",
    "losing_trades",
    "total_pnl",
]
_FILL_STRATEGY_LOCK = f"""
    SELECT {", ".join(f"s.{name}" for name in _FILL_STRATEGY_FIELDS)}
    FROM strategies s WHERE s.id = (SELECT strategy_id FROM orders WHERE id = %s)
    FOR UPDATE OF s
"""  # noqa: S608 - column names only


@functools.cache
def _fill_order_lock_sql() -> str:
    return f"""
        SELECT {", ".join(rows.select_columns("o", Order))},
               {", ".join(rows.select_columns("p", Position))},
               EXISTS (SELECT FROM trades WHERE trade_id = %(trade_id)s),
               ARRAY(SELECT quantity FROM trades WHERE order_id = o.id ORDER BY id),
               ARRAY(SELECT price FROM trades WHERE order_id = o.id ORDER BY id)
        FROM orders o
        LEFT JOIN LATERAL (
            SELECT * FROM positions
            WHERE strategy_id = o.strategy_id AND symbol = o.symbol AND exchange = o.exchange
              AND product = o.product AND closed_at IS NULL
            ORDER BY id LIMIT 1
            FOR UPDATE
        ) p ON true
        WHERE o.id = %(order_id)s
        FOR UPDATE OF o
    """  # noqa: S608 - column names only


def _fill_record(
    strategy, order, position, previous, *, trade_id, quantity, price, executed_at, source
):
    """Record a fill the checks passed: the position (whose ledger decides what the fill
    realized), the trade with that figure, the order's quantities and status with their
    events, and the strategy's counters, written in one statement. ``previous``: the order's
    earlier fills as (quantity, price)."""
    writes = WriteBatch()
    outcome = position_apply_fill(
        position,
        strategy=strategy,
        order=order,
        quantity=quantity,
        price=price,
        executed_at=executed_at,
        writes=writes,
    )
    charges = attribute_fill_charges(
        order.side,
        order.product,
        exchange=order.exchange,
        segment=order.segment,
        on=timezone.localdate(executed_at),
        previous_fills=previous,
        fill_quantity=quantity,
        fill_price=price,
    )
    gross = price * quantity
    trade = Trade(
        order=order,
        strategy=strategy,
        trade_id=trade_id,
        symbol=order.symbol,
        exchange=order.exchange,
        product=order.product,
        side=order.side,
        quantity=quantity,
        price=price,
        gross_value=gross,
        brokerage=charges.brokerage,
        stt=charges.stt,
        exchange_charges=charges.exchange_charges,
        sebi_charges=charges.sebi_charges,
        stamp_duty=charges.stamp_duty,
        gst=charges.gst,
        total_charges=charges.total,
        net_value=gross + charges.total if order.side == "BUY" else gross - charges.total,
        realized_pnl=outcome.realized,
        executed_at=executed_at,
    )
    writes.insert(trade)
    before = order.filled_quantity
    filled = before + quantity
    previous_value = (order.average_price or Decimal(0)) * before
    order.average_price = ((previous_value + gross) / filled).quantize(
        Decimal("0.000001"), rounding=ROUND_HALF_UP
    )
    order.filled_quantity = filled
    order.last_fill_at = executed_at
    from_status = order.status
    if filled == order.quantity:
        target = OrderStatus.FILLED
    else:
        target = AFTER_PARTIAL_FILL.get(OrderStatus(order.status), OrderStatus(order.status))
    _fill_transition(
        order,
        target,
        writes,
        source=source,
        reason=f"fill {trade_id}: {quantity} @ {price}",
        details={"trade_id": trade_id},
    )
    writes.insert(
        OrderEvent(
            order=order,
            kind=EventKind.FILL,
            from_status=from_status,
            to_status=order.status,
            source=source,
            reason=f"{quantity} @ {price}",
            details={
                "trade_id": trade_id,
                "quantity": quantity,
                "price": str(price),
                "filled_quantity": filled,
                "charges": str(charges.total),
            },
        )
    )
    # The strategy's row is locked: its counters are set from the values read under the lock.
    strategy.total_trades += 1
    strategy.winning_trades += outcome.wins
    strategy.losing_trades += outcome.losses
    strategy.total_pnl += outcome.realized - charges.total
    writes.update(strategy, ("total_trades", "winning_trades", "losing_trades", "total_pnl"))
    writes.execute()
    logger.info("fill %s: %s @ %s", trade_id, quantity, price, extra=log_context(order))
    return trade


def _fill_transition(order: Order, target: OrderStatus, writes: WriteBatch, **event) -> None:
    """order_transition for a fill, with the order's row and its event added to ``writes``;
    the fill's quantities are written whether the status moves or not."""
    fields, recorded = transition_staged(order, target, **event)
    quantities = ["filled_quantity", "average_price", "last_fill_at", "updated_at"]
    writes.update(order, list(dict.fromkeys([*quantities, *fields])))
    if recorded is not None:
        writes.insert(recorded)


def adjustment_fill_record(
    strategy: Strategy,
    position,
    *,
    symbol: str,
    exchange: str,
    product: str,
    quantity: int,
    price: Decimal,
    executed_at: datetime,
    issue,
    reason: str,
    trade_id: str,
) -> Trade:
    """Record an adjustment fill: a change of the strategy's position in an instrument by a
    signed ``quantity`` at ``price`` that no order made, settling reconciliation ``issue``.

    It is a trades row (kind ADJUSTMENT, no order, no charges, its reason and issue) applied
    through the same ledger as a fill, so a position's quantity is always the sum of its fills
    and its realized PnL their cash flow; the PnL it realizes is booked on its day. It does not
    re-mark the position (its price is no market's) and is not counted as a trade. The caller
    holds the strategy's and the position's locks in its transaction (strategy, then
    position), as reconciliation does.
    """
    if quantity == 0:
        raise ValueError("adjustment quantity 0: must not be zero")
    price = to_paisa(Decimal(price))
    side = OrderSide.BUY if quantity > 0 else OrderSide.SELL
    writes = WriteBatch()
    outcome = position_apply_fill(
        position,
        strategy=strategy,
        order=Adjustment(symbol=symbol, exchange=exchange, product=product, side=side),
        quantity=abs(quantity),
        price=price,
        executed_at=executed_at,
        writes=writes,
        marks=False,
    )
    gross = price * abs(quantity)
    trade = Trade(
        order=None,
        strategy=strategy,
        kind=TradeKind.ADJUSTMENT,
        trade_id=trade_id,
        symbol=symbol,
        exchange=exchange,
        product=product,
        side=side,
        quantity=abs(quantity),
        price=price,
        gross_value=gross,
        net_value=gross,
        realized_pnl=outcome.realized,
        issue=issue,
        reason=reason,
        executed_at=executed_at,
    )
    writes.insert(trade)
    strategy.winning_trades += outcome.wins
    strategy.losing_trades += outcome.losses
    strategy.total_pnl += outcome.realized
    writes.update(strategy, ("winning_trades", "losing_trades", "total_pnl"))
    writes.execute()
    logger.warning(
        "adjustment %s: %+d %s @ %s for issue %s (%s)",
        trade_id,
        quantity,
        symbol,
        price,
        issue.pk,
        reason,
    )
    return trade
