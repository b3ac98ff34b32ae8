"""Reconciliation that sees everything, on the paper broker: orders in both directions, CNC
holdings carried from earlier days, and issues kept one per difference across runs.

Orders go through order_place and order_submit; the paper exchange's own tables (paper_orders,
paper_trades) are then changed behind the OMS's back, as a broker-side event it missed would.
"""

from __future__ import annotations

import itertools
from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from orders.brokers.paper import PaperBroker
from orders.domain import OrderRequest
from orders.enums import OrderStatus
from orders.models import Order, PaperOrder, PaperTrade, Strategy
from orders.services import order_cancel, order_place, order_submit
from orders.services.cancellation import order_cancel_at_broker
from orders.tests.factories import StrategyFactory
from positions.models import IssueType, Position, ReconciliationIssue, Severity
from positions.reconciliation import BOOK_CHECKS, reconcile_positions
from positions.services import market_prices_update

pytestmark = pytest.mark.django_db

SYMBOL = "SBIN"
LAST = Decimal("812.35")
_numbers = itertools.count(1)


@pytest.fixture(autouse=True)
def last_price():
    market_prices_update([(SYMBOL, "NSE", LAST)])


@pytest.fixture
def strategy():
    return StrategyFactory(name="Alpha")


def place(strategy, side="BUY", quantity=10, **fields) -> Order:
    request = {
        "strategy_id": strategy.pk,
        "client_order_id": f"all-{next(_numbers)}",
        "symbol": SYMBOL,
        "side": side,
        "quantity": quantity,
        "order_type": "MARKET",
        "product": "MIS",
        **fields,
    }
    result = order_place(OrderRequest(**request), actor="tester")
    assert result.accepted, result
    order_submit(result.order_id)
    return Order.objects.get(pk=result.order_id)


def resting(strategy, quantity=10) -> Order:
    order = place(strategy, quantity=quantity, order_type="LIMIT", price="800.00")
    assert order.status == OrderStatus.OPEN
    return order


def stray_order(strategy, *, status="OPEN", filled=0, quantity=5) -> PaperOrder:
    """An order at the paper exchange that the OMS never placed (and its fill, if any)."""
    number = next(_numbers)
    paper = PaperOrder.objects.create(
        strategy=strategy,
        tag=f"ELSEWHERE{number}",
        broker_order_id=f"PBX{number:09d}",
        symbol=SYMBOL,
        exchange="NSE",
        product="MIS",
        side="BUY",
        order_type="LIMIT",
        validity="DAY",
        quantity=quantity,
        price=Decimal("800.00"),
        status=status,
        filled_quantity=filled,
        average_price=Decimal("800.00") if filled else None,
    )
    if filled:
        PaperTrade.objects.create(
            paper_order=paper,
            trade_id=f"{paper.broker_order_id}-T1",
            quantity=filled,
            price=Decimal("800.00"),
            executed_at=timezone.now(),
        )
    return paper


def issues(kind=None):
    rows = ReconciliationIssue.objects.filter(resolved=False).order_by("id")
    return list(rows.filter(issue_type=kind) if kind else rows)


def test_the_run_is_a_list_of_checks():
    assert [check.__name__ for check in BOOK_CHECKS] == [
        "orders_check",
        "cancels_check",
        "positions_check",
        "gtts_check",
    ]


# --- our working orders the broker does not have ----------------------------------------------


def test_a_working_order_missing_at_the_broker_is_an_issue_only_after_the_grace(strategy, settings):
    order = resting(strategy)
    PaperOrder.objects.filter(tag=order.broker_tag).delete()  # the exchange lost it

    settings.OMS_RECONCILE_ORDER_GRACE_SECONDS = 60
    assert reconcile_positions().findings == []  # just sent: maybe not in the book yet

    settings.OMS_RECONCILE_ORDER_GRACE_SECONDS = 0
    report = reconcile_positions()

    [issue] = issues()
    assert (issue.issue_type, issue.severity) == (
        IssueType.ORDER_MISSING_AT_BROKER,
        Severity.WARNING,  # paper; CRITICAL on LIVE (test_reconciliation_kite)
    )
    assert (issue.order, issue.strategy) == (order, strategy)
    assert (issue.internal_quantity, issue.broker_quantity) == (0, None)
    assert issue.fingerprint == f"GONE:paper:order:{order.pk}"
    assert issue.details["broker_order_id"] == order.broker_order_id
    assert issue.safe_fix == ""  # whether it is dead is a person's call
    assert report.auto_fixed == 0
    order.refresh_from_db()
    assert order.status == OrderStatus.OPEN  # nothing changed by itself

    reconcile_positions()  # the same difference again: the same issue

    [again] = issues()
    assert (again.pk, again.occurrences) == (issue.pk, 2)


# --- the broker's orders we do not know -------------------------------------------------------


def test_broker_orders_unknown_to_us_by_what_they_may_still_do(strategy):
    working = stray_order(strategy, status="OPEN")
    ended = stray_order(strategy, status="CANCELLED")

    reconcile_positions()

    found = {i.details["broker_order_id"]: i for i in issues(IssueType.UNKNOWN_BROKER_ORDER)}
    assert set(found) == {working.broker_order_id, ended.broker_order_id}
    live_one, dead_one = found[working.broker_order_id], found[ended.broker_order_id]
    assert live_one.severity == Severity.WARNING  # it can still fill (CRITICAL on LIVE)
    assert dead_one.severity == Severity.INFO  # ended with nothing filled
    assert (live_one.symbol, live_one.exchange, live_one.strategy) == (SYMBOL, "NSE", None)
    assert live_one.fingerprint == f"ORDER:paper:{working.broker_order_id}"
    assert live_one.safe_fix == ""
    assert live_one.description == (
        f"broker order {working.broker_order_id} (BUY {SYMBOL}, OPEN, 0 filled): no order of ours"
    )
    assert len(issues()) == 2  # nothing filled: no position difference


def test_an_order_in_doubt_that_the_broker_holds_is_adopted(strategy, settings):
    """The answer to our placement was lost (timeout after sending): the order is UNKNOWN
    here with no broker order id, and the exchange filled it. Reconciliation finds it under
    our tag and applies the broker's report: the order and the position follow."""
    settings.OMS_RECONCILE_ORDER_GRACE_SECONDS = 0
    strategy.config = {"paper": {"fault": "timeout_after_send"}}
    strategy.save()
    order = place(strategy)
    assert (order.status, order.broker_order_id) == (OrderStatus.UNKNOWN, None)
    Strategy.objects.filter(pk=strategy.pk).update(config={})

    report = reconcile_positions()

    [issue] = ReconciliationIssue.objects.filter(issue_type=IssueType.UNKNOWN_BROKER_ORDER)
    assert issue.order == order and issue.strategy == strategy
    assert issue.safe_fix == f"adopt the broker's order as order {order.pk} (apply its report)"
    assert issue.resolved and issue.auto_fixed
    order.refresh_from_db()
    assert order.broker_order_id == PaperOrder.objects.get(tag=order.broker_tag).broker_order_id
    assert (order.status, order.filled_quantity) == (OrderStatus.FILLED, 10)
    assert Position.objects.get(strategy=strategy).quantity == 10
    assert [f.issue_type for f in report.findings] == [IssueType.UNKNOWN_BROKER_ORDER]
    assert reconcile_positions().findings == []


# --- fills and statuses -----------------------------------------------------------------------


def test_more_filled_here_than_at_the_broker(strategy):
    order = resting(strategy)
    paper = PaperOrder.objects.get(tag=order.broker_tag)
    PaperTrade.objects.create(
        paper_order=paper,
        trade_id=f"{paper.broker_order_id}-T1",
        quantity=6,
        price=Decimal("800.00"),
        executed_at=timezone.now(),
    )
    PaperOrder.objects.filter(pk=paper.pk).update(
        filled_quantity=6, average_price=Decimal("800.00")
    )
    reconcile_positions()  # the missed fill is applied: 6 here, 6 there
    order.refresh_from_db()
    assert order.filled_quantity == 6
    # The exchange now says 2 (its trades still make the position of 6: no position issue).
    PaperOrder.objects.filter(pk=paper.pk).update(filled_quantity=2)

    report = reconcile_positions()

    [finding] = report.findings
    assert (finding.issue_type, finding.severity) == (IssueType.EXTRA_FILLS, Severity.WARNING)
    [issue] = issues()
    assert (issue.internal_quantity, issue.broker_quantity) == (6, 2)
    assert issue.description == f"order {order.pk}: 6 filled here, 2 at the broker"
    assert issue.fingerprint == f"FILLS:paper:order:{order.pk}"
    assert issue.safe_fix == "" and not issue.auto_fixed
    order.refresh_from_db()
    assert order.filled_quantity == 6  # fills are never taken back by a machine


def test_an_order_we_cancelled_still_working_at_the_broker(strategy):
    order = resting(strategy)
    assert order_cancel(order.pk, actor="tester").status == OrderStatus.CANCEL_PENDING
    order_cancel_at_broker(order.pk)
    order.refresh_from_db()
    assert order.status == OrderStatus.CANCELLED
    PaperOrder.objects.filter(tag=order.broker_tag).update(status="OPEN")

    reconcile_positions()

    [issue] = issues()
    assert (issue.issue_type, issue.severity) == (
        IssueType.ORDER_STATUS_MISMATCH,
        Severity.WARNING,
    )
    assert issue.description == (
        f"order {order.pk}: CANCELLED here, still working at the broker (OPEN)"
    )
    assert issue.safe_fix == "" and not issue.resolved  # cancel it there: a person's call


def test_the_broker_ending_an_order_offers_and_applies_its_safe_fix(strategy):
    order = resting(strategy)
    PaperOrder.objects.filter(tag=order.broker_tag).update(status="CANCELLED")

    reconcile_positions()

    [issue] = ReconciliationIssue.objects.all()
    assert issue.safe_fix == "mark the order CANCELLED as the broker says"
    assert issue.auto_fixed


# --- CNC holdings from earlier days -------------------------------------------------------------


def _carried_from_yesterday(order: Order) -> None:
    """Move a CNC order's fills (ours and the exchange's) and its position to yesterday."""
    yesterday = timezone.now() - timedelta(days=1)
    PaperTrade.objects.filter(paper_order__tag=order.broker_tag).update(executed_at=yesterday)
    Position.objects.filter(strategy=order.strategy, symbol=order.symbol).update(
        opened_at=yesterday
    )


def test_a_cnc_position_held_overnight_is_compared_with_the_holdings(strategy):
    bought = place(strategy, quantity=10, product="CNC")
    _carried_from_yesterday(bought)
    broker = PaperBroker(strategy)
    assert broker.positions() == []  # not a position any more: a holding
    [holding] = broker.holdings()
    assert (holding.symbol, holding.quantity, holding.average_price) == (SYMBOL, 10, LAST)

    report = reconcile_positions()

    assert report.findings == []
    assert report.holdings_compared == 1

    # Today 4 of them are sold: holdings 10 + today's -4 = the 6 we hold.
    place(strategy, side="SELL", quantity=4, product="CNC")
    assert reconcile_positions().findings == []

    # A delivery the OMS never heard of lands in the holdings.
    stray = stray_order(strategy, status="COMPLETE", filled=3, quantity=3)
    PaperOrder.objects.filter(pk=stray.pk).update(product="CNC")
    PaperTrade.objects.filter(paper_order=stray).update(
        executed_at=timezone.now() - timedelta(days=2)
    )

    reconcile_positions()

    [issue] = issues(IssueType.QUANTITY_MISMATCH)
    assert issue.severity == Severity.WARNING
    assert (issue.product, issue.internal_quantity, issue.broker_quantity) == ("CNC", 6, 9)
    assert issue.details["holdings"] == {"holdings": 13, "t1": 0, "day_net": -4}
    assert issue.broker_price is None  # a holding's average is earlier days': not compared
    assert issue.strategy == strategy


def test_holdings_never_held_through_the_oms_are_shown_not_alarming(strategy):
    stray = stray_order(strategy, status="COMPLETE", filled=3, quantity=3)
    PaperOrder.objects.filter(pk=stray.pk).update(product="CNC")
    PaperTrade.objects.filter(paper_order=stray).update(
        executed_at=timezone.now() - timedelta(days=30)
    )

    reconcile_positions()

    [issue] = issues(IssueType.UNKNOWN_POSITION)
    assert issue.severity == Severity.INFO
    assert issue.description == (
        f"{SYMBOL} CNC: in the broker's holdings, never held through the OMS (ours 0, broker 3)"
    )


# --- prices: compared only where they mean the same -------------------------------------------


def test_an_average_that_means_something_else_is_no_issue(strategy, settings):
    """Bought 10 @ 812.35, sold 4, bought 4 @ 830: our weighted-average cost is 819.41, the
    broker's average of the day's buys 817.39. Both right; they are not compared."""
    settings.OMS_RECONCILE_PRICE_TOLERANCE = 0.1
    place(strategy, quantity=10)
    place(strategy, side="SELL", quantity=4)
    market_prices_update([(SYMBOL, "NSE", Decimal("830.00"))])
    place(strategy, quantity=4)
    [broker_position] = PaperBroker(strategy).positions()
    position = Position.objects.get(strategy=strategy, closed_at__isnull=True)
    assert (position.quantity, broker_position.quantity) == (10, 10)
    assert position.average_price != broker_position.average_price

    assert reconcile_positions().findings == []

    # A quantity difference is an issue all the same.
    stray_order(strategy, status="COMPLETE", filled=1, quantity=1)
    report = reconcile_positions()
    assert IssueType.QUANTITY_MISMATCH in {f.issue_type for f in report.findings}


def test_the_same_average_on_one_side_today_is_compared(strategy, settings):
    settings.OMS_RECONCILE_PRICE_TOLERANCE = 0.1
    place(strategy, quantity=10)
    Position.objects.filter(strategy=strategy).update(average_price=Decimal("820.00"))

    [finding] = reconcile_positions().findings

    assert finding.issue_type == IssueType.PRICE_MISMATCH
    assert (finding.internal_price, finding.broker_price) == (Decimal("820"), LAST)


def test_the_admin_shows_each_issues_safe_fix(strategy, admin_client):
    order = resting(strategy)
    PaperOrder.objects.filter(tag=order.broker_tag).update(status="CANCELLED")
    reconcile_positions(auto_fix=False)
    [issue] = issues()

    response = admin_client.get(
        reverse("admin:positions_reconciliationissue_change", args=[issue.pk])
    )

    assert response.status_code == 200
    page = response.content.decode()
    assert "Safe fix" in page
    assert "mark the order CANCELLED as the broker says" in page
