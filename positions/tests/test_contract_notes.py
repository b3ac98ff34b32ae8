"""Our charges of the day's LIVE orders against Kite's contract note (the fake Kite serves the
documented /charges/orders JSON)."""

from __future__ import annotations

from datetime import date, datetime, time
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command

from orders.enums import OrderSide, OrderStatus, StrategyMode
from orders.services.fills import fill_apply
from orders.tests.conftest import kite_account_create
from orders.tests.factories import OrderFactory, StrategyFactory
from orders.tests.fake_kite import FakeKiteServer
from positions.contract_notes import contract_notes_check, kite_rounded
from positions.models import IssueType, ReconciliationIssue, Severity
from risk.calendar import IST

CONTRACT_NOTE = ("POST", "/charges/orders")
DAY = date(2026, 11, 30)


@pytest.fixture
def kite_account(db):
    return kite_account_create()


@pytest.fixture
def kite_server(settings, kite_account):
    """As the orders tests': a fake Kite and a LIVE desk's account logged in to it."""
    server = FakeKiteServer().start()
    settings.KITE_API_ROOT = server.root
    yield server
    server.stop()
    assert not server.unexpected, f"requests Kite was not expected to get: {server.unexpected}"


def filled(strategy, side: str, price: str, broker_order_id: str, day: date = DAY):
    """An order of 10 RELIANCE (MIS, NSE) filled at ``price`` through the fill service, so its
    trade carries our calculator's charges."""
    order = OrderFactory(
        strategy=strategy,
        side=side,
        price=Decimal(price),
        status=OrderStatus.OPEN,
        broker_order_id=broker_order_id,
    )
    fill_apply(
        order,
        trade_id=f"T{broker_order_id}",
        quantity=10,
        price=Decimal(price),
        executed_at=datetime.combine(day, time(10, 0), tzinfo=IST),
    )
    order.refresh_from_db()
    return order


@pytest.fixture
def day_orders(db):
    live = StrategyFactory(mode=StrategyMode.LIVE)
    bought = filled(live, OrderSide.BUY, "2450.00", "261130000000001")
    sold = filled(live, OrderSide.SELL, "2460.00", "261130000000002")
    return bought, sold


def test_kites_figures_are_rounded_by_our_rule_before_comparing():
    assert kite_rounded("exchange_charges", Decimal("0.01876")) == Decimal("0.02")
    assert kite_rounded("stamp_duty", Decimal("0.735")) == Decimal("0.74")
    assert kite_rounded("stt", Decimal("6.15")) == Decimal("6.00")
    assert kite_rounded("stt", Decimal("0.5")) == Decimal("1.00")


def test_a_matching_order_gives_no_issue_and_one_off_by_more_than_the_tolerance_does(
    kite_server, day_orders
):
    bought, sold = day_orders
    kite_server.reply(*CONTRACT_NOTE, "contract_note_orders")

    report = contract_notes_check(day=DAY)

    assert report.orders_checked == 2
    assert not bought.issues.exists()  # Kite's figures, rounded by our rule, are ours
    # The SELL's exchange charge: ours 24,600 x 0.00307% = 0.76, Kite's 0.7995 = 0.80.
    # Its GST (Kite 1.476738 = 1.48, ours 1.47) is within the tolerance of 0.01.
    issue = ReconciliationIssue.objects.get()
    assert issue.issue_type == IssueType.CHARGES_MISMATCH
    assert issue.severity == Severity.WARNING
    assert issue.order == sold
    assert issue.details["component"] == "exchange_charges"
    assert (issue.details["ours"], issue.details["kite"]) == ("0.76", "0.80")
    assert issue.details["kite_unrounded"] == "0.7995000000"
    assert (issue.internal_price, issue.broker_price) == (Decimal("0.76"), Decimal("0.80"))
    assert "exchange transaction charges ours ₹0.76, Kite's contract note ₹0.80" in (
        issue.description
    )
    assert "rounded by our rule" in issue.description
    [request] = kite_server.sent
    assert request.json[0] == {
        "order_id": "261130000000001",
        "exchange": "NSE",
        "tradingsymbol": "RELIANCE",
        "transaction_type": "BUY",
        "variety": "regular",
        "product": "MIS",
        "order_type": "LIMIT",
        "quantity": 10,
        "average_price": 2450.0,
    }


def test_a_wider_tolerance_lets_the_difference_pass(kite_server, day_orders, settings):
    settings.OMS_CHARGES_TOLERANCE = Decimal("0.05")
    kite_server.reply(*CONTRACT_NOTE, "contract_note_orders")

    report = contract_notes_check(day=DAY)

    assert report.mismatches == []
    assert not ReconciliationIssue.objects.exists()


def test_running_again_updates_the_open_issue(kite_server, day_orders):
    kite_server.reply(*CONTRACT_NOTE, "contract_note_orders")

    contract_notes_check(day=DAY)
    contract_notes_check(day=DAY)

    issue = ReconciliationIssue.objects.get()
    assert issue.occurrences == 2


def test_paper_orders_and_other_days_are_not_asked_about(kite_server, db):
    filled(StrategyFactory(mode=StrategyMode.PAPER), OrderSide.BUY, "2450.00", "P1")
    filled(
        StrategyFactory(mode=StrategyMode.LIVE), OrderSide.BUY, "2450.00", "L1", DAY.replace(day=27)
    )

    report = contract_notes_check(day=DAY)

    assert report.orders_checked == 0
    assert kite_server.sent == []


def test_a_broker_error_is_reported_and_records_nothing(kite_server, day_orders):
    kite_server.reply(*CONTRACT_NOTE, "error_network", http_status=503)

    report = contract_notes_check(day=DAY)

    assert report.failed_strategies
    assert report.orders_checked == 0
    assert not ReconciliationIssue.objects.exists()


def test_the_command_checks_the_given_day(kite_server, day_orders, capsys):
    kite_server.reply(*CONTRACT_NOTE, "contract_note_orders")

    call_command("contract_note_check", "--date", DAY.isoformat())

    out = capsys.readouterr().out
    assert "exchange transaction charges ours ₹0.76, Kite ₹0.80" in out
    assert "2 orders checked against Kite's contract note, 1 charge differences" in out


def test_the_command_refuses_a_bad_date(db):
    with pytest.raises(CommandError, match="--date '30-11-2026': must be YYYY-MM-DD"):
        call_command("contract_note_check", "--date", "30-11-2026")
