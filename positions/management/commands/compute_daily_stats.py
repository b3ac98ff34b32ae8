from datetime import date, timedelta

from django.core.management.base import BaseCommand, CommandError
from django.db.models import F
from django.utils import timezone

from orders.charges import RATE_CARDS
from orders.models import Strategy
from positions.models import DailyStats
from positions.statistics import daily_stats_compute, strategy_counters_check

CHUNK_DAYS = 31


def _date(name: str, value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError as error:
        raise CommandError(f"{name} {value!r}: not a date (YYYY-MM-DD): {error}") from None


class Command(BaseCommand):
    help = "Compute the daily statistics of a day or a range (idempotent upsert)."

    def add_arguments(self, parser):
        parser.add_argument("--date", help="one day, YYYY-MM-DD (default: today, IST)")
        parser.add_argument("--from", dest="date_from", help="first day of a range")
        parser.add_argument("--to", dest="date_to", help="last day of a range")
        parser.add_argument("--strategy", help="only this strategy (by name)")
        parser.add_argument(
            "--check-counters",
            action="store_true",
            help="also compare each strategy's running counters with its book",
        )

    def handle(self, *args, **options):
        day, start, end = options["date"], options["date_from"], options["date_to"]
        if day and (start or end):
            raise CommandError("--date: give either --date or --from/--to, not both")
        if bool(start) != bool(end):
            raise CommandError("--from/--to: a range needs both ends")
        if day:
            start = end = _date("--date", day)
        elif start:
            start, end = _date("--from", start), _date("--to", end)
            if start > end:
                raise CommandError(f"--from {start}: after --to {end}")
        else:
            start = end = timezone.localdate()
        first_card = RATE_CARDS[0].effective_from
        if start < first_card:
            raise CommandError(
                f"{'--date' if day else '--from'} {start}: no charges are known for this day "
                f"(the first rate card is in force from {first_card})"
            )
        strategy = None
        if options["strategy"]:
            strategy = Strategy.objects.filter(name=options["strategy"]).first()
            if strategy is None:
                raise CommandError(f"--strategy {options['strategy']!r}: no such strategy")
        total_days = (end - start).days + 1
        chunk_start, done, rows = start, 0, 0
        while chunk_start <= end:
            chunk_end = min(end, chunk_start + timedelta(days=CHUNK_DAYS - 1))
            result = daily_stats_compute(
                date_from=chunk_start, date_to=chunk_end, strategy=strategy
            )
            done += result.days
            rows += result.rows
            if total_days > CHUNK_DAYS:
                self.stderr.write(f"  {done}/{total_days} days...")
            chunk_start = chunk_end + timedelta(days=1)
        self.stdout.write(f"{rows} rows computed for {start}..{end}")
        self._summary(start, end, strategy)
        if options["check_counters"]:
            mismatches = strategy_counters_check()
            for m in mismatches:
                self.stdout.write(
                    f"MISMATCH {m.strategy}: {m.counter} stored {m.stored}, "
                    f"recomputed {m.recomputed}"
                )
            if not mismatches:
                self.stdout.write("strategy counters agree with the book")

    def _summary(self, start, end, strategy):
        rows = DailyStats.objects.filter(date__range=(start, end)).select_related("strategy")
        if strategy is not None:
            rows = rows.filter(strategy=strategy)
        header = f"{'date':<10} {'strategy':<24} {'orders':>6} {'trades':>6} {'W/L':>7} "
        header += f"{'gross':>12} {'charges':>10} {'net':>12}"
        self.stdout.write(header)
        # The account's row first, then its strategies.
        for row in rows.order_by("date", F("strategy__name").asc(nulls_first=True))[:50]:
            name = row.strategy.name if row.strategy else "ALL"
            self.stdout.write(
                f"{row.date} {name[:24]:<24} {row.total_orders:>6} {row.total_trades:>6} "
                f"{row.winning_trades:>3}/{row.losing_trades:<3} {row.gross_pnl:>12} "
                f"{row.total_charges:>10} {row.net_pnl:>12}"
            )
