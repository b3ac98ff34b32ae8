"""Reconciliation issues settled by a person: resolved with a note, or auto-fixed by adopting
the broker's quantity (positions.services)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.utils import timezone

from orders.enums import OrderSide, TradeKind
from orders.models import Trade
from orders.services import fill_apply
from orders.tests.factories import OrderFactory, StrategyFactory
from positions.models import IssueType, Position, ReconciliationIssue, Severity
from positions.services import (
    ReconciliationIssueError,
    reconciliation_issue_auto_fix,
    reconciliation_issue_auto_fix_plan,
    reconciliation_issue_resolve,
)
from positions.tests.factories import PositionFactory, ReconciliationIssueFactory

pytestmark = pytest.mark.django_db


def issue_for(position=None, **fields):
    defaults = {"symbol": "INFY", "exchange": "NSE", "product": "MIS"}
    if position is not None:
        defaults.update(
            strategy=position.strategy,
            symbol=position.symbol,
            internal_quantity=position.quantity,
            internal_price=position.average_price,
        )
    return ReconciliationIssueFactory(**{**defaults, **fields})


# --- resolve -----------------------------------------------------------------------------------


def test_resolve_records_who_when_and_the_note():
    issue = ReconciliationIssueFactory()

    resolved = reconciliation_issue_resolve(issue, note="  broker confirmed 5  ", actor="rita")

    resolved.refresh_from_db()
    assert resolved.resolved and not resolved.auto_fixed
    assert (resolved.resolved_by, resolved.resolution) == ("rita", "broker confirmed 5")
    assert resolved.resolved_at is not None


@pytest.mark.parametrize("note", ["", "   ", None])
def test_resolve_needs_a_note(note):
    issue = ReconciliationIssueFactory()

    with pytest.raises(ReconciliationIssueError, match="note: required"):
        reconciliation_issue_resolve(issue, note=note, actor="rita")

    issue.refresh_from_db()
    assert not issue.resolved


def test_a_resolved_issue_cannot_be_resolved_or_fixed_again():
    issue = ReconciliationIssueFactory()
    reconciliation_issue_resolve(issue, note="checked", actor="rita")

    with pytest.raises(ReconciliationIssueError, match="cannot be changed"):
        reconciliation_issue_resolve(issue, note="again", actor="omar")
    with pytest.raises(ReconciliationIssueError, match="cannot be changed"):
        reconciliation_issue_auto_fix(issue, actor="omar")

    issue.refresh_from_db()
    assert (issue.resolved_by, issue.resolution) == ("rita", "checked")


def test_a_critical_issue_needs_the_permission():
    issue = ReconciliationIssueFactory(severity=Severity.CRITICAL)

    with pytest.raises(ReconciliationIssueError, match="CRITICAL"):
        reconciliation_issue_resolve(issue, note="n", actor="omar", may_resolve_critical=False)

    reconciliation_issue_resolve(issue, note="n", actor="rita", may_resolve_critical=True)
    assert ReconciliationIssue.objects.get(pk=issue.pk).resolved


# --- auto-fix ----------------------------------------------------------------------------------


def test_a_quantity_mismatch_adopts_the_broker_quantity_by_an_adjustment_fill():
    position = PositionFactory(
        quantity=10, average_price=Decimal("100"), last_price=Decimal("110.00")
    )
    issue = issue_for(position, broker_quantity=6, broker_price=Decimal("101.5"))

    fixed = reconciliation_issue_auto_fix(issue, actor="rita")

    position.refresh_from_db()
    # A reduction at our average: it realizes nothing and keeps the average (the broker's
    # 101.50 stays a price difference for a person); the mark is not moved by it.
    assert (position.quantity, position.average_price) == (6, Decimal("100"))
    assert position.unrealized_pnl == Decimal("60.00")  # 6 x (110 - 100)
    (adjustment,) = Trade.objects.filter(issue=fixed)
    assert (adjustment.kind, adjustment.side, adjustment.quantity, adjustment.price) == (
        TradeKind.ADJUSTMENT,
        "SELL",
        4,
        Decimal("100.00"),
    )
    assert adjustment.order_id is None and adjustment.total_charges == 0
    assert adjustment.realized_pnl == 0 and "auto-fixed by rita" in adjustment.reason
    assert fixed.resolved and fixed.auto_fixed and fixed.resolved_by == "rita"
    assert "+10 → +6" in fixed.resolution and "adjustment fills -4 @ 100.00" in fixed.resolution
    record = fixed.details["auto_fix"]
    assert record["quantity_before"] == 10 and record["quantity_after"] == 6
    assert record["average_before"] == "100.000000" and record["by"] == "rita"
    assert record["fills"] == [[-4, "100.00"]]


def test_without_a_broker_average_ours_is_kept():
    position = PositionFactory(quantity=10, average_price=Decimal("100"))
    issue = issue_for(position, broker_quantity=12, broker_price=None)

    reconciliation_issue_auto_fix(issue, actor="rita")

    position.refresh_from_db()
    assert (position.quantity, position.average_price) == (12, Decimal("100"))


def test_missing_at_broker_closes_our_position_by_an_adjustment_at_our_average():
    # A position that realized 12.00 was traded: its strategy's counters say so.
    strategy = StrategyFactory(total_trades=2)
    position = PositionFactory(strategy=strategy, quantity=-5, realized_pnl=Decimal("12.00"))
    issue = issue_for(position, issue_type=IssueType.MISSING_AT_BROKER, broker_quantity=0)

    fixed = reconciliation_issue_auto_fix(issue, actor="rita")

    position.refresh_from_db()
    assert position.quantity == 0 and position.closed_at is not None
    assert position.realized_pnl == Decimal("12.00")  # the buy-back at our average: no PnL
    assert "closed position" in fixed.resolution and "+5 @ 100.00" in fixed.resolution
    assert Trade.objects.get(issue=fixed).realized_pnl == 0


def test_unknown_position_opens_one_at_the_broker_average():
    strategy = StrategyFactory()
    issue = issue_for(
        strategy=strategy,
        issue_type=IssueType.UNKNOWN_POSITION,
        internal_quantity=0,
        broker_quantity=7,
        broker_price=Decimal("250.25"),
    )

    fixed = reconciliation_issue_auto_fix(issue, actor="rita")

    opened = Position.objects.get(strategy=strategy, symbol="INFY", closed_at__isnull=True)
    assert (opened.quantity, opened.average_price) == (7, Decimal("250.25"))
    assert fixed.details["auto_fix"]["position_id"] == opened.pk


def test_a_reversed_side_closes_the_position_and_opens_one_without_protection():
    strategy = StrategyFactory(total_trades=1)
    position = PositionFactory(
        strategy=strategy, quantity=10, stop_loss=Decimal("95.00"), take_profit=Decimal("120.00")
    )
    issue = issue_for(position, broker_quantity=-4, broker_price=Decimal("99"))

    fixed = reconciliation_issue_auto_fix(issue, actor="rita")

    position.refresh_from_db()
    assert position.quantity == 0 and position.closed_at is not None
    opened = Position.objects.get(strategy=strategy, symbol=position.symbol, closed_at=None)
    assert (opened.quantity, opened.average_price) == (-4, Decimal("99"))
    assert (opened.stop_loss, opened.take_profit) == (None, None)
    assert "closed and a new position opened" in fixed.resolution
    assert fixed.details["auto_fix"]["fills"] == [[-10, "100.00"], [-4, "99.00"]]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"issue_type": IssueType.MISSING_FILL}, "only quantity differences"),
        ({"issue_type": IssueType.PRICE_MISMATCH}, "only quantity differences"),
        ({"strategy": None}, "names no strategy"),
        ({"broker_quantity": None}, "broker's quantity is unknown"),
        ({"internal_quantity": 8}, "our position is now 10"),
        ({"broker_quantity": -3, "broker_price": None}, "no average price"),
    ],
)
def test_what_cannot_be_auto_fixed(fields, message):
    position = PositionFactory(quantity=10)
    issue = issue_for(position, broker_quantity=5, broker_price=None)
    for name, value in fields.items():
        setattr(issue, name, value)
    issue.save()

    with pytest.raises(ReconciliationIssueError, match=message):
        reconciliation_issue_auto_fix(issue, actor="rita")

    position.refresh_from_db()
    issue.refresh_from_db()
    assert position.quantity == 10 and not issue.resolved


def test_the_plan_is_a_preview_and_writes_nothing():
    position = PositionFactory(quantity=10, average_price=Decimal("100"))
    issue = issue_for(position, broker_quantity=4, broker_price=Decimal("100"))

    plan = reconciliation_issue_auto_fix_plan(issue, position)

    assert (plan.quantity_before, plan.quantity_after, plan.position_id) == (10, 4, position.pk)
    position.refresh_from_db()
    assert position.quantity == 10


def test_a_critical_auto_fix_needs_the_permission():
    position = PositionFactory(quantity=10)
    issue = issue_for(position, broker_quantity=5, severity=Severity.CRITICAL)

    with pytest.raises(ReconciliationIssueError, match="CRITICAL"):
        reconciliation_issue_auto_fix(issue, actor="omar", may_resolve_critical=False)

    position.refresh_from_db()
    assert position.quantity == 10


# --- the ledger identity through every auto-fix --------------------------------------------------


@pytest.mark.parametrize(
    ("ours", "broker_quantity", "broker_price"),
    [
        (10, 6, "101.5"),  # reduce
        (10, 14, "99.25"),  # add at the broker's average
        (10, 12, None),  # add at ours
        (10, 0, None),  # missing at the broker: close
        (-10, 0, None),
        (10, -4, "99"),  # reverse
        (-10, 3, "101"),
        (0, 7, "250.25"),  # unknown to us: open
    ],
)
def test_every_position_is_the_sum_of_its_fills_after_an_auto_fix(
    ours, broker_quantity, broker_price
):
    strategy = StrategyFactory()
    if ours:
        side = OrderSide.BUY if ours > 0 else OrderSide.SELL
        order = OrderFactory(
            strategy=strategy, symbol="INFY", side=side, quantity=abs(ours), status="OPEN"
        )
        fill_apply(
            order,
            trade_id="T-1",
            quantity=abs(ours),
            price=Decimal("100.00"),
            executed_at=timezone.now(),
        )
    issue = issue_for(
        strategy=strategy,
        issue_type=IssueType.UNKNOWN_POSITION if not ours else IssueType.QUANTITY_MISMATCH,
        internal_quantity=ours,
        broker_quantity=broker_quantity,
        broker_price=None if broker_price is None else Decimal(broker_price),
    )

    reconciliation_issue_auto_fix(issue, actor="rita")

    trades = Trade.objects.filter(strategy=strategy)
    signed = sum(t.quantity * OrderSide(t.side).sign for t in trades)
    held = Position.objects.filter(strategy=strategy, closed_at__isnull=True).first()
    assert (held.quantity if held else 0) == signed == broker_quantity
    assert all(p.quantity == 0 for p in Position.objects.filter(closed_at__isnull=False))
    realized = sum((p.realized_pnl for p in Position.objects.filter(strategy=strategy)), 0)
    assert sum((t.realized_pnl for t in trades), 0) == realized
    assert trades.filter(kind=TradeKind.ADJUSTMENT).exclude(issue=issue).count() == 0
