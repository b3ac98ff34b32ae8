"""The contradiction rules (orders.report_checks), alone and under reconciliation's auto-fix."""

from __future__ import annotations

from decimal import Decimal

import pytest

from orders.enums import OrderStatus, StrategyMode
from orders.report_checks import ReportBounds, report_contradictions
from orders.tests.factories import OrderFactory, StrategyFactory
from orders.tests.fake_kite import BROKER_ORDER_ID, TAG
from positions.models import IssueType, ReconciliationIssue, Severity
from positions.reconciliation import reconcile_positions

BUY_700 = ReportBounds(
    symbol="RELIANCE",
    exchange="NSE",
    side="BUY",
    max_quantity=10,
    limit_price=Decimal("700.00"),
    reference_price=Decimal("700.00"),
)
SELL_700 = ReportBounds(**{**BUY_700.__dict__, "side": "SELL"})
MARKET_BUY = ReportBounds(**{**BUY_700.__dict__, "limit_price": None})


def check(bounds=BUY_700, **report) -> list[str]:
    return report_contradictions(bounds, **report)


def test_a_fill_within_the_order_is_credible():
    assert check(filled_quantity=4, average_price=Decimal("699.95")) == []
    assert check(filled_quantity=10, average_price=Decimal("700.00")) == []
    assert check(SELL_700, filled_quantity=10, average_price=Decimal("700.05")) == []
    assert check(symbol="RELIANCE", exchange="NSE", side="BUY") == []


def test_nothing_filled_needs_no_price():
    assert check(filled_quantity=0, average_price=None) == []


@pytest.mark.parametrize(
    ("bounds", "report", "message"),
    [
        (
            BUY_700,
            {"filled_quantity": 10, "average_price": Decimal(5000)},
            "average price 5000: above the BUY order's limit price 700.00",
        ),
        (
            SELL_700,
            {"filled_quantity": 10, "average_price": Decimal("699.95")},
            "average price 699.95: below the SELL order's limit price 700.00",
        ),
        (
            BUY_700,
            {"filled_quantity": 11, "average_price": Decimal(700)},
            "filled quantity 11: more than the order's 10",
        ),
        (
            BUY_700,
            {"fills": [(6, Decimal(700)), (6, Decimal(699))]},
            "filled quantity 12: more than the order's 10",
        ),
        (
            BUY_700,
            {"filled_quantity": 4, "average_price": None},
            "average price None: missing for a filled quantity",
        ),
        (
            BUY_700,
            {"filled_quantity": 4, "average_price": Decimal(0)},
            "average price 0: must be a finite number above 0",
        ),
        (
            BUY_700,
            {"filled_quantity": 4, "average_price": Decimal("-1")},
            "average price -1: must be a finite number above 0",
        ),
        (
            BUY_700,
            {"filled_quantity": 4, "average_price": Decimal("NaN")},
            "average price NaN: must be a finite number above 0",
        ),
        (
            BUY_700,
            {"fills": [(4, Decimal("Infinity"))]},
            "fill price Infinity: must be a finite number above 0",
        ),
        (
            MARKET_BUY,
            {"filled_quantity": 4, "average_price": Decimal("7000.01")},
            "average price 7000.01: absurd: outside 70.00..7000.00 (1/10 to 10x the reference "
            "price 700.00)",
        ),
        (
            BUY_700,
            {"filled_quantity": 4, "average_price": Decimal("69.99")},
            "average price 69.99: absurd: outside 70.00..7000.00 (1/10 to 10x the reference "
            "price 700.00)",
        ),
        (
            BUY_700,
            {"symbol": "SBIN", "exchange": "NSE"},
            "instrument NSE:SBIN: the order is for NSE:RELIANCE",
        ),
        (
            BUY_700,
            {"symbol": "RELIANCE", "exchange": "BSE"},
            "instrument BSE:RELIANCE: the order is for NSE:RELIANCE",
        ),
        (BUY_700, {"side": "SELL"}, "side SELL: the order is a BUY"),
    ],
)
def test_a_report_contradicting_the_order_names_the_figures(bounds, report, message):
    assert check(bounds, **report) == [message]


def test_without_any_reference_price_only_the_other_rules_apply():
    unknown = ReportBounds(**{**MARKET_BUY.__dict__, "reference_price": None})

    assert check(unknown, filled_quantity=4, average_price=Decimal("123456.78")) == []


@pytest.mark.django_db
def test_reconciliations_auto_fix_refuses_a_contradicting_order_book(kite_server):
    """Kite's order book says COMPLETE 10 @ 2450.47 for our BUY LIMIT 700: the auto-fix
    applies nothing, and the contradiction is a CRITICAL issue of its own."""
    order = OrderFactory(
        strategy=StrategyFactory(mode=StrategyMode.LIVE),
        broker_tag=TAG,
        broker_order_id=BROKER_ORDER_ID,
        status=OrderStatus.OPEN,
        price=Decimal("700.00"),
    )
    kite_server.reply("GET", "/orders", "orders")
    kite_server.reply("GET", "/portfolio/positions", "positions")
    kite_server.reply("GET", "/portfolio/holdings", {"status": "success", "data": []})

    reconcile_positions(auto_fix=True)

    order.refresh_from_db()
    # (Its position differences halt the strategy, which asks for the order's cancel.)
    assert (order.filled_quantity, order.trades.count()) == (0, 0)
    contradiction = ReconciliationIssue.objects.get(issue_type=IssueType.CONTRADICTORY_REPORT)
    assert contradiction.severity == Severity.CRITICAL
    assert contradiction.order_id == order.pk
    assert contradiction.details["contradictions"] == [
        "average price 2450.470000: above the BUY order's limit price 700.00"
    ]
    missing = ReconciliationIssue.objects.get(issue_type=IssueType.MISSING_FILL)
    assert missing.resolved is False
    assert missing.details["auto_fix"]["fixed"] is False
