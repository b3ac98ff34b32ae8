"""Orders through the client: placement with generated ids and safe retries, replays, modify,
cancel, typed errors, and 429s honoured — all against the live test server."""

from __future__ import annotations

import threading
import time
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from oms_client import (
    Conflict,
    InvalidRequest,
    KillSwitchEngaged,
    NotFound,
    OMSClient,
    RiskRefused,
    Throttled,
    TransportError,
)

from orders.enums import OrderStatus
from orders.models import Order
from positions.services import market_prices_update
from risk.kill_switch import kill_switch_set
from risk.models import KillSwitchState, RiskLimit

pytestmark = pytest.mark.django_db(transaction=True)


def test_place_makes_a_client_order_id_and_the_same_id_again_replays(oms, caller):
    order = oms.place("RELIANCE", "BUY", 10, price="2450.50", tag="t1")

    assert order.client_order_id.startswith("oms-") and len(order.client_order_id) == 36
    assert order.status == OrderStatus.PENDING
    assert order.price == Decimal("2450.50") and order.order_type == "LIMIT"
    assert order.replayed is False
    again = oms.place(
        "RELIANCE", "BUY", 10, price="2450.50", tag="t1", client_order_id=order.client_order_id
    )
    assert again.replayed is True
    assert again.id == order.id
    assert Order.objects.filter(strategy=caller.strategy).count() == 1
    with pytest.raises(Conflict) as conflict:  # the same id for another order
        oms.place("RELIANCE", "BUY", 11, price="2450.50", client_order_id=order.client_order_id)
    assert conflict.value.status == 409


class AnswerLost:
    """A proxy in front of the live server that forwards the first POST and then drops the
    connection without answering: the order is placed, the strategy never hears it."""

    def __init__(self, target: str):
        self.target = target
        self.bodies: list[bytes] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                proxy.bodies.append(body)
                answer = requests.post(
                    proxy.target + self.path,
                    data=body,
                    headers={k: v for k, v in self.headers.items() if k.lower() != "host"},
                    timeout=20,
                )
                if len(proxy.bodies) == 1:
                    self.close_connection = True
                    self.connection.shutdown(2)  # placed, and the answer lost
                    return
                self.send_response(answer.status_code)
                for name in ("Content-Type", "Idempotent-Replayed"):
                    if name in answer.headers:
                        self.send_header(name, answer.headers[name])
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_a_placement_whose_answer_is_lost_is_retried_with_the_same_id_and_placed_once(
    live_server, caller, sleeps
):
    proxy = AnswerLost(live_server.url)
    try:
        with OMSClient(proxy.url, caller.plaintext, retries=2, sleep=sleeps) as oms:
            order = oms.place("RELIANCE", "SELL", 5, order_type="MARKET")
    finally:
        proxy.close()

    assert len(proxy.bodies) == 2 and proxy.bodies[0] == proxy.bodies[1]  # same client_order_id
    assert order.replayed is True  # the second attempt found the first one's order
    assert len(sleeps.waits) == 1
    assert list(Order.objects.filter(strategy=caller.strategy).values_list("pk", flat=True)) == [
        order.id
    ]


def test_a_modification_is_not_sent_again_after_its_answer_is_lost(live_server, caller, sleeps):
    """Only what cannot have been acted on is retried for modify/cancel: a dropped answer is
    a TransportError, never a second request."""
    proxy = AnswerLost(live_server.url)
    try:
        with (
            OMSClient(proxy.url, caller.plaintext, retries=3, sleep=sleeps) as oms,
            pytest.raises(TransportError),
        ):
            oms.cancel(123456, reason="gone")
    finally:
        proxy.close()
    assert len(proxy.bodies) == 1 and sleeps.waits == []


def test_modify_and_cancel_a_working_order(oms, caller, run_jobs):
    market_prices_update([("SBIN", "NSE", Decimal("812.35"))])
    placed = oms.place("SBIN", "BUY", 4, price=Decimal("800.00"))
    run_jobs()
    assert oms.order(placed.id).status == OrderStatus.OPEN

    modified = oms.modify(placed.id, price="800.50", quantity=6)

    assert modified.pending_modification["price"] == Decimal("800.50")
    assert modified.pending_modification["quantity"] == 6
    run_jobs()
    now = oms.order(placed.id)
    assert (now.price, now.quantity, now.status) == (Decimal("800.50"), 6, OrderStatus.OPEN)
    assert [e.reason for e in now.events if e.kind == "MODIFY"] == [
        "modification requested",
        "modification accepted by broker",
    ]

    cancelling = oms.cancel(placed.id, reason="signal gone")
    assert cancelling.raw["cancel_requested_at"] is not None
    run_jobs()
    assert oms.order(placed.id).status == OrderStatus.CANCELLED
    with pytest.raises(Conflict):
        oms.modify(placed.id, price="801.00")


def test_a_risk_refusal_is_a_typed_error_with_its_violations(oms, caller):
    RiskLimit.objects.create(strategy=caller.strategy, max_order_quantity=5)

    with pytest.raises(RiskRefused) as refused:
        oms.place("RELIANCE", "BUY", 7, price="2450.50", client_order_id="too-big")

    error = refused.value
    assert (error.status, error.code, error.replayed) == (422, "risk_rejected", False)
    assert [(v.code, v.field) for v in error.violations] == [("max_order_quantity", "quantity")]
    rejected = Order.objects.get(client_order_id="too-big")
    assert error.order_id == rejected.pk and rejected.status == OrderStatus.REJECTED
    with pytest.raises(RiskRefused) as again:
        oms.place("RELIANCE", "BUY", 7, price="2450.50", client_order_id="too-big")
    assert again.value.replayed is True and again.value.order_id == rejected.pk


def test_the_kill_switch_is_its_own_refusal(oms, caller):
    kill_switch_set(KillSwitchState.HALTED, reason="test", actor="risk", strategy=caller.strategy)

    with pytest.raises(KillSwitchEngaged) as halted:
        oms.place("RELIANCE", "BUY", 1, order_type="MARKET")

    assert halted.value.status == 423 and halted.value.kill_switch == "HALTED"
    assert oms.strategy().kill_switch == "HALTED"


def test_bad_input_and_unknown_orders_are_typed(oms):
    with pytest.raises(InvalidRequest) as invalid:
        oms.place("reliance", "BUY", 1, order_type="MARKET")
    assert "symbol" in invalid.value.fields
    with pytest.raises(NotFound):
        oms.order(987654321)
    with pytest.raises(TypeError, match="price"):
        oms.place("RELIANCE", "BUY", 1, price=2450.5)  # a float is not money


def test_a_429_is_retried_after_its_retry_after(oms, caller, sleeps):
    RiskLimit.objects.create(strategy=caller.strategy, orders_per_second=1)
    oms.place("RELIANCE", "BUY", 1, order_type="MARKET")
    started = time.monotonic()

    second = oms.place("RELIANCE", "BUY", 1, order_type="MARKET")  # over 1 a second: a 429 first

    assert sleeps.waits == [1.0]  # the server's Retry-After, slept as said
    assert time.monotonic() - started >= 1.0
    assert second.replayed is False and second.status == OrderStatus.PENDING
    assert Order.objects.filter(strategy=caller.strategy).count() == 2


def test_a_retry_after_longer_than_the_client_may_wait_raises_throttled(
    live_server, caller, settings, sleeps
):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"strategy_key": "2/min"},
    }
    with OMSClient(live_server.url, caller.plaintext, max_retry_after=5, sleep=sleeps) as oms:
        oms.strategy()
        oms.strategy()
        with pytest.raises(Throttled) as throttled:
            oms.strategy()
    assert throttled.value.code == "throttled"
    assert 5 < throttled.value.retry_after <= 60
    assert sleeps.waits == []


def test_orders_follow_the_pages_and_filter(oms):
    placed = [oms.place("RELIANCE", "BUY", n, order_type="MARKET", tag="pages") for n in (1, 2, 3)]

    listed = list(oms.orders(page_size=2, tag="pages"))

    assert [o.id for o in listed] == [o.id for o in reversed(placed)]  # newest first
    [one] = oms.orders(client_order_id=placed[1].client_order_id)
    assert one.quantity == 2


def test_the_strategy_as_typed_values(oms, caller):
    strategy = oms.strategy()

    assert (strategy.id, strategy.name, strategy.status) == (
        caller.strategy.pk,
        "Client strategy",
        "ACTIVE",
    )
    assert isinstance(strategy.gross_exposure, Decimal)
    assert isinstance(strategy.today["net_pnl"], Decimal)
