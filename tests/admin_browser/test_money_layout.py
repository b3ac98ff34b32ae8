"""Money on the admin's screens in a real browser at 1440x900: the positions list reads like a
trader's terminal (mark with its time, value, realized gross and net, a totals row), and the
positions, trades and daily stats lists fit the width without scrolling sideways, with crores
in their figures. Screenshots: artifacts/screenshots/money-*.png."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from playwright.sync_api import expect

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Neither the page nor the list's own box (.results scrolls on its own) is wider than the window.
NO_SIDEWAYS_SCROLL = """() => {
  const results = document.querySelector('.results');
  return document.documentElement.scrollWidth <= window.innerWidth
    && (!results || results.scrollWidth <= results.clientWidth);
}"""


@pytest.fixture
def crores(desk):
    """Beside the desk: a fill of 1,00,000 at 3,890.50 (₹38.9 crore), its position, a day's
    statistics in crores: the widest figures the lists show."""
    from orders.enums import OrderStatus
    from orders.tests.factories import OrderFactory, TradeFactory
    from positions.tests.factories import DailyStatsFactory, PositionFactory

    momentum, mean, arb = desk["strategies"]
    order = OrderFactory(
        strategy=arb,
        symbol="INFY",
        quantity=100_000,
        price=Decimal("3890.50"),
        status=OrderStatus.OPEN,
        broker_order_id="241100009999",
    )
    fill = TradeFactory(
        order=order,
        quantity=100_000,
        price=Decimal("3890.50"),
        brokerage=Decimal("20.00"),
        stt=Decimal("97262.50"),
        gst=Decimal("3.60"),
        total_charges=Decimal("97286.10"),
    )
    order.filled_quantity, order.average_price = 100_000, Decimal("3890.50")
    order.status = OrderStatus.FILLED
    order.save()
    PositionFactory(
        strategy=arb,
        symbol="INFY",
        quantity=100_000,
        average_price=Decimal("3890.503333"),
        last_price=Decimal("3912.25"),
        last_price_at=timezone.now() - timedelta(seconds=40),
        unrealized_pnl=Decimal("2174666.70"),
        realized_pnl=Decimal("1234567.80"),
        stop_loss=Decimal("3800.00"),
        take_profit=Decimal("4100.00"),
        opened_at=fill.executed_at - timedelta(minutes=1),
    )
    for strategy in (momentum, mean, arb):
        DailyStatsFactory(
            strategy=strategy,
            date=date(2026, 1, 5),
            total_orders=12_345,
            filled_orders=12_000,
            cancelled_orders=300,
            rejected_orders=45,
            total_trades=24_680,
            winning_trades=13_000,
            losing_trades=11_680,
            gross_pnl=Decimal("-12345678.90"),
            total_charges=Decimal("234567.80"),
            net_pnl=Decimal("-12580246.70"),
            turnover=Decimal("9876543210.00"),
            max_drawdown=Decimal("15432109.87"),
        )
    return order


def test_the_lists_fit_1440_px_and_read_in_rupees(
    page, live_server, people, desk, crores, log_in, shot
):
    log_in(people["Risk officer"])

    page.goto(f"{live_server.url}/admin/positions/position/")
    table = page.locator("#result_list")
    expect(table).to_contain_text("₹39,12,25,000.00")  # 1,00,000 at the mark 3,912.25
    expect(table.locator("tfoot")).to_contain_text("Totals of 4 positions")
    expect(table.locator(".oms-average[title='3890.503333']")).to_have_text("3,890.50")
    shot("money-positions")
    assert page.evaluate(NO_SIDEWAYS_SCROLL), "positions scroll sideways at 1440 px"

    page.goto(f"{live_server.url}/admin/orders/trade/")
    expect(page.locator("#result_list")).to_contain_text("₹38,90,50,000.00")
    expect(page.locator("#result_list")).to_contain_text("1,00,000")
    shot("money-trades")
    assert page.evaluate(NO_SIDEWAYS_SCROLL), "trades scroll sideways at 1440 px"

    page.goto(f"{live_server.url}/admin/positions/dailystats/")
    expect(page.locator("#result_list")).to_contain_text("₹9,87,65,43,210.00")
    shot("money-daily-stats")
    assert page.evaluate(NO_SIDEWAYS_SCROLL), "daily stats scroll sideways at 1440 px"

    page.goto(f"{live_server.url}/admin/orders/order/{crores.pk}/change/")
    fills = page.locator(".inline-group", has_text="trades (fills, with charges)")
    expect(fills).to_contain_text("₹38,90,50,000.00")
    expect(fills).to_contain_text("3,890.50")
    expect(fills).not_to_contain_text("3890.5000")
    shot("money-order-fills")

    page.goto(f"{live_server.url}/admin/risk/risklimit/")
    expect(page.locator("#result_list")).to_contain_text("₹50,00,000.00")
    shot("money-limits")
