"""The charges calculator against charges.md: worked examples, hand-computed legs, the rate
cards, input errors, cumulative attribution to fills, and the `charges` command.

Rates used below (card of 2026-04-01), as fractions of value:
brokerage 0.0003 capped at 20 (EQ MIS, FUT), 0 (CNC), flat 20 (OPT);
STT MIS sell 0.00025, CNC 0.001 both sides, FUT sell 0.0005, OPT sell 0.0015;
exchange NSE EQ 0.0000307, FUT 0.0000183, OPT 0.0003553; BSE EQ 0.0000375, FUT 0, OPT 0.000325;
SEBI 0.000001; stamp (buy) MIS 0.00003, CNC 0.00015, FUT 0.00002, OPT 0.00003; GST 0.18.
"""

import copy
import json
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from io import StringIO

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orders.charges import (
    RATE_CARDS,
    ZERO,
    Charges,
    ChargesInputError,
    attribute_fill_charges,
    calculate_zerodha_charges,
    charges_for_value,
    dp_charge,
    rate_card_for,
)

CURRENT = date(2026, 4, 15)
OLDER = date(2025, 6, 2)

COMPONENTS = ("brokerage", "stt", "exchange_charges", "sebi_charges", "stamp_duty", "gst")


def amounts(*values: str) -> dict[str, Decimal]:
    """brokerage, stt, exchange, sebi, stamp, gst, total -> the as_dict() of those amounts."""
    return dict(zip((*COMPONENTS, "total"), (Decimal(v) for v in values), strict=True))


# --- charges.md's worked examples -----------------------------------------------------------


def test_worked_example_mis_buy():
    charges = calculate_zerodha_charges("BUY", 10, Decimal("2450.00"), "MIS", on=CURRENT)
    assert charges.as_dict() == amounts("7.35", "0", "0.75", "0.02", "0.74", "1.46", "10.32")


def test_worked_example_cnc_buy():
    charges = calculate_zerodha_charges("BUY", 100, Decimal("1500.00"), "CNC", on=CURRENT)
    assert charges.as_dict() == amounts("0", "150", "4.61", "0.15", "22.50", "0.86", "178.12")


# --- Hand-computed legs (current card, NSE unless said) -------------------------------------

HAND_COMPUTED = [
    pytest.param(
        # value 24500; brokerage 7.35; STT 24500 x 0.00025 = 6.125 -> 6; exchange 0.75215 -> 0.75;
        # SEBI 0.0245 -> 0.02; no stamp on a sell; GST 0.18 x (7.35+0.75+0.02 = 8.12) = 1.4616
        # -> 1.46; total 7.35+6+0.75+0.02+1.46 = 15.58
        {"side": "SELL", "quantity": 10, "price": "2450.00", "product": "MIS"},
        amounts("7.35", "6", "0.75", "0.02", "0", "1.46", "15.58"),
        id="mis-sell-stt-rounds-down",
    ),
    pytest.param(
        # value 10000; brokerage 3.00; STT 10000 x 0.00025 = 2.5 -> 3 (half-up; banker's gives
        # 2); exchange 0.307 -> 0.31; SEBI 0.01; GST 0.18 x (3.00+0.31+0.01 = 3.32) = 0.5976
        # -> 0.60; total 3+3+0.31+0.01+0.60 = 6.92
        {"side": "SELL", "quantity": 4, "price": "2500.00", "product": "MIS"},
        amounts("3.00", "3", "0.31", "0.01", "0", "0.60", "6.92"),
        id="mis-sell-stt-half-rupee-rounds-up",
    ),
    pytest.param(
        # value 100000; brokerage 0.0003 x 100000 = 30 -> capped 20; no STT on an MIS buy;
        # exchange 3.07; SEBI 0.10; stamp 0.00003 x 100000 = 3.00; GST 0.18 x (20+3.07+0.10 =
        # 23.17) = 4.1706 -> 4.17; total 20+3.07+0.10+3.00+4.17 = 30.34
        {"side": "BUY", "quantity": 100, "price": "1000.00", "product": "MIS"},
        amounts("20.00", "0", "3.07", "0.10", "3.00", "4.17", "30.34"),
        id="mis-buy-brokerage-capped",
    ),
    pytest.param(
        # value 75 x 24000 = 1800000; brokerage 540 -> 20; STT 0.0005 x 1800000 = 900;
        # exchange 0.0000183 x 1800000 = 32.94; SEBI 1.80; no stamp on a sell;
        # GST 0.18 x (20+32.94+1.80 = 54.74) = 9.8532 -> 9.85; total 20+900+32.94+1.80+9.85
        # = 964.59
        {"side": "SELL", "quantity": 75, "price": "24000.00", "product": "NRML", "segment": "FUT"},
        amounts("20.00", "900", "32.94", "1.80", "0", "9.85", "964.59"),
        id="fut-sell",
    ),
    pytest.param(
        # as fut-sell but buying: no STT; stamp 0.00002 x 1800000 = 36.00; GST 9.85;
        # total 20+32.94+1.80+36.00+9.85 = 100.59
        {"side": "BUY", "quantity": 75, "price": "24000.00", "product": "MIS", "segment": "FUT"},
        amounts("20.00", "0", "32.94", "1.80", "36.00", "9.85", "100.59"),
        id="fut-buy-mis",
    ),
    pytest.param(
        # premium value 75 x 120.50 = 9037.50; brokerage flat 20; no STT on a buy;
        # exchange 0.0003553 x 9037.5 = 3.21102375 -> 3.21; SEBI 0.0090375 -> 0.01;
        # stamp 0.00003 x 9037.5 = 0.271125 -> 0.27; GST 0.18 x (20+3.21+0.01 = 23.22) = 4.1796
        # -> 4.18; total 20+3.21+0.01+0.27+4.18 = 27.67
        {"side": "BUY", "quantity": 75, "price": "120.50", "product": "NRML", "segment": "OPT"},
        amounts("20.00", "0", "3.21", "0.01", "0.27", "4.18", "27.67"),
        id="opt-buy",
    ),
    pytest.param(
        # as opt-buy but selling: STT 0.0015 x 9037.5 = 13.55625 -> 14; no stamp;
        # total 20+14+3.21+0.01+4.18 = 41.40
        {"side": "SELL", "quantity": 75, "price": "120.50", "product": "NRML", "segment": "OPT"},
        amounts("20.00", "14", "3.21", "0.01", "0", "4.18", "41.40"),
        id="opt-sell",
    ),
    pytest.param(
        # value 24500 on BSE; brokerage 7.35; exchange 0.0000375 x 24500 = 0.91875 -> 0.92;
        # SEBI 0.02; stamp 0.735 -> 0.74; GST 0.18 x (7.35+0.92+0.02 = 8.29) = 1.4922 -> 1.49;
        # total 7.35+0.92+0.02+0.74+1.49 = 10.52
        {"side": "BUY", "quantity": 10, "price": "2450.00", "product": "MIS", "exchange": "BSE"},
        amounts("7.35", "0", "0.92", "0.02", "0.74", "1.49", "10.52"),
        id="bse-equity",
    ),
    pytest.param(
        # value 20 x 80000 = 1600000 on BSE; brokerage 480 -> 20; STT 0.0005 x 1600000 = 800;
        # BSE futures exchange charge 0; SEBI 1.60; GST 0.18 x (20+0+1.60 = 21.60) = 3.888
        # -> 3.89; total 20+800+1.60+3.89 = 825.49
        {
            "side": "SELL",
            "quantity": 20,
            "price": "80000",
            "product": "NRML",
            "exchange": "BSE",
            "segment": "FUT",
        },
        amounts("20.00", "800", "0", "1.60", "0", "3.89", "825.49"),
        id="bse-fut-no-exchange-charge",
    ),
    pytest.param(
        # NFO is NSE's F&O venue: exactly fut-sell
        {
            "side": "SELL",
            "quantity": 75,
            "price": "24000.00",
            "product": "NRML",
            "exchange": "NFO",
            "segment": "FUT",
        },
        amounts("20.00", "900", "32.94", "1.80", "0", "9.85", "964.59"),
        id="nfo-is-nse-futures",
    ),
    pytest.param(
        # BFO is BSE's F&O venue: exactly bse-fut-no-exchange-charge
        {
            "side": "SELL",
            "quantity": 20,
            "price": "80000",
            "product": "NRML",
            "exchange": "BFO",
            "segment": "FUT",
        },
        amounts("20.00", "800", "0", "1.60", "0", "3.89", "825.49"),
        id="bfo-is-bse-futures",
    ),
]


@pytest.mark.parametrize(("leg", "expected"), HAND_COMPUTED)
def test_hand_computed_leg(leg, expected):
    leg = dict(leg, price=Decimal(leg["price"]))
    assert calculate_zerodha_charges(**leg, on=CURRENT).as_dict() == expected


def test_every_amount_has_two_decimals():
    charges = calculate_zerodha_charges("SELL", 10, "2450.00", "MIS", on=CURRENT)
    assert charges.stt == Decimal("6")
    assert {name: str(amount) for name, amount in charges.as_dict().items()} == {
        "brokerage": "7.35",
        "stt": "6.00",
        "exchange_charges": "0.75",
        "sebi_charges": "0.02",
        "stamp_duty": "0.00",
        "gst": "1.46",
        "total": "15.58",
    }


def test_enums_and_lower_case_are_accepted():
    from enum import Enum

    class Side(Enum):
        BUY = "BUY"

    by_enum = calculate_zerodha_charges(Side.BUY, 10, 2450, "mis", on=CURRENT)
    assert by_enum == calculate_zerodha_charges("BUY", 10, "2450.00", "MIS", on=CURRENT)


def test_charges_for_value_is_the_core_of_calculate():
    assert charges_for_value("BUY", Decimal("24500.00"), "MIS", on=CURRENT) == (
        calculate_zerodha_charges("BUY", 10, Decimal("2450.00"), "MIS", on=CURRENT)
    )


@pytest.mark.parametrize("segment", ["EQ", "FUT", "OPT"])
def test_zero_value_costs_nothing(segment):
    product = "MIS" if segment == "EQ" else "NRML"
    assert charges_for_value("BUY", Decimal("0"), product, segment=segment, on=CURRENT) == ZERO


def test_dp_charge_is_13_plus_gst():
    # 13 x 1.18 = 15.34
    assert dp_charge(CURRENT) == Decimal("15.34")
    assert dp_charge() == Decimal("15.34")


def test_on_defaults_to_today():
    assert calculate_zerodha_charges("BUY", 10, "2450", "MIS").total > 0


# --- Rate cards -----------------------------------------------------------------------------


def test_rate_card_selection_by_date():
    assert rate_card_for(date(2026, 4, 1)).effective_from == date(2026, 4, 1)
    assert rate_card_for(date(2026, 3, 31)).effective_from == date(2024, 10, 1)
    assert rate_card_for(date(2024, 10, 1)).effective_from == date(2024, 10, 1)
    assert rate_card_for(date(2099, 1, 1)) is RATE_CARDS[-1]


def test_older_card_equity():
    # value 24500 at 2025-06-02: exchange 0.0000297 x 24500 = 0.72765 -> 0.73; brokerage 7.35;
    # SEBI 0.02; stamp 0.74; GST 0.18 x (7.35+0.73+0.02 = 8.10) = 1.458 -> 1.46;
    # total 7.35+0.73+0.02+0.74+1.46 = 10.30
    charges = calculate_zerodha_charges("BUY", 10, Decimal("2450.00"), "MIS", on=OLDER)
    assert charges.as_dict() == amounts("7.35", "0", "0.73", "0.02", "0.74", "1.46", "10.30")


def test_older_card_futures():
    # value 1800000 at 2025-06-02: STT 0.0002 x 1800000 = 360; exchange 0.0000173 x 1800000 =
    # 31.14; SEBI 1.80; brokerage 20; GST 0.18 x (20+31.14+1.80 = 52.94) = 9.5292 -> 9.53;
    # total 20+360+31.14+1.80+9.53 = 422.47
    charges = calculate_zerodha_charges(
        "SELL", 75, Decimal("24000.00"), "NRML", segment="FUT", on=OLDER
    )
    assert charges.as_dict() == amounts("20.00", "360", "31.14", "1.80", "0", "9.53", "422.47")


def test_older_card_options():
    # premium value 9037.50 at 2025-06-02: STT 0.001 x 9037.5 = 9.0375 -> 9; exchange
    # 0.0003503 x 9037.5 = 3.16583625 -> 3.17; SEBI 0.01; brokerage 20; GST 0.18 x
    # (20+3.17+0.01 = 23.18) = 4.1724 -> 4.17; total 20+9+3.17+0.01+4.17 = 36.35
    charges = calculate_zerodha_charges(
        "SELL", 75, Decimal("120.50"), "NRML", segment="OPT", on=OLDER
    )
    assert charges.as_dict() == amounts("20.00", "9", "3.17", "0.01", "0", "4.17", "36.35")


def test_date_before_first_card_is_refused():
    with pytest.raises(ValueError, match=r"^on 2024-09-30: before the first rate card"):
        rate_card_for(date(2024, 9, 30))
    with pytest.raises(ChargesInputError, match="2024-09-30"):
        calculate_zerodha_charges("BUY", 10, "2450", "MIS", on=date(2024, 9, 30))
    with pytest.raises(ChargesInputError, match="2020-01-01"):
        dp_charge(date(2020, 1, 1))


# --- Input errors ---------------------------------------------------------------------------

VALID_LEG = {
    "side": "BUY",
    "quantity": 10,
    "price": "2450",
    "product": "MIS",
    "exchange": "NSE",
    "segment": "EQ",
}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"quantity": 0}, "quantity 0: must be at least 1"),
        ({"quantity": -5}, "quantity -5: must be at least 1"),
        ({"price": "0"}, "price '0': must be greater than 0"),
        ({"price": Decimal("-1.50")}, "price -1.50: must be greater than 0"),
        ({"price": "abc"}, "price 'abc': must be a decimal number"),
        ({"price": "NaN"}, "price 'NaN': must be a finite number"),
        ({"price": "Infinity"}, "price 'Infinity': must be a finite number"),
        ({"side": "HOLD"}, "side 'HOLD': must be one of BUY, SELL"),
        ({"product": "XYZ"}, "product 'XYZ': must be one of MIS, CNC, NRML"),
        ({"segment": "CASH"}, "segment 'CASH': must be one of EQ, FUT, OPT"),
        ({"exchange": "MCX"}, "exchange 'MCX': must be one of NSE, BSE, NFO, BFO"),
        (
            {"product": "NRML"},
            "segment 'EQ' with product 'NRML': NRML is for futures and options",
        ),
        (
            {"segment": "FUT", "product": "CNC"},
            "segment 'FUT' with product 'CNC': CNC is equity delivery",
        ),
        (
            {"exchange": "NFO"},
            "segment 'EQ' with exchange 'NFO': NFO lists futures and options",
        ),
    ],
)
def test_input_errors_name_the_argument_and_rule(changes, message):
    with pytest.raises(ChargesInputError) as caught:
        calculate_zerodha_charges(**dict(VALID_LEG, **changes), on=CURRENT)
    assert str(caught.value).startswith(message)
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize(
    ("changes", "argument"),
    [
        ({"price": 2450.0}, "price"),
        ({"quantity": 10.0}, "quantity"),
        ({"quantity": "10"}, "quantity"),
        ({"quantity": True}, "quantity"),
        ({"price": None}, "price"),
    ],
)
def test_wrong_types_raise_type_error_naming_the_argument(changes, argument):
    with pytest.raises(TypeError, match=f"^{argument} "):
        calculate_zerodha_charges(**dict(VALID_LEG, **changes), on=CURRENT)


def test_value_and_on_are_checked():
    with pytest.raises(ChargesInputError, match=r"^value -1: must not be negative"):
        charges_for_value("BUY", Decimal("-1"), "MIS", on=CURRENT)
    with pytest.raises(TypeError, match=r"^value "):
        charges_for_value("BUY", 24500.0, "MIS", on=CURRENT)
    with pytest.raises(TypeError, match=r"^on "):
        charges_for_value("BUY", "1", "MIS", on="2026-04-15")


def test_absurd_values_are_refused():
    with pytest.raises(ChargesInputError, match=r"^value 1E\+30 of quantity 1 x price 1E\+30: "):
        calculate_zerodha_charges("BUY", 1, "1e30", "MIS", on=CURRENT)
    with pytest.raises(ChargesInputError, match=r"^value 1000000000000000: must be below"):
        charges_for_value("BUY", 10**15, "MIS", on=CURRENT)
    with pytest.raises(ChargesInputError, match=r"^value .* of the order: must be below"):
        attribute_fill_charges(
            "BUY",
            "MIS",
            exchange="NSE",
            segment="EQ",
            on=CURRENT,
            previous_fills=[(1, Decimal("999999999999999"))],
            fill_quantity=1,
            fill_price=Decimal("1"),
        )


def test_attribution_checks_previous_fills():
    common = {
        "exchange": "NSE",
        "segment": "EQ",
        "on": CURRENT,
        "fill_quantity": 1,
        "fill_price": "10",
    }
    with pytest.raises(ChargesInputError, match=r"^previous_fills\[1\] quantity 0"):
        attribute_fill_charges("BUY", "MIS", previous_fills=[(1, "10"), (0, "10")], **common)
    with pytest.raises(TypeError, match=r"^previous_fills\[0\] price 10.0"):
        attribute_fill_charges("BUY", "MIS", previous_fills=[(1, 10.0)], **common)
    with pytest.raises(TypeError, match=r"^previous_fills\[0\] "):
        attribute_fill_charges("BUY", "MIS", previous_fills=[(1, "10", "x")], **common)
    with pytest.raises(ChargesInputError, match=r"^fill_quantity 0"):
        attribute_fill_charges("BUY", "MIS", previous_fills=[], **dict(common, fill_quantity=0))


def test_input_error_survives_copying():  # deepcopy goes through __reduce__, as pickle does
    error = ChargesInputError("quantity", 0, "must be at least 1")
    clone = copy.deepcopy(error)
    assert (str(clone), clone.argument, clone.rule) == (
        str(error),
        "quantity",
        "must be at least 1",
    )


# --- Charges arithmetic ---------------------------------------------------------------------


def test_charges_add_sub_and_sum():
    a = calculate_zerodha_charges("BUY", 10, "2450.00", "MIS", on=CURRENT)
    b = calculate_zerodha_charges("SELL", 10, "2450.00", "MIS", on=CURRENT)
    assert (a + b) - b == a
    assert a + ZERO == a
    assert sum([a, b]) == a + b
    assert (a + b).total == Decimal("25.90")  # 10.32 + 15.58


def test_charges_refuse_a_wrong_total_or_a_float():
    with pytest.raises(ValueError, match="total"):
        Charges(*(Decimal("1.00"),) * 7)
    with pytest.raises(TypeError, match="brokerage"):
        Charges(1.0, *(Decimal("0.00"),) * 6)


# --- Attribution to fills -------------------------------------------------------------------


def test_attribution_worked_by_hand():
    # MIS BUY 100 @ 1000 filled 50 + 30 + 20.
    # after 50 (value 50000): brokerage 15.00, exchange 1.535 -> 1.54, SEBI 0.05, stamp 1.50,
    #   GST 0.18 x 16.59 = 2.9862 -> 2.99; total 21.08
    # after 80 (value 80000): brokerage 24 -> 20, exchange 2.456 -> 2.46, SEBI 0.08, stamp
    #   2.40, GST 0.18 x 22.54 = 4.0572 -> 4.06; total 29.00 -> fill 2 pays 29.00 - 21.08 = 7.92
    # after 100 (value 100000): see mis-buy-brokerage-capped, total 30.34 -> fill 3 pays 1.34
    #   and no brokerage: the cap was reached during fill 2.
    leg = {"exchange": "NSE", "segment": "EQ", "on": CURRENT}
    price = Decimal("1000.00")
    first = attribute_fill_charges(
        "BUY", "MIS", **leg, previous_fills=[], fill_quantity=50, fill_price=price
    )
    second = attribute_fill_charges(
        "BUY", "MIS", **leg, previous_fills=[(50, price)], fill_quantity=30, fill_price=price
    )
    third = attribute_fill_charges(
        "BUY",
        "MIS",
        **leg,
        previous_fills=[(50, price), (30, price)],
        fill_quantity=20,
        fill_price=price,
    )
    assert first.as_dict() == amounts("15.00", "0", "1.54", "0.05", "1.50", "2.99", "21.08")
    assert second.as_dict() == amounts("5.00", "0", "0.92", "0.03", "0.90", "1.07", "7.92")
    assert third.as_dict() == amounts("0", "0", "0.61", "0.02", "0.60", "0.11", "1.34")
    assert first + second + third == calculate_zerodha_charges("BUY", 100, price, "MIS", on=CURRENT)


def test_attributed_stt_comes_in_whole_rupees_and_can_be_zero():
    # MIS SELL 4 @ 2500 filled one share at a time; cumulative STT 0.00025 x value:
    # 2500 -> 0.625 -> 1; 5000 -> 1.25 -> 1; 7500 -> 1.875 -> 2; 10000 -> 2.5 -> 3.
    # Shares: 1, 0, 1, 1, summing to the leg's 3.
    price = Decimal("2500.00")
    pieces = [
        attribute_fill_charges(
            "SELL",
            "MIS",
            exchange="NSE",
            segment="EQ",
            on=CURRENT,
            previous_fills=[(1, price)] * done,
            fill_quantity=1,
            fill_price=price,
        ).stt
        for done in range(4)
    ]
    assert pieces == [Decimal("1"), Decimal("0"), Decimal("1"), Decimal("1")]


def test_options_brokerage_is_paid_by_the_first_fill_only():
    leg = {"exchange": "NFO", "segment": "OPT", "on": CURRENT}
    premium = Decimal("120.50")
    first = attribute_fill_charges(
        "BUY", "NRML", **leg, previous_fills=[], fill_quantity=75, fill_price=premium
    )
    later = attribute_fill_charges(
        "BUY", "NRML", **leg, previous_fills=[(75, premium)], fill_quantity=75, fill_price=premium
    )
    assert (first.brokerage, later.brokerage) == (Decimal("20.00"), Decimal("0.00"))


# --- Properties -----------------------------------------------------------------------------

VALID_LEGS = [
    (side, product, exchange, segment)
    for side in ("BUY", "SELL")
    for exchange, segment, product in [
        ("NSE", "EQ", "MIS"),
        ("NSE", "EQ", "CNC"),
        ("BSE", "EQ", "MIS"),
        ("BSE", "EQ", "CNC"),
        ("NFO", "FUT", "NRML"),
        ("NFO", "FUT", "MIS"),
        ("NSE", "OPT", "NRML"),
        ("NFO", "OPT", "MIS"),
        ("BFO", "FUT", "NRML"),
        ("BSE", "OPT", "NRML"),
    ]
]
legs = st.sampled_from(VALID_LEGS)
trade_dates = st.dates(min_value=date(2024, 10, 1), max_value=date(2027, 12, 31))
# 0.01 to 1,00,000.00 rupees, any paisa
prices = st.integers(min_value=1, max_value=10_000_000).map(lambda paise: Decimal(paise) / 100)
fills = st.lists(
    st.tuples(st.integers(min_value=1, max_value=5_000), prices), min_size=1, max_size=8
)


def _has_two_decimals(amount: Decimal) -> bool:
    return isinstance(amount, Decimal) and amount.as_tuple().exponent == -2


@pytest.mark.slow
@given(leg=legs, on=trade_dates, order_fills=fills)
def test_attributed_fills_sum_to_the_whole_order(leg, on, order_fills):
    side, product, exchange, segment = leg
    attributed = [
        attribute_fill_charges(
            side,
            product,
            exchange=exchange,
            segment=segment,
            on=on,
            previous_fills=order_fills[:index],
            fill_quantity=quantity,
            fill_price=price,
        )
        for index, (quantity, price) in enumerate(order_fills)
    ]
    order_value = sum(quantity * price for quantity, price in order_fills)
    whole = charges_for_value(side, order_value, product, exchange=exchange, segment=segment, on=on)

    total = sum(attributed, ZERO)
    for name, amount in whole.as_dict().items():
        assert getattr(total, name) == amount, name
    for fill in attributed:
        for name, amount in fill.as_dict().items():
            assert _has_two_decimals(amount), (name, amount)
            # Every component is non-decreasing in value, so no share is negative.
            assert amount >= 0, (name, amount)
        assert fill.stt == fill.stt.to_integral_value(), fill.stt


@pytest.mark.slow
@given(leg=legs, on=trade_dates, quantity=st.integers(1, 100_000), price=prices)
def test_single_leg_contract(leg, on, quantity, price):
    side, product, exchange, segment = leg
    charges = calculate_zerodha_charges(
        side, quantity, price, product, exchange=exchange, segment=segment, on=on
    )
    taxable = charges.brokerage + charges.exchange_charges + charges.sebi_charges
    assert charges.gst == (taxable * Decimal("0.18")).quantize(
        Decimal("0.01"), rounding=ROUND_HALF_UP
    )
    assert charges.stt == charges.stt.to_integral_value()
    assert charges.brokerage <= Decimal("20")
    assert charges.total == sum(getattr(charges, name) for name in COMPONENTS)
    for name, amount in charges.as_dict().items():
        assert _has_two_decimals(amount), (name, amount)
        assert amount >= 0, (name, amount)
    if side == "SELL":
        assert charges.stamp_duty == 0


# --- The `charges` command ------------------------------------------------------------------
# call_command needs Django settings: these run under pytest-django (the project's pytest
# configuration names omsproject.settings); they touch no database.


@pytest.fixture
def call_charges(request):
    if not request.config.pluginmanager.hasplugin("django"):
        pytest.skip("the charges command needs pytest-django and the project's settings")
    from django.core.management import call_command

    def run(*args: str) -> str:
        out = StringIO()
        call_command("charges", *args, stdout=out)
        return out.getvalue()

    return run


MIS_EXAMPLE = (
    "--segment", "EQ", "--product", "MIS", "--side", "BUY", "--quantity", "10",
    "--price", "2450", "--exchange", "NSE", "--date", "2026-04-15",
)  # fmt: skip


def test_command_json_is_the_seven_amounts(call_charges):
    printed = json.loads(call_charges(*MIS_EXAMPLE, "--json"))
    assert printed == {
        "brokerage": "7.35",
        "stt": "0.00",
        "exchange_charges": "0.75",
        "sebi_charges": "0.02",
        "stamp_duty": "0.74",
        "gst": "1.46",
        "total": "10.32",
    }


def test_command_table(call_charges):
    printed = call_charges(*MIS_EXAMPLE)
    assert "Brokerage" in printed
    assert "10.32" in printed.splitlines()[-1]


def test_command_defaults_and_decimal_price(call_charges):
    printed = json.loads(
        call_charges("--product", "cnc", "--side", "buy", "--quantity", "100", "--price",
                     "1500.00", "--date", "2026-04-15", "--json")
    )  # fmt: skip
    assert printed["total"] == "178.12"


def test_command_price_with_decimals(call_charges):
    # value 10 x 2450.50 = 24505; brokerage 7.3515 -> 7.35; exchange 0.7523035 -> 0.75; SEBI
    # 0.024505 -> 0.02; stamp 0.73515 -> 0.74; GST 1.46; total 10.32
    printed = json.loads(call_charges(*with_option("--price", "2450.50"), "--json"))
    assert printed["total"] == "10.32"


def with_option(option: str, value: str) -> list[str]:
    """MIS_EXAMPLE with one option's value replaced."""
    args = list(MIS_EXAMPLE)
    args[args.index(option) + 1] = value
    return args


@pytest.mark.parametrize(
    ("replace", "with_value", "named"),
    [
        ("--quantity", "0", "quantity"),
        ("--quantity", "ten", "quantity"),
        ("--price", "-5", "price"),
        ("--price", "abc", "price"),
        ("--date", "2026-13-01", "date"),
        ("--date", "2020-01-01", "date"),
        ("--segment", "CASH", "segment"),
        ("--product", "NRML", "segment"),
        ("--exchange", "NFO", "segment"),
        ("--side", "HOLD", "side"),
    ],
)
def test_command_errors_name_the_argument(call_charges, replace, with_value, named):
    from django.core.management import CommandError

    with pytest.raises(CommandError, match=named) as caught:
        call_charges(*with_option(replace, with_value))
    assert "\n" not in str(caught.value)
