"""Bad input is a 4xx in the error shape, never a 500, and writes nothing (a security review's
findings, each with the request that used to be a 500)."""

from __future__ import annotations

import base64
import json

import pytest
from procrastinate.contrib.django.models import ProcrastinateJob

from omsproject.json_body import MAX_DEPTH
from orders.enums import OrderStatus
from orders.models import Order, OrderEvent
from orders.tests.api.conftest import order_body
from orders.tests.factories import OrderFactory, TradeFactory
from positions.tests.factories import PositionFactory
from risk.models import KillSwitchState
from risk.tests.factories import KillSwitchEventFactory

pytestmark = pytest.mark.django_db

ORDERS = "/api/v1/orders/"
LISTS = ["/api/v1/orders/", "/api/v1/trades/", "/api/v1/positions/"]
DEPTH_RULE = f"must not nest arrays and objects more than {MAX_DEPTH} levels deep"


def rows() -> tuple[int, int, int]:
    return Order.objects.count(), OrderEvent.objects.count(), ProcrastinateJob.objects.count()


def post_raw(api, body: str | bytes, path: str = ORDERS):
    return api.generic("POST", path, body, content_type="application/json")


def error_of(response) -> dict:
    body = response.json()
    assert set(body) == {"error"}
    assert {"code", "message", "fields"} <= set(body["error"])
    return body["error"]


# --- 1. JSON nested 1,000 deep --------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        "[" * 1000 + "]" * 1000,
        '{"a":' * 1000 + "1" + "}" * 1000,
        json.dumps(order_body())[:-1] + ', "tag": ' + "[" * 1000 + "]" * 1000 + "}",
        "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1),
    ],
    ids=["arrays", "objects", "inside-an-order", "one-past-the-limit"],
)
def test_json_nested_too_deep_is_a_400_naming_the_body(api, body):
    before = rows()

    response = post_raw(api, body)

    assert response.status_code == 400
    assert error_of(response) == {
        "code": "parse_error",
        "message": f"body: {DEPTH_RULE}",
        "fields": {"body": DEPTH_RULE},
    }
    assert rows() == before


def test_json_nested_to_the_limit_is_read_and_judged_by_the_serializer(api):
    # 32 levels parse; the serializer then refuses a list where a string belongs.
    body = json.dumps(order_body())[:-1] + ', "tag": ' + "[" * 31 + "]" * 31 + "}"

    response = post_raw(api, body)

    assert response.status_code == 400
    assert set(error_of(response)["fields"]) == {"tag"}
    assert Order.objects.count() == 0


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_not_json_numbers(api, constant):
    body = json.dumps(order_body())[:-1] + f', "quantity": {constant}' + "}"

    response = post_raw(api, body)

    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "parse_error"
    assert error["fields"] == {"body": f"{constant} is not a JSON number; send a finite number"}
    assert Order.objects.count() == 0


# --- 2. a body over DATA_UPLOAD_MAX_MEMORY_SIZE ---------------------------------------------


def test_a_body_over_the_upload_limit_is_a_413(api, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    before = rows()

    response = post_raw(api, json.dumps(order_body(tag="x" * 10_000)))

    assert response.status_code == 413
    assert error_of(response) == {
        "code": "request_too_large",
        "message": "body: must be at most 10000 bytes",
        "fields": {"body": "must be at most 10000 bytes"},
    }
    assert rows() == before


def test_the_default_upload_limit_applies_too(api):
    response = post_raw(api, json.dumps(order_body(tag="x" * 3_000_000)))

    assert response.status_code == 413
    assert error_of(response)["fields"] == {"body": "must be at most 2621440 bytes"}
    assert Order.objects.count() == 0


# --- 3. forged pagination cursors -------------------------------------------------------------


def cursor(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


FORGED_CURSORS = [
    cursor("p=abc"),
    cursor("o=1&r=1&p=2020-13-45"),
    cursor("p=\x00"),
    cursor("p=2024-01-01"),  # a date, not the instant the list is ordered by
    cursor("p=2024-01-01T00:00:00"),  # no offset: cursors this API writes always carry one
    cursor("o=-1"),
    cursor("r=x"),
    "garbage!!",
    cursor("p="),
]


@pytest.fixture
def listed(caller):
    order = OrderFactory(strategy=caller.strategy, status=OrderStatus.OPEN)
    TradeFactory(order=order, quantity=2)
    PositionFactory(strategy=caller.strategy, symbol="RELIANCE")


@pytest.mark.parametrize("url", LISTS)
@pytest.mark.parametrize("forged", FORGED_CURSORS)
def test_a_forged_cursor_is_a_400_naming_the_cursor(api, listed, url, forged):
    response = api.get(url, {"cursor": forged})

    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "invalid"
    assert error["fields"] == {
        "cursor": "not a cursor from this list's next or previous link; start again without one"
    }
    assert error["message"].startswith("cursor: ")


@pytest.mark.parametrize("url", LISTS)
def test_a_cursor_the_api_made_still_pages(api, caller, url):
    for _ in range(3):
        order = OrderFactory(strategy=caller.strategy, status=OrderStatus.OPEN)
        TradeFactory(order=order, quantity=1)
    for symbol in ("INFY", "TCS", "SBIN"):
        PositionFactory(strategy=caller.strategy, symbol=symbol)

    first = api.get(url, {"page_size": 2}).json()
    second = api.get(first["next"])
    back = api.get(second.json()["previous"])

    assert second.status_code == 200
    assert len(second.json()["results"]) == 1
    assert back.status_code == 200
    assert back.json()["results"] == first["results"]


# --- 6. money is a decimal string, never a JSON number ------------------------------------


@pytest.mark.parametrize(
    ("field", "sent", "rule"),
    [
        ("price", 1500, 'price 1500: must be a decimal string, e.g. "1500.00"'),
        ("price", 1500.5, 'price 1500.5: must be a decimal string, e.g. "1500.50"'),
        ("price", True, 'price true: must be a decimal string, e.g. "2450.50"'),
        ("price", "1e3", 'price "1e3": must be a decimal string, e.g. "1000.00"'),
        ("price", "1_500", 'price "1_500": must be a decimal string, e.g. "1500.00"'),
        ("price", "NaN", 'price "NaN": must be a decimal string, e.g. "2450.50"'),
        ("stop_loss", 2400, 'stop_loss 2400: must be a decimal string, e.g. "2400.00"'),
    ],
)
def test_money_sent_as_a_json_number_is_refused(api, field, sent, rule):
    response = api.post(ORDERS, order_body(**{field: sent}), format="json")

    assert response.status_code == 400
    assert error_of(response) == {"code": "invalid", "message": rule, "fields": {field: rule}}
    assert Order.objects.count() == 0


def test_a_price_as_a_decimal_string_is_accepted(api):
    response = api.post(ORDERS, order_body(price="1500"), format="json")

    assert response.status_code == 201
    assert response.json()["price"] == "1500.00"


def test_a_modification_price_as_a_json_integer_is_refused(api, caller):
    order = OrderFactory(strategy=caller.strategy, status=OrderStatus.OPEN)

    response = api.patch(f"{ORDERS}{order.pk}/", {"price": 2448}, format="json")

    assert response.status_code == 400
    assert error_of(response)["fields"] == {
        "price": 'price 2448: must be a decimal string, e.g. "2448.00"'
    }
    order.refresh_from_db()
    assert order.modification_count == 0


def test_a_paper_price_as_a_json_integer_is_refused(api):
    ticks = {"prices": [{"symbol": "RELIANCE", "exchange": "NSE", "price": 2451}]}

    response = api.post("/api/v1/prices/", ticks, format="json")

    assert response.status_code == 400
    assert error_of(response)["fields"] == {
        "prices.0.price": 'price 2451: must be a decimal string, e.g. "2451.00"'
    }
    assert ProcrastinateJob.objects.count() == 0


# --- 7. the replay of a placement the kill switch refused --------------------------------


def test_a_replay_of_a_refused_placement_is_marked_as_a_replay(api):
    KillSwitchEventFactory(actor="test")
    first = api.post(ORDERS, order_body(), format="json")
    # The switch is released: the replay answers about the original order, not a new check.
    KillSwitchEventFactory(actor="test", state=KillSwitchState.ACTIVE, reason="resumed")

    again = api.post(ORDERS, order_body(), format="json")

    assert (first.status_code, again.status_code) == (423, 423)
    assert "Idempotent-Replayed" not in first
    assert again["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert again.json()["error"]["kill_switch"] == "HALTED"
    assert Order.objects.get().status == OrderStatus.REJECTED


def test_the_schema_documents_the_new_answers(client):
    paths = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()["paths"]

    for path, method in [
        ("/api/v1/orders/", "post"),
        ("/api/v1/orders/{id}/", "patch"),
        ("/api/v1/orders/{id}/cancel/", "post"),
        ("/api/v1/prices/", "post"),
    ]:
        assert "413" in paths[path][method]["responses"], (path, method)
    for path in ("/api/v1/orders/", "/api/v1/trades/", "/api/v1/positions/"):
        assert "400" in paths[path]["get"]["responses"], path
