"""Position arithmetic, pure and exact: no database, no float.

Average prices keep six decimals; money (PnL) is rounded to the paisa, half up, each time a
reduction realizes it. The rounding of a position's reductions is absorbed by the one that
closes it: a flat position's realized PnL is exactly its cash flow (sells less buys of its
quantities), to the paisa.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from orders.money import PAISA, to_paisa

AVERAGE_PLACES = Decimal("0.000001")
ZERO = Decimal("0")


def unrealized_pnl(quantity: int, average_price: Decimal, price: Decimal) -> Decimal:
    """Profit of a signed position if it were closed at ``price`` (to the paisa)."""
    if quantity == 0:
        return ZERO.quantize(PAISA)
    return to_paisa((Decimal(price) - Decimal(average_price)) * quantity)


def stop_loss_hit(quantity: int, stop_loss: Decimal | None, price: Decimal) -> bool:
    """A long stops out at or below its stop, a short at or above it."""
    if stop_loss is None or quantity == 0:
        return False
    return price <= stop_loss if quantity > 0 else price >= stop_loss


def take_profit_hit(quantity: int, take_profit: Decimal | None, price: Decimal) -> bool:
    """A long takes profit at or above its target, a short at or below it."""
    if take_profit is None or quantity == 0:
        return False
    return price >= take_profit if quantity > 0 else price <= take_profit


def drawdown(
    total_pnl: Decimal, peak_pnl: Decimal, max_drawdown: Decimal
) -> tuple[Decimal, Decimal]:
    """New (peak, max drawdown) after seeing ``total_pnl``; drawdown is measured from the peak."""
    peak = max(peak_pnl, total_pnl)
    return peak, max(max_drawdown, peak - total_pnl)


@dataclass(frozen=True)
class FillEffect:
    """What one fill does to a position.

    ``closed_quantity`` is how much of the existing position the fill reduced (>= 0);
    ``realized`` the PnL that reduction realized; ``quantity``/``average_price`` the position
    after the fill; ``flipped`` is true when the fill crossed zero, in which case the old
    position is closed and a new one opens with ``quantity`` at the fill price.
    ``cash_flow`` is the old position's cash flow after the fill (the part of a flip that
    closes it, not the part that opens the next one).
    """

    quantity: int
    average_price: Decimal
    realized: Decimal
    closed_quantity: int
    flipped: bool
    cash_flow: Decimal = ZERO

    @property
    def closes(self) -> bool:
        return self.closed_quantity > 0 and (self.quantity == 0 or self.flipped)


def cash_flow_of(signed_fill: int, price: Decimal) -> Decimal:
    """The cash a signed fill moves, charges aside: a sell brings its value in, a buy pays it."""
    return -signed_fill * Decimal(price)


def closing_realized(cash_flow: Decimal, booked: Decimal) -> Decimal:
    """What the reduction that closes a position realizes: its cash flow, to the paisa, less
    what its earlier reductions booked (so the rounding of each of them is absorbed here)."""
    return to_paisa(cash_flow) - booked


def apply_fill(
    quantity: int,
    average_price: Decimal,
    signed_fill: int,
    price: Decimal,
    *,
    cash_flow: Decimal | None = None,
    booked: Decimal = ZERO,
) -> FillEffect:
    """Net a signed fill into a signed position whose cash flow so far is ``cash_flow`` and
    whose reductions so far realized ``booked`` (no cash flow: as if the position had been
    bought or sold at its average price, ``booked - quantity * average_price``).

    Adds move the average price (weighted); reductions realize PnL against it and leave it
    unchanged; a fill through zero closes the old side and opens the new side at ``price``.
    The reduction that closes the position realizes ``closing_realized``: the position's
    realized PnL is then exactly its cash flow.
    """
    if signed_fill == 0:
        raise ValueError("fill quantity 0: must not be zero")
    price = Decimal(price)
    if cash_flow is None:
        cash_flow = Decimal(booked) + cash_flow_of(quantity, average_price)
    if quantity == 0 or (quantity > 0) == (signed_fill > 0):
        new_quantity = quantity + signed_fill
        cost = Decimal(average_price) * abs(quantity) + price * abs(signed_fill)
        average = (cost / abs(new_quantity)).quantize(AVERAGE_PLACES, rounding=ROUND_HALF_UP)
        flow = cash_flow + cash_flow_of(signed_fill, price)
        return FillEffect(new_quantity, average, ZERO.quantize(PAISA), 0, False, flow)
    closed = min(abs(quantity), abs(signed_fill))
    direction = 1 if quantity > 0 else -1
    flow = cash_flow + cash_flow_of(closed * -direction, price)
    new_quantity = quantity + signed_fill
    if new_quantity == 0 or (new_quantity > 0) != (quantity > 0):
        realized = closing_realized(flow, booked)
    else:
        realized = to_paisa((price - Decimal(average_price)) * closed * direction)
    if new_quantity == 0:
        return FillEffect(0, Decimal(average_price), realized, closed, False, flow)
    if (new_quantity > 0) == (quantity > 0):
        return FillEffect(new_quantity, Decimal(average_price), realized, closed, False, flow)
    average = price.quantize(AVERAGE_PLACES)
    return FillEffect(new_quantity, average, realized, closed, True, flow)
