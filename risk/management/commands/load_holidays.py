from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from risk.holidays import HolidayFileError, holidays_parse, market_holidays_load


class Command(BaseCommand):
    help = (
        "Load the exchange's published holiday list (CSV date,description or JSON; see "
        "risk/holidays.py) into the holidays table. Idempotent, all or nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="path to the holiday list (.csv or .json)")

    def handle(self, *args, file, **options):
        path = Path(file)
        if not path.is_file():
            raise CommandError(f"file {file}: not found")
        try:
            holidays = holidays_parse(path.read_text(encoding="utf-8-sig"))
        except (HolidayFileError, UnicodeDecodeError) as error:
            raise CommandError(f"{path.name}: {error}; nothing was loaded") from None
        result = market_holidays_load(holidays)
        years = sorted({day.year for day in holidays})
        self.stdout.write(
            f"{result.total} holidays of {', '.join(map(str, years))} from {path.name}: "
            f"{result.created} new, {result.updated} updated, {result.unchanged} unchanged"
        )
