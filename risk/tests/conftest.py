"""Fixtures of the risk tests: a strategy, and a fixed clock for the trading calendar."""

from __future__ import annotations

from datetime import datetime
from types import SimpleNamespace

import pytest

from orders.tests.factories import StrategyFactory
from risk import calendar


@pytest.fixture
def strategy(db):
    return StrategyFactory(name="Momentum")


@pytest.fixture
def clock(monkeypatch):
    """Sets the calendar's "now" (what the validator and the monitors see) to a fixed moment.

    ``clock("2026-01-14 09:15")`` is read in IST. Only the calendar's clock moves: rows are
    still stamped with the real time.
    """

    def set_clock(moment: str | datetime) -> datetime:
        if isinstance(moment, str):
            moment = datetime.fromisoformat(moment).replace(tzinfo=calendar.IST)
        monkeypatch.setattr(calendar, "timezone", SimpleNamespace(now=lambda: moment))
        return moment

    return set_clock


@pytest.fixture
def enforce_hours(settings):
    """Paper strategies keep the exchange's hours, as live ones always do."""
    settings.OMS_PAPER_MARKET_HOURS = "enforce"
