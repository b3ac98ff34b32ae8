"""List endpoints cost the same number of queries whatever the page size (no N+1)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from orders.enums import OrderStatus
from orders.models import Order
from orders.tests.factories import OrderEventFactory, OrderFactory, TradeFactory
from positions.tests.factories import PositionFactory

pytestmark = pytest.mark.django_db


def queries(client, path: str, **params) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(path, params)
    assert response.status_code == 200, response.json()
    return len(captured)


@pytest.fixture
def api(caller):
    """The caller's client, its key's last_used_at already fresh (an UPDATE once a minute)."""
    caller.client.get("/api/v1/health/")
    caller.client.get("/api/v1/strategy/")
    return caller.client


@pytest.fixture
def many_rows(caller):
    strategy = caller.strategy
    order = OrderFactory(strategy=strategy, status=OrderStatus.OPEN, quantity=1000)
    Order.objects.filter(pk=order.pk).update(broker_order_id="BIG-1")
    for _ in range(60):
        OrderFactory(strategy=strategy)
        TradeFactory(order=order, quantity=1)
        PositionFactory(strategy=strategy)
    for _ in range(3):
        OrderEventFactory(order=order)
    return order


@pytest.mark.parametrize("path", ["/api/v1/orders/", "/api/v1/trades/", "/api/v1/positions/"])
def test_list_queries_do_not_grow_with_the_page(api, many_rows, path):
    small = queries(api, path, page_size=5)
    large = queries(api, path, page_size=50)

    assert small == large
    # the key, the request count, the page: nothing per row
    assert large == 3


def test_the_detail_costs_the_same_with_more_events_and_trades(api, many_rows):
    few = OrderFactory(strategy=many_rows.strategy)
    # the key, the request count, the order, its events, its trades
    assert queries(api, f"/api/v1/orders/{few.pk}/") == 5
    assert queries(api, f"/api/v1/orders/{many_rows.pk}/") == 5
