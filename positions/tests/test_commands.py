"""The operators' commands: reconcile, compute_daily_stats and expire_orders, as called from a
shell (call_command for the output, run_from_argv for the exit status)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command, load_command_class
from django.utils import timezone

from orders.enums import OrderStatus
from orders.models import PaperOrder
from orders.tests.factories import StrategyFactory
from positions.models import IssueType, ReconciliationIssue
from positions.services import market_prices_update
from positions.tests.test_reconciliation import (
    exchange_trade_unknown_to_us,
    place,
    resting,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def last_price():
    market_prices_update([("SBIN", "NSE", Decimal("812.35"))])


@pytest.fixture
def strategy():
    return StrategyFactory(name="Alpha")


def run(command: str, *args) -> str:
    out = StringIO()
    call_command(command, *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def exit_status(command: str, *args, capsys) -> tuple[int, str]:
    """What a shell sees: the exit status and standard error of ``manage.py command args``."""
    app = "positions" if command != "expire_orders" else "orders"
    with pytest.raises(SystemExit) as exited:
        load_command_class(app, command).run_from_argv(["manage.py", command, *args])
    return exited.value.code, capsys.readouterr().err


# --- reconcile ---------------------------------------------------------------------------------


def test_reconcile_when_the_books_agree(strategy):
    place(strategy)
    resting(strategy)

    output = run("reconcile")

    assert output == (
        "1 positions, 0 holdings and 1 orders compared: 0 differences (0 new, 0 still open, "
        "0 fixed), 0 earlier issues gone\n"
    )


def test_reconcile_lists_the_differences_and_records_them(strategy):
    stray = exchange_trade_unknown_to_us(strategy, quantity=5)

    output = run("reconcile")

    assert output.splitlines() == [
        f"WARNING  UNKNOWN_BROKER_ORDER   broker order {stray.paper_order.broker_order_id} "
        "(BUY SBIN, COMPLETE, 5 filled): no order of ours",
        "WARNING  UNKNOWN_POSITION       SBIN MIS: held at the broker, unknown here "
        "(ours 0, broker 5)",
        "1 positions, 0 holdings and 0 orders compared: 2 differences (2 new, 0 still open, "
        "0 fixed), 0 earlier issues gone",
    ]
    assert ReconciliationIssue.objects.filter(resolved=False).count() == 2


def test_reconcile_dry_run_records_nothing(strategy):
    exchange_trade_unknown_to_us(strategy, quantity=5)

    output = run("reconcile", "--dry-run")

    assert output.splitlines()[-1].startswith(
        "dry run: 1 positions, 0 holdings and 0 orders compared: "
    )
    assert "UNKNOWN_POSITION" in output
    assert not ReconciliationIssue.objects.exists()


def test_reconcile_fixes_unless_told_not_to(strategy):
    order = resting(strategy)
    PaperOrder.objects.filter(tag=order.broker_tag).update(status="CANCELLED")

    assert "0 fixed" in run("reconcile", "--no-auto-fix")
    order.refresh_from_db()
    assert order.status == OrderStatus.OPEN

    assert "1 fixed" in run("reconcile")
    order.refresh_from_db()
    assert order.status == OrderStatus.CANCELLED
    issue = ReconciliationIssue.objects.get(issue_type=IssueType.ORDER_STATUS_MISMATCH)
    assert issue.auto_fixed and issue.occurrences == 2


def test_reconcile_one_strategy(strategy):
    other = StrategyFactory(name="Other")
    exchange_trade_unknown_to_us(other, quantity=2, symbol="INFY")  # not Alpha's business
    place(strategy)
    resting(other)

    output = run("reconcile", "--strategy", "Alpha")

    assert output.startswith("1 positions, 0 holdings and 0 orders compared: 0 differences")


def test_reconcile_refuses_an_unknown_strategy():
    with pytest.raises(CommandError, match=r"^--strategy 'Nobody': no such strategy$"):
        run("reconcile", "--strategy", "Nobody")


def test_reconcile_exit_status_of_a_bad_strategy(capsys):
    status, error = exit_status("reconcile", "--strategy", "Nobody", capsys=capsys)

    assert status == 1
    assert error == "CommandError: --strategy 'Nobody': no such strategy\n"


# --- compute_daily_stats (its figures are in test_statistics.py) ------------------------------


def test_compute_daily_stats_exit_status_of_a_bad_date(capsys):
    status, error = exit_status("compute_daily_stats", "--date", "2026-02-30", capsys=capsys)

    assert status == 1
    assert error == (
        "CommandError: --date '2026-02-30': not a date (YYYY-MM-DD): "
        "day is out of range for month\n"
    )


def test_compute_daily_stats_today_by_default():
    output = run("compute_daily_stats")

    today = timezone.localdate()
    assert output.splitlines()[0] == f"0 rows computed for {today}..{today}"


def test_compute_daily_stats_reports_progress_on_long_ranges():
    err = StringIO()
    call_command(
        "compute_daily_stats",
        "--from",
        "2026-01-01",
        "--to",
        "2026-03-31",
        stdout=StringIO(),
        stderr=err,
    )

    assert err.getvalue().splitlines() == ["  31/90 days...", "  62/90 days...", "  90/90 days..."]


# --- expire_orders ---------------------------------------------------------------------------


def test_expire_orders_after_the_close(strategy):
    order = resting(strategy)
    tomorrow = timezone.localtime() + timedelta(days=1)

    output = run("expire_orders", "--at", f"{tomorrow:%Y-%m-%d}T16:00")

    assert output == "1 DAY orders expired\n"
    order.refresh_from_db()
    assert order.status == OrderStatus.EXPIRED
    assert run("expire_orders", "--at", f"{tomorrow:%Y-%m-%d}T16:05") == "0 DAY orders expired\n"


def test_expire_orders_takes_a_time_with_its_offset(strategy):
    resting(strategy)
    tomorrow = timezone.localtime() + timedelta(days=1)

    # 10:35 UTC is 16:05 IST: after the close.
    assert run("expire_orders", "--at", f"{tomorrow:%Y-%m-%d}T10:35+00:00") == (
        "1 DAY orders expired\n"
    )


def test_expire_orders_refuses_a_bad_time(capsys):
    status, error = exit_status("expire_orders", "--at", "tomorrow", capsys=capsys)

    assert status == 1
    assert error == "CommandError: --at 'tomorrow': must be YYYY-MM-DDTHH:MM\n"
