"""The paisa and its one rounding (pure: no database)."""

from decimal import Decimal

import pytest

from orders.money import PAISA, on_paisa, to_paisa


@pytest.mark.parametrize(
    ("amount", "expected"),
    [
        ("10.005", "10.01"),  # half up, not half even (which gives 10.00)
        ("10.015", "10.02"),
        ("-10.005", "-10.01"),  # away from zero
        ("10.004999", "10.00"),
        ("100", "100.00"),
    ],
)
def test_to_paisa_rounds_half_up_to_two_decimals(amount, expected):
    rounded = to_paisa(Decimal(amount))
    assert rounded == Decimal(expected)
    assert str(rounded) == expected


def test_on_paisa_is_a_whole_number_of_paise():
    assert on_paisa(Decimal("2450.10"))
    assert on_paisa(Decimal("2450"))
    assert not on_paisa(Decimal("2450.105"))
    assert Decimal("0.01") == PAISA
