"""omsproject.money_format: the one way every screen writes money, prices, quantities and
durations. Pure: no database."""

from __future__ import annotations

from decimal import Decimal

import pytest

from omsproject import money_format as fmt

MINUS = "\N{MINUS SIGN}"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (Decimal("389050000.00"), "₹38,90,50,000.00"),  # the fill table's gross value
        (Decimal("50000000.00"), "₹5,00,00,000.00"),  # a limit: five crore
        (Decimal("123456789012.34"), "₹1,23,45,67,89,012.34"),  # beyond a crore: groups of two
        (Decimal("-1234567.5"), f"{MINUS}₹12,34,567.50"),  # negatives: a true minus, grouped
        (Decimal("-999"), f"{MINUS}₹999.00"),
        (Decimal("0.005"), "₹0.01"),  # half up
        (Decimal("-0.005"), f"{MINUS}₹0.01"),  # half up away from zero, as Zerodha rounds
        (Decimal("2.675"), "₹2.68"),
        (0, "₹0.00"),
        (None, "—"),
    ],
)
def test_amounts(value, text):
    assert fmt.amount(value) == text


def test_a_signed_amount_shows_plus_above_zero_only():
    assert fmt.amount(Decimal("158.65"), signed=True) == "+₹158.65"
    assert fmt.amount(Decimal("-158.65"), signed=True) == f"{MINUS}₹158.65"
    assert fmt.amount(Decimal("0.001"), signed=True) == "₹0.00"  # rounds to zero: no sign


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (Decimal("3890.5000"), "3,890.50"),  # the column's four decimals: two at the paisa tick
        (Decimal("2450.05"), "2,450.05"),
        (Decimal("100"), "100.00"),
        (Decimal("83.2525"), "83.2525"),  # a 0.0025 tick (currency): finer than the paisa
        (Decimal("125000.1000"), "1,25,000.10"),
        (Decimal("-12.5000"), f"{MINUS}12.50"),  # a spread may be negative
        (None, "—"),
    ],
)
def test_prices_at_their_tick(value, text):
    assert fmt.price(value) == text


@pytest.mark.parametrize(
    ("value", "shown", "exact"),
    [
        (Decimal("1510.364286"), "1,510.36", "1510.364286"),
        (Decimal("1510.365000"), "1,510.37", "1510.365"),  # half up
        (Decimal("2450.500000"), "2,450.50", "2450.5"),
        (None, "—", "—"),
    ],
)
def test_averages_to_two_decimals_with_the_exact_value_for_the_hover(value, shown, exact):
    assert fmt.average(value) == shown
    assert fmt.exact(value) == exact


@pytest.mark.parametrize(
    ("value", "text"),
    [(140, "140"), (100000, "1,00,000"), (-1500, f"{MINUS}1,500"), (0, "0"), (None, "—")],
)
def test_quantities_grouped(value, text):
    assert fmt.quantity(value) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (Decimal("500"), "₹500"),
        (Decimal("45000.50"), "₹45,001"),
        (Decimal("1234567"), "₹12.35 L"),
        (Decimal("-25000000"), f"{MINUS}₹2.50 Cr"),
        (None, "—"),
    ],
)
def test_compact_amounts_in_lakhs_and_crores(value, text):
    assert fmt.compact(value) == text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "under a minute"),
        (59, "under a minute"),
        (12 * 60 + 5, "12 min"),
        (3 * 3600, "3 h"),
        (3 * 3600 + 20 * 60, "3 h 20 min"),
        (Decimal("18000.0"), "5 h"),
        (2 * 86400 + 4 * 3600 + 59, "2 d 4 h"),
        (-5, "under a minute"),
    ],
)
def test_durations_in_words(seconds, text):
    assert fmt.duration(seconds) == text


def test_counts_meet_their_nouns():
    assert fmt.plural(1, "working order") == "1 working order"
    assert fmt.plural(3, "working order") == "3 working orders"
    assert fmt.plural(0, "position") == "0 positions"
    assert fmt.plural(2, "strategy", "strategies") == "2 strategies"
    assert fmt.plural(12000, "order") == "12,000 orders"
