"""The NSE calendar: trading days from XNSE plus the staff's holidays, and the session's
boundaries in IST, on a fixed clock."""

from datetime import UTC, date, datetime

import pytest

from risk import calendar
from risk.tests.factories import MarketHolidayFactory

pytestmark = pytest.mark.django_db


def ist(moment: str) -> datetime:
    return datetime.fromisoformat(moment).replace(tzinfo=calendar.IST)


@pytest.mark.parametrize(
    ("day", "trading"),
    [
        (date(2026, 1, 14), True),  # Wednesday
        (date(2026, 1, 15), False),  # the late closure of 15 Jan 2026: XNSE knows it now
        (date(2026, 1, 16), True),
        (date(2026, 1, 17), False),  # Saturday
        (date(2026, 1, 18), False),  # Sunday
        (date(2026, 1, 26), False),  # Republic Day
        (date(2025, 12, 25), False),  # Christmas
    ],
)
def test_trading_days_come_from_the_exchange_calendar(day, trading):
    assert calendar.is_trading_day(day) is trading


def test_xnse_lists_15_january_2026_itself():
    assert date(2026, 1, 15) in calendar._exchange_holidays(2026)


def test_a_holiday_added_by_staff_is_not_a_trading_day():
    MarketHolidayFactory(date=date(2026, 2, 17), description="Late closure")

    assert calendar.is_trading_day(date(2026, 2, 17)) is False
    assert calendar.is_trading_day(date(2026, 2, 18)) is True


@pytest.mark.parametrize(
    ("moment", "open_"),
    [
        ("2026-01-14 09:00:00", False),  # pre-open is not the normal session
        ("2026-01-14 09:14:59", False),
        ("2026-01-14 09:15:00", True),
        ("2026-01-14 15:29:59", True),
        ("2026-01-14 15:30:00", False),
        ("2026-01-14 15:45:00", False),  # post-close
        ("2026-01-17 11:00:00", False),  # Saturday
        ("2026-01-15 11:00:00", False),  # holiday
    ],
)
def test_the_normal_session_runs_0915_to_1530_ist(moment, open_):
    assert calendar.market_is_open(ist(moment)) is open_


def test_moments_in_other_zones_are_read_in_ist():
    # 03:45 UTC is 09:15 IST; 03:44:59 UTC is 09:14:59 IST.
    assert calendar.market_is_open(datetime(2026, 1, 14, 3, 45, tzinfo=UTC)) is True
    assert calendar.market_is_open(datetime(2026, 1, 14, 3, 44, 59, tzinfo=UTC)) is False
    # 18:30 UTC on the 13th is already the 14th in IST, before the open.
    assert calendar.ist(datetime(2026, 1, 13, 18, 30, tzinfo=UTC)).date() == date(2026, 1, 14)


def test_without_a_moment_the_clock_is_read(clock):
    clock("2026-01-14 09:15")
    assert calendar.market_is_open() is True

    clock("2026-01-14 09:14:59")
    assert calendar.market_is_open() is False


@pytest.mark.parametrize(
    ("segment", "moment", "past"),
    [
        ("EQ", "15:19:59", False),
        ("EQ", "15:20:00", True),
        ("FUT", "15:24:59", False),
        ("FUT", "15:25:00", True),
        ("OPT", "15:24:59", False),
        ("OPT", "15:25:00", True),
    ],
)
def test_the_brokers_mis_square_off_is_1520_for_equity_and_1525_for_derivatives(
    segment, moment, past, settings
):
    settings.OMS_MIS_SQUARE_OFF = "15:29"  # ours after the broker's: the broker's times govern
    assert calendar.past_square_off(segment, ist(f"2026-01-14 {moment}")) is past


@pytest.mark.parametrize("segment", ["EQ", "FUT", "OPT"])
def test_no_new_mis_position_from_the_oms_square_off_which_comes_first(segment):
    """OMS_MIS_SQUARE_OFF (15:10 by default) is before the broker's: from then on, no new MIS."""
    assert calendar.past_square_off(segment, ist("2026-01-14 15:09:59")) is False
    assert calendar.past_square_off(segment, ist("2026-01-14 15:10:00")) is True
