"""What a broker's report about an order may say, given the order: the contradiction rules.

Pure Python, no database. A report (a Kite postback confirmed by the order's history, a poll's
answer, reconciliation's copy of the order book, the paper exchange's report) is refused as a
whole when it contradicts the order it names, even when it is the broker's own answer:

- another instrument (symbol, exchange) or the other side;
- more filled than the order's quantity;
- a fill price (a reported execution's, or the cumulative average price) that is missing, not
  a finite number, zero or negative, or above MAX_PRICE;
- for an order with a limit price (LIMIT, SL), a BUY filled above it or a SELL below it;
- an absurd price: outside REFERENCE_BAND times the reference price and 1/REFERENCE_BAND of
  it. The reference is the order's limit price, else its trigger price (SL-M), else the
  instrument's last known price (MARKET); with none of them only the rules above apply.
  Exchanges refuse orders priced far outside the day's price band (2-20% for cash equities),
  so a real fill never lands 10x from a limit or trigger the exchange accepted.

The limit and quantity are the order's most permissive terms (``ReportBounds``): an order
modified from LIMIT 700 to LIMIT 690 may hold fills at 700 made before the modification.
The order's type and price as the broker shows them are no contradiction: Kite shows a MARKET
order it protected as a LIMIT at its protection price (tagged ``mktp``), and a modification
in flight shows terms the order does not have yet. A MARKET order has no limit price.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from orders.domain import MAX_PRICE

REFERENCE_BAND = Decimal(10)


@dataclass(frozen=True)
class ReportBounds:
    """The order as a report about it is checked against.

    ``limit_price``: the most permissive limit price the order has had (the highest for a BUY,
    the lowest for a SELL), or None when it has had no limit at some point (MARKET, SL-M).
    ``max_quantity``: the largest quantity it has had. ``reference_price``: the centre of the
    band of credible prices (see the module's docstring), or None.
    """

    symbol: str
    exchange: str
    side: str
    max_quantity: int
    limit_price: Decimal | None
    reference_price: Decimal | None


def report_contradictions(
    bounds: ReportBounds,
    *,
    symbol: str = "",
    exchange: str = "",
    side: str = "",
    filled_quantity: int = 0,
    average_price: Decimal | None = None,
    fills: Iterable[tuple[int, Decimal]] = (),
) -> list[str]:
    """Each way a report contradicts the order, as a sentence naming the figures ([] when none).

    ``symbol``, ``exchange`` and ``side`` are checked when the report names them;
    ``filled_quantity`` and ``average_price`` are cumulative; ``fills`` are the reported
    executions as (quantity, price).
    """
    found = []
    if symbol and (symbol, exchange or bounds.exchange) != (bounds.symbol, bounds.exchange):
        found.append(
            f"instrument {exchange}:{symbol}: the order is for {bounds.exchange}:{bounds.symbol}"
        )
    if side and side != bounds.side:
        found.append(f"side {side}: the order is a {bounds.side}")
    fills = list(fills)
    filled = max(filled_quantity, sum(quantity for quantity, _ in fills))
    if filled > bounds.max_quantity:
        found.append(f"filled quantity {filled}: more than the order's {bounds.max_quantity}")
    prices = [("fill price", price) for _, price in fills]
    if filled_quantity > 0:
        prices.append(("average price", average_price))
    for name, price in prices:
        if problem := _price_problem(bounds, price):
            found.append(f"{name} {price}: {problem}")
    return found


def _price_problem(bounds: ReportBounds, price: Decimal | None) -> str:
    if price is None:
        return "missing for a filled quantity"
    price = Decimal(price)
    if not price.is_finite() or price <= 0:
        return "must be a finite number above 0"
    if price > MAX_PRICE:
        return f"must be at most {MAX_PRICE}"
    limit = bounds.limit_price
    if limit is not None and bounds.side == "BUY" and price > limit:
        return f"above the BUY order's limit price {limit}"
    if limit is not None and bounds.side == "SELL" and price < limit:
        return f"below the SELL order's limit price {limit}"
    reference = bounds.reference_price
    if reference and not reference / REFERENCE_BAND <= price <= reference * REFERENCE_BAND:
        return (
            f"absurd: outside {reference / REFERENCE_BAND:f}..{reference * REFERENCE_BAND:f} "
            f"(1/{REFERENCE_BAND} to {REFERENCE_BAND}x the reference price {reference})"
        )
    return ""
