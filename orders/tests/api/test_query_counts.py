"""List endpoints cost the same number of queries whatever the page size (no N+1), and
placing an order costs a fixed number (so a repeated read cannot creep back in)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from orders.enums import OrderStatus
from orders.models import Order
from orders.tests.api.conftest import order_body
from orders.tests.factories import OrderEventFactory, OrderFactory, TradeFactory
from positions.tests.factories import PositionFactory
from risk.models import RiskLimit

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
    # the key with the request's count (one statement), the page: nothing per row
    assert large == 2


def test_the_detail_costs_the_same_with_more_events_and_trades(api, many_rows):
    few = OrderFactory(strategy=many_rows.strategy)
    # the key with the request's count, the order, its events, its trades
    assert queries(api, f"/api/v1/orders/{few.pk}/") == 4
    assert queries(api, f"/api/v1/orders/{many_rows.pk}/") == 4


# A placement's statements (orders.services.placement): the key with the request's count; then,
# in one transaction (its BEGIN and COMMIT; a savepoint and its release inside the test's own),
# the locks (the kill switch's shared one and the strategy's row), the order's context (limits,
# instrument, last price, position, staff holiday, both kill switches, a replay's original),
# and one statement counting the order rate and writing the order with its first event and its
# submission job.
PLACEMENT_QUERIES = 6


def test_placing_an_order_costs_a_fixed_number_of_queries(
    api, caller, django_assert_max_num_queries
):
    with django_assert_max_num_queries(PLACEMENT_QUERIES):
        response = api.post("/api/v1/orders/", order_body(), format="json")

    assert response.status_code == 201, response.json()
    assert Order.objects.get(pk=response.json()["id"]).client_order_id == "c-0001"


def test_every_limit_set_costs_only_the_reads_of_its_checks(
    api, caller, django_assert_max_num_queries
):
    RiskLimit.objects.create(
        max_open_orders=100,
        max_total_exposure=Decimal("1e9"),
        daily_loss_limit=Decimal("100000.00"),
        price_band_percent=Decimal("20.00"),
    )
    RiskLimit.objects.create(
        strategy=caller.strategy,
        max_strategy_exposure=Decimal("1e8"),
        daily_loss_limit=Decimal("50000.00"),
    )

    # + open orders, the strategy's and the total exposure (and its lock), both days' PnL
    with django_assert_max_num_queries(PLACEMENT_QUERIES + 6):
        response = api.post("/api/v1/orders/", order_body(), format="json")

    assert response.status_code == 201, response.json()


def test_a_replay_costs_the_lock_and_the_look_up(api, django_assert_max_num_queries):
    assert api.post("/api/v1/orders/", order_body(), format="json").status_code == 201

    # the key with the request's count, savepoint, locks, the context, the original, release
    with django_assert_max_num_queries(6):
        replay = api.post("/api/v1/orders/", order_body(), format="json")

    assert replay.status_code == 200
    assert replay["Idempotent-Replayed"] == "true"
