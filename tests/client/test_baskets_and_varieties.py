"""Baskets and varieties through the client, against the live test server."""

from __future__ import annotations

import pytest
from oms_client import Basket, InvalidRequest, RiskRefused

from orders.models import Basket as BasketRow
from orders.models import Order
from risk.tests.factories import limits_set

pytestmark = pytest.mark.django_db(transaction=True)

HEDGE = [
    {"symbol": "RELIANCE", "side": "BUY", "quantity": 10, "price": "2450.50"},
    {"symbol": "INFY", "side": "SELL", "quantity": 10, "price": "1500.00"},
]


def test_place_basket_places_every_leg_and_a_retry_replays(oms, caller):
    basket = oms.place_basket(HEDGE, client_basket_id="hedge-1")
    again = oms.place_basket(
        [leg.raw for leg in basket.legs], client_basket_id="hedge-1"
    )  # the same legs, with their client_order_ids

    assert isinstance(basket, Basket) and basket.replayed is False
    assert [(leg.symbol, leg.side, leg.status) for leg in basket.legs] == [
        ("RELIANCE", "BUY", "PENDING"),
        ("INFY", "SELL", "PENDING"),
    ]
    assert {leg.basket for leg in basket.legs} == {basket.id}
    assert again.replayed is True and again.id == basket.id
    assert oms.basket(basket.id).legs[1].client_order_id == basket.legs[1].client_order_id
    assert BasketRow.objects.filter(strategy=caller.strategy).count() == 1


def test_a_refused_leg_raises_with_the_leg_and_places_nothing(oms, caller):
    limits_set(caller.strategy, max_order_quantity=10)
    legs = [HEDGE[0], {**HEDGE[1], "quantity": 11}]

    with pytest.raises(RiskRefused) as refused:
        oms.place_basket(legs, client_basket_id="hedge-2")

    assert refused.value.code == "basket_refused"
    assert refused.value.body["error"]["leg"] == 1
    assert refused.value.fields == {"legs.1.quantity": "quantity 11: above the limit 10"}
    assert Order.objects.count() == 0


def test_an_iceberg_through_the_client(oms):
    order = oms.place(
        "NIFTY26DECFUT",
        "BUY",
        3900,
        price="26000.00",
        exchange="NFO",
        product="NRML",
        variety="iceberg",
        iceberg_legs=3,
        iceberg_quantity=1300,
    )

    assert (order.variety, order.raw["iceberg_quantity"]) == ("iceberg", 1300)
    with pytest.raises(InvalidRequest) as invalid:
        oms.place(
            "NIFTY26DECFUT",
            "BUY",
            3900,
            price="26000.00",
            exchange="NFO",
            product="NRML",
            variety="iceberg",
            iceberg_legs=1,
            iceberg_quantity=1300,
        )
    assert "iceberg_legs" in invalid.value.fields
