"""The admin's shared pieces: rupee amounts, the capped paginator, the calendar drill-down, CSV."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from django.test import RequestFactory

from omsproject.admin_tools import (
    LargeTablePaginator,
    _csv_cell,
    calendar_drilldown,
    indian_grouping,
    inr,
    price,
)
from orders.models import Order
from orders.tests.factories import OrderFactory, StrategyFactory

MINUS = "\N{MINUS SIGN}"


@pytest.mark.parametrize(
    ("digits", "grouped"),
    [
        ("1", "1"),
        ("999", "999"),
        ("1000", "1,000"),
        ("123456", "1,23,456"),
        ("12345678", "1,23,45,678"),
    ],
)
def test_indian_grouping(digits, grouped):
    assert indian_grouping(digits) == grouped


@pytest.mark.parametrize(
    ("amount", "text"),
    [
        (Decimal("1234567.891"), "₹12,34,567.89"),
        (Decimal("-1234.5"), f"{MINUS}₹1,234.50"),
        (Decimal("0.005"), "₹0.01"),  # half up, as everywhere money is rounded
        (0, "₹0.00"),
        (None, "—"),
    ],
)
def test_inr(amount, text):
    assert inr(amount) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [(Decimal("2450.5000"), "2,450.50"), (Decimal("812.345678"), "812.345678"), (None, "—")],
)
def test_price_keeps_the_paisa_and_an_average_decimals(value, text):
    assert price(value) == text


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ("=HYPERLINK()", "'=HYPERLINK()"),
        ("-1+1", "'-1+1"),
        ("INFY", "INFY"),
        (Decimal("-5"), Decimal("-5")),
        (None, ""),
    ],
)
def test_csv_cells_are_never_formulas(value, cell):
    assert _csv_cell(value) == cell


@pytest.mark.django_db
def test_the_paginator_counts_up_to_its_cap(monkeypatch):
    monkeypatch.setattr(LargeTablePaginator, "max_count", 5)
    strategy = StrategyFactory()
    for _ in range(7):
        OrderFactory(strategy=strategy)

    capped = LargeTablePaginator(Order.objects.filter(strategy=strategy), 2)
    exact = LargeTablePaginator(Order.objects.none(), 2)

    assert (capped.count, capped.is_capped, capped.num_pages) == (5, True, 3)
    assert capped.total_label == "5+"  # filtered: no estimate
    assert (exact.count, exact.is_capped, exact.total_label) == (0, False, "0")


def drill(query: str, *, first=date(2024, 3, 9), today=date(2026, 2, 14)):
    request = RequestFactory().get(f"/admin/orders/order/{query}")
    return calendar_drilldown(request, "created_at", first=first, today=today)


def test_the_calendar_offers_years_from_the_oldest_row():
    calendar = drill("?status__exact=OPEN")

    assert calendar["back"] is None
    assert [c["title"] for c in calendar["choices"]] == ["2024", "2025", "2026"]
    assert calendar["choices"][0]["link"] == "?status__exact=OPEN&created_at__year=2024"


def test_months_then_days_up_to_today():
    months = drill("?created_at__year=2026", first=None)
    days = drill("?created_at__year=2026&created_at__month=2&p=3", first=None)
    one_day = drill("?created_at__year=2026&created_at__month=2&created_at__day=9", first=None)

    assert [c["title"] for c in months["choices"]] == ["January 2026", "February 2026"]
    assert months["back"] == {"link": "?", "title": "All dates"}
    assert len(days["choices"]) == 14 and days["choices"][-1]["title"] == "14 Feb"
    assert "p=" not in days["choices"][0]["link"]  # a new range starts at page 1
    assert one_day["choices"] == [{"title": "09 February 2026"}]
    assert one_day["back"]["title"] == "February 2026"


def test_the_oldest_year_starts_at_its_oldest_month():
    assert drill("?created_at__year=2024")["choices"][0]["title"] == "March 2024"
    assert drill("?created_at__year=nonsense")["choices"][0]["title"] == "2024"
