"""Browser tests of the admin: Playwright (pytest-playwright) driving Debian's chromium against
pytest-django's live server.

Chromium is the system's (``/usr/bin/chromium``, or ``OMS_CHROMIUM``), never a downloaded one:
``.ci/run`` installs it with apt. Without it these tests fail and say so; they are part of the
default suite. Screenshots of every screen go to ``artifacts/screenshots/``.
"""

from __future__ import annotations

import os
import random
import shutil
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.contrib.auth.models import Group, User
from django.utils import timezone

CHROMIUM = os.environ.get("OMS_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
PASSWORD = "a-long-test-password-1"


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    executable = shutil.which(CHROMIUM)
    if executable is None:
        pytest.fail(
            f"chromium not found at {CHROMIUM}: the admin's browser tests need Debian's chromium "
            "(apt-get install chromium; .ci/run does it), or OMS_CHROMIUM=/path/to/chromium",
            pytrace=False,
        )
    # Playwright's sync API keeps an event loop running in the main thread from here to the
    # end of the session; the tests' own ORM calls are synchronous all the same.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    return {**browser_type_launch_args, "executable_path": executable, "args": CHROMIUM_ARGS}


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args):
    return {
        **browser_context_args,
        "viewport": {"width": 1440, "height": 900},
        "locale": "en-IN",
        "timezone_id": "Asia/Kolkata",
    }


@pytest.fixture
def shot(page):
    """``shot("orders")`` saves the page as artifacts/screenshots/orders.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def take(name: str, *, full_page: bool = True) -> Path:
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=full_page)
        return path

    return take


@pytest.fixture
def people(transactional_db):
    """A risk officer, an operator and a viewer, in the groups the migration makes."""
    from risk.services import roles_sync

    roles_sync()  # a transactional test's flush empties auth_group
    users = {}
    for username, group in (("rita", "Risk officer"), ("omar", "Operator"), ("vera", "Viewer")):
        user = User.objects.create_user(username, f"{username}@example.com", PASSWORD)
        user.is_staff = True
        user.save()
        user.groups.add(Group.objects.get(name=group))
        users[group] = user
    return users


@pytest.fixture
def log_in(page, live_server):
    def as_(user) -> None:
        page.goto(f"{live_server.url}/admin/login/?next=/admin/")
        page.fill("#id_username", user.username)
        page.fill("#id_password", PASSWORD)
        page.click("input[type=submit]")
        page.wait_for_url(f"{live_server.url}/admin/")

    return as_


@pytest.fixture
def desk(transactional_db):
    """A trading day in progress: strategies, working and finished orders with fills,
    positions in profit and loss, reconciliation issues of each severity, PnL snapshots."""
    from orders.enums import OrderStatus, StrategyMode, StrategyStatus
    from orders.tests.factories import (
        OrderEventFactory,
        OrderFactory,
        StrategyFactory,
        TradeFactory,
    )
    from positions.models import IssueType, Severity
    from positions.tests.factories import PositionFactory, ReconciliationIssueFactory
    from risk.models import PnlSnapshot, RiskLimit

    momentum = StrategyFactory(name="Momentum NIFTY")
    mean = StrategyFactory(name="Mean Reversion")
    arb = StrategyFactory(name="Index Arb", mode=StrategyMode.LIVE)
    StrategyFactory(name="Options Hedge", status=StrategyStatus.PAUSED)
    orders = {}
    book = [
        (momentum, "INFY", "BUY", 50, OrderStatus.PENDING, "1520.00"),
        (momentum, "TCS", "SELL", 20, OrderStatus.OPEN, "4105.50"),
        (momentum, "HDFCBANK", "BUY", 100, OrderStatus.TRIGGER_PENDING, "1650.00"),
        (mean, "SBIN", "BUY", 200, OrderStatus.PARTIALLY_FILLED, "812.35"),
        (mean, "ITC", "SELL", 300, OrderStatus.CANCELLED, "468.20"),
        (arb, "RELIANCE", "BUY", 25, OrderStatus.FILLED, "2450.50"),
        (arb, "RELIANCE", "SELL", 25, OrderStatus.REJECTED, "2470.00"),
        (mean, "WIPRO", "BUY", 150, OrderStatus.EXPIRED, "512.40"),
        (momentum, "AXISBANK", "SELL", 40, OrderStatus.CANCEL_PENDING, "1190.00"),
    ]
    for strategy, symbol, side, quantity, status, limit in book:
        fills = {"FILLED": quantity, "PARTIALLY_FILLED": quantity // 2}.get(status, 0)
        order = OrderFactory(
            strategy=strategy,
            symbol=symbol,
            side=side,
            quantity=quantity,
            price=Decimal(limit),
            status=OrderStatus.OPEN if fills else status,
            broker_order_id=None if status == OrderStatus.PENDING else f"2411{len(orders):08d}",
        )
        OrderEventFactory(order=order, to_status=OrderStatus.PENDING, reason="order received")
        if fills:
            TradeFactory(order=order, quantity=fills, price=Decimal(limit))
            order.filled_quantity, order.average_price, order.status = fills, Decimal(limit), status
            order.save()
        orders[symbol if symbol not in orders else f"{symbol}-2"] = order
    PositionFactory(
        strategy=arb,
        symbol="RELIANCE",
        quantity=25,
        average_price=Decimal("2450.50"),
        last_price=Decimal("2471.20"),
        unrealized_pnl=Decimal("517.50"),
        stop_loss=Decimal("2420.00"),
    )
    PositionFactory(
        strategy=mean,
        symbol="SBIN",
        quantity=100,
        average_price=Decimal("812.35"),
        last_price=Decimal("806.10"),
        unrealized_pnl=Decimal("-625.00"),
    )
    PositionFactory(
        strategy=momentum,
        symbol="TATAMOTORS",
        quantity=-75,
        average_price=Decimal("968.40"),
        last_price=Decimal("961.05"),
        unrealized_pnl=Decimal("551.25"),
        realized_pnl=Decimal("1204.00"),
    )
    issues = {
        "critical": ReconciliationIssueFactory(
            strategy=arb,
            symbol="RELIANCE",
            severity=Severity.CRITICAL,
            issue_type=IssueType.QUANTITY_MISMATCH,
            internal_quantity=25,
            broker_quantity=20,
            broker_price=Decimal("2450.50"),
            description="RELIANCE MIS: quantities differ (ours 25, broker 20)",
        ),
        "warning": ReconciliationIssueFactory(
            strategy=mean,
            symbol="SBIN",
            severity=Severity.WARNING,
            issue_type=IssueType.QUANTITY_MISMATCH,
            internal_quantity=100,
            broker_quantity=90,
            broker_price=Decimal("812.35"),
            description="SBIN MIS: quantities differ (ours 100, broker 90)",
        ),
        "info": ReconciliationIssueFactory(
            strategy=momentum,
            symbol="TATAMOTORS",
            severity=Severity.INFO,
            issue_type=IssueType.PRICE_MISMATCH,
            internal_quantity=-75,
            broker_quantity=-75,
            internal_price=Decimal("968.40"),
            broker_price=Decimal("968.95"),
            description="TATAMOTORS: average 968.40 here, 968.95 at the broker",
        ),
    }
    RiskLimit.objects.update_or_create(
        strategy=None,
        defaults={
            "max_order_value": Decimal("500000"),
            "max_total_exposure": Decimal("5000000"),
            "daily_loss_limit": Decimal("25000"),
            "drawdown_limit": Decimal("15000"),
        },
    )
    RiskLimit.objects.create(strategy=arb, max_order_quantity=500, daily_loss_limit=Decimal("5000"))
    # The day's PnL every 5 minutes over the session, ending at each strategy's figure on the
    # dashboard (a random walk pinned at both ends, the same every run).
    day = timezone.localtime(timezone.now()).replace(hour=9, minute=15, second=0, microsecond=0)
    steps = 75  # 09:15 to 15:30
    walk = random.Random(7)
    ends = {momentum: Decimal("1755.25"), mean: Decimal("-625.00"), arb: Decimal("517.50")}
    paths = {}
    for strategy, end in ends.items():
        noise = [0.0]
        for _ in range(steps):
            noise.append(noise[-1] + walk.gauss(0, 160))
        paths[strategy] = [
            Decimal(noise[k] - noise[-1] * k / steps + float(end) * k / steps).quantize(
                Decimal("0.01")
            )
            for k in range(steps + 1)
        ]
    snapshots = []
    for k in range(steps + 1):
        totals = {strategy: path[k] for strategy, path in paths.items()}
        totals[None] = sum(totals.values())
        for strategy, total in totals.items():
            realized = (total * Decimal("0.6")).quantize(Decimal("0.01"))
            snapshots.append(
                PnlSnapshot(
                    strategy=strategy,
                    taken_at=day + timedelta(minutes=5 * k),
                    realized_pnl=realized,
                    unrealized_pnl=total - realized,
                    total_pnl=total,
                )
            )
    PnlSnapshot.objects.bulk_create(snapshots)
    return {"orders": orders, "issues": issues, "strategies": (momentum, mean, arb)}
