"""The paisa, the OMS's unit of money, and its one rounding: half up (as Zerodha's contract
notes round). Pure: no Django, no database.

Amounts that are not on the paisa by nature (a weighted average price, to 6 decimals) are not
rounded with it; rounding that differs on purpose (charges rounded to the rupee) says so where
it happens.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

PAISA = Decimal("0.01")


def to_paisa(amount: Decimal) -> Decimal:
    """``amount`` rounded to the paisa, half up: 10.005 → 10.01, -10.005 → -10.01."""
    return amount.quantize(PAISA, rounding=ROUND_HALF_UP)


def on_paisa(amount: Decimal) -> bool:
    """Whether ``amount`` is a whole number of paise (2450.10 yes, 2450.105 no)."""
    return amount == amount.quantize(PAISA)
