"""Zerodha transaction charges for one NSE/BSE leg, and their attribution to fills.

The rates in force from 1 April 2026, the rounding contract and the worked examples come from
the project's domain note on charges (charges.md). Pure calculation: no database, no Django,
no float.

Vocabulary accepted by every function (a str, or an enum whose ``.value`` is that str, such
as the TextChoices of ``orders.enums``; case does not matter):

- side: BUY, SELL
- product: MIS (intraday), CNC (equity delivery), NRML (carry-forward futures and options)
- segment: EQ, FUT, OPT
- exchange: NSE, BSE, or the derivative venues NFO (= NSE) and BFO (= BSE), which require
  segment FUT or OPT
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation, localcontext
from enum import Enum
from itertools import pairwise
from zoneinfo import ZoneInfo

from orders.money import PAISA, to_paisa

__all__ = [
    "MAX_LEG_VALUE",
    "RATE_CARDS",
    "ZERO",
    "Charges",
    "ChargesInputError",
    "ColumnRates",
    "RateCard",
    "attribute_fill_charges",
    "calculate_zerodha_charges",
    "charges_for_value",
    "dp_charge",
    "india_today",
    "rate_card_for",
]

INDIA = ZoneInfo("Asia/Kolkata")
RUPEE = Decimal("1")

# Rs 10^15 (a hundred million crore) is far beyond any real order; refusing more keeps every
# product below exact.
MAX_LEG_VALUE = Decimal("1e15")
# Enough digits that quantity x price and value x rate are exact for any value up to
# MAX_LEG_VALUE with any paisa (the default context keeps 28 and would round silently).
_PRECISION = 60

SIDES = ("BUY", "SELL")
PRODUCTS = ("MIS", "CNC", "NRML")
SEGMENTS = ("EQ", "FUT", "OPT")
EXCHANGES = ("NSE", "BSE", "NFO", "BFO")
_DERIVATIVE_VENUES = {"NFO": "NSE", "BFO": "BSE"}


class ChargesInputError(ValueError):
    """An argument the calculator refuses; the message names the argument and the rule.

    ``argument`` is the parameter's name (e.g. "quantity", "previous_fills[2] price"),
    ``rule`` the rule it broke, so a caller with other names for its inputs (a command's
    ``--date`` for ``on``) can reword the message.
    """

    def __init__(self, argument: str, value: object, rule: str, *, context: str = "") -> None:
        self.argument = argument
        self.value = value
        self.rule = rule
        self.context = context
        super().__init__(f"{argument} {_show(value)}{context}: {rule}")

    def __reduce__(self):
        return (_rebuild_input_error, (self.argument, self.value, self.rule, self.context))


def _rebuild_input_error(argument: str, value: object, rule: str, context: str):
    return ChargesInputError(argument, value, rule, context=context)


def _show(value: object) -> str:
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, (Decimal, int, date)):
        return str(value)
    return repr(value)


def _pct(percent: str) -> Decimal:
    """A rate written as charges.md writes it, in percent, as an exact fraction."""
    return Decimal(percent).scaleb(-2)


# --- Rate cards -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ColumnRates:
    """One column of the rate table (equity intraday, equity delivery, futures or options).

    Rates are fractions of the leg's value (0.0003 means 0.03%); amounts are rupees per
    executed order. Brokerage is ``brokerage_flat`` when that is non-zero, otherwise
    ``brokerage_rate`` of the value capped at ``brokerage_cap``.
    """

    brokerage_rate: Decimal
    brokerage_cap: Decimal
    brokerage_flat: Decimal
    stt_buy_rate: Decimal
    stt_sell_rate: Decimal
    exchange_rate_nse: Decimal
    exchange_rate_bse: Decimal
    stamp_buy_rate: Decimal

    def exchange_rate(self, exchange: str) -> Decimal:
        return self.exchange_rate_nse if exchange == "NSE" else self.exchange_rate_bse


@dataclass(frozen=True, slots=True)
class RateCard:
    """Every rate in force from ``effective_from`` until the next card's date."""

    effective_from: date
    equity_intraday: ColumnRates
    equity_delivery: ColumnRates
    futures: ColumnRates
    options: ColumnRates
    sebi_rate: Decimal
    gst_rate: Decimal
    dp_charge_per_scrip: Decimal  # before GST

    def column(self, segment: str, product: str) -> ColumnRates:
        """The column for a validated (segment, product): EQ goes by product, F&O by segment."""
        if segment == "FUT":
            return self.futures
        if segment == "OPT":
            return self.options
        return self.equity_delivery if product == "CNC" else self.equity_intraday


def _column(
    *,
    brokerage: str = "0",
    cap: str = "0",
    flat: str = "0",
    stt_buy: str = "0",
    stt_sell: str = "0",
    nse: str,
    bse: str,
    stamp: str,
) -> ColumnRates:
    """A column written in charges.md's units: percentages, except cap and flat in rupees."""
    return ColumnRates(
        brokerage_rate=_pct(brokerage),
        brokerage_cap=Decimal(cap),
        brokerage_flat=Decimal(flat),
        stt_buy_rate=_pct(stt_buy),
        stt_sell_rate=_pct(stt_sell),
        exchange_rate_nse=_pct(nse),
        exchange_rate_bse=_pct(bse),
        stamp_buy_rate=_pct(stamp),
    )


# Oldest first. A trade keeps the charges of its own date, so a card is never edited once in
# force: a rate change is a new card.
RATE_CARDS: tuple[RateCard, ...] = (
    # The card before 1 April 2026: exchange charges without the IPFT levy (NSE's rates
    # from 1 Oct 2024) and the F&O STT before Budget 2026. These figures are not in
    # charges.md's table; check them against contract notes before relying on them for
    # trades of that period.
    RateCard(
        effective_from=date(2024, 10, 1),
        equity_intraday=_column(
            brokerage="0.03",
            cap="20",
            stt_sell="0.025",
            nse="0.00297",
            bse="0.00375",
            stamp="0.003",
        ),
        equity_delivery=_column(
            stt_buy="0.1", stt_sell="0.1", nse="0.00297", bse="0.00375", stamp="0.015"
        ),
        futures=_column(
            brokerage="0.03", cap="20", stt_sell="0.02", nse="0.00173", bse="0", stamp="0.002"
        ),
        options=_column(flat="20", stt_sell="0.1", nse="0.03503", bse="0.0325", stamp="0.003"),
        sebi_rate=_pct("0.0001"),
        gst_rate=_pct("18"),
        dp_charge_per_scrip=Decimal("13"),
    ),
    # charges.md: in force from 1 April 2026 (Budget 2026 raised F&O STT; exchange charges
    # include IPFT).
    RateCard(
        effective_from=date(2026, 4, 1),
        equity_intraday=_column(
            brokerage="0.03",
            cap="20",
            stt_sell="0.025",
            nse="0.00307",
            bse="0.00375",
            stamp="0.003",
        ),
        equity_delivery=_column(
            stt_buy="0.1", stt_sell="0.1", nse="0.00307", bse="0.00375", stamp="0.015"
        ),
        futures=_column(
            brokerage="0.03", cap="20", stt_sell="0.05", nse="0.00183", bse="0", stamp="0.002"
        ),
        options=_column(flat="20", stt_sell="0.15", nse="0.03553", bse="0.0325", stamp="0.003"),
        sebi_rate=_pct("0.0001"),
        gst_rate=_pct("18"),
        dp_charge_per_scrip=Decimal("13"),
    ),
)

if any(a.effective_from >= b.effective_from for a, b in pairwise(RATE_CARDS)):
    raise RuntimeError("RATE_CARDS must be in strictly increasing effective_from order")


def india_today() -> date:
    """Today's calendar date in Asia/Kolkata (the exchanges' date), whatever the server's zone."""
    return datetime.now(INDIA).date()


def _trade_date(on: object) -> date:
    if on is None:
        return india_today()
    if isinstance(on, datetime) or not isinstance(on, date):
        raise TypeError(
            f"on {on!r}: must be a date (the trade's date in Asia/Kolkata), not {type(on).__name__}"
        )
    return on


def rate_card_for(on: date) -> RateCard:
    """The card in force on ``on``: the latest whose ``effective_from`` is on or before it.

    Raises ChargesInputError (a ValueError) naming the date when it precedes the first card,
    and TypeError when ``on`` is not a plain date (a datetime's date depends on its zone).
    """
    on = _trade_date(on)
    for card in reversed(RATE_CARDS):
        if card.effective_from <= on:
            return card
    first = RATE_CARDS[0].effective_from.isoformat()
    raise ChargesInputError(
        "on", on, f"before the first rate card (effective from {first}); no rates are known for it"
    )


def dp_charge(on: date | None = None) -> Decimal:
    """The depository charge, GST included, rounded to the paisa: 15.34 from 1 April 2026.

    It is levied once per scrip per day on which a CNC sell settles, whatever the number of
    sell orders of that scrip that day, so it is NOT part of any leg's Charges: the caller adds
    it once per (scrip, day). ``on`` defaults to today in Asia/Kolkata.
    """
    card = rate_card_for(_trade_date(on))
    with localcontext(prec=_PRECISION):
        return to_paisa(card.dp_charge_per_scrip * (1 + card.gst_rate))


# --- Charges --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Charges:
    """The charges of one leg, or of one fill's share of it, in rupees.

    Invariants checked on construction: every field is a Decimal and ``total`` equals the sum
    of the six components. Charges built by this module have exactly two decimals everywhere
    (STT is a whole number of rupees, written with two decimals, e.g. 6.00).
    """

    brokerage: Decimal
    stt: Decimal
    exchange_charges: Decimal
    sebi_charges: Decimal
    stamp_duty: Decimal
    gst: Decimal
    total: Decimal

    def __post_init__(self) -> None:
        for field in fields(self):
            amount = getattr(self, field.name)
            if not isinstance(amount, Decimal):
                raise TypeError(f"{field.name} {amount!r}: must be a Decimal")
        components = (
            self.brokerage,
            self.stt,
            self.exchange_charges,
            self.sebi_charges,
            self.stamp_duty,
            self.gst,
        )
        if sum(components, Decimal("0.00")) != self.total:
            raise ValueError(f"total {self.total}: must equal the sum of the components")

    @classmethod
    def from_components(
        cls,
        *,
        brokerage: Decimal,
        stt: Decimal,
        exchange_charges: Decimal,
        sebi_charges: Decimal,
        stamp_duty: Decimal,
        gst: Decimal,
    ) -> Charges:
        """Charges whose total is the sum of the given (already rounded) components."""
        total = brokerage + stt + exchange_charges + sebi_charges + stamp_duty + gst
        return cls(brokerage, stt, exchange_charges, sebi_charges, stamp_duty, gst, total)

    def as_dict(self) -> dict[str, Decimal]:
        """The seven amounts by name, in the order of the fields (total last)."""
        return {field.name: getattr(self, field.name) for field in fields(self)}

    def __add__(self, other: object) -> Charges:
        if not isinstance(other, Charges):
            return NotImplemented
        return Charges(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))

    def __radd__(self, other: object) -> Charges:
        # Lets sum(charges_list) start from the int 0.
        if isinstance(other, int) and not isinstance(other, bool) and other == 0:
            return self
        return NotImplemented

    def __sub__(self, other: object) -> Charges:
        if not isinstance(other, Charges):
            return NotImplemented
        return Charges(*(getattr(self, f.name) - getattr(other, f.name) for f in fields(self)))


ZERO = Charges.from_components(
    brokerage=Decimal("0.00"),
    stt=Decimal("0.00"),
    exchange_charges=Decimal("0.00"),
    sebi_charges=Decimal("0.00"),
    stamp_duty=Decimal("0.00"),
    gst=Decimal("0.00"),
)


# --- Input checks ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Leg:
    side: str
    product: str
    segment: str
    exchange: str  # NSE or BSE, after NFO/BFO are mapped


def _choice(argument: str, raw: object, allowed: tuple[str, ...]) -> str:
    text = str(getattr(raw, "value", raw)).upper()
    if text not in allowed:
        shown = getattr(raw, "value", raw)
        raise ChargesInputError(argument, shown, f"must be one of {', '.join(allowed)}")
    return text


def _leg(side: object, product: object, exchange: object, segment: object) -> _Leg:
    side = _choice("side", side, SIDES)
    product = _choice("product", product, PRODUCTS)
    venue = _choice("exchange", exchange, EXCHANGES)
    segment = _choice("segment", segment, SEGMENTS)
    if segment == "EQ" and venue in _DERIVATIVE_VENUES:
        raise ChargesInputError(
            "segment",
            segment,
            f"{venue} lists futures and options; use FUT or OPT",
            context=f" with exchange {venue!r}",
        )
    if segment == "EQ" and product == "NRML":
        raise ChargesInputError(
            "segment",
            segment,
            "NRML is for futures and options",
            context=f" with product {product!r}",
        )
    if segment != "EQ" and product == "CNC":
        raise ChargesInputError(
            "segment",
            segment,
            "CNC is equity delivery; futures and options take MIS or NRML",
            context=f" with product {product!r}",
        )
    return _Leg(side, product, segment, _DERIVATIVE_VENUES.get(venue, venue))


def _quantity(argument: str, raw: object) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise TypeError(f"{argument} {raw!r}: must be an int, not {type(raw).__name__}")
    if raw < 1:
        raise ChargesInputError(argument, raw, "must be at least 1")
    return raw


def _amount(argument: str, raw: object, *, allow_zero: bool) -> Decimal:
    if isinstance(raw, float):
        raise TypeError(
            f"{argument} {raw!r}: float refused, money is Decimal; pass a Decimal or a str"
        )
    if isinstance(raw, bool) or not isinstance(raw, (Decimal, int, str)):
        raise TypeError(f"{argument} {raw!r}: must be a Decimal, int or str")
    if isinstance(raw, Decimal):
        amount = raw
    else:
        try:
            amount = Decimal(raw)
        except InvalidOperation:
            raise ChargesInputError(
                argument, raw, "must be a decimal number such as '2450.50'"
            ) from None
    if not amount.is_finite():
        raise ChargesInputError(argument, raw, "must be a finite number")
    if allow_zero and amount < 0:
        raise ChargesInputError(argument, raw, "must not be negative")
    if not allow_zero and amount <= 0:
        raise ChargesInputError(argument, raw, "must be greater than 0")
    return amount


def _fill_value(quantity: int, price: Decimal) -> Decimal:
    with localcontext(prec=_PRECISION):
        return quantity * price


def _checked_value(argument: str, value: Decimal, *, context: str = "") -> Decimal:
    if value >= MAX_LEG_VALUE:
        raise ChargesInputError(
            argument, value, f"must be below {MAX_LEG_VALUE:f} rupees", context=context
        )
    return value


def _cumulative_value(previous_fills: Sequence[tuple[int, Decimal]]) -> Decimal:
    value = Decimal("0")
    for index, fill in enumerate(previous_fills):
        try:
            quantity, price = fill
        except (TypeError, ValueError):
            raise TypeError(
                f"previous_fills[{index}] {fill!r}: must be a (quantity, price) pair"
            ) from None
        fill_quantity = _quantity(f"previous_fills[{index}] quantity", quantity)
        fill_price = _amount(f"previous_fills[{index}] price", price, allow_zero=False)
        with localcontext(prec=_PRECISION):
            value += _fill_value(fill_quantity, fill_price)
    return value


# --- Calculation ----------------------------------------------------------------------------


def _to_rupee(amount: Decimal) -> Decimal:
    return amount.quantize(RUPEE, rounding=ROUND_HALF_UP).quantize(PAISA)


def _charges(card: RateCard, leg: _Leg, value: Decimal) -> Charges:
    """The one-leg rounding contract of charges.md, applied to a validated leg and value."""
    if value == 0:
        return ZERO
    column = card.column(leg.segment, leg.product)
    buying = leg.side == "BUY"
    with localcontext(prec=_PRECISION):
        if column.brokerage_flat:
            brokerage = to_paisa(column.brokerage_flat)
        else:
            brokerage = to_paisa(min(value * column.brokerage_rate, column.brokerage_cap))
        stt_rate = column.stt_buy_rate if buying else column.stt_sell_rate
        stt = _to_rupee(value * stt_rate)
        exchange_charges = to_paisa(value * column.exchange_rate(leg.exchange))
        sebi_charges = to_paisa(value * card.sebi_rate)
        stamp_duty = to_paisa(value * column.stamp_buy_rate) if buying else Decimal("0.00")
        # GST is on the rounded components, as the contract note shows them.
        gst = to_paisa((brokerage + exchange_charges + sebi_charges) * card.gst_rate)
        return Charges.from_components(
            brokerage=brokerage,
            stt=stt,
            exchange_charges=exchange_charges,
            sebi_charges=sebi_charges,
            stamp_duty=stamp_duty,
            gst=gst,
        )


def charges_for_value(
    side: str | Enum,
    value: Decimal | int | str,
    product: str | Enum,
    *,
    exchange: str | Enum = "NSE",
    segment: str | Enum = "EQ",
    on: date | None = None,
) -> Charges:
    """The charges of ONE executed order (one leg) whose value (turnover) is ``value``.

    For options the value is premium x quantity. Guarantees, per charges.md: each component is
    computed on the value and rounded to the paisa half-up, STT to the rupee half-up; GST is
    18% of the rounded brokerage + exchange + SEBI, rounded to the paisa; total is the sum of
    the rounded components; every amount has two decimals and none is negative. A value of 0
    costs nothing (ZERO, even for options' flat brokerage). Every component is non-decreasing
    in ``value``, which is what makes cumulative attribution to fills non-negative.

    ``on`` (the trade date, default today in Asia/Kolkata) picks the rate card. Raises
    ChargesInputError (a ValueError) naming the argument for a bad choice, a bad
    segment/product/exchange combination, a negative or non-finite value or one of
    MAX_LEG_VALUE or more, or a date before the first card; TypeError for a float or another
    type that cannot carry money.
    """
    leg = _leg(side, product, exchange, segment)
    amount = _checked_value("value", _amount("value", value, allow_zero=True))
    card = rate_card_for(_trade_date(on))
    return _charges(card, leg, amount)


def calculate_zerodha_charges(
    side: str | Enum,
    quantity: int,
    price: Decimal | int | str,
    product: str | Enum,
    *,
    exchange: str | Enum = "NSE",
    segment: str | Enum = "EQ",
    on: date | None = None,
) -> Charges:
    """The charges of one executed order of ``quantity`` at ``price`` (premium, for options).

    Exactly ``charges_for_value(side, quantity * price, product, ...)``; see there for the
    guarantees. ``quantity`` must be an int of at least 1 and ``price`` a Decimal, int or str
    greater than 0; a float raises TypeError.
    """
    leg = _leg(side, product, exchange, segment)
    quantity = _quantity("quantity", quantity)
    price = _amount("price", price, allow_zero=False)
    value = _checked_value(
        "value", _fill_value(quantity, price), context=f" of quantity {quantity} x price {price}"
    )
    card = rate_card_for(_trade_date(on))
    return _charges(card, leg, value)


def attribute_fill_charges(
    side: str | Enum,
    product: str | Enum,
    *,
    exchange: str | Enum,
    segment: str | Enum,
    on: date | None,
    previous_fills: Sequence[tuple[int, Decimal]],
    fill_quantity: int,
    fill_price: Decimal | int | str,
) -> Charges:
    """This fill's share of its order's charges: charges(value after) - charges(value before).

    The order's cumulative value is the sum of quantity x price over ``previous_fills`` (the
    order's earlier fills, in any order) and then this fill; both sides of the difference are
    one-leg charges (``charges_for_value``) on the same card, chosen by ``on``, the order's
    trade date (pass the same date for every fill of an order).

    Guarantees: summed over all of an order's fills, the attributed charges equal
    ``charges_for_value`` of the order's whole executed value exactly, component by component
    (the differences telescope from ZERO). Every attributed component has two decimals and is
    non-negative, but may be 0: once brokerage reaches its cap, or for options after the first
    fill, later fills pay no brokerage; an STT share is a whole number of rupees, often 0.
    """
    leg = _leg(side, product, exchange, segment)
    value_before = _cumulative_value(previous_fills)
    fill_value = _fill_value(
        _quantity("fill_quantity", fill_quantity),
        _amount("fill_price", fill_price, allow_zero=False),
    )
    card = rate_card_for(_trade_date(on))
    with localcontext(prec=_PRECISION):
        value_after = _checked_value("value", value_before + fill_value, context=" of the order")
    return _charges(card, leg, value_after) - _charges(card, leg, value_before)
