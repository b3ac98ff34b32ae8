"""Orders above the freeze quantity, sliced into child orders under a parent, on the paper
broker end to end through the API: the parent's state comes from its children, cancelling it
cancels them, each child is its own broker order (and pays its own brokerage), and only the
children's fills move the position."""

from __future__ import annotations

from decimal import Decimal
from types import SimpleNamespace

import pytest

from orders import tasks
from orders.enums import OrderStatus
from orders.models import Order, OrderParent, PaperOrder, Trade
from orders.tests.api.conftest import order_body
from orders.varieties import freeze_slices, parent_state
from positions.models import Position
from positions.services import market_prices_update

PARENTS = "/api/v1/parents/"
FUT = "NIFTY26DECFUT"  # lot 65, freeze 1,800
S = OrderStatus


def sliced_body(**overrides) -> dict:
    return order_body(
        **{
            "client_order_id": "big-1",
            "symbol": FUT,
            "exchange": "NFO",
            "product": "NRML",
            "quantity": 3900,
            "price": "26000.00",
            **overrides,
        }
    )


def child(status, filled=0, average=None):
    return SimpleNamespace(status=status, filled_quantity=filled, average_price=average)


def test_slices_are_whole_lots_within_the_freeze_quantity_largest_first():
    assert freeze_slices(3900, 1800, 65) == [1755, 1755, 390]
    assert freeze_slices(1200, 600, 30) == [600, 600]


@pytest.mark.parametrize(
    ("children", "expected"),
    [
        ([child(S.PENDING), child(S.PENDING)], (S.PENDING, 0, None)),
        ([child(S.OPEN), child(S.SUBMITTED)], (S.OPEN, 0, None)),
        (
            [child(S.FILLED, 10, Decimal("100")), child(S.OPEN)],
            (S.PARTIALLY_FILLED, 10, Decimal("100")),
        ),
        (
            [child(S.FILLED, 10, Decimal("100")), child(S.FILLED, 30, Decimal("104"))],
            (S.FILLED, 40, Decimal("103")),
        ),
        (
            [child(S.FILLED, 10, Decimal("100")), child(S.CANCELLED)],
            (S.CANCELLED, 10, Decimal("100")),
        ),
        ([child(S.REJECTED), child(S.REJECTED)], (S.REJECTED, 0, None)),
        ([child(S.EXPIRED), child(S.EXPIRED)], (S.EXPIRED, 0, None)),
    ],
)
def test_a_parents_state_is_its_childrens(children, expected):
    state = parent_state(40, children)

    assert (state.status, state.filled_quantity, state.average_price) == expected


@pytest.mark.django_db
def test_a_quantity_within_the_freeze_quantity_is_not_sliced(api):
    response = api.post(PARENTS, sliced_body(quantity=1755), format="json")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "within_freeze_quantity"
    assert OrderParent.objects.count() == 0


@pytest.mark.django_db
def test_a_sliced_order_is_idempotent_and_a_refused_child_writes_nothing(api, caller):
    first = api.post(PARENTS, sliced_body(), format="json")
    again = api.post(PARENTS, sliced_body(), format="json")
    clash = api.post(PARENTS, sliced_body(quantity=3965), format="json")
    refused = api.post(
        PARENTS, sliced_body(client_order_id="big-2", price="26000.05"), format="json"
    )

    assert (first.status_code, again.status_code, clash.status_code) == (201, 200, 409)
    assert again.json()["id"] == first.json()["id"]
    assert [c["quantity"] for c in first.json()["children"]] == [1755, 1755, 390]
    assert [c["client_order_id"] for c in first.json()["children"]] == [
        "big-1.1",
        "big-1.2",
        "big-1.3",
    ]
    assert refused.status_code == 422
    assert refused.json()["error"]["fields"] == {
        "legs.0.price": "price 26000.05: must be a multiple of the tick size 0.1"
    }
    assert (OrderParent.objects.count(), Order.objects.count()) == (1, 3)


@pytest.mark.django_db(transaction=True)
def test_a_sliced_order_fills_child_by_child_each_its_own_broker_order(api, caller, run_jobs):
    market_prices_update([(FUT, "NFO", Decimal("26050.00"))])
    parent = api.post(PARENTS, sliced_body(), format="json").json()
    assert parent["status"] == "PENDING"

    run_jobs()
    working = api.get(f"{PARENTS}{parent['id']}/").json()
    tasks.apply_prices.defer(prices=[[FUT, "NFO", "25990.00"]])
    run_jobs()
    filled = api.get(f"{PARENTS}{parent['id']}/").json()

    assert working["status"] == "OPEN"
    assert (filled["status"], filled["filled_quantity"]) == ("FILLED", 3900)
    assert filled["average_price"] == "25990.00"
    children = Order.objects.filter(parent_id=parent["id"])
    assert PaperOrder.objects.filter(tag__in=children.values("broker_tag")).count() == 3
    # Brokerage is per executed order: each child pays Zerodha's ₹20 for F&O.
    assert (
        list(Trade.objects.filter(order__in=children).order_by("order_id").values_list("brokerage"))
        == [(Decimal("20.00"),)] * 3
    )
    assert Position.objects.get(strategy=caller.strategy, symbol=FUT).quantity == 3900


@pytest.mark.django_db(transaction=True)
def test_cancelling_the_parent_cancels_its_working_children(api, run_jobs):
    market_prices_update([(FUT, "NFO", Decimal("26050.00"))])
    parent = api.post(PARENTS, sliced_body(), format="json").json()
    run_jobs()

    response = api.post(f"{PARENTS}{parent['id']}/cancel/", {}, format="json")
    run_jobs()

    assert response.status_code == 202
    assert {c["status"] for c in response.json()["children"]} == {"CANCEL_PENDING"}
    after = api.get(f"{PARENTS}{parent['id']}/").json()
    assert (after["status"], after["filled_quantity"]) == ("CANCELLED", 0)
    assert after["cancel_requested_at"] is not None
    assert set(
        PaperOrder.objects.filter(
            tag__in=Order.objects.filter(parent_id=parent["id"]).values("broker_tag")
        ).values_list("status", flat=True)
    ) == {"CANCELLED"}
