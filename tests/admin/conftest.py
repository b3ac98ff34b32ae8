"""Admin test fixtures: the back office's groups, a person in each, and a desk's worth of rows."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client

from orders.enums import OrderStatus, StrategyMode
from orders.tests.factories import OrderEventFactory, OrderFactory, StrategyFactory, TradeFactory
from positions.models import Severity
from positions.tests.factories import PositionFactory, ReconciliationIssueFactory
from risk.services import roles_sync


@pytest.fixture
def roles(db):
    """The groups as the migration makes them (re-synced: a transactional test flushes them)."""
    roles_sync()
    return {group.name: group for group in Group.objects.all()}


def person(username: str, group: str | None = None, *, superuser: bool = False) -> User:
    user = User.objects.create_user(username, f"{username}@example.com", "pw-" + username)
    user.is_staff = True
    user.is_superuser = superuser
    user.save()
    if group:
        user.groups.add(Group.objects.get(name=group))
    return user


@pytest.fixture
def risk_officer(roles):
    return person("rita", "Risk officer")


@pytest.fixture
def operator(roles):
    return person("omar", "Operator")


@pytest.fixture
def viewer(roles):
    return person("vera", "Viewer")


@pytest.fixture
def superuser(db):
    return person("root", superuser=True)


def logged_in(user) -> Client:
    """A test client of its own per person, so two people can act in one test."""
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def as_risk_officer(risk_officer):
    return logged_in(risk_officer)


@pytest.fixture
def as_operator(operator):
    return logged_in(operator)


@pytest.fixture
def as_viewer(viewer):
    return logged_in(viewer)


@pytest.fixture
def as_superuser(superuser):
    return logged_in(superuser)


@pytest.fixture
def desk(db):
    """Two strategies (one live) with working and filled orders, a fill, a position, two issues."""
    momentum = StrategyFactory(name="Momentum")
    live = StrategyFactory(name="Live Arb", mode=StrategyMode.LIVE)
    working = OrderFactory(strategy=momentum, symbol="INFY", status=OrderStatus.PENDING)
    open_order = OrderFactory(strategy=momentum, symbol="TCS", status=OrderStatus.OPEN)
    filled = OrderFactory(strategy=live, symbol="RELIANCE", status=OrderStatus.OPEN, quantity=10)
    TradeFactory(order=filled, quantity=10, price=Decimal("2450.50"))
    filled.status, filled.filled_quantity, filled.average_price = "FILLED", 10, Decimal("2450.5")
    filled.save()
    OrderEventFactory(order=working)
    long = PositionFactory(
        strategy=momentum,
        symbol="INFY",
        quantity=10,
        average_price=Decimal("1500"),
        last_price=Decimal("1510.00"),
        unrealized_pnl=Decimal("100.00"),
    )
    issue = ReconciliationIssueFactory(
        strategy=momentum,
        symbol="INFY",
        severity=Severity.WARNING,
        internal_quantity=10,
        broker_quantity=5,
    )
    critical = ReconciliationIssueFactory(
        strategy=live,
        symbol="RELIANCE",
        severity=Severity.CRITICAL,
        internal_quantity=10,
        broker_quantity=0,
        issue_type="MISSING_AT_BROKER",
    )
    return {
        "momentum": momentum,
        "live": live,
        "working": working,
        "open": open_order,
        "filled": filled,
        "position": long,
        "issue": issue,
        "critical": critical,
    }
