"""How every screen writes money, prices, quantities and durations: the one source of the OMS's
figures as text (the admin's lists, detail pages, inlines, confirmations and dashboard, and the
services' refusal messages). Pure: no Django, no database.

- An amount: ``₹1,23,45,678.00``: rupees, Indian grouping (thousands, then lakhs and crores),
  two decimals rounded half up, a true minus sign (U+2212) before a negative amount.
- A price: at its tick, two decimals (``3,890.50``) unless the price is finer than the paisa
  (a 0.0025 tick), then as many decimals as it has; never the column's four zeros.
- An average: two decimals (``1,510.36``); ``exact`` gives the stored value for a hover title.
- A quantity: grouped (``1,40,000``).
- A compact amount for cards and chart axes: ``₹12.35 L``, ``₹1.20 Cr``; below a lakh the full
  rupees (``₹45,000``).
- A duration in words: ``12 min``, ``3 h 20 min``, ``2 d 4 h``.

``None`` is written "—" everywhere.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from orders.money import PAISA, on_paisa

NONE = "—"
MINUS = "\N{MINUS SIGN}"
LAKH = Decimal(10**5)
CRORE = Decimal(10**7)


def indian_grouping(digits: str) -> str:
    """12345678 -> 1,23,45,678: thousands, then lakhs and crores, as an Indian desk reads."""
    if len(digits) <= 3:
        return digits
    head, tail = digits[:-3], digits[-3:]
    groups = []
    while len(head) > 2:
        groups.insert(0, head[-2:])
        head = head[:-2]
    if head:
        groups.insert(0, head)
    return ",".join(groups) + "," + tail


def _grouped(value: Decimal) -> tuple[str, str]:
    """(sign, grouped digits with their fraction) of a value already rounded as wanted."""
    sign = MINUS if value < 0 else ""
    whole, _, fraction = f"{abs(value):f}".partition(".")
    return sign, indian_grouping(whole) + (f".{fraction}" if fraction else "")


def number(value: Decimal | int | None, *, places: int = 2) -> str:
    """``value`` to ``places`` decimals (half up), Indian grouping, no currency sign."""
    if value is None:
        return NONE
    rounded = Decimal(value).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    sign, text = _grouped(rounded)
    return sign + text


def amount(value: Decimal | int | None, *, places: int = 2, signed: bool = False) -> str:
    """₹1,23,456.78 (a minus sign before it below zero; +₹… above it when ``signed``, as a PnL)."""
    if value is None:
        return NONE
    rounded = Decimal(value).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    sign, text = _grouped(rounded)
    if signed and rounded > 0:
        sign = "+"
    return f"{sign}₹{text}"


def price(value: Decimal | None) -> str:
    """A price at its tick: 3,890.50 (two decimals on the paisa grid), 83.2525 finer than it."""
    if value is None:
        return NONE
    value = Decimal(value)
    value = value.quantize(PAISA) if on_paisa(value) else value.normalize()
    sign, text = _grouped(value)
    return sign + text


def average(value: Decimal | None) -> str:
    """A weighted average price to two decimals, half up (1510.364286 -> 1,510.36)."""
    return number(value, places=2)


def exact(value: Decimal | None) -> str:
    """The stored value without its trailing zeros (1510.364286, 3890.5), for a hover title."""
    if value is None:
        return NONE
    return f"{Decimal(value).normalize():f}"


def quantity(value: int | None) -> str:
    """A quantity grouped: 1,40,000 (a minus sign for a short)."""
    if value is None:
        return NONE
    sign, text = _grouped(Decimal(int(value)))
    return sign + text


def compact(value: Decimal | int | None) -> str:
    """A short amount for cards and axes: ₹12.35 L, ₹1.20 Cr; ₹45,000 below a lakh."""
    if value is None:
        return NONE
    value = Decimal(value)
    sign = MINUS if value < 0 else ""
    size = abs(value)
    for unit, suffix in ((CRORE, "Cr"), (LAKH, "L")):
        if size >= unit:
            figure = (size / unit).quantize(PAISA, rounding=ROUND_HALF_UP)
            return f"{sign}₹{figure:f} {suffix}"
    return f"{sign}₹{indian_grouping(f'{size.quantize(Decimal(1), rounding=ROUND_HALF_UP):f}')}"


def duration(seconds: float | int | Decimal) -> str:
    """A duration in words: "under a minute", "12 min", "3 h 20 min", "2 d 4 h"."""
    minutes = int(Decimal(seconds) // 60) if seconds > 0 else 0
    if minutes < 1:
        return "under a minute"
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{minutes} min"


def plural(count: int, noun: str, plural_noun: str | None = None) -> str:
    """ "1 working order", "3 working orders": a count with its noun in the right number."""
    return f"{quantity(count)} {noun if count == 1 else (plural_noun or noun + 's')}"
