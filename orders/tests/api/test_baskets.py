"""Baskets through the HTTP API: all-or-nothing checks, idempotency (also under concurrency),
validation errors naming the leg and the field, and each leg's state afterwards."""

from __future__ import annotations

import threading

import pytest
import requests
from procrastinate.contrib.django.models import ProcrastinateJob

from orders.models import Basket, Order
from orders.tests.api.conftest import make_caller, order_body
from risk.tests.factories import limits_set

BASKETS = "/api/v1/baskets/"
ORDERS = "/api/v1/orders/"


def basket_body(client_basket_id="b-1", **leg_overrides) -> dict:
    """A hedge: buy RELIANCE, sell INFY, each its own client_order_id."""
    return {
        "client_basket_id": client_basket_id,
        "legs": [
            order_body(client_order_id=f"{client_basket_id}-a"),
            order_body(
                **{
                    "client_order_id": f"{client_basket_id}-b",
                    "symbol": "INFY",
                    "side": "SELL",
                    "price": "1500.00",
                    **leg_overrides,
                }
            ),
        ],
    }


def submit_jobs() -> int:
    return ProcrastinateJob.objects.filter(task_name="orders.submit").count()


@pytest.mark.django_db
def test_a_basket_writes_every_leg_linked_to_it_each_with_its_submission_job(api, caller):
    response = api.post(BASKETS, basket_body(), format="json")

    assert response.status_code == 201, response.json()
    body = response.json()
    basket = Basket.objects.get()
    assert (body["id"], body["client_basket_id"]) == (basket.pk, "b-1")
    assert [leg["client_order_id"] for leg in body["legs"]] == ["b-1-a", "b-1-b"]
    assert {leg["status"] for leg in body["legs"]} == {"PENDING"}
    assert {leg["basket"] for leg in body["legs"]} == {basket.pk}
    assert Order.objects.filter(basket=basket, strategy=caller.strategy).count() == 2
    assert submit_jobs() == 2


@pytest.mark.django_db
def test_the_basket_page_shows_its_legs_states_and_an_order_names_its_basket(api):
    placed = api.post(BASKETS, basket_body(), format="json").json()
    first = Order.objects.get(client_order_id="b-1-a")
    api.post(f"{ORDERS}{first.pk}/cancel/", {}, format="json")

    basket = api.get(f"{BASKETS}{placed['id']}/").json()
    order = api.get(f"{ORDERS}{first.pk}/").json()

    assert [leg["status"] for leg in basket["legs"]] == ["CANCELLED", "PENDING"]
    assert order["basket"] == placed["id"]


@pytest.mark.django_db
def test_a_replayed_basket_answers_200_with_the_first_and_writes_nothing(api):
    first = api.post(BASKETS, basket_body(), format="json")
    again = api.post(BASKETS, basket_body(), format="json")

    assert (first.status_code, again.status_code) == (201, 200)
    assert again["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    assert (Basket.objects.count(), Order.objects.count(), submit_jobs()) == (1, 2, 2)


@pytest.mark.django_db
def test_the_same_basket_id_with_other_content_is_a_409(api):
    api.post(BASKETS, basket_body(), format="json")
    response = api.post(BASKETS, basket_body(quantity=11), format="json")

    assert response.status_code == 409
    assert response.json()["error"]["fields"] == {
        "client_basket_id": "already used with different content"
    }
    assert Order.objects.count() == 2


@pytest.mark.django_db
def test_one_refused_leg_refuses_the_basket_and_nothing_is_written(api, caller):
    limits_set(caller.strategy, max_order_quantity=10)
    response = api.post(BASKETS, basket_body(quantity=11), format="json")

    assert response.status_code == 422
    error = response.json()["error"]
    assert (error["code"], error["leg"]) == ("basket_refused", 1)
    assert error["fields"] == {"legs.1.quantity": "quantity 11: above the limit 10"}
    assert [v["code"] for v in error["violations"]] == ["max_order_quantity"]
    assert (Basket.objects.count(), Order.objects.count(), submit_jobs()) == (0, 0, 0)


@pytest.mark.django_db
def test_a_leg_sees_the_legs_before_it_as_working_orders(api, caller):
    limits_set(caller.strategy, max_open_orders=1)
    response = api.post(BASKETS, basket_body(), format="json")

    assert response.status_code == 422
    assert response.json()["error"]["fields"] == {
        "legs.1.strategy": "1 open orders: the limit is 1"
    }
    assert Order.objects.count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("overrides", "field", "rule"),
    [
        ({"quantity": 0}, "legs.1.quantity", "greater than or equal to 1"),
        ({"price": None}, "legs.1.price", "price missing: a LIMIT order needs a price"),
        ({"iceberg_legs": 1}, "legs.1.iceberg_legs", "greater than or equal to 2"),
        ({"variety": "iceberg"}, "legs.1.iceberg_legs", "iceberg_legs missing"),
        ({"variety": "co"}, "legs.1.variety", "not a valid choice"),
        ({"client_order_id": "b-1-a"}, "legs.1.client_order_id", "already used by order"),
    ],
)
def test_an_invalid_leg_is_named_by_its_index_and_field(api, overrides, field, rule):
    response = api.post(BASKETS, basket_body(**overrides), format="json")

    assert response.status_code in (400, 422), response.json()
    assert rule in response.json()["error"]["fields"][field]
    assert (Basket.objects.count(), Order.objects.count()) == (0, 0)


@pytest.mark.django_db
def test_a_basket_needs_legs_and_its_own_id(api):
    response = api.post(BASKETS, {"client_basket_id": "", "legs": []}, format="json")

    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) == {"client_basket_id", "legs"}


@pytest.mark.django_db
def test_another_strategy_cannot_see_the_basket(api, other):
    placed = api.post(BASKETS, basket_body(), format="json").json()

    assert other.client.get(f"{BASKETS}{placed['id']}/").status_code == 404
    assert other.client.get(BASKETS).json()["results"] == []


@pytest.mark.django_db
def test_an_iceberg_order_through_the_api(api):
    body = order_body(
        symbol="NIFTY26DECFUT",
        exchange="NFO",
        product="NRML",
        quantity=3900,
        price="26000.00",
        variety="iceberg",
        iceberg_legs=3,
        iceberg_quantity=1300,
    )
    response = api.post(ORDERS, body, format="json")
    too_small = api.post(
        ORDERS, {**body, "client_order_id": "c-2", "iceberg_quantity": 100}, format="json"
    )

    assert response.status_code == 201, response.json()
    assert (response.json()["variety"], response.json()["iceberg_legs"]) == ("iceberg", 3)
    assert too_small.status_code == 400
    assert too_small.json()["error"]["fields"] == {
        "iceberg_quantity": "iceberg_quantity 100: at least quantity / legs = 1300"
    }


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_same_basket_sent_twice_at_once_is_placed_once(live_server):
    caller = make_caller(name="Basket race")
    url = f"{live_server.url}{BASKETS}"
    headers = {"Authorization": f"Bearer {caller.plaintext}"}
    barrier = threading.Barrier(2)
    answers = []

    def send():
        barrier.wait()
        response = requests.post(url, json=basket_body("race"), headers=headers, timeout=30)
        answers.append((response.status_code, response.json()["id"]))

    threads = [threading.Thread(target=send) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(status for status, _ in answers) == [200, 201]
    assert len({basket_id for _, basket_id in answers}) == 1
    assert Basket.objects.filter(strategy=caller.strategy).count() == 1
    assert Order.objects.filter(strategy=caller.strategy).count() == 2
