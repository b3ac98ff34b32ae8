from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from risk.instruments import InstrumentFileError, instruments_load


class Command(BaseCommand):
    help = "Load (upsert) the instrument master from a Kite instruments CSV. All or nothing."

    def add_arguments(self, parser):
        parser.add_argument("file", help="path to a Kite instruments CSV")

    def handle(self, *args, file, **options):
        path = Path(file)
        if not path.is_file():
            raise CommandError(f"file {file}: not found")
        with path.open(newline="", encoding="utf-8-sig") as lines:  # a BOM is not a column
            try:
                result = instruments_load(
                    lines, progress=lambda n: self.stderr.write(f"  {n:,} lines read...")
                )
            except InstrumentFileError as error:
                raise CommandError(f"{path.name}: {error}; nothing was loaded") from None
        self.stdout.write(
            f"{result.total} instruments loaded from {path.name}: "
            f"{result.created} new, {result.updated} updated"
        )
