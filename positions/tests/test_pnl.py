"""positions/pnl.py: position arithmetic, by hand-checked cases and by properties."""

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from positions import pnl

D = Decimal


# --- unrealized PnL, stops, drawdown ------------------------------------------------------------


@pytest.mark.parametrize(
    ("quantity", "average", "price", "expected"),
    [
        (10, "2450.00", "2465.00", "150.00"),
        (-10, "2450.00", "2465.00", "-150.00"),
        (0, "2450.00", "2465.00", "0.00"),
        (1, "100.000000", "100.005", "0.01"),
        (1, "100.005000", "100.00", "-0.01"),  # half away from zero on the negative side too
        (3, "100.006667", "100.00", "-0.02"),  # -0.020001
    ],
)
def test_unrealized_pnl(quantity, average, price, expected):
    result = pnl.unrealized_pnl(quantity, D(average), D(price))
    assert result == D(expected)
    assert result.as_tuple().exponent == -2  # always to the paisa


def test_drawdown_is_measured_from_the_peak():
    assert pnl.drawdown(D("50"), D("0"), D("0")) == (D("50"), D("0"))
    assert pnl.drawdown(D("20"), D("50"), D("0")) == (D("50"), D("30"))
    assert pnl.drawdown(D("40"), D("50"), D("30")) == (D("50"), D("30"))
    assert pnl.drawdown(D("-10"), D("50"), D("30")) == (D("50"), D("60"))


# --- apply_fill ---------------------------------------------------------------------------------


def test_fill_opens_from_flat():
    effect = pnl.apply_fill(0, D("0"), 10, D("100.00"))
    assert (effect.quantity, effect.average_price, effect.realized) == (10, D("100"), D("0"))
    assert (effect.closed_quantity, effect.flipped, effect.closes) == (0, False, False)


def test_fill_adds_at_the_weighted_average():
    effect = pnl.apply_fill(10, D("100.00"), 10, D("110.00"))
    assert (effect.quantity, effect.average_price, effect.realized) == (20, D("105"), D("0"))
    assert effect.average_price.as_tuple().exponent == -6


def test_fill_average_keeps_six_decimals_half_up():
    # (100.00 + 2 x 100.01) / 3 = 100.0066666...
    assert pnl.apply_fill(1, D("100.00"), 2, D("100.01")).average_price == D("100.006667")
    # (2 x 100.00 + 100.01) / 3 = 100.0033333...
    assert pnl.apply_fill(2, D("100.00"), 1, D("100.01")).average_price == D("100.003333")


def test_fill_reduces_and_realizes_against_the_average():
    effect = pnl.apply_fill(20, D("105.000000"), -5, D("115.00"))
    assert (effect.quantity, effect.average_price) == (15, D("105.000000"))
    assert (effect.realized, effect.closed_quantity, effect.closes) == (D("50.00"), 5, False)


def test_fill_closes_to_zero():
    effect = pnl.apply_fill(15, D("105.000000"), -15, D("100.00"))
    assert (effect.quantity, effect.realized, effect.closed_quantity) == (0, D("-75.00"), 15)
    assert (effect.closes, effect.flipped) == (True, False)


def test_fill_flips_long_to_short_through_zero():
    effect = pnl.apply_fill(10, D("100.000000"), -15, D("120.00"))
    assert (effect.quantity, effect.average_price) == (-5, D("120.00"))
    assert (effect.realized, effect.closed_quantity) == (D("200.00"), 10)
    assert (effect.flipped, effect.closes) == (True, True)


def test_fill_flips_short_to_long_through_zero():
    effect = pnl.apply_fill(-10, D("100.000000"), 12, D("95.50"))
    assert (effect.quantity, effect.average_price) == (2, D("95.50"))
    assert (effect.realized, effect.closed_quantity, effect.flipped) == (D("45.00"), 10, True)


def test_short_adds_and_reduces():
    added = pnl.apply_fill(-10, D("100.000000"), -10, D("90.00"))
    assert (added.quantity, added.average_price, added.realized) == (-20, D("95"), D("0"))
    covered = pnl.apply_fill(added.quantity, added.average_price, 5, D("80.00"))
    assert (covered.quantity, covered.average_price) == (-15, D("95"))
    assert covered.realized == D("75.00")  # sold at 95, bought back at 80, 5 shares
    losing = pnl.apply_fill(-15, D("95.000000"), 15, D("97.25"))
    assert (losing.quantity, losing.realized, losing.closes) == (0, D("-33.75"), True)


def test_realized_rounds_half_away_from_zero():
    # Average 100.005 (1 @ 100.00 + 1 @ 100.01); selling one at 100.00 realizes -0.005.
    assert pnl.apply_fill(2, D("100.005000"), -1, D("100.00")).realized == D("-0.01")
    assert pnl.apply_fill(2, D("100.005000"), -1, D("100.01")).realized == D("0.01")


def test_zero_fill_is_refused():
    with pytest.raises(ValueError, match="fill quantity 0: must not be zero"):
        pnl.apply_fill(10, D("100"), 0, D("100"))


# --- properties ---------------------------------------------------------------------------------

paisa_prices = st.integers(min_value=1, max_value=1_000_000).map(lambda n: D(n).scaleb(-2))
signed_fills = st.integers(min_value=-500, max_value=500).filter(bool)


def replay(fills: list[tuple[int, Decimal]]) -> tuple[int, Decimal, Decimal, Decimal]:
    """Apply fills in turn; return (quantity, average, realized, cash moved by the fills)."""
    quantity, average, realized, cash = 0, D("0"), D("0"), D("0")
    for signed, price in fills:
        effect = pnl.apply_fill(quantity, average, signed, price)
        quantity, average = effect.quantity, effect.average_price
        realized += effect.realized
        cash -= signed * price  # a buy pays, a sell receives
    return quantity, average, realized, cash


@settings(max_examples=300)
@given(
    fills=st.lists(st.tuples(signed_fills, paisa_prices), min_size=1, max_size=20),
    mark=paisa_prices,
)
def test_pnl_accounts_for_every_rupee(fills, mark):
    quantity, average, realized, cash = replay(fills)

    assert quantity == sum(signed for signed, _ in fills)
    total = realized + pnl.unrealized_pnl(quantity, average, mark)
    # Rounding happens once per realization (to the paisa) and per average (six decimals).
    assert abs(total - (cash + quantity * mark)) <= D("0.01") * len(fills)


@settings(max_examples=200)
@given(
    signed=st.lists(signed_fills, min_size=1, max_size=20), price=paisa_prices, mark=paisa_prices
)
def test_pnl_is_exact_when_every_fill_has_the_same_price(signed, price, mark):
    quantity, average, realized, cash = replay([(s, price) for s in signed])

    assert realized == 0
    assert realized + pnl.unrealized_pnl(quantity, average, mark) == cash + quantity * mark
