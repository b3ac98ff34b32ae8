"""The strategy's order rate (SEBI: 10 a second) through the API, and price feeds kept to
the strategy that sends them."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from orders.enums import OrderStatus, StrategyMode
from orders.models import Order, PaperOrder
from orders.tests.api.conftest import order_body
from orders.tests.factories import StrategyFactory
from positions.services import market_prices_update
from risk.models import RateBucket, RiskLimit


def drain_rate_bucket(strategy, rate: int) -> None:
    """Spend the strategy's order bucket as of a moment still to come: nothing refills it."""
    RateBucket.objects.update_or_create(
        key=f"orders:strategy:{strategy.pk}",
        defaults={
            "tokens": 0,
            "capacity": rate,
            "refill_per_second": rate,
            "updated_at": timezone.now() + timedelta(minutes=5),
        },
    )


@pytest.mark.django_db
def test_the_order_over_the_rate_is_a_429_and_leaves_nothing_behind(caller):
    RiskLimit.objects.create(strategy=caller.strategy, orders_per_second=3)
    accepted = caller.client.post(
        "/api/v1/orders/", order_body(client_order_id="r-1"), format="json"
    )
    drain_rate_bucket(caller.strategy, 3)

    refused = caller.client.post(
        "/api/v1/orders/", order_body(client_order_id="r-2"), format="json"
    )

    assert accepted.status_code == 201
    assert refused.status_code == 429
    assert refused.data["error"]["code"] == "order_rate"
    assert int(refused["Retry-After"]) >= 1
    # Nothing was recorded for it, so the same client_order_id is free for the retry.
    assert not Order.objects.filter(client_order_id="r-2").exists()
    assert Order.objects.filter(strategy=caller.strategy).count() == 1


@pytest.mark.django_db
def test_replays_do_not_count_against_the_rate(caller):
    RiskLimit.objects.create(strategy=caller.strategy, orders_per_second=2)
    body = order_body(client_order_id="same")

    statuses = [
        caller.client.post("/api/v1/orders/", body, format="json").status_code for _ in range(5)
    ]

    assert statuses == [201, 200, 200, 200, 200]
    second = caller.client.post(
        "/api/v1/orders/", order_body(client_order_id="other"), format="json"
    )
    assert second.status_code == 201


@pytest.mark.django_db
def test_refused_orders_do_not_use_up_the_rate(caller):
    RiskLimit.objects.create(strategy=caller.strategy, orders_per_second=1)
    too_big = order_body(client_order_id="big", quantity=7)
    RiskLimit.objects.filter(strategy=caller.strategy).update(max_order_quantity=5)

    refused = caller.client.post("/api/v1/orders/", too_big, format="json")
    accepted = caller.client.post(
        "/api/v1/orders/", order_body(client_order_id="ok", quantity=5), format="json"
    )

    assert refused.status_code == 422
    assert accepted.status_code == 201


@pytest.mark.django_db(transaction=True)
def test_a_strategys_price_feed_touches_only_its_own_paper_orders(caller, run_jobs):
    other = StrategyFactory(name="Someone else", mode=StrategyMode.PAPER)
    market_prices_update([("SBIN", "NSE", Decimal("812.35"))])
    body = order_body(
        client_order_id="mine", symbol="SBIN", side="BUY", order_type="LIMIT", price="800.00"
    )
    caller.client.post("/api/v1/orders/", body, format="json")
    from orders.domain import OrderRequest
    from orders.services import order_place

    order_place(
        OrderRequest(
            strategy_id=other.pk,
            client_order_id="theirs",
            symbol="SBIN",
            side="BUY",
            quantity=1,
            order_type="LIMIT",
            product="MIS",
            price="800.00",
        ),
        actor="test",
    )
    run_jobs()
    assert PaperOrder.objects.filter(status="OPEN").count() == 2

    answer = caller.client.post(
        "/api/v1/prices/",
        {"prices": [{"symbol": "SBIN", "exchange": "NSE", "price": "799.00"}]},
        format="json",
    )
    run_jobs()

    assert answer.status_code == 202
    assert Order.objects.get(client_order_id="mine").status == OrderStatus.FILLED
    assert Order.objects.get(client_order_id="theirs").status == OrderStatus.OPEN
