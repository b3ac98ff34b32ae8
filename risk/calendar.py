"""The NSE trading calendar: sessions from pandas_market_calendars' XNSE, plus the holidays
staff add in the admin (late one-off closures such as 15 Jan 2026) or load from the exchange's
published list (``manage.py load_holidays``), in IST.

The library knows the holidays of the years it was released for; beyond them every weekday
would look like a trading day. ``holidays_health`` says when a year has no holidays from
either source, for the health endpoint to warn before it happens."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time
from functools import lru_cache
from zoneinfo import ZoneInfo

from django.conf import settings
from django.utils import timezone

from risk.models import MarketHoliday

IST = ZoneInfo("Asia/Kolkata")
MARKET_OPEN = time(9, 15)
MARKET_CLOSE = time(15, 30)
# Zerodha squares off MIS positions at these times and takes no new MIS orders after them.
SQUARE_OFF = {"EQ": time(15, 20), "FUT": time(15, 25), "OPT": time(15, 25)}


@lru_cache(maxsize=8)
def _exchange_holidays(year: int) -> frozenset[date]:
    import pandas as pd
    import pandas_market_calendars as mcal

    calendar = mcal.get_calendar("XNSE")
    holidays = pd.DatetimeIndex(calendar.holidays().holidays)
    return frozenset(d.date() for d in holidays if d.year == year)


def exchange_holidays(year: int) -> list[date]:
    """The weekday holidays of ``year`` the calendar library knows (XNSE), in date order: the
    ones the holidays table need not repeat."""
    return sorted(day for day in _exchange_holidays(year) if day.weekday() < 5)


def is_exchange_trading_day(day: date) -> bool:
    """A weekday that is not an exchange holiday (the staff's holidays are not looked at)."""
    return day.weekday() < 5 and day not in _exchange_holidays(day.year)


def is_trading_day(day: date) -> bool:
    """A weekday that is neither an exchange holiday nor a holiday added by staff."""
    if not is_exchange_trading_day(day):
        return False
    return not MarketHoliday.objects.filter(date=day).exists()


def ist(moment: datetime | None = None) -> datetime:
    return (moment or timezone.now()).astimezone(IST)


def in_session(moment: datetime) -> bool:
    """Within the normal session's hours, 09:15 to 15:30 IST (whatever the day)."""
    return MARKET_OPEN <= ist(moment).time() < MARKET_CLOSE


def market_is_open(moment: datetime | None = None) -> bool:
    """The normal session, 09:15 to 15:30 IST on a trading day."""
    now = ist(moment)
    return is_trading_day(now.date()) and in_session(now)


def square_off_time(segment: str) -> time:
    """When no new MIS position may be taken: the OMS's own square-off (OMS_MIS_SQUARE_OFF), or
    the broker's for the segment if that comes first."""
    ours = time.fromisoformat(settings.OMS_MIS_SQUARE_OFF)
    return min(ours, SQUARE_OFF.get(segment, SQUARE_OFF["EQ"]))


def past_square_off(segment: str, moment: datetime | None = None) -> bool:
    return ist(moment).time() >= square_off_time(segment)


@dataclass(frozen=True)
class HolidaysHealth:
    """Whether the calendar knows the holidays of this year and the next."""

    ok: bool
    missing_years: tuple[int, ...]
    message: str

    def as_dict(self) -> dict:
        return {
            "status": "ok" if self.ok else "warning",
            "missing_years": list(self.missing_years),
            "message": self.message,
        }


def year_has_holidays(year: int) -> bool:
    """The library or the holidays table lists at least one holiday in ``year``."""
    if _exchange_holidays(year):
        return True
    return MarketHoliday.objects.filter(date__year=year).exists()


def holidays_health(today: date | None = None) -> HolidaysHealth:
    """A warning when this year or the next has no exchange holidays loaded, neither in the
    calendar library nor in the holidays table (every weekday would count as a trading day):
    load the exchange's list with ``manage.py load_holidays <file>``."""
    year = (today or ist().date()).year
    missing = tuple(y for y in (year, year + 1) if not year_has_holidays(y))
    if not missing:
        return HolidaysHealth(ok=True, missing_years=(), message="holidays known")
    years = " and ".join(str(y) for y in missing)
    return HolidaysHealth(
        ok=False,
        missing_years=missing,
        message=(
            f"no exchange holidays known for {years}: load NSE's list "
            "(manage.py load_holidays <file>)"
        ),
    )


# Zerodha takes after-market orders (variety amo) between these times (from, until) on a
# trading day, and at any time on a weekend or holiday; they reach the exchange at the open.
AMO_WINDOWS = {"EQ": (time(16, 0), time(8, 58)), "FUT": (time(15, 45), time(9, 10))}
AMO_WINDOWS["OPT"] = AMO_WINDOWS["FUT"]


def amo_window_problem(segment: str, moment: datetime, *, trading_day: bool) -> str | None:
    """Why an AMO of ``segment`` is not taken at ``moment`` (None when it is)."""
    if not trading_day:
        return None
    start, end = AMO_WINDOWS.get(segment, AMO_WINDOWS["EQ"])
    now = ist(moment).time()
    if now >= start or now < end:
        return None
    return (
        f"variety amo at {now:%H:%M} IST: after-market orders are taken {start:%H:%M}-{end:%H:%M} "
        "(and on non-trading days); during the session send a regular order"
    )
