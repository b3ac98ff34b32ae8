"""Serializers that build their fields once per class (FieldsOnce) answer exactly as DRF does
when it builds them for each object, for every object, in any order and from any thread."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest
from rest_framework import serializers

from orders.api.serializers import OrderDetailSerializer, OrderPlaceSerializer, OrderSerializer
from orders.enums import OrderStatus
from orders.tests.factories import OrderEventFactory, OrderFactory
from positions.api.serializers import PositionSerializer
from positions.tests.factories import PositionFactory

pytestmark = pytest.mark.django_db


def per_object(serializer_class, instance) -> dict:
    """What DRF itself answers: the fields built for this one serializer object."""
    fields = serializers.Serializer.fields.func(serializer_class(instance))
    return {
        name: (
            None
            if (value := field.get_attribute(instance)) is None
            else field.to_representation(value)
        )
        for name, field in fields.items()
        if not field.write_only
    }


@pytest.fixture
def orders():
    working = OrderFactory(price=Decimal("2450.50"), stop_loss=Decimal("2400.00"))
    filled = OrderFactory(
        order_type="MARKET",
        price=None,
        status=OrderStatus.FILLED,
        filled_quantity=10,
        average_price=Decimal("2451.333333"),
        metadata={"pending_modification": {"quantity": 5}},
    )
    OrderEventFactory(order=working)
    return [working, filled]


def test_orders_are_represented_as_drf_would(orders):
    for order in [*orders, *reversed(orders)]:
        assert OrderSerializer(order).data == per_object(OrderSerializer, order)
    assert OrderSerializer(orders[1]).data["average_price"] == "2451.333333"
    assert OrderSerializer(orders[1]).data["price"] is None
    assert OrderSerializer(orders[1]).data["pending_modification"] == {"quantity": 5}


def test_nested_events_and_positions_are_represented_as_drf_would(orders):
    detail = OrderDetailSerializer(orders[0]).data
    assert detail == per_object(OrderDetailSerializer, orders[0])
    assert len(detail["events"]) == 1
    position = PositionFactory()
    assert PositionSerializer(position).data == per_object(PositionSerializer, position)


def test_threads_each_get_their_own_order(orders):
    results: dict[int, list[dict]] = {order.pk: [] for order in orders}

    def serialize(order):
        for _ in range(50):
            results[order.pk].append(dict(OrderSerializer(order).data))

    threads = [threading.Thread(target=serialize, args=(order,)) for order in orders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    for order in orders:
        assert {row["id"] for row in results[order.pk]} == {order.pk}


def test_validation_errors_are_per_request():
    bad = OrderPlaceSerializer(data={"client_order_id": "x", "side": "SIDEWAYS"})
    good = OrderPlaceSerializer(
        data={
            "client_order_id": "ok-1",
            "symbol": "INFY",
            "side": "BUY",
            "quantity": 1,
            "order_type": "MARKET",
            "product": "CNC",
        }
    )

    assert not bad.is_valid()
    assert good.is_valid(), good.errors
    assert set(bad.errors) >= {"side", "symbol", "quantity", "order_type", "product"}
    assert good.validated_data["exchange"] == "NSE"
    assert not good.errors
