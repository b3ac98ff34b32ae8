"""Reads of positions, PnL and reconciliation shared by the API, the admin and the commands."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from django.db import connection
from django.db.models import QuerySet

from orders.models import Strategy
from orders.money import PAISA
from positions.models import Position


def last_price(*, strategy: Strategy, symbol: str, exchange: str) -> Decimal | None:
    """The last price the strategy's paper fills see (``oms_last_price``, the one rule): its
    own posted price when it is PAPER and posted one, else the shared market price."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT oms_last_price(%s, %s, %s)", [strategy.pk, symbol, exchange])
        return cursor.fetchone()[0]


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
