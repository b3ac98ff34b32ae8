"""Reconciliation on the paper broker: our book and the paper exchange's are made to disagree,
then reconcile_positions must find, record, fix or resolve exactly that.

Orders are placed through order_place and sent with order_submit (the job's body, run here
in-process); the tampering then goes around the OMS, straight into the paper exchange's own
tables (paper_orders, paper_trades) or ours, as a broker-side event the OMS missed would.
LIVE strategies get a fake Kite (positions() and orders() only) through
positions.reconciliation.broker_for.
"""

from __future__ import annotations

import itertools
from decimal import Decimal

import pytest
from django.utils import timezone

from orders.brokers import BrokerOrderUpdate, BrokerPosition, BrokerUnavailable
from orders.brokers.paper import PaperBroker
from orders.domain import OrderRequest
from orders.enums import EventKind, EventSource, OrderStatus, StrategyMode
from orders.models import Order, OrderEvent, PaperOrder, PaperTrade, Trade
from orders.services import order_place, order_submit
from orders.tests.conftest import kite_account_create
from orders.tests.factories import OrderFactory, StrategyFactory
from positions import reconciliation
from positions.models import IssueType, Position, ReconciliationIssue, Severity
from positions.reconciliation import reconcile_positions
from positions.services import market_prices_update
from positions.tests.factories import PositionFactory
from risk.models import KillSwitchEvent

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
    """An order placed and sent to the paper exchange: a MARKET order fills at once."""
    request = {
        "strategy_id": strategy.pk,
        "client_order_id": f"rec-{next(_numbers)}",
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
    """A LIMIT buy below the market: working (OPEN) at the paper exchange, nothing filled."""
    order = place(strategy, quantity=quantity, order_type="LIMIT", price="800.00")
    assert order.status == OrderStatus.OPEN
    return order


def exchange_fills(order: Order, quantity: int, price: str = "800.00") -> PaperTrade:
    """The paper exchange fills ``order`` and the report never reaches the OMS."""
    paper = PaperOrder.objects.get(tag=order.broker_tag)
    trade = PaperTrade.objects.create(
        paper_order=paper,
        trade_id=f"{paper.broker_order_id}-T{paper.trades.count() + 1}",
        quantity=quantity,
        price=Decimal(price),
        executed_at=timezone.now(),
    )
    value = (paper.average_price or 0) * paper.filled_quantity + trade.price * quantity
    paper.filled_quantity += quantity
    paper.average_price = value / paper.filled_quantity
    if paper.filled_quantity == paper.quantity:
        paper.status = "COMPLETE"
    paper.save()
    return trade


def exchange_trade_unknown_to_us(
    strategy, side="BUY", quantity=5, price="812.35", symbol=SYMBOL
) -> PaperTrade:
    """A paper order and its fill the OMS never heard of (no order of ours has its id)."""
    number = next(_numbers)
    paper = PaperOrder.objects.create(
        strategy=strategy,
        tag=f"ELSEWHERE{number}",
        broker_order_id=f"PBX{number:09d}",
        symbol=symbol,
        exchange="NSE",
        product="MIS",
        side=side,
        order_type="MARKET",
        validity="DAY",
        quantity=quantity,
        status="COMPLETE",
        filled_quantity=quantity,
        average_price=Decimal(price),
    )
    return PaperTrade.objects.create(
        paper_order=paper,
        trade_id=f"{paper.broker_order_id}-T1",
        quantity=quantity,
        price=Decimal(price),
        executed_at=timezone.now(),
    )


def position_issues():
    """Open issues about positions (not the order behind a stray trade: UNKNOWN_BROKER_ORDER)."""
    return [i for i in open_issues() if i.fingerprint.startswith(("QTY:", "PRICE:"))]


def open_issues():
    return list(ReconciliationIssue.objects.filter(resolved=False).order_by("id"))


def kinds(report) -> list[tuple[str, str]]:
    return sorted((f.issue_type, f.severity) for f in report.findings)


# --- agreement ---------------------------------------------------------------------------------


def test_books_that_agree_give_no_issue(strategy):
    place(strategy)
    place(strategy, side="SELL", quantity=4)
    resting(strategy)

    report = reconcile_positions()

    assert report.findings == []
    assert report.positions_compared == 1
    assert report.orders_compared == 1  # the working one: FILLED orders are final
    assert ReconciliationIssue.objects.count() == 0
    assert "0 differences" in report.summary()


# --- each issue type, on paper -----------------------------------------------------------------


def test_a_position_unknown_to_us(strategy):
    exchange_trade_unknown_to_us(strategy, quantity=5)

    reconcile_positions()

    [issue] = position_issues()
    assert issue.issue_type == IssueType.UNKNOWN_POSITION
    assert issue.severity == Severity.WARNING  # paper money
    assert (issue.internal_quantity, issue.broker_quantity) == (0, 5)
    assert issue.broker_price == LAST
    assert issue.strategy is None  # no strategy of ours holds it
    assert (issue.symbol, issue.exchange, issue.product) == (SYMBOL, "NSE", "MIS")
    assert issue.fingerprint == f"QTY:paper:{SYMBOL}:NSE:MIS"
    assert issue.details == {"broker": "paper", "by_strategy": {}}


def test_a_position_we_closed_behind_the_brokers_back_is_unknown_to_us(strategy):
    place(strategy)
    Position.objects.filter(strategy=strategy).update(quantity=0, closed_at=timezone.now())

    reconcile_positions()

    [issue] = open_issues()
    assert issue.issue_type == IssueType.UNKNOWN_POSITION
    assert (issue.internal_quantity, issue.broker_quantity) == (0, 10)


def test_a_quantity_mismatch_is_attributed_to_the_one_holder(strategy):
    place(strategy)
    exchange_trade_unknown_to_us(strategy, quantity=5)

    reconcile_positions()

    [issue] = position_issues()
    assert issue.issue_type == IssueType.QUANTITY_MISMATCH
    assert issue.severity == Severity.WARNING
    assert (issue.internal_quantity, issue.broker_quantity) == (10, 15)
    assert issue.strategy == strategy
    assert issue.details["by_strategy"] == {str(strategy.pk): 10}
    assert issue.description == f"{SYMBOL} MIS: quantities differ (ours 10, broker 15)"


def test_a_position_missing_at_the_broker(strategy):
    place(strategy)
    PaperTrade.objects.all().delete()

    reconcile_positions()

    [issue] = open_issues()
    assert issue.issue_type == IssueType.MISSING_AT_BROKER
    assert (issue.internal_quantity, issue.broker_quantity) == (10, 0)
    assert issue.internal_price == LAST
    assert issue.broker_price is None
    assert issue.strategy == strategy


def test_an_order_the_broker_cancelled_is_reported_when_not_fixing(strategy):
    order = resting(strategy)
    PaperOrder.objects.filter(tag=order.broker_tag).update(status="CANCELLED")

    reconcile_positions(auto_fix=False)

    [issue] = open_issues()
    assert issue.issue_type == IssueType.ORDER_STATUS_MISMATCH
    assert issue.severity == Severity.WARNING
    assert issue.order == order
    assert issue.strategy == strategy
    assert issue.details == {
        "ours": "OPEN",
        "broker": "CANCELLED",
        "client_order_id": order.client_order_id,
    }
    assert issue.fingerprint == f"STATUS:paper:order:{order.pk}"
    order.refresh_from_db()
    assert order.status == OrderStatus.OPEN  # nothing fixed


def test_an_order_the_broker_cancelled_is_fixed(strategy):
    order = resting(strategy)
    PaperOrder.objects.filter(tag=order.broker_tag).update(status="CANCELLED")

    report = reconcile_positions()

    assert report.auto_fixed == 1
    order.refresh_from_db()
    assert order.status == OrderStatus.CANCELLED
    [issue] = ReconciliationIssue.objects.all()
    assert issue.issue_type == IssueType.ORDER_STATUS_MISMATCH
    assert issue.resolved and issue.auto_fixed
    assert issue.resolved_by == "reconciliation"
    assert issue.resolution.startswith(
        f"auto-fixed: applied the broker's report of order {order.pk}"
    )
    assert issue.resolution.endswith("the order is now CANCELLED with 0 filled")
    assert OrderEvent.objects.filter(
        order=order, to_status=OrderStatus.CANCELLED, source=EventSource.SYSTEM
    ).exists()


def test_a_price_mismatch_beyond_the_tolerance(strategy, settings):
    settings.OMS_RECONCILE_PRICE_TOLERANCE = 0.5  # percent
    place(strategy)
    # 0.6% above the broker's 812.35.
    Position.objects.filter(strategy=strategy).update(average_price=Decimal("817.224100"))

    reconcile_positions()

    [issue] = open_issues()
    assert issue.issue_type == IssueType.PRICE_MISMATCH
    assert issue.severity == Severity.INFO  # paper
    assert (issue.internal_price, issue.broker_price) == (Decimal("817.2241"), LAST)
    assert issue.fingerprint == f"PRICE:paper:{SYMBOL}:NSE:MIS"

    settings.OMS_RECONCILE_PRICE_TOLERANCE = 1.0
    reconcile_positions()

    assert open_issues() == []  # within a wider tolerance: gone, resolved


def test_a_price_within_the_tolerance_is_no_issue(strategy, settings):
    settings.OMS_RECONCILE_PRICE_TOLERANCE = 0.5
    place(strategy)
    # 0.4% above.
    Position.objects.filter(strategy=strategy).update(average_price=Decimal("815.599400"))

    assert reconcile_positions().findings == []


# --- a missing fill: found, fixed through fill_apply -----------------------------------------


def test_a_missing_fill_is_fixed_and_the_position_follows(strategy):
    order = resting(strategy)
    paper_trade = exchange_fills(order, 10)

    report = reconcile_positions()

    # One difference, fixed: the position the fill makes is no second issue.
    assert kinds(report) == [(IssueType.MISSING_FILL, Severity.WARNING)]
    assert report.auto_fixed == 1
    trade = Trade.objects.get(order=order)
    assert (trade.trade_id, trade.quantity, trade.price) == (paper_trade.trade_id, 10, Decimal(800))
    assert trade.total_charges > 0
    order.refresh_from_db()
    assert (order.status, order.filled_quantity) == (OrderStatus.FILLED, 10)
    position = Position.objects.get(strategy=strategy, closed_at__isnull=True)
    assert (position.quantity, position.average_price) == (10, Decimal("800"))
    [issue] = ReconciliationIssue.objects.all()
    assert issue.issue_type == IssueType.MISSING_FILL
    assert issue.resolved and issue.auto_fixed
    assert issue.resolved_by == "reconciliation"
    assert (issue.internal_quantity, issue.broker_quantity) == (0, 10)
    assert issue.resolution == (
        f"auto-fixed: applied the broker's report of order {order.pk} (10 filled, COMPLETE); "
        "the order is now FILLED with 10 filled"
    )
    assert issue.details["auto_fix"] == {"fixed": True, "status": "FILLED", "filled": 10}
    fill_event = OrderEvent.objects.get(order=order, kind=EventKind.FILL)
    assert fill_event.source == EventSource.SYSTEM
    # And the books now agree.
    assert reconcile_positions().findings == []


def test_a_partial_missing_fill(strategy):
    order = resting(strategy)
    exchange_fills(order, 4)

    reconcile_positions()

    order.refresh_from_db()
    assert (order.status, order.filled_quantity) == (OrderStatus.PARTIALLY_FILLED, 4)
    assert Position.objects.get(strategy=strategy, closed_at__isnull=True).quantity == 4
    assert open_issues() == []


def test_a_fill_that_cannot_be_applied_stays_an_open_issue(strategy, monkeypatch):
    order = resting(strategy)
    exchange_fills(order, 10)
    monkeypatch.setattr("orders.services.broker_reports.fill_apply", _refuse)

    report = reconcile_positions()

    assert report.auto_fixed == 0
    issue = ReconciliationIssue.objects.get(issue_type=IssueType.MISSING_FILL)
    assert not issue.resolved and not issue.auto_fixed
    assert issue.details["auto_fix"]["fixed"] is False
    assert issue.details["auto_fix"]["error"] == (
        "filled 0 of the broker's 10; still OPEN, the broker says FILLED"
    )
    # The position difference the fill would have settled is reported too.
    assert ReconciliationIssue.objects.get(issue_type=IssueType.UNKNOWN_POSITION).broker_quantity


def _refuse(order, **fill):
    from orders.services import FillRefused

    raise FillRefused("refused for the test")


def test_dry_run_writes_nothing(strategy):
    order = resting(strategy)
    exchange_fills(order, 10)
    exchange_trade_unknown_to_us(StrategyFactory(), quantity=3)

    report = reconcile_positions(dry_run=True)

    # What is wrong before any fix: the fill, and the position it makes.
    assert kinds(report) == [
        (IssueType.MISSING_FILL, Severity.WARNING),
        (IssueType.UNKNOWN_BROKER_ORDER, Severity.WARNING),  # the stray one, filled
        (IssueType.UNKNOWN_POSITION, Severity.WARNING),
    ]
    assert report.created == report.auto_fixed == 0
    assert ReconciliationIssue.objects.count() == 0
    assert not Trade.objects.exists()
    order.refresh_from_db()
    assert (order.status, order.filled_quantity) == (OrderStatus.OPEN, 0)


# --- the log: one issue per difference, resolved when it goes ---------------------------------


def test_a_repeated_difference_updates_its_issue(strategy):
    exchange_trade_unknown_to_us(strategy, quantity=5)
    reconcile_positions()
    [first] = position_issues()

    exchange_trade_unknown_to_us(strategy, quantity=2)
    report = reconcile_positions()

    [again] = position_issues()
    assert again.pk == first.pk
    assert again.occurrences == 2
    assert again.broker_quantity == 7  # what the broker says now
    assert again.last_seen_at > first.last_seen_at
    assert again.detected_at == first.detected_at
    assert (report.created, report.updated) == (1, 2)  # the second stray order is new
    assert len(position_issues()) == 1


def test_an_issue_is_resolved_when_the_difference_disappears(strategy):
    stray = exchange_trade_unknown_to_us(strategy, quantity=5)
    reconcile_positions()
    [issue] = position_issues()

    stray.delete()
    report = reconcile_positions()

    assert report.resolved == 1
    issue.refresh_from_db()
    assert issue.resolved
    assert not issue.auto_fixed
    assert issue.resolved_by == "reconciliation"
    assert issue.resolution.startswith("no longer seen by reconciliation at ")
    assert issue.resolved_at is not None


def test_issues_of_a_broker_that_cannot_be_read_are_left_alone(strategy, monkeypatch):
    exchange_trade_unknown_to_us(strategy, quantity=5)
    reconcile_positions()

    def unavailable(self):
        raise BrokerUnavailable("paper exchange down")

    monkeypatch.setattr(PaperBroker, "positions", unavailable)
    report = reconcile_positions()

    assert report.brokers == set()
    assert report.resolved == 0
    assert len(open_issues()) == 2  # the position, and the order behind it


# --- netting across strategies ----------------------------------------------------------------


def test_strategies_are_netted_like_the_broker_nets_them():
    long, short = StrategyFactory(name="Long"), StrategyFactory(name="Short")
    place(long, quantity=10)  # 10 @ 812.35
    market_prices_update([(SYMBOL, "NSE", Decimal("815.00"))])
    place(short, side="SELL", quantity=4)  # -4 @ 815.00

    report = reconcile_positions()

    # The exchange holds +6, at the average of the buys; so do we, together.
    assert PaperBroker(long).positions()[0].quantity == 6
    assert report.findings == []

    exchange_trade_unknown_to_us(long, quantity=1)
    reconcile_positions()

    [issue] = position_issues()
    assert issue.issue_type == IssueType.QUANTITY_MISMATCH
    assert (issue.internal_quantity, issue.broker_quantity) == (6, 7)
    assert issue.strategy is None  # two holders: nobody is blamed
    assert issue.details["by_strategy"] == {str(long.pk): 10, str(short.pk): -4}
    assert issue.internal_price == LAST  # the long side's average, not (8123.5 - 3260) / 6


# --- LIVE: CRITICAL differences and the kill switch -------------------------------------------


class FakeKite:
    name = "kite"

    def __init__(self, positions=(), orders=()):
        self._positions = list(positions)
        self._orders = list(orders)

    def positions(self):
        return self._positions

    def orders(self):
        return self._orders

    def holdings(self):
        return []


@pytest.fixture
def kite(monkeypatch):
    fake = FakeKite()

    def broker_for(strategy):
        return fake if strategy.is_live else PaperBroker(strategy)

    monkeypatch.setattr(reconciliation, "broker_for", broker_for)
    return fake


@pytest.fixture
def live():
    return StrategyFactory(
        name="Live", mode=StrategyMode.LIVE, broker_account=kite_account_create()
    )


def test_a_live_quantity_difference_is_critical_and_halts_the_strategy(kite, live):
    PositionFactory(strategy=live, symbol=SYMBOL, quantity=10, average_price=LAST)
    kite._positions = [BrokerPosition(SYMBOL, "NSE", "MIS", 6, LAST)]

    reconcile_positions()

    [issue] = open_issues()
    assert (issue.issue_type, issue.severity) == (IssueType.QUANTITY_MISMATCH, Severity.CRITICAL)
    assert issue.fingerprint == f"QTY:kite-AB1234:{SYMBOL}:NSE:MIS"  # Kite nets per user
    assert issue.strategy == live
    [halt] = KillSwitchEvent.objects.all()
    assert halt.actor == "rule:critical-reconciliation"
    assert (halt.state, halt.strategy) == ("HALTED", live)
    assert halt.details["issue_id"] == issue.pk
    assert (halt.details["internal_quantity"], halt.details["broker_quantity"]) == (10, 6)

    reconcile_positions()  # the same issue again: no second halt

    assert KillSwitchEvent.objects.count() == 1
    assert open_issues()[0].occurrences == 2


def test_a_live_price_difference_is_a_warning_and_halts_nothing(kite, live):
    PositionFactory(strategy=live, symbol=SYMBOL, quantity=10, average_price=LAST)
    kite._positions = [BrokerPosition(SYMBOL, "NSE", "MIS", 10, Decimal("830.00"))]

    reconcile_positions()

    [issue] = open_issues()
    assert (issue.issue_type, issue.severity) == (IssueType.PRICE_MISMATCH, Severity.WARNING)
    assert not KillSwitchEvent.objects.exists()


def test_a_paper_difference_halts_nothing(strategy):
    exchange_trade_unknown_to_us(strategy, quantity=5)

    reconcile_positions()

    assert position_issues()[0].severity == Severity.WARNING
    assert not KillSwitchEvent.objects.exists()


def test_a_live_missing_fill_is_fixed_before_positions_are_compared(kite, live):
    """Kite reports cumulative figures: the fix makes the fill, and the position it makes
    matches the broker's, so nothing CRITICAL is left and nothing is halted."""
    order = OrderFactory(
        strategy=live,
        symbol=SYMBOL,
        price=LAST,
        status=OrderStatus.OPEN,
        broker_order_id="240101000001",
    )
    kite._orders = [
        BrokerOrderUpdate(
            broker_order_id="240101000001",
            tag=order.broker_tag,
            status=OrderStatus.FILLED,
            filled_quantity=10,
            average_price=LAST,
            raw_status="COMPLETE",
        )
    ]
    kite._positions = [BrokerPosition(SYMBOL, "NSE", "MIS", 10, LAST)]

    report = reconcile_positions()

    assert kinds(report) == [(IssueType.MISSING_FILL, Severity.CRITICAL)]
    [issue] = ReconciliationIssue.objects.all()
    assert issue.resolved and issue.auto_fixed
    assert Trade.objects.get(order=order).trade_id == "240101000001/10"
    assert Position.objects.get(strategy=live, closed_at__isnull=True).quantity == 10
    assert not KillSwitchEvent.objects.exists()


def test_one_strategy_only(strategy):
    other = StrategyFactory(name="Other")
    place(strategy)
    exchange_trade_unknown_to_us(strategy, quantity=5)  # on the instrument Alpha holds
    exchange_trade_unknown_to_us(other, quantity=2, price="1000.00", symbol="INFY")

    report = reconcile_positions(strategy=strategy)

    assert [(f.issue_type, f.symbol) for f in report.findings] == [
        (IssueType.QUANTITY_MISMATCH, SYMBOL)
    ]
    [issue] = position_issues()
    assert issue.strategy == strategy


# --- end to end with the worker, and the periodic job ----------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_missing_fill_end_to_end_with_the_worker(run_jobs):
    """The order goes to the paper exchange through the real job queue; the exchange fills it
    without a report; reconciliation applies the fill and the books agree again."""
    market_prices_update([(SYMBOL, "NSE", LAST)])
    strategy = StrategyFactory(name="Worker")
    result = order_place(
        OrderRequest(
            strategy_id=strategy.pk,
            client_order_id="e2e-1",
            symbol=SYMBOL,
            side="BUY",
            quantity=10,
            order_type="LIMIT",
            price="800.00",
            product="MIS",
        ),
        actor="tester",
    )
    run_jobs()
    order = Order.objects.get(pk=result.order_id)
    assert order.status == OrderStatus.OPEN
    exchange_fills(order, 6)

    report = reconcile_positions()

    assert kinds(report) == [(IssueType.MISSING_FILL, Severity.WARNING)]
    order.refresh_from_db()
    assert (order.status, order.filled_quantity) == (OrderStatus.PARTIALLY_FILLED, 6)
    assert Position.objects.get(strategy=strategy).quantity == 6
    assert ReconciliationIssue.objects.get().auto_fixed
    assert reconcile_positions().findings == []


def test_the_periodic_job_reconciles_while_the_market_is_open(strategy, monkeypatch, settings):
    from positions import tasks

    exchange_trade_unknown_to_us(strategy, quantity=5)
    settings.OMS_RECONCILE_INTERVAL_MINUTES = 1
    monkeypatch.setattr(tasks, "market_is_open", lambda now=None: False)
    tasks.reconcile(timestamp=0)
    assert not ReconciliationIssue.objects.exists()

    monkeypatch.setattr(tasks, "market_is_open", lambda now=None: True)
    tasks.reconcile(timestamp=0)

    assert position_issues()[0].issue_type == IssueType.UNKNOWN_POSITION


def test_each_kite_account_is_its_own_book(monkeypatch):
    """Kite nets positions per user: two accounts holding the same symbol are each compared
    with their own strategies' positions, never with the desk's sum."""
    first, second = kite_account_create("AB1234"), kite_account_create("CD5678")
    one = StrategyFactory(name="Desk 1", mode=StrategyMode.LIVE, broker_account=first)
    two = StrategyFactory(name="Desk 2", mode=StrategyMode.LIVE, broker_account=second)
    PositionFactory(strategy=one, symbol=SYMBOL, quantity=10, average_price=LAST)
    PositionFactory(strategy=two, symbol=SYMBOL, quantity=5, average_price=LAST)
    books = {
        "AB1234": FakeKite(positions=[BrokerPosition(SYMBOL, "NSE", "MIS", 10, LAST)]),
        "CD5678": FakeKite(positions=[BrokerPosition(SYMBOL, "NSE", "MIS", 4, LAST)]),
    }
    monkeypatch.setattr(
        reconciliation, "broker_for", lambda strategy: books[strategy.broker_account.user_id]
    )

    report = reconcile_positions()

    assert report.brokers == {"kite-AB1234", "kite-CD5678"}
    [issue] = open_issues()  # Desk 2's account holds 4, we hold 5; Desk 1 agrees
    assert issue.fingerprint == f"QTY:kite-CD5678:{SYMBOL}:NSE:MIS"
    assert (issue.strategy, issue.internal_quantity, issue.broker_quantity) == (two, 5, 4)
