"""GET /api/v1/positions/: the calling strategy's positions, open by default."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from orders.tests.api.conftest import make_caller
from positions.tests.factories import PositionFactory

pytestmark = pytest.mark.django_db

POSITIONS = "/api/v1/positions/"
MARKED = datetime(2026, 12, 1, 10, 15, 30, tzinfo=UTC)


@pytest.fixture
def caller():
    return make_caller(name="Positions strategy")


@pytest.fixture
def book(caller):
    strategy = caller.strategy
    long = PositionFactory(
        strategy=strategy,
        symbol="RELIANCE",
        quantity=10,
        average_price=Decimal("2450.333333"),
        last_price=Decimal("2460.00"),
        last_price_at=MARKED,
        unrealized_pnl=Decimal("96.67"),
    )
    short = PositionFactory(strategy=strategy, symbol="INFY", quantity=-5, product="CNC")
    opened = timezone.now() - timedelta(hours=2)
    closed = PositionFactory(
        strategy=strategy,
        symbol="TCS",
        quantity=0,
        realized_pnl=Decimal("-12.40"),
        opened_at=opened,
        closed_at=opened + timedelta(minutes=30),
    )
    return {"long": long, "short": short, "closed": closed}


def ids(client, **params) -> list[int]:
    response = client.get(POSITIONS, params)
    assert response.status_code == 200, response.json()
    return [p["id"] for p in response.json()["results"]]


def test_open_positions_by_default_newest_first(caller, book):
    assert ids(caller.client) == [book["short"].pk, book["long"].pk]
    assert ids(caller.client, status="open") == [book["short"].pk, book["long"].pk]


def test_closed_and_all(caller, book):
    assert ids(caller.client, status="closed") == [book["closed"].pk]
    assert set(ids(caller.client, status="all")) == {p.pk for p in book.values()}


def test_filters(caller, book):
    assert ids(caller.client, symbol="reliance") == [book["long"].pk]
    assert ids(caller.client, product="CNC") == [book["short"].pk]


def test_a_bad_status_is_a_400(caller, book):
    response = caller.client.get(POSITIONS, {"status": "sideways"})

    assert response.status_code == 400
    assert "status" in response.json()["error"]["fields"]


def test_the_position_fields_and_money_as_strings(caller, book):
    [long] = [
        p for p in caller.client.get(POSITIONS).json()["results"] if p["symbol"] == "RELIANCE"
    ]
    assert long["quantity"] == 10
    assert long["average_price"] == "2450.333333"
    assert long["last_price"] == "2460.00"
    assert parse_datetime(long["last_price_at"]) == MARKED  # each mark comes with its time
    assert long["unrealized_pnl"] == "96.67"
    assert long["realized_pnl"] == "0.00"
    assert long["total_pnl"] == "96.67"
    assert long["closed_at"] is None
    assert {"exchange", "product", "opened_at"} <= set(long)

    closed = caller.client.get(f"{POSITIONS}{book['closed'].pk}/").json()
    assert (closed["quantity"], closed["realized_pnl"]) == (0, "-12.40")
    assert closed["closed_at"] is not None


def test_a_short_is_a_negative_quantity(caller, book):
    short = caller.client.get(f"{POSITIONS}{book['short'].pk}/").json()
    assert (short["quantity"], short["average_price"]) == (-5, "100.00")
