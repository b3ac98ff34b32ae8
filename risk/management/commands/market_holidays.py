from datetime import date

from django.core.management.base import BaseCommand, CommandError

from risk import calendar
from risk.models import MarketHoliday


class Command(BaseCommand):
    help = "List, add or remove exchange holidays that staff maintain beside the XNSE calendar."

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["list", "add", "remove"])
        parser.add_argument("--date", help="YYYY-MM-DD (add/remove)")
        parser.add_argument("--description", default="", help="why the market is closed")
        parser.add_argument("--year", type=int, help="list: also the calendar's holidays")

    def handle(self, *args, action, date=None, description="", year=None, **options):
        if action == "list":
            for holiday in MarketHoliday.objects.all():
                self.stdout.write(f"{holiday.date}  {holiday.description}  (staff)")
            if year:
                for day in sorted(calendar._exchange_holidays(year)):
                    self.stdout.write(f"{day}  (XNSE calendar)")
            return
        day = self._date(date)
        if action == "add":
            if not description:
                raise CommandError("--description: required to add a holiday")
            MarketHoliday.objects.update_or_create(
                date=day, defaults={"description": description, "created_by": "command"}
            )
            self.stdout.write(f"{day} added: {description}")
        else:
            deleted, _ = MarketHoliday.objects.filter(date=day).delete()
            self.stdout.write(f"{day} removed" if deleted else f"{day} was not listed")

    @staticmethod
    def _date(value):
        if not value:
            raise CommandError("--date: required (YYYY-MM-DD)")
        try:
            return date.fromisoformat(value)
        except ValueError:
            raise CommandError(f"--date {value!r}: must be YYYY-MM-DD") from None
