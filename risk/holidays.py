"""Loading the exchange's published holiday list into the staff's holidays table (MarketHoliday),
for the years the calendar library does not know yet (``manage.py load_holidays <file>``).

Accepted files (UTF-8):

- CSV with a header ``date,description``: one holiday a line, the date as YYYY-MM-DD or as NSE
  writes it (26-Jan-2027);
- JSON: a list of ``{"date": ..., "description": ...}``, or NSE's holiday master as its site
  serves it (``{"CM": [{"tradingDate": "26-Jan-2027", "description": "Republic Day"}, ...],
  "FO": [...]}``), of which the equity segment (CM) is read.

Loading is idempotent: a date already listed keeps its row (its description is updated if
the file says otherwise); nothing is ever deleted. All or nothing: a bad entry loads nothing.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from datetime import date, datetime

from django.db import transaction

from risk.models import MarketHoliday

LOADED_BY = "load_holidays"
DESCRIPTION_LENGTH = MarketHoliday._meta.get_field("description").max_length


class HolidayFileError(ValueError):
    """A malformed holiday file; the message names the entry and the field."""


@dataclass(frozen=True)
class HolidaysLoaded:
    created: int
    updated: int
    unchanged: int

    @property
    def total(self) -> int:
        return self.created + self.updated + self.unchanged


def _date(where: str, value: object) -> date:
    text = str(value or "").strip()
    for pattern in ("%Y-%m-%d", "%d-%b-%Y"):
        try:
            return datetime.strptime(text, pattern).date()
        except ValueError:
            continue
    raise HolidayFileError(f"{where}: date {text!r}: must be YYYY-MM-DD or DD-Mon-YYYY")


def _entry(where: str, day: object, description: object) -> tuple[date, str]:
    parsed = _date(where, day)
    text = str(description or "").strip()
    if not text:
        raise HolidayFileError(f"{where}: description: must not be empty")
    if len(text) > DESCRIPTION_LENGTH:
        raise HolidayFileError(f"{where}: description: at most {DESCRIPTION_LENGTH} characters")
    return parsed, text


def holidays_parse(text: str) -> dict[date, str]:
    """The holidays of a file's text (CSV or JSON, by its first character), by date."""
    stripped = text.lstrip("\ufeff").strip()
    if not stripped:
        raise HolidayFileError("the file is empty")
    entries = _json_entries(stripped) if stripped[0] in "[{" else _csv_entries(stripped)
    holidays: dict[date, str] = {}
    for where, day, description in entries:
        parsed, text = _entry(where, day, description)
        if parsed in holidays and holidays[parsed] != text:
            raise HolidayFileError(f"{where}: date {parsed}: listed twice")
        holidays[parsed] = text
    if not holidays:
        raise HolidayFileError("the file lists no holiday")
    return holidays


def _csv_entries(text: str):
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in ("date", "description") if c not in (reader.fieldnames or [])]
    if missing:
        raise HolidayFileError(f"line 1: header lacks the columns {', '.join(missing)}")
    for row in reader:
        yield f"line {reader.line_num}", row.get("date"), row.get("description")


def _json_entries(text: str):
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise HolidayFileError(f"not JSON: {error}") from None
    if isinstance(document, dict):
        if "CM" not in document:
            raise HolidayFileError("JSON object: must hold NSE's equity segment list 'CM'")
        for number, entry in enumerate(document["CM"], start=1):
            yield f"CM entry {number}", entry.get("tradingDate"), entry.get("description")
        return
    for number, entry in enumerate(document, start=1):
        if not isinstance(entry, dict):
            raise HolidayFileError(f"entry {number}: must be an object with date and description")
        yield f"entry {number}", entry.get("date"), entry.get("description")


def market_holidays_load(holidays: dict[date, str]) -> HolidaysLoaded:
    """Add the holidays to the staff's table, in one transaction. Idempotent: a date already
    there is updated only if its description differs; no row is removed."""
    created = updated = unchanged = 0
    with transaction.atomic():
        existing = {
            row.date: row
            for row in MarketHoliday.objects.select_for_update().filter(date__in=holidays)
        }
        for day, description in sorted(holidays.items()):
            row = existing.get(day)
            if row is None:
                MarketHoliday.objects.create(
                    date=day, description=description, created_by=LOADED_BY
                )
                created += 1
            elif row.description != description:
                row.description = description
                row.save(update_fields=["description"])
                updated += 1
            else:
                unchanged += 1
    return HolidaysLoaded(created=created, updated=updated, unchanged=unchanged)
