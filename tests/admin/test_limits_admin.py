"""Risk limits in the admin: every limit in force, where it comes from, and a warning for each
that is off, on the limits list, a limits row and the strategy's page (the API's report)."""

from __future__ import annotations

import pytest

from orders.tests.factories import StrategyFactory
from risk.models import RiskLimit

pytestmark = [pytest.mark.django_db, pytest.mark.safe_defaults]

OFF_GLOBALLY = ("max_strategy_exposure", "max_total_exposure", "drawdown_limit", "rejection_burst")


def test_the_limits_list_shows_the_shipped_global_limits_and_flags_the_off_ones(as_viewer):
    page = as_viewer.get("/admin/risk/risklimit/")

    assert page.status_code == 200
    html = page.content.decode()
    assert "Global limits in force" in html
    assert "Price band around the last price (%)" in html
    assert "<strong>₹10,00,000.00</strong>" in html  # money reads like money, not 1000000.00
    # The list's own row: the same figures, grouped the Indian way.
    assert '<td class="field-max_order_value">₹10,00,000.00</td>' in html
    assert '<td class="field-max_strategy_exposure">—</td>' in html  # off: a dash, as the rest
    for name in (*OFF_GLOBALLY, "max_position_quantity"):
        assert f"{name} is off (no value at any level)" in html
    assert "max_order_value is off" not in html


def test_a_strategy_page_shows_its_limits_with_their_sources(as_viewer):
    strategy = StrategyFactory(config={"limits": {"max_order_quantity": 40}})
    RiskLimit.objects.create(strategy=strategy, max_position_quantity=300)

    html = as_viewer.get(f"/admin/orders/strategy/{strategy.pk}/change/").content.decode()

    assert "Risk limits in force" in html
    assert "<strong>40</strong></td>\n      <td>config</td>" in html
    assert "<strong>300</strong></td>\n      <td>strategy</td>" in html
    assert "max_position_quantity is off" not in html
    for name in OFF_GLOBALLY:
        assert f"{name} is off" in html


def test_a_limits_row_page_warns_when_no_global_row_exists(as_viewer):
    RiskLimit.objects.filter(strategy__isnull=True).delete()
    row = RiskLimit.objects.create(strategy=StrategyFactory(), max_order_quantity=10)

    html = as_viewer.get(f"/admin/risk/risklimit/{row.pk}/change/").content.decode()

    assert "no global risk limits row: only a strategy&#x27;s own limits apply" in html
    assert "max_order_value is off" in html
