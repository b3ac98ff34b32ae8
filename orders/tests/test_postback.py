"""Kite postbacks through the HTTP client: checksum, then a confirmation from Kite.

A postback is a notification: the view defers one confirm job and applies nothing; the job
asks Kite (a fake Kite HTTP server speaking Kite's JSON, tests' conftest) for the order's history
and applies that. Tests that run the job run a real procrastinate worker (``run_jobs``), so
they are transactional.
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.db import OperationalError
from django.test import Client
from django.urls import reverse
from procrastinate.contrib.django.models import ProcrastinateJob

from orders import views
from orders.enums import EventKind, OrderStatus, StrategyMode
from orders.models import Order, OrderEvent, Trade
from orders.services import orders_poll
from orders.tests.conftest import KITE_ACCESS_TOKEN, kite_account_create
from orders.tests.factories import OrderFactory, StrategyFactory
from orders.tests.fake_kite import BROKER_ORDER_ID, TAG, recorded
from positions.models import IssueType, Position, ReconciliationIssue, Severity

IST = ZoneInfo("Asia/Kolkata")
SECRET = "kite-api-secret"
URL = "/broker/kite/postback/"
HISTORY = ("GET", f"/orders/{BROKER_ORDER_ID}")
ORDER_TRADES = ("GET", f"/orders/{BROKER_ORDER_ID}/trades")
T1 = ("70000001", 4, "2450.50", "2026-04-01 09:15:02")  # Kite's trades of the order
T2 = ("70000002", 6, "2450.45", "2026-04-01 09:15:03")
ORDER_BOOK = ("GET", "/orders")

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("kite_account")]
confirmed = pytest.mark.django_db(transaction=True)  # the confirm job runs in a real worker


@pytest.fixture
def order():
    """A LIVE order working at Kite: BUY 10 RELIANCE LIMIT 2450.50."""
    return OrderFactory(
        strategy=StrategyFactory(mode=StrategyMode.LIVE),
        broker_tag=TAG,
        broker_order_id=BROKER_ORDER_ID,
        status=OrderStatus.OPEN,
    )


@pytest.fixture
def confirm(run_jobs):
    """Run the confirm jobs the postbacks deferred (Kite is asked, its answer applied)."""
    return lambda: run_jobs(["orders"])


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


def partial_fields(filled: int, average: str) -> dict:
    return {
        "status": "OPEN",
        "filled_quantity": filled,
        "pending_quantity": 10 - filled,
        "unfilled_quantity": 10 - filled,
        "average_price": Decimal(average),
        "exchange_update_timestamp": "2026-04-01 09:15:02",
    }


def partial(filled: int, average: str, **fields) -> bytes:
    return postback_body(**partial_fields(filled, average), **fields)


COMPLETE = {
    "status": "COMPLETE",
    "filled_quantity": 10,
    "pending_quantity": 0,
    "unfilled_quantity": 0,
    "exchange_update_timestamp": "2026-04-01 09:15:03",
}


def complete(average: str = "2450.47") -> bytes:
    return postback_body(**COMPLETE, average_price=Decimal(average))


def kite_says(kite_server, *, trades=(), **fields) -> None:
    """Queue Kite's answer to the next order history request: the recorded history, its last
    entry (the order's state now) with these fields; and, with ``trades`` ((trade id,
    quantity, price, time) each), its answer to the next request for the order's trades."""
    numbers = {k: float(v) if isinstance(v, Decimal) else v for k, v in fields.items()}
    kite_server.reply(*HISTORY, "order_history", **numbers)
    if trades:
        kite_trades(kite_server, *trades)


def kite_trades(kite_server, *trades) -> None:
    """Queue Kite's list of the order's trades (GET /orders/{order_id}/trades)."""
    template = recorded("order_trades")["data"][0]
    data = [
        {
            **template,
            "trade_id": trade_id,
            "quantity": quantity,
            "average_price": float(price),
            "fill_timestamp": at,
            "exchange_timestamp": at,
        }
        for trade_id, quantity, price, at in trades
    ]
    kite_server.reply(*ORDER_TRADES, {"status": "success", "data": data})


def kite_id(trade: tuple) -> str:
    return f"{BROKER_ORDER_ID}:{trade[0]}"


def trades_of(order) -> list[tuple[str, int, Decimal]]:
    return list(
        Trade.objects.filter(order=order)
        .order_by("id")
        .values_list("trade_id", "quantity", "price")
    )


def snapshot(order) -> tuple:
    order = Order.objects.get(pk=order.pk)
    return (order.status, order.filled_quantity, order.average_price, order.updated_at)


def confirm_jobs() -> list[ProcrastinateJob]:
    return list(ProcrastinateJob.objects.filter(task_name="orders.confirm", status="todo"))


def test_url_is_routed():
    assert reverse("brokers:kite-postback") == URL


def test_a_postback_applies_nothing_itself_and_defers_one_confirmation(client, order):
    before = snapshot(order)

    response = send(client, partial(4, "2450.50"))

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert snapshot(order) == before
    assert Trade.objects.count() == 0
    [job] = confirm_jobs()
    assert job.args == {"order_id": order.pk}
    assert job.lock == f"order-{order.pk}"
    assert job.queueing_lock == f"confirm-order-{order.pk}"


def test_a_repeated_postback_defers_no_second_confirmation(client, order):
    for _ in range(3):
        assert send(client, partial(4, "2450.50")).status_code == 200
    assert send(client, complete()).status_code == 200

    assert len(confirm_jobs()) == 1


@confirmed
def test_signed_partial_fill_is_confirmed_by_kite_and_applied(client, order, kite_server, confirm):
    kite_says(kite_server, **partial_fields(4, "2450.50"), trades=[T1])

    response = send(client, partial(4, "2450.50"))
    confirm()

    assert response.status_code == 200
    assert kite_server.count(*HISTORY) == 1
    # The client authenticates as Kite documents it: "token api_key:access_token".
    assert kite_server.sent[0].headers["Authorization"] == f"token kite-key:{KITE_ACCESS_TOKEN}"
    order.refresh_from_db()
    assert order.status == OrderStatus.PARTIALLY_FILLED
    assert order.filled_quantity == 4
    assert order.average_price == Decimal("2450.500000")
    assert trades_of(order) == [(kite_id(T1), 4, Decimal("2450.5000"))]
    # Kite's fill_timestamp, an IST wall-clock time.
    assert Trade.objects.get(order=order).executed_at == datetime(2026, 4, 1, 9, 15, 2, tzinfo=IST)
    position = Position.objects.get(strategy=order.strategy, symbol="RELIANCE")
    assert (position.quantity, position.average_price) == (4, Decimal("2450.500000"))


@confirmed
def test_a_genuine_partial_fill_sent_twice_is_applied_once(client, order, kite_server, confirm):
    kite_says(kite_server, **partial_fields(4, "2450.50"), trades=[T1])
    body = partial(4, "2450.50")

    assert send(client, body).status_code == 200
    assert send(client, body).status_code == 200
    confirm()
    events = OrderEvent.objects.count()
    # Sent again after the confirmation: Kite is asked again, and nothing changes.
    assert send(client, body).status_code == 200
    confirm()

    assert kite_server.count(*HISTORY) == 2
    assert trades_of(order) == [(kite_id(T1), 4, Decimal("2450.5000"))]
    assert OrderEvent.objects.count() == events
    order.refresh_from_db()
    assert (order.status, order.filled_quantity) == (OrderStatus.PARTIALLY_FILLED, 4)


@confirmed
def test_the_reviews_forged_postback_applies_nothing_kites_answer_stands(
    client, kite_server, confirm
):
    """A captured postback of a BUY LIMIT 700, replayed with its checksum (which signs only
    order_id + order_timestamp) and COMPLETE 10 @ 5000 written in."""
    order = OrderFactory(
        strategy=StrategyFactory(mode=StrategyMode.LIVE),
        broker_tag=TAG,
        broker_order_id=BROKER_ORDER_ID,
        status=OrderStatus.OPEN,
        price=Decimal("700.00"),
    )
    kite_says(kite_server, status="OPEN", price=700, filled_quantity=0, average_price=0)
    forged = postback_body(**COMPLETE, price=Decimal(700), average_price=Decimal(5000))

    response = send(client, forged)
    confirm()

    assert response.status_code == 200
    assert kite_server.count(*HISTORY) == 1
    order.refresh_from_db()
    assert (order.status, order.filled_quantity, order.average_price) == (
        OrderStatus.OPEN,
        0,
        None,
    )
    assert trades_of(order) == []
    assert not Position.objects.exists()
    assert not ReconciliationIssue.objects.exists()  # Kite's own answer is consistent


@confirmed
def test_kites_own_answer_contradicting_the_order_is_a_critical_issue_and_applies_nothing(
    client, kite_server, confirm
):
    order = OrderFactory(
        strategy=StrategyFactory(mode=StrategyMode.LIVE),
        broker_tag=TAG,
        broker_order_id=BROKER_ORDER_ID,
        status=OrderStatus.OPEN,
        price=Decimal("700.00"),
    )
    kite_says(kite_server, **COMPLETE, price=700, average_price=5000)
    kite_trades(kite_server, ("70000001", 10, "5000", "2026-04-01 09:15:03"))

    send(client, postback_body(**COMPLETE, price=Decimal(700), average_price=Decimal(5000)))
    confirm()

    order.refresh_from_db()
    assert (order.status, order.filled_quantity) == (OrderStatus.OPEN, 0)
    assert trades_of(order) == []
    assert not Position.objects.exists()
    issue = ReconciliationIssue.objects.get()
    assert issue.issue_type == IssueType.CONTRADICTORY_REPORT
    assert issue.severity == Severity.CRITICAL
    assert (issue.order_id, issue.strategy_id) == (order.pk, order.strategy_id)
    assert (issue.broker_quantity, issue.broker_price) == (10, Decimal("5000.000000"))
    assert issue.description == (
        f"order {order.pk} (BUY 10 NSE:RELIANCE LIMIT 700.00): kite report refused, nothing "
        "applied: fill price 5000.00: above the BUY order's limit price 700.00; "
        "average price 5000.000000: above the BUY order's limit price 700.00"
    )
    assert issue.details["report"]["status"] == "COMPLETE"
    refused = order.events.get(kind=EventKind.REFUSED)
    assert refused.details["issue_id"] == issue.pk
    # The kill switch's rule for a CRITICAL issue runs as risk's job.
    assert ProcrastinateJob.objects.filter(
        task_name="risk.critical_issue", args={"issue_id": issue.pk}
    ).exists()


@confirmed
def test_the_poll_refuses_a_contradicting_answer_too(order, kite_server):
    """The rules sit under every path that applies reports, not only the postback's."""
    kite_says(kite_server, **COMPLETE, average_price=2460)  # above the limit 2450.50
    kite_trades(kite_server, ("70000001", 10, "2460", "2026-04-01 09:15:03"))

    assert orders_poll(stale_after=timedelta(0)).asked == 1  # every working order

    order.refresh_from_db()
    assert (order.status, order.filled_quantity) == (OrderStatus.OPEN, 0)
    issue = ReconciliationIssue.objects.get(issue_type=IssueType.CONTRADICTORY_REPORT)
    assert "average price 2460.000000: above the BUY order's limit price 2450.50" in (
        issue.description
    )


@confirmed
def test_logs_hold_no_checksum_token_or_secret(client, order, kite_server, confirm, caplog):
    kite_says(kite_server, **partial_fields(4, "2450.50"), trades=[T1])
    body = partial(4, "2450.50")
    checksum = json.loads(body)["checksum"]
    caplog.set_level(logging.DEBUG)

    send(client, body)
    send(client, postback_body(secret="forged", **partial_fields(4, "2450.50")))
    confirm()

    assert trades_of(order) == [(kite_id(T1), 4, Decimal("2450.5000"))]
    logged = "\n".join(
        [r.getMessage() for r in caplog.records]
        + [json.dumps(r.__dict__, default=str) for r in caplog.records]
    )
    assert "Kite postback {" in logged  # the redacted copy is logged
    assert '"checksum": "[redacted]"' in logged
    for secret in (checksum, SECRET, KITE_ACCESS_TOKEN):
        assert secret not in logged


@confirmed
def test_complete_after_a_partial_adds_only_the_rest(client, order, kite_server, confirm):
    kite_says(kite_server, **partial_fields(4, "2450.50"), trades=[T1])
    kite_says(kite_server, **COMPLETE, average_price=Decimal("2450.47"), trades=[T1, T2])
    send(client, partial(4, "2450.50"))
    confirm()

    assert send(client, complete("2450.47")).status_code == 200
    confirm()

    order.refresh_from_db()
    assert order.status == OrderStatus.FILLED
    assert order.filled_quantity == 10
    assert order.average_price == Decimal("2450.470000")
    # Kite's two trades: 4 @ 2450.50 first, then 6 @ 2450.45 (10 @ 2450.47 in all).
    assert trades_of(order) == [
        (kite_id(T1), 4, Decimal("2450.5000")),
        (kite_id(T2), 6, Decimal("2450.4500")),
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
    assert confirm_jobs() == []


def test_checksum_without_the_field_at_all_is_refused(client, order):
    payload = json.loads(complete())
    del payload["checksum"]

    assert send(client, json.dumps(payload).encode()).status_code == 403
    assert confirm_jobs() == []


def test_a_postback_of_a_user_without_an_account_is_refused(client, order):
    # Each Kite user's postbacks are signed with its own app's secret: one we do not know
    # cannot be verified (an empty secret would let anyone compute the checksum).
    response = send(client, postback_body(secret="", user_id="ZZ9999", status="COMPLETE"))

    assert response.status_code == 403
    assert "user_id" in response.json()["message"]
    assert confirm_jobs() == []


def test_each_account_checks_its_own_secret(client, order):
    kite_account_create("CD5678", api_secret="another-secret", access_token="")

    signed_by_the_other = postback_body(secret="another-secret", status="COMPLETE")
    assert send(client, signed_by_the_other).status_code == 403  # AB1234's postback
    own = postback_body(secret="another-secret", user_id="CD5678", status="COMPLETE")
    assert send(client, own).status_code == 200


@confirmed
def test_late_answers_end_with_the_right_totals(client, order, kite_server, confirm):
    # Kite's answers can be older than what we have (a replica behind): nothing goes back.
    kite_says(kite_server, **COMPLETE, average_price=Decimal("2450.47"), trades=[T1, T2])
    kite_says(kite_server, **partial_fields(4, "2450.50"), trades=[T1])
    assert send(client, complete()).status_code == 200
    confirm()
    assert send(client, partial(4, "2450.50")).status_code == 200
    confirm()

    order.refresh_from_db()
    assert order.status == OrderStatus.FILLED
    assert order.filled_quantity == 10
    assert order.average_price == Decimal("2450.470000")
    assert trades_of(order) == [
        (kite_id(T1), 4, Decimal("2450.5000")),
        (kite_id(T2), 6, Decimal("2450.4500")),
    ]
    assert not order.events.filter(kind="REFUSED").exists()


@confirmed
def test_cancel_after_a_partial_fill_keeps_the_fill(client, order, kite_server, confirm):
    t1 = ("70000001", 3, "2450.50", "2026-04-01 09:15:02")
    kite_says(kite_server, **partial_fields(3, "2450.50"), trades=[t1])
    cancelled = {
        "status": "CANCELLED",
        "status_message": "Cancelled by user",
        "filled_quantity": 3,
        "pending_quantity": 0,
        "unfilled_quantity": 7,
        "cancelled_quantity": 7,
        "average_price": Decimal("2450.50"),
    }
    kite_says(
        kite_server, **{k: v for k, v in cancelled.items() if k != "unfilled_quantity"}, trades=[t1]
    )
    send(client, partial(3, "2450.50"))
    confirm()

    assert send(client, postback_body(**cancelled)).status_code == 200
    confirm()

    order.refresh_from_db()
    assert order.status == OrderStatus.CANCELLED
    assert order.filled_quantity == 3
    assert trades_of(order) == [(kite_id(t1), 3, Decimal("2450.5000"))]


@confirmed
def test_rejection_after_acceptance_rejects_with_kites_message(client, order, kite_server, confirm):
    message = "RMS:Margin Exceeds,Required:24505, Available:1000"
    kite_says(
        kite_server, status="REJECTED", status_message=message, filled_quantity=0, average_price=0
    )
    body = postback_body(
        status="REJECTED", status_message=message, filled_quantity=0, average_price=0
    )

    assert send(client, body).status_code == 200
    confirm()

    order.refresh_from_db()
    assert order.status == OrderStatus.REJECTED
    assert order.status_message == message


@confirmed
def test_postback_for_an_order_waiting_on_a_timeout_adopts_it_by_tag(client, kite_server, confirm):
    waiting = OrderFactory(
        strategy=StrategyFactory(mode=StrategyMode.LIVE), broker_tag=TAG, status=OrderStatus.UNKNOWN
    )
    # Kite is asked by our tag (the order book): its latest order with the tag is COMPLETE.
    kite_server.reply(*ORDER_BOOK, "orders")
    kite_trades(kite_server, T1, T2)

    assert send(client, partial(4, "2450.50")).status_code == 200
    confirm()

    waiting.refresh_from_db()
    assert waiting.broker_order_id == BROKER_ORDER_ID
    assert (waiting.status, waiting.filled_quantity) == (OrderStatus.FILLED, 10)


def test_postback_for_an_unknown_order_is_acknowledged_and_writes_nothing(client, order):
    events = OrderEvent.objects.count()
    before = snapshot(order)

    body = postback_body(
        order_id="260401000999999",
        tag="OMSSOMEONEELSE000001",
        status="COMPLETE",
        filled_quantity=10,
        average_price=Decimal("2450.47"),
    )

    response = send(client, body)

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert Trade.objects.count() == 0
    assert OrderEvent.objects.count() == events
    assert snapshot(order) == before
    assert confirm_jobs() == []


def test_kite_needs_no_csrf_token(order):
    response = send(Client(enforce_csrf_checks=True), partial(4, "2450.50"))

    assert response.status_code == 200
    assert len(confirm_jobs()) == 1


def test_only_post_is_allowed(client):
    assert client.get(URL).status_code == 405


def test_a_body_that_is_not_json_is_a_bad_request(client, order):
    response = client.post(
        URL, data=b"order_id=1", content_type="application/x-www-form-urlencoded"
    )

    assert response.status_code == 400
    assert confirm_jobs() == []


def test_a_postback_while_the_database_is_away_is_a_503_to_retry(client, order, monkeypatch):
    def unavailable(*args, **kwargs):
        raise OperationalError("connection to server was lost")

    monkeypatch.setattr(views, "order_confirm_request", unavailable)

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
    assert confirm_jobs() == []


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
    assert len(confirm_jobs()) == 1
