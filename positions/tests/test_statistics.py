"""Daily statistics on a day whose every figure is worked out by hand below.

The book of Friday 20 November 2026 (IST), two strategies:

Alpha                                                   trades (gross; charges)
  a1 BUY 10 RELIANCE MIS    09:20 FILLED     4 @ 2450.00 (9800.00; 4.12), 6 @ 2450.00
                                             (14700.00; 6.20)
  a2 SELL 10 RELIANCE MIS   11:00 FILLED     10 @ 2468.00 (24680.00; 15.65)
  a3 BUY 5 INFY             12:00 REJECTED
  a4 SELL 100 TCS CNC       13:00 FILLED     100 @ 1500.00 (150000.00; 155.62)
  a5 BUY 5 SBIN             00:10 EXPIRED    (00:10 IST is still the 19th in UTC)
  closed: RELIANCE MIS +180.00 (win), TCS CNC -250.00 (loss), INFY MIS 0.00 (neither)
  PnL snapshots: -40, 60, 10 -> peaks 0, 60, 60 -> drawdown max(40, 0, 50) = 50.00
Beta
  b1 BUY 30 HDFCBANK MIS    10:00 CANCELLED  10 @ 1725.40 (17254.00; 7.28) before the cancel
  b2 SELL 20 TCS CNC        14:00 FILLED     20 @ 3890.50 (77810.00; 80.92)
  b3 BUY 5 SBIN             14:30 REJECTED
  b4 SELL 5 SBIN CNC        15:00 FILLED     5 @ 812.35 (4061.75; 4.14)
  closed: TCS CNC +1210.00 (win)
  PnL snapshots: 30, 90, 95 -> no drawdown
Whole account (strategy NULL) snapshots: -50, 120, 300, 50, 180, -20, 100
  -> peaks 0, 120, 300, 300, 300, 300, 300 -> drawdown max(50, 0, 0, 250, 120, 320, 200) = 320.00

DP charge (Rs 13 + 18% GST = 15.34 per scrip per day with a CNC sell): Alpha sold TCS (1 scrip,
15.34); Beta sold TCS and SBIN (2 scrips, 30.68); the demat account sold TCS and SBIN: 2 scrips,
30.68 for the global row (not 3 x 15.34).

The day before (Alpha only): a0 SELL 10 INFY MIS 14:00 FILLED, 10 @ 1512.30 (15123.00; 9.92),
closing INFY +999.00; an Alpha snapshot of -500. The day after (Saturday): Beta's SBIN position
of an earlier day closed at 09:20 for -40.00 by b5 SELL 5 SBIN CNC, 5 @ 804.35 (4021.75; no
charges in this book, but the DP charge 15.34).

Gross PnL is what each day's fills realized (each closing fill above carries its position's
realized PnL): the day of the fill, not of the position's opening.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from orders.enums import OrderSide, OrderStatus, OrderType, Product
from orders.models import Order, Strategy
from orders.tests.factories import OrderFactory, StrategyFactory, TradeFactory
from positions.models import DailyStats, Position
from positions.statistics import daily_stats_compute, strategy_counters_check
from positions.tests.factories import PositionFactory
from risk.tests.factories import PnlSnapshotFactory

pytestmark = pytest.mark.django_db

IST = ZoneInfo("Asia/Kolkata")
DAY = date(2026, 11, 20)
BEFORE = DAY - timedelta(days=1)
AFTER = DAY + timedelta(days=1)
COLUMNS = (
    "total_orders",
    "filled_orders",
    "cancelled_orders",
    "rejected_orders",
    "total_trades",
    "winning_trades",
    "losing_trades",
    "gross_pnl",
    "total_charges",
    "net_pnl",
    "turnover",
    "max_drawdown",
)


def at(clock: str, day: date = DAY) -> datetime:
    return datetime.combine(day, time.fromisoformat(clock), tzinfo=IST)


def order(strategy, created: datetime, **fields) -> Order:
    """An order created at ``created`` (``created_at`` is set by the database on insert)."""
    placed = OrderFactory(strategy=strategy, **fields)
    Order.objects.filter(pk=placed.pk).update(created_at=created)
    return placed


def filled(strategy, created, symbol, side, product, quantity, average, *, status=None, **kw):
    return order(
        strategy,
        created,
        symbol=symbol,
        side=side,
        product=product,
        quantity=kw.pop("ordered", quantity),
        filled_quantity=quantity,
        average_price=Decimal(average),
        order_type=OrderType.MARKET,
        price=None,
        status=status or OrderStatus.FILLED,
        broker_order_id=f"PB-{strategy.name}-{symbol}-{created:%d%H%M}",
    )


def trade(
    placed: Order, executed: datetime, quantity: int, price: str, charges: str, realized="0"
) -> None:
    """A fill with its charge components "brokerage stt exchange sebi stamp gst" and what it
    realized (the gross PnL of its day)."""
    brokerage, stt, exchange, sebi, stamp, gst = (Decimal(c) for c in charges.split())
    TradeFactory(
        realized_pnl=Decimal(realized),
        order=placed,
        quantity=quantity,
        price=Decimal(price),
        executed_at=executed,
        brokerage=brokerage,
        stt=stt,
        exchange_charges=exchange,
        sebi_charges=sebi,
        stamp_duty=stamp,
        gst=gst,
    )


def closed(strategy, symbol, product, realized: str, closed_at: datetime) -> Position:
    return PositionFactory(
        strategy=strategy,
        symbol=symbol,
        product=product,
        quantity=0,
        average_price=Decimal("100.00"),
        realized_pnl=Decimal(realized),
        opened_at=closed_at - timedelta(hours=1),
        closed_at=closed_at,
    )


def snapshots(strategy, day: date, *totals: str) -> None:
    for hour, total in enumerate(totals, start=9):
        PnlSnapshotFactory(
            strategy=strategy, taken_at=at(f"{hour:02d}:30", day), realized_pnl=Decimal(total)
        )


@pytest.fixture
def book():
    alpha = StrategyFactory(name="Alpha")
    beta = StrategyFactory(name="Beta")
    buy, sell = OrderSide.BUY, OrderSide.SELL
    mis, cnc = Product.MIS, Product.CNC

    a1 = filled(alpha, at("09:20"), "RELIANCE", buy, mis, 10, "2450.00")
    trade(a1, at("09:20:05"), 4, "2450.00", "2.94 0 0.30 0.01 0.29 0.58")  # 4.12
    trade(a1, at("09:20:07"), 6, "2450.00", "4.41 0 0.45 0.01 0.45 0.88")  # 6.20
    a2 = filled(alpha, at("11:00"), "RELIANCE", sell, mis, 10, "2468.00")
    trade(a2, at("11:00:02"), 10, "2468.00", "7.40 6 0.76 0.02 0 1.47", "180.00")  # 15.65
    order(alpha, at("12:00"), symbol="INFY", quantity=5, status=OrderStatus.REJECTED)
    a4 = filled(alpha, at("13:00"), "TCS", sell, cnc, 100, "1500.00")
    trade(a4, at("13:00:01"), 100, "1500.00", "0 150 4.61 0.15 0 0.86", "-250.00")  # 155.62
    order(alpha, at("00:10"), symbol="SBIN", price=Decimal("800.00"), status=OrderStatus.EXPIRED)
    closed(alpha, "RELIANCE", mis, "180.00", at("11:00:02"))
    closed(alpha, "TCS", cnc, "-250.00", at("13:00:01"))
    closed(alpha, "INFY", mis, "0.00", at("12:30"))
    snapshots(alpha, DAY, "-40", "60", "10")

    b1 = filled(
        beta, at("10:00"), "HDFCBANK", buy, mis, 10, "1725.40", ordered=30, status="CANCELLED"
    )
    trade(b1, at("10:00:03"), 10, "1725.40", "5.18 0 0.53 0.02 0.52 1.03")  # 7.28
    b2 = filled(beta, at("14:00"), "TCS", sell, cnc, 20, "3890.50")
    trade(b2, at("14:00:01"), 20, "3890.50", "0 78 2.39 0.08 0 0.45", "1210.00")  # 80.92
    order(beta, at("14:30"), symbol="SBIN", price=Decimal("812.35"), status=OrderStatus.REJECTED)
    b4 = filled(beta, at("15:00"), "SBIN", sell, cnc, 5, "812.35")
    trade(b4, at("15:00:01"), 5, "812.35", "0 4 0.12 0 0 0.02")  # 4.14
    closed(beta, "TCS", cnc, "1210.00", at("14:00:01"))
    PositionFactory(strategy=beta, symbol="HDFCBANK", quantity=10, average_price=Decimal("1725.4"))
    snapshots(beta, DAY, "30", "90", "95")

    snapshots(None, DAY, "-50", "120", "300", "50", "180", "-20", "100")

    # The neighbouring days.
    a0 = filled(alpha, at("14:00", BEFORE), "INFY", sell, mis, 10, "1512.30")
    trade(a0, at("14:00:01", BEFORE), 10, "1512.30", "4.54 4 0.46 0.02 0 0.90", "999.00")
    closed(alpha, "INFY", mis, "999.00", at("14:00:01", BEFORE))
    snapshots(alpha, BEFORE, "-500")
    b5 = filled(beta, at("09:20", AFTER), "SBIN", sell, cnc, 5, "804.35")
    trade(b5, at("09:20", AFTER), 5, "804.35", "0 0 0 0 0 0", "-40.00")
    closed(beta, "SBIN", cnc, "-40.00", at("09:20", AFTER))
    return alpha, beta


def figures(row: DailyStats) -> tuple:
    return tuple(getattr(row, column) for column in COLUMNS)


def money(*amounts: str) -> tuple:
    return tuple(Decimal(a) for a in amounts)


ALPHA = (5, 3, 1, 1, 4, 1, 1, *money("-70.00", "196.93", "-266.93", "199180.00", "50.00"))
BETA = (4, 2, 1, 1, 3, 1, 0, *money("1210.00", "123.02", "1086.98", "99125.75", "0.00"))
ALL = (9, 5, 2, 2, 7, 2, 1, *money("1140.00", "304.61", "835.39", "298305.75", "320.00"))


def test_every_column_of_a_hand_checked_day(book):
    alpha, beta = book

    result = daily_stats_compute(date_from=DAY, date_to=DAY)

    assert result.days == 1
    assert result.rows == 3
    rows = {row.strategy_id: row for row in DailyStats.objects.filter(date=DAY)}
    assert set(rows) == {alpha.pk, beta.pk, None}
    # Alpha: orders a1..a5 (a1, a2, a4 filled; a5 expired; a3 rejected); trades 4; round trips
    # +180 (win), -250 (loss), 0; charges 4.12 + 6.20 + 15.65 + 155.62 + DP 15.34 = 196.93;
    # net -70.00 - 196.93; turnover 9800 + 14700 + 24680 + 150000.
    assert figures(rows[alpha.pk]) == ALPHA
    # Beta: charges 7.28 + 80.92 + 4.14 + DP 2 x 15.34 = 123.02; turnover 17254 + 77810 +
    # 4061.75; the open HDFCBANK position counts for nothing.
    assert figures(rows[beta.pk]) == BETA
    # Global: the strategies' sums, but the DP charge once per scrip (TCS, SBIN): 181.59 +
    # 92.34 + 30.68 = 304.61; the drawdown of the account's own snapshots.
    assert figures(rows[None]) == ALL


def test_computing_twice_leaves_identical_rows(book):
    daily_stats_compute(date_from=BEFORE, date_to=AFTER)
    first = list(DailyStats.objects.filter(date__range=(BEFORE, AFTER)).values())

    daily_stats_compute(date_from=BEFORE, date_to=AFTER)

    again = list(DailyStats.objects.filter(date__range=(BEFORE, AFTER)).values())
    assert len(again) == len(first) == 7

    def comparable(rows):
        return sorted(
            ({k: v for k, v in row.items() if k != "updated_at"} for row in rows),
            key=lambda row: row["id"],
        )

    assert comparable(again) == comparable(first)


def test_a_range_of_days(book):
    alpha, beta = book

    result = daily_stats_compute(date_from=BEFORE, date_to=AFTER)

    assert result.days == 3
    rows = {
        (row.date, row.strategy_id): figures(row)
        for row in DailyStats.objects.filter(date__range=(BEFORE, AFTER))
    }
    # The day before: a0 alone (charges 9.92, no DP: an MIS sell), Alpha's snapshot of -500.
    before = (1, 1, 0, 0, 1, 1, 0, *money("999.00", "9.92", "989.08", "15123.00"))
    assert rows[(BEFORE, alpha.pk)] == (*before, Decimal("500.00"))
    assert rows[(BEFORE, None)] == (*before, Decimal("0.00"))  # no account snapshot that day
    assert rows[(DAY, alpha.pk)] == ALPHA
    assert rows[(DAY, beta.pk)] == BETA
    assert rows[(DAY, None)] == ALL
    # Saturday: only Beta's position of an earlier day, closed at a loss by a CNC sell.
    after = (1, 1, 0, 0, 1, 0, 1, *money("-40.00", "15.34", "-55.34", "4021.75", "0.00"))
    assert rows[(AFTER, beta.pk)] == after
    assert rows[(AFTER, None)] == after
    assert len(rows) == 7


def test_one_strategy_only(book):
    _, beta = book

    daily_stats_compute(date_from=DAY, date_to=DAY, strategy=beta)

    assert [(row.strategy_id, figures(row)) for row in DailyStats.objects.filter(date=DAY)] == [
        (beta.pk, BETA)
    ]


def test_a_reversed_range_is_refused():
    with pytest.raises(ValueError, match="start is after the end"):
        daily_stats_compute(date_from=DAY, date_to=BEFORE)


def test_counters_that_agree_with_the_book_report_nothing():
    StrategyFactory(name="Flat")

    assert strategy_counters_check() == []


def test_a_broken_counter_is_reported():
    broken = StrategyFactory(name="Broken")
    Strategy.objects.filter(pk=broken.pk).update(total_trades=3, total_pnl=Decimal("12.50"))

    mismatches = {
        (m.strategy, m.counter): (m.stored, m.recomputed) for m in strategy_counters_check()
    }

    assert mismatches == {
        ("Broken", "total_trades"): (3, 0),
        ("Broken", "total_pnl"): (Decimal("12.50"), Decimal("0")),
    }


# --- the command --------------------------------------------------------------------------


def run(*args) -> str:
    from io import StringIO

    out = StringIO()
    call_command("compute_daily_stats", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_command_prints_the_summary_table(book):
    output = run("--date", DAY.isoformat())

    lines = output.splitlines()
    assert lines[0] == "3 rows computed for 2026-11-20..2026-11-20"
    assert lines[1].split() == [
        "date",
        "strategy",
        "orders",
        "trades",
        "W/L",
        "gross",
        "charges",
        "net",
    ]
    assert lines[2].split() == ["2026-11-20", "ALL", "9", "7", "2/1", "1140.00", "304.61", "835.39"]
    assert lines[3].split() == [
        "2026-11-20",
        "Alpha",
        "5",
        "4",
        "1/1",
        "-70.00",
        "196.93",
        "-266.93",
    ]
    assert lines[4].split() == [
        "2026-11-20",
        "Beta",
        "4",
        "3",
        "1/0",
        "1210.00",
        "123.02",
        "1086.98",
    ]
    assert len(lines) == 5


def test_command_range_and_strategy(book):
    output = run("--from", BEFORE.isoformat(), "--to", AFTER.isoformat(), "--strategy", "Beta")

    assert output.splitlines()[0] == "2 rows computed for 2026-11-19..2026-11-21"
    assert set(DailyStats.objects.values_list("date", "strategy__name")) >= {
        (DAY, "Beta"),
        (AFTER, "Beta"),
    }
    assert not DailyStats.objects.filter(strategy__name="Alpha").exists()
    assert not DailyStats.objects.filter(date=DAY, strategy=None).exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--date", "2026-02-30"], "--date '2026-02-30': not a date (YYYY-MM-DD): "),
        (["--date", "20-11-2026"], "--date '20-11-2026': not a date (YYYY-MM-DD): "),
        (
            ["--from", "2026-11-20", "--to", "2026-11-19"],
            "--from 2026-11-20: after --to 2026-11-19",
        ),
        (["--date", "2026-11-20", "--from", "2026-11-19"], "--date: give either --date or --from"),
        (["--from", "2026-11-20"], "--from/--to: a range needs both ends"),
        (["--strategy", "Nobody"], "--strategy 'Nobody': no such strategy"),
        (["--date", "2020-01-01"], "--date 2020-01-01: no charges are known for this day"),
    ],
)
def test_command_refuses_bad_arguments_in_one_line(args, message):
    with pytest.raises(CommandError) as refused:
        run(*args)

    assert str(refused.value).startswith(message)
    assert "\n" not in str(refused.value)
    assert not DailyStats.objects.filter(date__year=2020).exists()


def test_command_checks_the_strategy_counters():
    StrategyFactory(name="Steady")
    broken = StrategyFactory(name="Broken")
    Strategy.objects.filter(pk=broken.pk).update(winning_trades=2, total_trades=2)

    output = run("--date", DAY.isoformat(), "--check-counters")

    assert "MISMATCH Broken: total_trades stored 2, recomputed 0" in output
    assert "MISMATCH Broken: winning_trades stored 2, recomputed 0" in output
    assert "Steady" not in output
    assert "agree" not in output


def test_command_says_when_the_counters_agree():
    StrategyFactory(name="Steady")

    assert "strategy counters agree with the book" in run("--check-counters")


def test_the_evening_job_computes_today_and_logs_broken_counters(caplog):
    from positions import tasks

    broken = StrategyFactory(name="Broken")
    Strategy.objects.filter(pk=broken.pk).update(total_trades=1)
    today = timezone.localdate()
    order(broken, timezone.now(), status=OrderStatus.REJECTED)

    tasks.daily_stats(timestamp=0)

    row = DailyStats.objects.get(date=today, strategy=broken)
    assert (row.total_orders, row.rejected_orders) == (1, 1)
    assert DailyStats.objects.get(date=today, strategy=None).total_orders == 1
    assert "strategy Broken: total_trades is 1, the book says 0" in caplog.text
