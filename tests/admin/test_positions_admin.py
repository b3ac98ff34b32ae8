"""Positions in the admin: open by default, PnL at a glance, stop-loss and take-profit set
through position_protection_set; nothing else about a position is editable."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace

import pytest
from django.contrib.admin.models import LogEntry
from django.utils import timezone

from orders.enums import StrategyMode
from orders.tests.factories import StrategyFactory
from positions.tests.factories import PositionFactory
from risk import calendar

pytestmark = pytest.mark.django_db

LIST = "/admin/positions/position/"


def test_open_positions_by_default_with_coloured_pnl(as_viewer):
    now = timezone.now()
    open_ = PositionFactory(unrealized_pnl=Decimal("-625.00"))
    closed = PositionFactory(quantity=0, opened_at=now, closed_at=now)

    assert list(as_viewer.get(LIST).context["cl"].result_list) == [open_]
    assert list(as_viewer.get(LIST, {"held": "closed"}).context["cl"].result_list) == [closed]
    page = as_viewer.get(LIST).content.decode()
    assert "oms-pnl--down" in page and "₹625.00" in page and "LONG 10" in page


def test_a_risk_officer_sets_stop_loss_and_take_profit(as_risk_officer, risk_officer):
    position = PositionFactory(
        quantity=10, average_price=Decimal("100"), last_price=Decimal("101.00")
    )

    response = as_risk_officer.post(
        f"{LIST}{position.pk}/change/", {"stop_loss": "95.50", "take_profit": "120"}
    )

    assert response.status_code == 302
    position.refresh_from_db()
    assert (position.stop_loss, position.take_profit) == (Decimal("95.50"), Decimal("120"))
    entry = LogEntry.objects.get(object_id=str(position.pk), content_type__model="position")
    assert entry.user == risk_officer


def test_a_level_on_the_wrong_side_is_a_form_error(as_risk_officer):
    position = PositionFactory(
        quantity=10, average_price=Decimal("100"), last_price=Decimal("101.00")
    )

    response = as_risk_officer.post(
        f"{LIST}{position.pk}/change/", {"stop_loss": "102.00", "take_profit": ""}
    )

    assert response.status_code == 200
    assert "a long&#x27;s stop-loss must be below 101.00" in response.content.decode()
    position.refresh_from_db()
    assert position.stop_loss is None


def test_money_and_quantity_are_never_editable(as_risk_officer):
    position = PositionFactory(quantity=10, realized_pnl=Decimal("5.00"))

    as_risk_officer.post(
        f"{LIST}{position.pk}/change/",
        {"quantity": "99", "realized_pnl": "1000000", "stop_loss": "", "take_profit": ""},
    )

    position.refresh_from_db()
    assert (position.quantity, position.realized_pnl) == (10, Decimal("5.00"))


def test_closed_positions_and_viewers_are_read_only(as_risk_officer, as_viewer):
    now = timezone.now()
    closed = PositionFactory(quantity=0, opened_at=now, closed_at=now)
    open_ = PositionFactory()

    assert (
        as_risk_officer.post(f"{LIST}{closed.pk}/change/", {"stop_loss": "1.00"}).status_code == 403
    )
    assert as_viewer.post(f"{LIST}{open_.pk}/change/", {"stop_loss": "1.00"}).status_code == 403
    assert 'name="stop_loss"' not in as_viewer.get(f"{LIST}{open_.pk}/change/").content.decode()


def test_a_live_positions_stale_mark_is_flagged(as_viewer, monkeypatch, settings):
    session = datetime(2026, 1, 14, 10, 0, tzinfo=calendar.IST)  # a trading morning
    monkeypatch.setattr(calendar, "timezone", SimpleNamespace(now=lambda: session))
    settings.OMS_MARK_STALE_SECONDS = 30
    live = StrategyFactory(mode=StrategyMode.LIVE)
    marked = {"last_price": Decimal("101.00")}
    stale = PositionFactory(
        strategy=live, last_price_at=timezone.now() - timedelta(seconds=45), **marked
    )
    fresh = PositionFactory(strategy=live, last_price_at=timezone.now(), **marked)
    paper = PositionFactory(last_price_at=timezone.now() - timedelta(hours=1), **marked)

    rows = {p.pk: p.mark_stale for p in as_viewer.get(LIST).context["cl"].result_list}

    assert rows == {stale.pk: True, fresh.pk: False, paper.pk: False}
    assert as_viewer.get(LIST).content.decode().count(">STALE<") == 1
