"""The small things of issue 18: a styled 403 page, counts that meet their nouns, the count
line of large lists, the holidays page showing the calendar's holidays, readable titles."""

from __future__ import annotations

from datetime import date

import pytest

from omsproject.admin_tools import LargeTablePaginator
from orders.admin import OrderAdmin
from orders.tests.factories import OrderFactory
from risk import calendar
from risk.models import MarketHoliday

pytestmark = pytest.mark.django_db


def test_a_forbidden_page_is_the_admin_s_own_with_a_way_back(as_viewer):
    response = as_viewer.get("/admin/risk/risklimit/add/")

    assert response.status_code == 403
    html = response.content.decode()
    assert "Not allowed" in html and 'id="site-name"' in html  # the admin's frame
    assert "signed in as <strong>vera</strong>" in html
    assert 'href="/admin/" class="button" id="back-home"' in html


def test_a_searched_capped_list_says_one_count_the_way_the_footer_does(as_viewer, monkeypatch):
    monkeypatch.setattr(LargeTablePaginator, "max_count", 10)
    monkeypatch.setattr(OrderAdmin, "list_per_page", 5)
    for _ in range(12):
        OrderFactory(symbol="INFY")

    html = as_viewer.get("/admin/orders/order/", {"q": "INFY"}).content.decode()

    assert "10+ results (" in html and "10 results" not in html
    assert "10+ orders" in html and "counted up to 10:" in html


def test_counts_are_grouped_the_indian_way():
    paginator = LargeTablePaginator(range(0), 10)
    paginator.__dict__.update(count=10_000, is_capped=True, estimate=200_033)
    paginator.max_count = 10_000

    assert paginator.total_label == "10,000+ of about 2,00,033"


def test_the_holidays_page_shows_the_calendar_library_s_holidays(as_viewer):
    year = calendar.ist().year
    MarketHoliday.objects.create(date=date(year, 12, 31), description="a one-off closure")

    html = as_viewer.get("/admin/risk/marketholiday/").content.decode()

    assert "Exchange holidays from the calendar library" in html
    assert f"<strong>{year}</strong>" in html and f"<strong>{year + 1}</strong>" in html
    for day in calendar.exchange_holidays(year):
        assert day.strftime("%a %d %b") in html
    assert "a one-off closure" in html  # the table's own rows, below
    assert "manage.py load_holidays" in html


def test_the_admin_index_names_models_readably(as_viewer):
    html = as_viewer.get("/admin/").content.decode()

    assert "PnL snapshots" in html and "Pnl snapshots" not in html
    assert "Instrument refreshs" not in html


def test_an_unfiltered_list_has_one_count_line(as_viewer):
    for _ in range(3):
        OrderFactory()

    html = as_viewer.get("/admin/orders/order/").content.decode()

    assert 'id="search-result-count"' not in html  # no "3 results (Show all)" beside it
    assert "3 orders" in html
