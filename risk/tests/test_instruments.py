"""Loading the instrument master from a Kite instruments CSV: an upsert, all or nothing."""

from __future__ import annotations

import io
from decimal import Decimal

import pytest
from django.db import IntegrityError

from risk.instruments import KITE_COLUMNS, InstrumentFileError, instruments_load
from risk.models import Instrument

pytestmark = pytest.mark.django_db

HEADER = ",".join(KITE_COLUMNS)
SAMPLE_COUNT = 19  # the sample master the suite loads for every test


def equity_line(number: int, *, tick: str = "0.05", lot: str = "1", symbol: str = "") -> str:
    symbol = symbol or f"GEN{number:05d}"
    return f"{900000 + number},{number},{symbol},GENERATED {number},0,,0,{tick},{lot},EQ,NSE,NSE"


def csv_file(*lines: str) -> io.StringIO:
    return io.StringIO("\n".join([HEADER, *lines]) + "\n")


def generated(count: int, **broken_at: str) -> io.StringIO:
    """``count`` equity rows; ``broken_at={"line_N": text}`` replaces file line N."""
    lines = [equity_line(n) for n in range(1, count + 1)]
    for key, text in broken_at.items():
        lines[int(key.removeprefix("line_")) - 2] = text
    return csv_file(*lines)


def test_the_sample_master_is_loaded_with_lots_and_freeze_quantities():
    option = Instrument.objects.get(tradingsymbol="NIFTY26DEC26000CE", exchange="NFO")
    bank = Instrument.objects.get(tradingsymbol="BANKNIFTY26DEC59000PE")
    equity = Instrument.objects.get(tradingsymbol="RELIANCE", exchange="NSE")

    assert Instrument.objects.count() == SAMPLE_COUNT
    assert (option.lot_size, option.freeze_quantity, option.tick_size) == (
        65,
        1800,
        Decimal("0.05"),
    )
    assert option.is_option and option.strike == 26000
    assert (bank.lot_size, bank.freeze_quantity) == (30, 600)
    assert (equity.lot_size, equity.freeze_quantity, equity.is_option) == (1, None, False)


def test_a_second_load_updates_in_place_and_counts_new_and_updated():
    changed = "738561,2885,RELIANCE,RELIANCE INDUSTRIES,0,,0,0.05,1,EQ,NSE,NSE"
    before = Instrument.objects.get(tradingsymbol="RELIANCE", exchange="NSE")

    result = instruments_load(csv_file(changed, equity_line(1), equity_line(2)))

    assert (result.created, result.updated, result.total) == (2, 1, 3)
    after = Instrument.objects.get(tradingsymbol="RELIANCE", exchange="NSE")
    assert after.pk == before.pk
    assert after.tick_size == Decimal("0.05")
    assert after.updated_at > before.updated_at
    assert Instrument.objects.count() == SAMPLE_COUNT + 2


def test_the_same_file_twice_creates_nothing_new():
    first = instruments_load(generated(50))
    second = instruments_load(generated(50))

    assert (first.created, first.updated) == (50, 0)
    assert (second.created, second.updated) == (0, 50)
    assert Instrument.objects.count() == SAMPLE_COUNT + 50


def test_progress_is_reported_every_2000_rows():
    reported = []

    result = instruments_load(generated(5000), progress=reported.append)

    assert reported == [2000, 4000]
    assert result.created == 5000


@pytest.mark.parametrize(
    ("bad_line", "message"),
    [
        pytest.param(
            "x1,1,BAD,BAD,0,,0,0.05,1,EQ,NSE,NSE",
            "line 4: instrument_token 'x1': must be a whole number",
            id="token",
        ),
        pytest.param(
            "11,1,,BAD,0,,0,0.05,1,EQ,NSE,NSE",
            "line 4: tradingsymbol '': must not be empty",
            id="symbol",
        ),
        pytest.param(
            "11,1,BAD,BAD,0,,0,0,1,EQ,NSE,NSE",
            "line 4: tick_size '0': must be greater than 0",
            id="tick-zero",
        ),
        pytest.param(
            "11,1,BAD,BAD,0,,0,NaN,1,EQ,NSE,NSE",
            "line 4: tick_size 'NaN': must be greater than 0",
            id="tick-nan",
        ),
        pytest.param(
            "11,1,BAD,BAD,0,,abc,0.05,1,EQ,NSE,NSE",
            "line 4: strike 'abc': must be a decimal number",
            id="strike",
        ),
        pytest.param(
            "11,1,BAD,BAD,0,,0,0.05,0,EQ,NSE,NSE",
            "line 4: lot_size '0': must be at least 1",
            id="lot-zero",
        ),
        pytest.param(
            "11,1,BAD,BAD,0,,0,0.05,1,WARRANT,NSE,NSE",
            "line 4: instrument_type 'WARRANT': must be one of EQ, FUT, CE, PE",
            id="type",
        ),
        pytest.param(
            "11,1,BAD,BAD,0,26-12-2026,0,0.05,1,FUT,NFO-FUT,NFO",
            "line 4: expiry '26-12-2026': must be a date YYYY-MM-DD",
            id="expiry",
        ),
        pytest.param(
            "11,1,BAD,BAD,0,,0,0.05,1,EQ,NSE,",
            "line 4: exchange '': must not be empty",
            id="exchange",
        ),
        pytest.param(
            "11,1,BAD,BAD",
            "line 4: tick_size None: must be a decimal number",
            id="short-row",
        ),
        pytest.param(
            equity_line(1, symbol="DUPLICATE"),
            "line 4: instrument_token 900001: already on line 2",
            id="token-twice",
        ),
    ],
)
def test_a_malformed_line_is_named_and_nothing_is_loaded(bad_line, message):
    before = list(Instrument.objects.values_list("tradingsymbol", "tick_size", "updated_at"))
    changed = "738561,2885,RELIANCE,RELIANCE INDUSTRIES,0,,0,0.05,1,EQ,NSE,NSE"

    with pytest.raises(InstrumentFileError) as refused:
        instruments_load(csv_file(equity_line(1), changed, bad_line, equity_line(3)))

    assert str(refused.value) == message
    assert list(Instrument.objects.values_list("tradingsymbol", "tick_size", "updated_at")) == (
        before
    )


def test_a_bad_last_line_of_a_large_file_leaves_nothing_half_loaded():
    with pytest.raises(InstrumentFileError, match=r"^line 5001: lot_size 'ten'"):
        instruments_load(generated(5000, line_5001=equity_line(5000, lot="ten")))

    assert Instrument.objects.count() == SAMPLE_COUNT


def test_a_row_the_database_refuses_leaves_nothing_half_loaded():
    # RELIANCE's token (already in the master) under another symbol: the unique token refuses.
    reused = "738561,1,NEWCO,NEW COMPANY,0,,0,0.05,1,EQ,NSE,NSE"

    with pytest.raises(IntegrityError):
        instruments_load(csv_file(equity_line(1), reused))

    assert not Instrument.objects.filter(tradingsymbol__in=["GEN00001", "NEWCO"]).exists()


def test_line_numbers_count_blank_lines_and_quoted_line_breaks():
    quoted = '12,2,QUOTED,"TWO\nLINES",0,,0,0.05,1,EQ,NSE,NSE'
    text = "\n".join([HEADER, equity_line(1), "", quoted, "13,3,BAD,BAD,0,,0,0.05,x,EQ,NSE,NSE"])

    with pytest.raises(InstrumentFileError, match=r"^line 6: lot_size 'x'"):
        instruments_load(io.StringIO(text))


def test_a_header_without_kites_columns_is_refused():
    with pytest.raises(InstrumentFileError, match=r"^line 1: header lacks the columns lot_size"):
        instruments_load(io.StringIO(HEADER.replace("lot_size", "lot") + "\n"))
