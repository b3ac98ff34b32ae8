"""Placing, listing, reading, modifying and cancelling orders through the HTTP API."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from procrastinate.contrib.django.models import ProcrastinateJob

from orders.enums import EventKind, EventSource, OrderStatus, StrategyStatus
from orders.models import Order, OrderEvent
from orders.tests.api.conftest import order_body
from orders.tests.factories import OrderEventFactory, OrderFactory, TradeFactory
from risk.tests.factories import KillSwitchEventFactory

pytestmark = pytest.mark.django_db

ORDERS = "/api/v1/orders/"


def jobs(task_name: str, order_id: int) -> int:
    return ProcrastinateJob.objects.filter(task_name=task_name, args__order_id=order_id).count()


# --- place ---------------------------------------------------------------------------------------


def test_place_records_the_order_its_event_and_the_submit_job(api, caller):
    response = api.post(ORDERS, order_body(stop_loss="2420.00", tag="breakout"), format="json")

    assert response.status_code == 201, response.json()
    body = response.json()
    order = Order.objects.get()
    assert body["id"] == order.pk
    assert body["client_order_id"] == "c-0001"
    assert body["status"] == "PENDING"
    assert body["price"] == "2450.50"
    assert body["stop_loss"] == "2420.00"
    assert body["trigger_price"] is None
    assert body["average_price"] is None
    assert body["filled_quantity"] == 0
    assert body["tag"] == "breakout"
    assert order.strategy == caller.strategy
    assert order.price == Decimal("2450.50")
    assert order.metadata["actor"] == f"api-key:{caller.key.prefix}"
    event = OrderEvent.objects.get(order=order)
    assert (event.to_status, event.source) == (OrderStatus.PENDING, EventSource.API)
    assert jobs("orders.submit", order.pk) == 1


def test_place_defaults_the_optional_fields(api):
    body = order_body(order_type="MARKET", price=..., exchange=..., validity=...)
    response = api.post(ORDERS, body, format="json")

    assert response.status_code == 201, response.json()
    assert (response.json()["exchange"], response.json()["validity"]) == ("NSE", "DAY")


def test_a_replay_answers_200_with_the_same_order_and_places_nothing(api):
    first = api.post(ORDERS, order_body(), format="json")
    again = api.post(ORDERS, order_body(), format="json")

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    assert again["Idempotent-Replayed"] == "true"
    assert Order.objects.count() == 1
    assert jobs("orders.submit", first.json()["id"]) == 1


def test_the_same_client_order_id_with_other_content_is_a_409(api):
    api.post(ORDERS, order_body(), format="json")
    response = api.post(ORDERS, order_body(quantity=11), format="json")

    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "idempotency_conflict"
    assert "client_order_id" in error["fields"]
    assert Order.objects.count() == 1


def test_missing_and_malformed_fields_are_a_400_naming_each(api):
    response = api.post(
        ORDERS,
        {"client_order_id": "", "symbol": "reliance!", "side": "HOLD", "quantity": 0},
        format="json",
    )

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert set(error["fields"]) >= {
        "client_order_id",
        "symbol",
        "side",
        "quantity",
        "order_type",
        "product",
    }
    assert Order.objects.count() == 0


def test_a_price_sent_as_a_json_number_is_refused(api):
    response = api.post(ORDERS, order_body(price=2450.5), format="json")

    assert response.status_code == 400
    assert "decimal string" in response.json()["error"]["fields"]["price"]


def test_a_price_off_the_paisa_is_refused(api):
    response = api.post(ORDERS, order_body(price="2450.505"), format="json")

    assert response.status_code == 400
    assert "price" in response.json()["error"]["fields"]


def test_order_rules_across_fields_are_a_400_with_the_domain_message(api):
    response = api.post(ORDERS, order_body(order_type="MARKET"), format="json")

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_order"
    assert error["fields"] == {"price": "price 2450.50: a MARKET order takes no price"}
    assert Order.objects.count() == 0


def test_a_risk_refusal_is_a_422_listing_every_violation_and_keeps_the_order(api, caller):
    caller.strategy.status = StrategyStatus.INACTIVE
    caller.strategy.save()

    response = api.post(ORDERS, order_body(), format="json")

    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "risk_rejected"
    assert [v["code"] for v in error["violations"]] == ["strategy_inactive"]
    assert "strategy" in error["fields"]
    order = Order.objects.get()
    assert error["order_id"] == order.pk
    assert order.status == OrderStatus.REJECTED
    assert jobs("orders.submit", order.pk) == 0


def test_a_replayed_refusal_answers_the_same_422(api, caller):
    caller.strategy.status = StrategyStatus.INACTIVE
    caller.strategy.save()
    first = api.post(ORDERS, order_body(), format="json")
    again = api.post(ORDERS, order_body(), format="json")

    assert (first.status_code, again.status_code) == (422, 422)
    assert again.json()["error"]["order_id"] == first.json()["error"]["order_id"]
    assert Order.objects.count() == 1


def test_the_kill_switch_halted_is_a_423_with_its_state(api):
    KillSwitchEventFactory(actor="test")

    response = api.post(ORDERS, order_body(), format="json")

    assert response.status_code == 423
    error = response.json()["error"]
    assert error["code"] == "kill_switch_engaged"
    assert error["kill_switch"] == "HALTED"
    assert [v["code"] for v in error["violations"]] == ["kill_switch_halted"]
    assert Order.objects.get().status == OrderStatus.REJECTED


def test_a_body_that_is_not_json_is_a_400_in_the_error_shape(api):
    response = api.generic("POST", ORDERS, "{not json", content_type="application/json")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "parse_error"


def test_form_encoded_bodies_are_refused(api):
    response = api.post(ORDERS, order_body())  # multipart

    assert response.status_code == 415
    assert response.json()["error"]["code"] == "unsupported_media_type"


# --- list ----------------------------------------------------------------------------------------


def test_the_list_is_newest_first_with_cursor_pages(api, caller):
    orders = [OrderFactory(strategy=caller.strategy) for _ in range(5)]

    first = api.get(ORDERS, {"page_size": 2}).json()
    assert set(first) == {"next", "previous", "results"}
    assert [o["id"] for o in first["results"]] == [orders[4].pk, orders[3].pk]
    assert first["previous"] is None
    second = api.get(first["next"]).json()
    assert [o["id"] for o in second["results"]] == [orders[2].pk, orders[1].pk]
    third = api.get(second["next"]).json()
    assert [o["id"] for o in third["results"]] == [orders[0].pk]
    assert third["next"] is None


def test_the_list_filters(api, caller):
    strategy = caller.strategy
    OrderFactory(strategy=strategy, symbol="INFY", side="SELL", client_order_id="x-1")
    open_order = OrderFactory(
        strategy=strategy, status=OrderStatus.OPEN, broker_order_id="B1", product="CNC"
    )
    filled = OrderFactory(
        strategy=strategy,
        status=OrderStatus.FILLED,
        broker_order_id="B2",
        filled_quantity=10,
        average_price=Decimal("2450.50"),
    )
    old = OrderFactory(strategy=strategy)
    Order.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=3))

    def ids(**params):
        response = api.get(ORDERS, params)
        assert response.status_code == 200, response.json()
        return {o["id"] for o in response.json()["results"]}

    assert ids(status="OPEN") == {open_order.pk}
    assert ids(status=["OPEN", "FILLED"]) == {open_order.pk, filled.pk}
    assert len(ids(symbol="infy")) == 1
    assert len(ids(side="SELL")) == 1
    assert ids(product="CNC") == {open_order.pk}
    assert len(ids(client_order_id="x-1")) == 1
    week_ago = (timezone.now() - timedelta(days=7)).isoformat()
    yesterday = (timezone.now() - timedelta(days=1)).isoformat()
    assert ids(created_after=week_ago, created_before=yesterday) == {old.pk}
    assert old.pk not in ids(created_after=yesterday)


def test_a_bad_filter_value_is_a_400_naming_the_filter(api):
    response = api.get(ORDERS, {"status": "DONE", "created_after": "yesterday"})

    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) == {"status", "created_after"}


def test_statuses_are_the_upper_case_order_statuses(api, caller):
    OrderFactory(strategy=caller.strategy)
    [order] = api.get(ORDERS).json()["results"]
    assert order["status"] in OrderStatus.values


# --- detail --------------------------------------------------------------------------------------


def test_the_detail_has_the_events_oldest_first_and_the_trades(api, caller):
    order = OrderFactory(strategy=caller.strategy, status=OrderStatus.OPEN, broker_order_id="B9")
    OrderEventFactory(order=order, to_status=OrderStatus.PENDING)
    OrderEventFactory(order=order, from_status="PENDING", to_status=OrderStatus.OPEN)
    trade = TradeFactory(order=order, quantity=4, price=Decimal("2450.50"))

    response = api.get(f"{ORDERS}{order.pk}/")

    assert response.status_code == 200
    body = response.json()
    assert [e["to_status"] for e in body["events"]] == ["PENDING", "OPEN"]
    [fill] = body["trades"]
    assert fill["trade_id"] == trade.trade_id
    assert fill["gross_value"] == "9802.00"
    assert fill["order"] == order.pk


def test_an_unknown_order_is_a_404_in_the_error_shape(api):
    for path in (f"{ORDERS}999999/", f"{ORDERS}abc/"):
        response = api.get(path)
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"


# --- modify --------------------------------------------------------------------------------------


def working_order(strategy, **fields):
    """An OPEN order the broker has acknowledged."""
    order = OrderFactory(strategy=strategy, status=OrderStatus.OPEN, **fields)
    Order.objects.filter(pk=order.pk).update(broker_order_id=f"BRK-{order.pk}")
    order.refresh_from_db()
    return order


def test_modify_records_the_request_and_queues_it(api, caller):
    order = working_order(caller.strategy)

    response = api.patch(f"{ORDERS}{order.pk}/", {"price": "2448.00"}, format="json")

    assert response.status_code == 202, response.json()
    body = response.json()
    assert body["pending_modification"] == {
        "quantity": 10,
        "price": "2448.00",
        "trigger_price": None,
        "order_type": "LIMIT",
    }
    assert body["price"] == "2450.50"  # changes when the broker accepts
    event = OrderEvent.objects.get(order=order, kind=EventKind.MODIFY)
    assert event.source == EventSource.API
    assert event.actor == f"api-key:{caller.key.prefix}"
    assert jobs("orders.modify", order.pk) == 1


def test_modifying_an_order_that_is_not_working_is_a_409(api, caller):
    order = OrderFactory(strategy=caller.strategy)  # PENDING

    response = api.patch(f"{ORDERS}{order.pk}/", {"quantity": 5}, format="json")

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "illegal_state"


def test_an_empty_modification_is_a_400(api, caller):
    order = working_order(caller.strategy)

    response = api.patch(f"{ORDERS}{order.pk}/", {}, format="json")

    assert response.status_code == 400
    assert not OrderEvent.objects.filter(order=order, kind=EventKind.MODIFY).exists()


def test_a_modification_breaking_an_order_rule_is_a_400(api, caller):
    order = working_order(caller.strategy)

    response = api.patch(f"{ORDERS}{order.pk}/", {"order_type": "MARKET"}, format="json")
    assert response.status_code == 202  # MARKET drops the price: a valid order

    order2 = working_order(caller.strategy)
    response = api.patch(f"{ORDERS}{order2.pk}/", {"order_type": "SL"}, format="json")
    assert response.status_code == 400
    assert "trigger_price" in response.json()["error"]["fields"]


def test_a_modification_under_a_halted_kill_switch_is_a_423(api, caller):
    order = working_order(caller.strategy)
    KillSwitchEventFactory(actor="test")

    response = api.patch(f"{ORDERS}{order.pk}/", {"price": "2440.00"}, format="json")

    assert response.status_code == 423
    assert response.json()["error"]["kill_switch"] == "HALTED"


def test_put_and_delete_are_not_allowed(api, caller):
    order = OrderFactory(strategy=caller.strategy)

    assert api.put(f"{ORDERS}{order.pk}/", order_body(), format="json").status_code == 405
    response = api.delete(f"{ORDERS}{order.pk}/")
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"


# --- cancel --------------------------------------------------------------------------------------


def test_cancelling_an_order_never_sent_cancels_it_at_once(api, caller):
    order = OrderFactory(strategy=caller.strategy)

    response = api.post(f"{ORDERS}{order.pk}/cancel/", format="json")

    assert response.status_code == 200
    assert response.json()["status"] == "CANCELLED"
    order.refresh_from_db()
    assert order.status == OrderStatus.CANCELLED
    assert jobs("orders.cancel", order.pk) == 0


def test_cancelling_a_working_order_asks_the_broker(api, caller):
    order = working_order(caller.strategy)

    response = api.post(f"{ORDERS}{order.pk}/cancel/", {"reason": "signal gone"}, format="json")

    assert response.status_code == 202
    assert response.json()["status"] == "CANCEL_PENDING"
    event = OrderEvent.objects.get(order=order, to_status=OrderStatus.CANCEL_PENDING)
    assert event.reason == "signal gone"
    assert jobs("orders.cancel", order.pk) == 1


def test_cancelling_twice_is_a_409(api, caller):
    order = OrderFactory(strategy=caller.strategy)
    api.post(f"{ORDERS}{order.pk}/cancel/", format="json")

    response = api.post(f"{ORDERS}{order.pk}/cancel/", format="json")

    assert response.status_code == 409
    assert response.json()["error"]["fields"] == {"status": "CANCELLED"}
