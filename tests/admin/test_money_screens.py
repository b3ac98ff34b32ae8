"""Money reads like money on the admin's screens: the fill table, a trade, the limits, the
positions list with its totals row, daily stats, confirmations, titles and counts (all written
by omsproject.money_format)."""

from __future__ import annotations

import re
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from omsproject.admin_tools import field_format
from orders.enums import OrderStatus
from orders.tests.factories import OrderFactory, StrategyFactory, TradeFactory
from positions.models import IssueType, Position, Severity
from positions.tests.factories import (
    DailyStatsFactory,
    PositionFactory,
    ReconciliationIssueFactory,
)
from risk.models import PnlSnapshot

pytestmark = pytest.mark.django_db

MINUS = "\N{MINUS SIGN}"


def page(client, url: str, params=None) -> str:
    """The page's HTML with the whitespace between tags taken out."""
    return re.sub(r">\s+<", "><", client.get(url, params or {}).content.decode())


def big_fill():
    """A fill of 1,00,000 at 3,890.50: ₹38,90,50,000.00 of value (the issue's 389050000.00)."""
    order = OrderFactory(
        quantity=100_000, price=Decimal("3890.50"), status=OrderStatus.OPEN, symbol="INFY"
    )
    return TradeFactory(order=order, quantity=100_000, price=Decimal("3890.50"))


def test_the_fill_table_on_an_order_page_reads_in_rupees(as_viewer):
    trade = big_fill()

    html = page(as_viewer, f"/admin/orders/order/{trade.order_id}/change/")

    assert "389050000.00" not in html and "3890.5000" not in html
    assert '<td class="field-gross_value"><p>₹38,90,50,000.00</p></td>' in html
    assert '<td class="field-price"><p>3,890.50</p></td>' in html
    assert '<td class="field-quantity"><p>1,00,000</p></td>' in html
    trade.refresh_from_db()
    charges = f"{trade.total_charges:,.2f}"  # below a lakh: the same digits either way
    assert f'<td class="field-total_charges"><p>₹{charges}</p></td>' in html
    # The order's own read-only fields: its limit price at the tick, its quantity grouped.
    assert '<div class="readonly">3,890.50</div>' in html
    assert '<div class="readonly">1,00,000</div>' in html


def test_a_trade_page_and_the_trades_list_read_in_rupees(as_viewer):
    trade = big_fill()

    detail = page(as_viewer, f"/admin/orders/trade/{trade.pk}/change/")
    listing = page(as_viewer, "/admin/orders/trade/")

    assert '<div class="readonly">₹38,90,50,000.00</div>' in detail
    assert '<div class="readonly">3,890.50</div>' in detail
    assert "389050000.00" not in detail and "3890.5000" not in detail
    assert '<td class="field-quantity">1,00,000</td>' in listing
    assert '<td class="field-value">₹38,90,50,000.00</td>' in listing
    assert "INFY @ 3,890.50" in str(trade)


def test_the_positions_list_reads_like_a_terminal_with_a_totals_row(as_viewer):
    strategy = StrategyFactory()
    now = timezone.now()
    long = PositionFactory(
        strategy=strategy,
        symbol="INFY",
        quantity=140,
        average_price=Decimal("1510.364286"),
        last_price=Decimal("1520.00"),
        last_price_at=now,
        unrealized_pnl=Decimal("1349.00"),
        realized_pnl=Decimal("250000.00"),
        opened_at=now - timedelta(hours=2),
    )
    PositionFactory(
        strategy=strategy,
        symbol="TCS",
        quantity=-10,
        average_price=Decimal("4000"),
        last_price=Decimal("4100.00"),
        last_price_at=now,
        unrealized_pnl=Decimal("-1000.00"),
        realized_pnl=Decimal("-500.00"),
    )
    order = OrderFactory(strategy=strategy, symbol="INFY", status=OrderStatus.OPEN)
    fill = TradeFactory(
        order=order,
        quantity=140,
        price=Decimal("1510.00"),
        brokerage=Decimal("20.00"),
        gst=Decimal("3.60"),
        total_charges=Decimal("23.60"),
    )
    fill.refresh_from_db()

    html = page(as_viewer, "/admin/positions/position/")

    # The average to two decimals, the exact value on hover; the mark with its time.
    assert '<span class="oms-average" title="1510.364286">1,510.36</span>' in html
    assert "1,520.00<br>" in html
    assert '<td class="field-value">₹2,12,800.00</td>' in html  # 140 x 1,520.00
    assert f'<td class="field-value">{MINUS}₹41,000.00</td>' in html  # a short's value
    assert fill.total_charges == Decimal("23.60")
    # Realized, gross and net of the charges of the position's fills (2,50,000 less 23.60).
    assert "gross ₹2,50,000.00 less charges ₹23.60" in html
    assert "+₹2,49,976.40" in html
    # The totals row: every filtered position, not only the page's.
    footer = html[html.index("<tfoot>") : html.index("</tfoot>")]
    assert "<strong>Totals</strong> of 2 positions" in footer
    assert "₹1,71,800.00" in footer  # 2,12,800 less 41,000
    assert "+₹349.00" in footer  # unrealized: 1,349 less 1,000
    assert "+₹2,49,500.00" in footer  # realized gross
    assert "less charges ₹23.60" in footer and "+₹2,49,476.40" in footer
    assert str(long).startswith("INFY NSE MIS: long 140 @ 1,510.36")


def test_the_totals_row_follows_the_filters(as_viewer):
    PositionFactory(unrealized_pnl=Decimal("10.00"))
    now = timezone.now()
    PositionFactory(
        quantity=0, opened_at=now - timedelta(hours=1), closed_at=now, realized_pnl=Decimal("99.00")
    )

    open_only = as_viewer.get("/admin/positions/position/").content.decode()
    everything = as_viewer.get("/admin/positions/position/", {"held": "all"}).content.decode()

    assert "of 1 position<" in open_only and "+₹99.00" not in open_only.split("<tfoot>")[1]
    assert "of 2 positions<" in everything and "+₹99.00" in everything.split("<tfoot>")[1]


def test_daily_stats_and_pnl_snapshots_read_in_rupees(as_viewer):
    DailyStatsFactory(
        date=date(2026, 1, 5),
        total_orders=12000,
        filled_orders=12000,
        gross_pnl=Decimal("1234567.89"),
        net_pnl=Decimal("1234567.89"),
        turnover=Decimal("123456789.10"),
    )
    PnlSnapshot.objects.create(
        taken_at=timezone.now(),
        realized_pnl=Decimal("-150000.00"),
        unrealized_pnl=Decimal("0.00"),
        total_pnl=Decimal("-150000.00"),
    )

    stats = as_viewer.get("/admin/positions/dailystats/").content.decode()
    snapshots = as_viewer.get("/admin/risk/pnlsnapshot/").content.decode()
    index = as_viewer.get("/admin/").content.decode()

    assert "₹12,34,00,000" not in stats  # (guard against a wrong grouping)
    assert "₹12,34,56,789.10" in stats and "+₹12,34,567.89" in stats
    assert '12,000<br><small class="quiet">12,000 / 0 / 0</small>' in stats
    assert f"{MINUS}₹1,50,000.00" in snapshots
    assert "PnL snapshots" in index and "Pnl snapshots" not in index


def test_one_order_to_cancel_reads_this_working_order(as_risk_officer):
    order = OrderFactory(quantity=2500, price=Decimal("2450.50"))

    html = as_risk_officer.get(f"/admin/orders/order/{order.pk}/cancel/").content.decode()

    assert "This working order will be cancelled" in html and "These 1" not in html
    assert "0 / 2,500" in html and "LIMIT 2,450.50" in html


def test_issues_have_readable_titles_and_quantities(as_viewer):
    issue = ReconciliationIssueFactory(
        issue_type=IssueType.UNKNOWN_POSITION,
        severity=Severity.CRITICAL,
        symbol="INFY",
        internal_quantity=None,
        broker_quantity=150000,
        detected_at=timezone.now() - timedelta(minutes=12, seconds=30),
    )

    html = as_viewer.get("/admin/positions/reconciliationissue/").content.decode()
    detail = as_viewer.get(f"/admin/positions/reconciliationissue/{issue.pk}/change/")

    assert str(issue) == "Critical · Position unknown to us · INFY"
    assert "— / <strong>1,50,000</strong>" in html
    assert ">12 min<" in html and "0.2 h" not in html
    assert "UNKNOWN_POSITION" not in detail.context["title"] + str(detail.context["original"])


def test_a_position_page_reads_in_rupees_with_exact_values_on_hover(as_viewer):
    position = PositionFactory(
        quantity=140,
        average_price=Decimal("1510.364286"),
        last_price=Decimal("1520.05"),
        realized_pnl=Decimal("-1234567.89"),
        peak_pnl=Decimal("250000.00"),
    )

    html = page(as_viewer, f"/admin/positions/position/{position.pk}/change/")

    assert '<span class="oms-average" title="1510.364286">1,510.36</span>' in html
    assert '<div class="readonly">1,520.05</div>' in html
    assert f"{MINUS}₹12,34,567.89" in html and "oms-pnl--down" in html
    assert '<div class="readonly">₹2,50,000.00</div>' in html  # the peak, not 250000.00
    # A money field kept to 6 decimals (the cash flow, not on the page): rupees to the paisa,
    # the stored value on hover.
    cash_flow = field_format(Position._meta.get_field("cash_flow"))
    assert str(cash_flow(Decimal("-1446018.890040"))) == (
        f'<span title="-1446018.89004">{MINUS}₹14,46,018.89</span>'
    )
    assert "1510.364286</div>" not in html
