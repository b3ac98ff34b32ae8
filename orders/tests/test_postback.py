"""Kite postbacks through the HTTP client: checksum, fills from cumulative figures, statuses."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.db import OperationalError
from django.test import Client, override_settings
from django.urls import reverse

from orders import services
from orders.enums import OrderStatus, StrategyMode
from orders.models import Order, OrderEvent, Trade
from orders.tests.factories import OrderFactory, StrategyFactory
from orders.tests.fake_kite import BROKER_ORDER_ID, TAG, recorded
from positions.models import Position

IST = ZoneInfo("Asia/Kolkata")
SECRET = "kite-api-secret"
URL = "/broker/kite/postback/"

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("kite_secret")]


@pytest.fixture
def kite_secret():
    with override_settings(KITE_API_SECRET=SECRET):
        yield


@pytest.fixture
def order():
    """A LIVE order working at Kite: BUY 10 RELIANCE LIMIT 2450.50."""
    return OrderFactory(
        strategy=StrategyFactory(mode=StrategyMode.LIVE),
        broker_tag=TAG,
        broker_order_id=BROKER_ORDER_ID,
        status=OrderStatus.OPEN,
    )


def postback_body(secret: str = SECRET, **fields) -> bytes:
    """A recorded Kite postback with these fields changed, signed as Kite signs it."""
    payload = {**recorded("postback_open"), **fields}
    if "checksum" not in fields:
        text = f"{payload['order_id']}{payload['order_timestamp']}{secret}"
        payload["checksum"] = hashlib.sha256(text.encode()).hexdigest()
    # Kite sends JSON numbers: write the Decimals as numbers too.
    return json.dumps(payload, default=float).encode()


def send(client, body: bytes):
    return client.post(URL, data=body, content_type="application/json")


def partial(filled: int, average: str, **fields) -> bytes:
    return postback_body(
        status="OPEN",
        filled_quantity=filled,
        pending_quantity=10 - filled,
        unfilled_quantity=10 - filled,
        average_price=Decimal(average),
        **fields,
    )


def complete(average: str = "2450.53") -> bytes:
    return postback_body(
        status="COMPLETE",
        filled_quantity=10,
        pending_quantity=0,
        unfilled_quantity=0,
        average_price=Decimal(average),
        exchange_update_timestamp="2026-04-01 09:15:03",
    )


def trades_of(order) -> list[tuple[str, int, Decimal]]:
    return list(
        Trade.objects.filter(order=order)
        .order_by("id")
        .values_list("trade_id", "quantity", "price")
    )


def snapshot(order) -> tuple:
    order = Order.objects.get(pk=order.pk)
    return (order.status, order.filled_quantity, order.average_price, order.updated_at)


def test_url_is_routed():
    assert reverse("brokers:kite-postback") == URL


def test_signed_partial_fill_is_applied(client, order):
    response = send(client, partial(4, "2450.50"))

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    order.refresh_from_db()
    assert order.status == OrderStatus.PARTIALLY_FILLED
    assert order.filled_quantity == 4
    assert order.average_price == Decimal("2450.500000")
    assert trades_of(order) == [(f"{BROKER_ORDER_ID}/4", 4, Decimal("2450.5000"))]
    # Kite's exchange_update_timestamp, an IST wall-clock time.
    assert Trade.objects.get(order=order).executed_at == datetime(2026, 4, 1, 9, 15, 2, tzinfo=IST)
    position = Position.objects.get(strategy=order.strategy, symbol="RELIANCE")
    assert (position.quantity, position.average_price) == (4, Decimal("2450.500000"))


def test_complete_after_a_partial_adds_only_the_rest(client, order):
    send(client, partial(4, "2450.50"))

    assert send(client, complete("2450.53")).status_code == 200

    order.refresh_from_db()
    assert order.status == OrderStatus.FILLED
    assert order.filled_quantity == 10
    assert order.average_price == Decimal("2450.530000")
    # 10 @ 2450.53 = 24505.30 in all, of which 4 @ 2450.50 = 9802.00 came first.
    assert trades_of(order) == [
        (f"{BROKER_ORDER_ID}/4", 4, Decimal("2450.5000")),
        (f"{BROKER_ORDER_ID}/10", 6, Decimal("2450.5500")),
    ]
    assert Position.objects.get(strategy=order.strategy, symbol="RELIANCE").quantity == 10


@pytest.mark.parametrize(
    "body",
    [
        postback_body(secret="not-our-secret", status="COMPLETE", filled_quantity=10),
        postback_body(checksum="", status="COMPLETE", filled_quantity=10),
        postback_body(checksum=None, status="COMPLETE", filled_quantity=10),
        # A valid checksum of another postback does not sign this one.
        postback_body(
            checksum=json.loads(postback_body())["checksum"],
            order_timestamp="2026-04-01 09:15:03",
            status="COMPLETE",
            filled_quantity=10,
        ),
    ],
    ids=["wrong-secret", "empty", "missing", "replayed-checksum"],
)
def test_unsigned_postback_is_refused_and_nothing_is_written(client, order, body):
    before = snapshot(order)
    events = OrderEvent.objects.count()

    response = send(client, body)

    assert response.status_code == 403
    assert response.json()["status"] == "error"
    assert "checksum" in response.json()["message"]
    assert Trade.objects.count() == 0
    assert OrderEvent.objects.count() == events
    assert snapshot(order) == before


def test_checksum_without_the_field_at_all_is_refused(client, order):
    payload = json.loads(complete())
    del payload["checksum"]

    assert send(client, json.dumps(payload).encode()).status_code == 403
    assert Trade.objects.count() == 0


@override_settings(KITE_API_SECRET="")
def test_without_a_configured_secret_every_postback_is_refused(client, order):
    # An empty secret would let anyone compute the checksum.
    response = send(client, postback_body(secret="", status="COMPLETE", filled_quantity=10))

    assert response.status_code == 403
    assert Trade.objects.count() == 0


def test_duplicate_postback_fills_once(client, order):
    body = partial(4, "2450.50")

    assert send(client, body).status_code == 200
    events = OrderEvent.objects.count()
    assert send(client, body).status_code == 200

    assert trades_of(order) == [(f"{BROKER_ORDER_ID}/4", 4, Decimal("2450.5000"))]
    assert OrderEvent.objects.count() == events
    order.refresh_from_db()
    assert order.filled_quantity == 4


def test_out_of_order_postbacks_end_with_the_right_totals(client, order):
    assert send(client, complete("2450.53")).status_code == 200
    assert send(client, partial(4, "2450.50")).status_code == 200

    order.refresh_from_db()
    assert order.status == OrderStatus.FILLED
    assert order.filled_quantity == 10
    assert order.average_price == Decimal("2450.530000")
    assert trades_of(order) == [(f"{BROKER_ORDER_ID}/10", 10, Decimal("2450.5300"))]
    assert not order.events.filter(kind="REFUSED").exists()


def test_cancel_after_a_partial_fill_keeps_the_fill(client, order):
    send(client, partial(3, "2450.50"))

    body = postback_body(
        status="CANCELLED",
        status_message="Cancelled by user",
        filled_quantity=3,
        pending_quantity=0,
        unfilled_quantity=7,
        cancelled_quantity=7,
        average_price=Decimal("2450.50"),
    )
    assert send(client, body).status_code == 200

    order.refresh_from_db()
    assert order.status == OrderStatus.CANCELLED
    assert order.filled_quantity == 3
    assert trades_of(order) == [(f"{BROKER_ORDER_ID}/3", 3, Decimal("2450.5000"))]


def test_rejection_after_acceptance_rejects_with_kites_message(client, order):
    body = postback_body(
        status="REJECTED",
        status_message="RMS:Margin Exceeds,Required:24505, Available:1000",
        filled_quantity=0,
        average_price=0,
    )

    assert send(client, body).status_code == 200

    order.refresh_from_db()
    assert order.status == OrderStatus.REJECTED
    assert order.status_message == "RMS:Margin Exceeds,Required:24505, Available:1000"


def test_postback_for_an_order_waiting_on_a_timeout_adopts_it_by_tag(client):
    waiting = OrderFactory(
        strategy=StrategyFactory(mode=StrategyMode.LIVE), broker_tag=TAG, status=OrderStatus.UNKNOWN
    )

    assert send(client, partial(4, "2450.50")).status_code == 200

    waiting.refresh_from_db()
    assert waiting.broker_order_id == BROKER_ORDER_ID
    assert waiting.status == OrderStatus.PARTIALLY_FILLED


def test_postback_for_an_unknown_order_is_acknowledged_and_writes_nothing(client, order):
    events = OrderEvent.objects.count()
    before = snapshot(order)

    body = postback_body(
        order_id="260401000999999",
        tag="OMSSOMEONEELSE000001",
        status="COMPLETE",
        filled_quantity=10,
        average_price=Decimal("2450.53"),
    )

    response = send(client, body)

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert Trade.objects.count() == 0
    assert OrderEvent.objects.count() == events
    assert snapshot(order) == before


def test_kite_needs_no_csrf_token(order):
    response = send(Client(enforce_csrf_checks=True), partial(4, "2450.50"))

    assert response.status_code == 200
    assert Trade.objects.filter(order=order).count() == 1


def test_only_post_is_allowed(client):
    assert client.get(URL).status_code == 405


def test_a_body_that_is_not_json_is_a_bad_request(client, order):
    response = client.post(
        URL, data=b"order_id=1", content_type="application/x-www-form-urlencoded"
    )

    assert response.status_code == 400
    assert Trade.objects.count() == 0


def test_poll_after_a_partial_postback_does_not_count_the_fill_twice(client, order):
    from orders.brokers.kite import order_update
    from orders.enums import EventSource
    from orders.services import order_updates_apply

    send(client, partial(4, "2450.50"))
    # A minute later the poll asks Kite: order_history's last entry (cumulative figures).
    history = recorded("order_history")["data"]
    order_updates_apply([order_update(history[-1])], source=EventSource.BROKER)

    order.refresh_from_db()
    assert order.filled_quantity == 10
    assert sum(quantity for _, quantity, _ in trades_of(order)) == 10


def test_a_postback_while_the_database_is_away_is_a_503_to_retry(client, order, monkeypatch):
    def unavailable(*args, **kwargs):
        raise OperationalError("connection to server was lost")

    monkeypatch.setattr(services, "order_updates_apply", unavailable)

    response = send(client, partial(4, "2450.10"))

    assert response.status_code == 503
    assert response["Retry-After"] == "1"
    assert response.json()["status"] == "error"
    assert trades_of(order) == []


# --- hostile bodies: a 4xx naming the rule, never a 500, nothing applied ----------------------


def signed_raw(text: str) -> bytes:
    """A recorded postback, signed, with ``text`` spliced in raw as its last field."""
    return postback_body()[:-1] + b", " + text.encode() + b"}"


def nothing_applied(order, before) -> None:
    assert snapshot(order) == before
    assert Trade.objects.count() == 0
    assert not Position.objects.exists()


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 1000 + b"]" * 1000,
        b'{"a":' * 1000 + b"1" + b"}" * 1000,
        signed_raw('"meta": ' + "[" * 1000 + "]" * 1000),
    ],
    ids=["arrays", "objects", "inside-a-signed-postback"],
)
def test_json_nested_1000_deep_is_a_400(client, order, body):
    before = snapshot(order)

    response = send(client, body)

    assert response.status_code == 400
    assert response.json() == {
        "status": "error",
        "message": "body: must not nest arrays and objects more than 32 levels deep",
    }
    nothing_applied(order, before)


def test_a_body_over_the_upload_limit_is_a_413(client, order, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    before = snapshot(order)

    response = send(client, postback_body(status_message="x" * 10_000))

    assert response.status_code == 413
    assert response.json() == {"status": "error", "message": "body: must be at most 10000 bytes"}
    nothing_applied(order, before)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ('"average_price": Infinity', "body: Infinity is not a JSON number; send a finite number"),
        ('"average_price": NaN', "body: NaN is not a JSON number; send a finite number"),
    ],
)
def test_nan_and_infinity_literals_are_refused(client, order, raw, message):
    before = snapshot(order)

    response = send(client, signed_raw(raw))

    assert response.status_code == 400
    assert response.json() == {"status": "error", "message": message}
    nothing_applied(order, before)


PRICE_RULE = "must be a finite number from 0 to 9999999999.99"
QUANTITY_RULE = "must be a whole number from 0 to 10000000"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"average_price": "Infinity"}, f"average_price Infinity: {PRICE_RULE}"),
        ({"average_price": "NaN"}, f"average_price NaN: {PRICE_RULE}"),
        ({"average_price": "-Infinity"}, f"average_price -Infinity: {PRICE_RULE}"),
        ({"average_price": Decimal("1e20")}, f"average_price 1E+20: {PRICE_RULE}"),
        ({"average_price": "1e20"}, f"average_price 1e20: {PRICE_RULE}"),
        ({"average_price": Decimal("-2450.5")}, f"average_price -2450.5: {PRICE_RULE}"),
        ({"average_price": "abc"}, f"average_price abc: {PRICE_RULE}"),
        ({"average_price": True}, f"average_price True: {PRICE_RULE}"),
        ({"average_price": [1]}, f"average_price [1]: {PRICE_RULE}"),
        ({"price": Decimal("1e20")}, f"price 1E+20: {PRICE_RULE}"),
        ({"trigger_price": "NaN"}, f"trigger_price NaN: {PRICE_RULE}"),
        ({"filled_quantity": -4}, f"filled_quantity -4: {QUANTITY_RULE}"),
        ({"filled_quantity": Decimal("4.5")}, f"filled_quantity 4.5: {QUANTITY_RULE}"),
        ({"filled_quantity": "4"}, f"filled_quantity 4: {QUANTITY_RULE}"),
        ({"filled_quantity": 10**30}, f"filled_quantity {10**30}: {QUANTITY_RULE}"),
        ({"quantity": 10**12}, f"quantity {10**12}: {QUANTITY_RULE}"),
        ({"pending_quantity": -1}, f"pending_quantity -1: {QUANTITY_RULE}"),
        (
            {"filled_quantity": 11, "quantity": 10},
            "filled_quantity 11: must be at most the order's quantity 10",
        ),
        (
            {"filled_quantity": 4, "average_price": 0},
            "average_price 0: must be above 0 when filled_quantity is 4",
        ),
    ],
    ids=lambda value: str(value)[:40] if isinstance(value, dict) else "",
)
def test_a_signed_postback_with_impossible_figures_is_refused(client, order, fields, message):
    before = snapshot(order)
    body = postback_body(
        status="OPEN", **{"filled_quantity": 4, "average_price": Decimal("2450.5"), **fields}
    )

    response = send(client, body)

    assert response.status_code == 400
    assert response.json() == {"status": "error", "message": message}
    nothing_applied(order, before)


def test_prices_of_zero_mean_none_as_kite_sends_them(client, order):
    # A MARKET order has price 0, no trigger has trigger_price 0: both are real postbacks.
    response = send(client, partial(4, "2450.50", price=0, trigger_price=0))

    assert response.status_code == 200
    assert Trade.objects.count() == 1
