"""The risk app's operator commands: load_instruments, kill_switch, square_off_mis and
market_holidays. Each is thin: these tests check what it prints and what it changed."""

from __future__ import annotations

import io
from datetime import date

import pytest
from django.core.management import CommandError, call_command

from orders.enums import OrderStatus
from orders.models import Order
from orders.tests.factories import OrderFactory, StrategyFactory
from positions.tests.factories import PositionFactory
from risk import calendar
from risk.instruments import KITE_COLUMNS
from risk.models import ActorType, Instrument, KillSwitchEvent, KillSwitchState, MarketHoliday
from risk.selectors import kill_switch_state
from risk.tests.checks import validate_order
from risk.tests.factories import order_request

pytestmark = pytest.mark.django_db

SAMPLE_COUNT = 19


def run(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


# --- load_instruments --------------------------------------------------------------------------


def _instruments_file(path, rows: int, bad_row: int | None = None):
    lines = [",".join(KITE_COLUMNS)]
    for n in range(1, rows + 1):
        lot = "x" if n == bad_row else "1"
        lines.append(f"{800000 + n},{n},LOAD{n:05d},LOADED {n},0,,0,0.05,{lot},EQ,NSE,NSE")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_load_instruments_reports_counts_and_progress(tmp_path):
    source = _instruments_file(tmp_path / "instruments.csv", 5000)

    out, err = run("load_instruments", str(source))
    again, _ = run("load_instruments", str(source))

    assert out == "5000 instruments loaded from instruments.csv: 5000 new, 0 updated\n"
    assert err == "  2,000 lines read...\n  4,000 lines read...\n"
    assert again == "5000 instruments loaded from instruments.csv: 0 new, 5000 updated\n"
    assert Instrument.objects.count() == SAMPLE_COUNT + 5000


def test_load_instruments_refuses_a_malformed_file_whole(tmp_path):
    source = _instruments_file(tmp_path / "broken.csv", 3000, bad_row=2500)

    with pytest.raises(CommandError) as refused:
        run("load_instruments", str(source))

    assert str(refused.value) == (
        "broken.csv: line 2501: lot_size 'x': must be a whole number; nothing was loaded"
    )
    assert Instrument.objects.count() == SAMPLE_COUNT


def test_load_instruments_reads_a_file_saved_with_a_byte_order_mark(tmp_path):
    source = _instruments_file(tmp_path / "excel.csv", 3)
    source.write_bytes(b"\xef\xbb\xbf" + source.read_bytes())

    out, _ = run("load_instruments", str(source))

    assert out == "3 instruments loaded from excel.csv: 3 new, 0 updated\n"


def test_load_instruments_names_a_missing_file(tmp_path):
    with pytest.raises(CommandError, match="not found"):
        run("load_instruments", str(tmp_path / "nowhere.csv"))


# --- kill_switch -------------------------------------------------------------------------------


def test_kill_switch_halt_reduce_and_resume_globally():
    out, _ = run("kill_switch", "halt", "--reason", "exchange glitch", "--actor", "asha")
    assert out == "kill switch HALTED for all strategies\n"
    assert kill_switch_state() == KillSwitchState.HALTED

    run("kill_switch", "reduce", "--reason", "glitch over, unwinding")
    assert kill_switch_state() == KillSwitchState.REDUCING

    run("kill_switch", "resume", "--reason", "book is flat")
    assert kill_switch_state() == KillSwitchState.ACTIVE
    latest = KillSwitchEvent.objects.first()
    assert (latest.actor, latest.actor_type, latest.reason) == (
        "operator",
        ActorType.PERSON,
        "book is flat",
    )


def test_kill_switch_for_one_strategy():
    momentum = StrategyFactory(name="Momentum")
    other = StrategyFactory(name="Mean reversion")

    out, _ = run("kill_switch", "halt", "--strategy", "Momentum", "--reason", "bad fills")

    assert out == "kill switch HALTED for Momentum\n"
    assert kill_switch_state(strategy=momentum) == KillSwitchState.HALTED
    assert kill_switch_state(strategy=other) == KillSwitchState.ACTIVE
    assert kill_switch_state() == KillSwitchState.ACTIVE


def test_kill_switch_status_shows_every_switch_and_the_latest_changes():
    StrategyFactory(name="Momentum")
    StrategyFactory(name="Mean reversion")
    run(
        "kill_switch", "reduce", "--strategy", "Momentum", "--reason", "slippage", "--actor", "ravi"
    )

    out, _ = run("kill_switch", "status")

    lines = out.splitlines()
    assert lines[0] == "global: ACTIVE"
    # Every strategy by name (the data migration's "Manual Trading" too), then the changes.
    assert {"Mean reversion: ACTIVE", "Momentum: REDUCING"} < set(lines[1:-1])
    assert lines[-1].endswith(" REDUCING Momentum by ravi: slippage")


def test_kill_switch_status_of_one_strategy():
    StrategyFactory(name="Momentum")
    StrategyFactory(name="Mean reversion")
    run("kill_switch", "halt", "--reason", "all stop")

    out, _ = run("kill_switch", "status", "--strategy", "Momentum")

    assert out.splitlines()[:2] == ["global: HALTED", "Momentum: HALTED"]


@pytest.mark.parametrize("action", ["halt", "reduce", "resume"])
def test_kill_switch_changes_need_a_reason(action):
    with pytest.raises(CommandError, match=r"^--reason: required"):
        run("kill_switch", action)
    with pytest.raises(CommandError, match="reason missing"):
        run("kill_switch", action, "--reason", "  ")

    assert not KillSwitchEvent.objects.exists()


def test_kill_switch_names_an_unknown_strategy():
    with pytest.raises(CommandError, match=r"^--strategy 'Nope': no such strategy"):
        run("kill_switch", "halt", "--strategy", "Nope", "--reason", "x")


def test_kill_switch_cannot_resume_in_a_rules_name():
    run("kill_switch", "halt", "--reason", "loss")

    with pytest.raises(CommandError, match="'rule:drawdown-from-peak'"):
        run("kill_switch", "resume", "--reason", "ok", "--actor", "rule:drawdown-from-peak")

    assert kill_switch_state() == KillSwitchState.HALTED


# --- square_off_mis ----------------------------------------------------------------------------


def test_square_off_mis_dry_run_prints_the_plan_and_changes_nothing(strategy):
    pending = OrderFactory(strategy=strategy, status=OrderStatus.PENDING)
    position = PositionFactory(strategy=strategy, symbol="RELIANCE", quantity=10)
    position.refresh_from_db()

    out, _ = run("square_off_mis", "--dry-run")

    assert out.splitlines() == [
        "would cancel 1 MIS orders:",
        f"  {pending}",
        "would close 1 MIS positions:",
        f"  {position}",
    ]
    pending.refresh_from_db()
    assert pending.status == OrderStatus.PENDING
    assert Order.objects.count() == 1


def test_square_off_mis_cancels_and_closes_once(strategy):
    OrderFactory(strategy=strategy, status=OrderStatus.PENDING)
    OrderFactory(strategy=strategy, status=OrderStatus.OPEN, broker_order_id="B-1")
    PositionFactory(strategy=strategy, symbol="RELIANCE", quantity=10)

    out, _ = run("square_off_mis")
    placed = set(Order.objects.values_list("pk", flat=True))
    again, _ = run("square_off_mis")

    assert out.splitlines()[0] == "cancelling 2 MIS orders:"
    assert "closing 1 MIS positions:" in out.splitlines()
    assert "MIS square-off exit placed" in out
    assert set(Order.objects.values_list("status", flat=True)) == {
        OrderStatus.CANCELLED,
        OrderStatus.CANCEL_PENDING,
        OrderStatus.PENDING,  # the closing order
    }
    closing = Order.objects.get(closes_position__isnull=False)
    assert (closing.side, closing.quantity, closing.metadata["actor"]) == (
        "SELL",
        10,
        "operator:square_off_mis",
    )
    assert again.splitlines() == ["cancelling 0 MIS orders:", "closing 0 MIS positions:"]
    assert set(Order.objects.values_list("pk", flat=True)) == placed
    closing.refresh_from_db()
    assert closing.status == OrderStatus.PENDING


# --- market_holidays ---------------------------------------------------------------------------


def test_market_holidays_add_list_and_remove():
    out, _ = run("market_holidays", "add", "--date", "2026-02-17", "--description", "Elections")
    assert out == "2026-02-17 added: Elections\n"
    assert MarketHoliday.objects.get().created_by == "command"

    listed, _ = run("market_holidays", "list")
    assert listed == "2026-02-17  Elections  (staff)\n"
    with_calendar, _ = run("market_holidays", "list", "--year", "2026")
    assert "2026-01-15  (XNSE calendar)" in with_calendar.splitlines()

    out, _ = run("market_holidays", "remove", "--date", "2026-02-17")
    assert out == "2026-02-17 removed\n"
    out, _ = run("market_holidays", "remove", "--date", "2026-02-17")
    assert out == "2026-02-17 was not listed\n"
    assert not MarketHoliday.objects.exists()


def test_an_added_holiday_closes_the_market(strategy, enforce_hours, clock):
    clock("2026-02-17 11:00")
    assert validate_order(order_request(strategy), strategy=strategy) == []

    run("market_holidays", "add", "--date", "2026-02-17", "--description", "Late closure")

    assert calendar.is_trading_day(date(2026, 2, 17)) is False
    (violation,) = validate_order(order_request(strategy), strategy=strategy)
    assert violation.code == "market_closed"

    run("market_holidays", "remove", "--date", "2026-02-17")
    assert validate_order(order_request(strategy), strategy=strategy) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["add", "--date", "2026-02-17"], "^--description: required"),
        (["add", "--description", "x"], r"^--date: required \(YYYY-MM-DD\)"),
        (["remove", "--date", "17/02/2026"], "^--date '17/02/2026': must be YYYY-MM-DD"),
    ],
)
def test_market_holidays_refuses_incomplete_requests(args, message):
    with pytest.raises(CommandError, match=message):
        run("market_holidays", *args)
