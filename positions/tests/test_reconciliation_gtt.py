"""Reconciliation of the GTTs at the broker with the protections we expect
(positions.reconciliation_gtt, run by reconcile_positions), on the paper broker's GTT book."""

from __future__ import annotations

from decimal import Decimal

import pytest

from orders.enums import ProtectionMode
from orders.models import PaperGtt
from orders.tests.factories import StrategyFactory
from positions.models import BrokerProtection, IssueType, ProtectionState, Severity
from positions.protection import protections_sync
from positions.reconciliation import reconcile_positions
from positions.tests.factories import PositionFactory

pytestmark = pytest.mark.django_db

D = Decimal


def protected():
    strategy = StrategyFactory(protection_mode=ProtectionMode.BROKER)
    position = PositionFactory(
        strategy=strategy,
        symbol="INFY",
        quantity=10,
        average_price=D("100"),
        last_price=D("100.00"),
        stop_loss=D("95.00"),
        take_profit=D("110.00"),
    )
    [protection] = protections_sync()
    assert protection.state == ProtectionState.ACTIVE
    return position, protection, PaperGtt.objects.get(pk=int(protection.trigger_id))


def gtt_findings(**options):
    report = reconcile_positions(**options)
    return [f for f in report.findings if f.issue_type == IssueType.GTT_MISMATCH]


def test_a_gtt_as_we_expect_it_is_no_difference():
    protected()

    assert gtt_findings(dry_run=True) == []


def test_a_gtt_gone_at_the_broker_is_critical():
    position, protection, gtt = protected()
    gtt.status = "deleted"
    gtt.save()

    [finding] = gtt_findings(dry_run=True)

    assert finding.severity == Severity.CRITICAL
    assert finding.strategy_id == position.strategy_id
    assert f"GTT {protection.trigger_id} is deleted" in finding.description
    assert finding.fingerprint == f"GTT:paper:{protection.trigger_id}"


def test_a_gtt_holding_other_terms_is_a_warning_recorded_as_an_issue():
    position, _, gtt = protected()
    gtt.legs = [{**leg, "quantity": 4} for leg in gtt.legs]
    gtt.save()

    [finding] = gtt_findings(auto_fix=False)

    assert finding.severity == Severity.WARNING
    assert (finding.internal_quantity, finding.broker_quantity) == (10, 4)
    assert "holds 4 at 95.00 / 110.00, we expect 10 at 95.00 / 110.00" in finding.description
    issue = position.strategy.issues.get(issue_type=IssueType.GTT_MISMATCH)
    assert issue.severity == Severity.WARNING and not issue.resolved


def test_an_active_gtt_no_position_holds_is_reported():
    position, _, gtt = protected()
    stray = PaperGtt.objects.create(
        strategy=position.strategy,
        trigger_type="single",
        symbol="TCS",
        exchange="NSE",
        product="CNC",
        trigger_values=["3000.00"],
        last_price=D("3100"),
        legs=[{"transaction_type": "SELL", "quantity": 1, "price": "2990.00", "result": None}],
    )

    [finding] = gtt_findings(dry_run=True)

    assert finding.severity == Severity.WARNING
    assert finding.fingerprint == f"GTT:paper:{stray.pk}"
    assert "no position's" in finding.description
    assert BrokerProtection.objects.get().trigger_id == str(gtt.pk)
