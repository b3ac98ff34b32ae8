"""Factories for the positions app, and raw-SQL row builders for its tables."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import factory
from django.utils import timezone

from orders.enums import Exchange, Product
from orders.tests.factories import StrategyFactory, unique_suffix
from positions.models import DailyStats, IssueType, Position, ReconciliationIssue, Severity


class PositionFactory(factory.django.DjangoModelFactory):
    """An open long position."""

    class Meta:
        model = Position

    strategy = factory.SubFactory(StrategyFactory)
    symbol = factory.Sequence(lambda n: f"SYM{n}")
    exchange = Exchange.NSE
    product = Product.MIS
    quantity = 10
    average_price = Decimal("100.00")
    realized_pnl = Decimal("0.00")
    # As if its fills had been at its average (positions.pnl.apply_fill's assumption).
    cash_flow = factory.LazyAttribute(lambda p: p.realized_pnl - p.quantity * p.average_price)


class ReconciliationIssueFactory(factory.django.DjangoModelFactory):
    """An unresolved quantity mismatch."""

    class Meta:
        model = ReconciliationIssue

    strategy = factory.SubFactory(StrategyFactory)
    issue_type = IssueType.QUANTITY_MISMATCH
    severity = Severity.WARNING
    symbol = "RELIANCE"
    exchange = Exchange.NSE
    product = Product.MIS
    internal_quantity = 10
    broker_quantity = 5
    description = "We hold 10, the broker 5"
    fingerprint = factory.Sequence(lambda n: f"QUANTITY_MISMATCH:issue-{n}")


class DailyStatsFactory(factory.django.DjangoModelFactory):
    """One strategy's day (the data migration owns today's global row)."""

    class Meta:
        model = DailyStats

    date = date(2025, 1, 1)
    strategy = factory.SubFactory(StrategyFactory)


def position_row(strategy_id: int, **overrides: Any) -> dict[str, Any]:
    """A valid open long position, as raw columns."""
    now = timezone.now()
    row = {
        "strategy_id": strategy_id,
        "symbol": f"RAW{unique_suffix()}",
        "exchange": "NSE",
        "product": "MIS",
        "quantity": 10,
        "average_price": Decimal("100.00"),
        "realized_pnl": Decimal("0"),
        "unrealized_pnl": Decimal("0"),
        "peak_pnl": Decimal("0"),
        "max_drawdown": Decimal("0"),
        "opened_at": now,
        "created_at": now,
        "updated_at": now,
    }
    return {**row, **overrides}


def issue_row(**overrides: Any) -> dict[str, Any]:
    """A valid unresolved issue, as raw columns."""
    now = timezone.now()
    row = {
        "issue_type": "QUANTITY_MISMATCH",
        "severity": "WARNING",
        "symbol": "INFY",
        "exchange": "NSE",
        "product": "MIS",
        "description": "",
        "details": "{}",
        "fingerprint": f"raw-issue-{unique_suffix()}",
        "occurrences": 1,
        "resolved": False,
        "resolution": "",
        "resolved_by": "",
        "auto_fixed": False,
        "detected_at": now,
        "last_seen_at": now,
        "updated_at": now,
    }
    return {**row, **overrides}


def daily_stats_row(**overrides: Any) -> dict[str, Any]:
    """A valid global day (strategy NULL) on a date the data migration does not use."""
    now = timezone.now()
    row = {
        "date": date(2020, 1, 1),
        "strategy_id": None,
        "total_orders": 0,
        "filled_orders": 0,
        "cancelled_orders": 0,
        "rejected_orders": 0,
        "total_trades": 0,
        "winning_trades": 0,
        "losing_trades": 0,
        "gross_pnl": Decimal("0"),
        "total_charges": Decimal("0"),
        "net_pnl": Decimal("0"),
        "turnover": Decimal("0"),
        "max_drawdown": Decimal("0"),
        "created_at": now,
        "updated_at": now,
    }
    return {**row, **overrides}
