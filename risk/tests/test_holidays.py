"""The exchange's holiday list loaded into the holidays table, and the calendar's health."""

import json
from datetime import date
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from risk import calendar
from risk.holidays import HolidayFileError, holidays_parse, market_holidays_load
from risk.models import MarketHoliday
from risk.tests.factories import MarketHolidayFactory

pytestmark = pytest.mark.django_db

SAMPLE = Path(__file__).parent.parent / "fixtures" / "nse_holidays_2027_sample.csv"


def test_the_command_loads_the_list_and_the_calendar_closes_those_days(capsys):
    assert calendar.is_trading_day(date(2027, 1, 26))  # a Tuesday nobody has told us about

    call_command("load_holidays", str(SAMPLE))

    assert "4 holidays of 2027 from nse_holidays_2027_sample.csv: 4 new" in capsys.readouterr().out
    assert not calendar.is_trading_day(date(2027, 1, 26))
    assert MarketHoliday.objects.get(date=date(2027, 3, 22)).description == "Holi"
    assert MarketHoliday.objects.get(date=date(2027, 3, 22)).created_by == "load_holidays"


def test_loading_again_changes_nothing(capsys):
    call_command("load_holidays", str(SAMPLE))
    call_command("load_holidays", str(SAMPLE))

    assert "0 new, 0 updated, 4 unchanged" in capsys.readouterr().out
    assert MarketHoliday.objects.filter(date__year=2027).count() == 4


def test_a_new_description_updates_the_row_and_staff_rows_stay():
    MarketHolidayFactory(date=date(2027, 1, 26), description="Republic")
    MarketHolidayFactory(date=date(2027, 5, 3), description="Added by staff")

    result = market_holidays_load({date(2027, 1, 26): "Republic Day"})

    assert (result.created, result.updated, result.unchanged) == (0, 1, 0)
    assert MarketHoliday.objects.get(date=date(2027, 1, 26)).description == "Republic Day"
    assert MarketHoliday.objects.filter(date=date(2027, 5, 3)).exists()


def test_nse_json_and_plain_json_are_read():
    nse = {
        "CM": [
            {
                "Sr_no": 1,
                "tradingDate": "26-Jan-2027",
                "weekDay": "Tuesday",
                "description": "Republic Day",
            },
        ],
        "FO": [],
    }
    plain = [{"date": "2027-03-22", "description": "Holi"}]

    assert holidays_parse(json.dumps(nse)) == {date(2027, 1, 26): "Republic Day"}
    assert holidays_parse(json.dumps(plain)) == {date(2027, 3, 22): "Holi"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("date,description\n2027-02-30,Nope\n", "line 2: date '2027-02-30': must be YYYY-MM-DD"),
        ("date,description\n2027-01-26,\n", "line 2: description: must not be empty"),
        ("day,why\n2027-01-26,R\n", "line 1: header lacks the columns date, description"),
        ('[{"date": "2027-01-26"}]', "entry 1: description: must not be empty"),
        ('{"FO": []}', "must hold NSE's equity segment list 'CM'"),
        ("", "the file is empty"),
    ],
)
def test_a_bad_file_names_the_entry_and_the_rule(text, message):
    with pytest.raises(HolidayFileError, match=message):
        holidays_parse(text)


def test_the_command_loads_nothing_from_a_bad_file(tmp_path):
    bad = tmp_path / "holidays.csv"
    bad.write_text("date,description\n2027-01-26,Republic Day\n2027-13-01,Bad\n")

    with pytest.raises(CommandError, match=r"line 3: date '2027-13-01'.*nothing was loaded"):
        call_command("load_holidays", str(bad))

    assert not MarketHoliday.objects.filter(date__year=2027).exists()


def test_health_warns_when_next_year_has_no_holidays():
    health = calendar.holidays_health(date(2026, 12, 2))

    assert not health.ok
    assert health.missing_years == (2027,)
    assert health.as_dict()["status"] == "warning"
    assert "2027" in health.message and "load_holidays" in health.message


def test_health_is_ok_once_next_years_list_is_loaded():
    call_command("load_holidays", str(SAMPLE))

    health = calendar.holidays_health(date(2026, 12, 2))

    assert health.ok
    assert health.as_dict() == {"status": "ok", "missing_years": [], "message": "holidays known"}
