"""Rejections read as risk decisions: a pre-trade refusal is "Refused by risk checks" with one
line per violation (code, field, value vs limit in rupees), a broker's rejection stays "Decided
by the broker"; the orders list has a reason column and a Today filter, and a strategy's
rejected orders of the day are a link on its page."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from orders.enums import EventSource, OrderStatus
from orders.models import Order
from orders.services import order_place
from orders.tests.factories import OrderFactory, StrategyFactory
from risk.tests.factories import limits_set, order_request

pytestmark = pytest.mark.django_db

LIST = "/admin/orders/order/"


def refused_order(strategy) -> Order:
    """An order the pre-trade checks refuse twice: its quantity and its value."""
    limits_set(max_order_quantity=5, max_order_value=Decimal("20000.00"))
    result = order_place(
        order_request(strategy, quantity=10, price="2450.00"), actor="test", source=EventSource.API
    )
    assert result.status == OrderStatus.REJECTED
    return Order.objects.get(pk=result.order_id)


def test_a_pre_trade_refusal_reads_as_the_risk_checks_decision(as_viewer):
    order = refused_order(StrategyFactory())

    page = as_viewer.get(f"{LIST}{order.pk}/change/").content.decode()

    assert "Refused by risk checks" in page
    assert "Decided by the broker" not in page
    lines = re.findall(r'<li class="oms-violation"[^>]*>(.*?)</li>', page, re.S)
    assert len(lines) == 2
    assert lines[0] == "<code>max_order_quantity</code> · quantity · 10 " + (
        "<span class='oms-vs'>vs limit</span> 5"
    )
    assert lines[1] == "<code>max_order_value</code> · quantity · ₹24,500.00 " + (
        "<span class='oms-vs'>vs limit</span> ₹20,000.00"
    )
    # The check's own words stay on hover.
    assert 'title="order value ₹24,500.00: above the limit ₹20,000.00"' in page
    listed = as_viewer.get(LIST).content.decode()
    assert "Risk checks: max_order_quantity, max_order_value</span>" in listed
    assert f'title="{order.status_message}"' in listed


def test_a_broker_rejection_stays_the_broker_s_decision(as_viewer):
    order = OrderFactory(status=OrderStatus.REJECTED, status_message="RMS: margin exceeds")

    page = as_viewer.get(f"{LIST}{order.pk}/change/").content.decode()

    assert "Decided by the broker" in page
    assert "Refused by risk checks" not in page
    assert "RMS: margin exceeds" in page


def test_the_list_shows_the_reason_short_with_the_whole_on_hover(as_viewer):
    long_reason = "RMS: " + "margin shortfall for this order; " * 4
    OrderFactory(status=OrderStatus.REJECTED, status_message=long_reason)

    page = as_viewer.get(LIST).content.decode()

    assert f'title="{long_reason}"' in page
    assert long_reason[:55] + "…" in page
    assert "<th" in page and "column-reason" in page


def test_today_is_one_click_and_a_strategy_s_rejections_two(as_viewer):
    strategy = StrategyFactory(name="Momentum")
    today = refused_order(strategy)
    older = OrderFactory(strategy=strategy, status=OrderStatus.REJECTED, status_message="old")
    Order.objects.filter(pk=older.pk).update(created_at=timezone.now() - timedelta(days=2))
    OrderFactory(strategy=strategy, status=OrderStatus.OPEN)
    OrderFactory(status=OrderStatus.REJECTED, status_message="another strategy's")

    strategy_page = as_viewer.get(f"/admin/orders/strategy/{strategy.pk}/change/")
    link = re.search(
        r'<a href="([^"]+)" id="rejected-today">Rejected today: 1</a>',
        strategy_page.content.decode(),
    )
    assert link, "the strategy page links to today's rejected orders"
    listed = as_viewer.get(link.group(1).replace("&amp;", "&"))

    assert [order.pk for order in listed.context["cl"].result_list] == [today.pk]
    today_only = as_viewer.get(LIST, {"day": "today", "status__exact": "REJECTED"})
    assert older.pk not in [order.pk for order in today_only.context["cl"].result_list]
    assert 'href="?day=today"' in as_viewer.get(LIST).content.decode()
