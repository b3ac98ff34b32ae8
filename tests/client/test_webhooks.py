"""Webhook receivers check each delivery with ``verify_webhook``: the signature is computed
here independently (HMAC-SHA256 over "<timestamp>.<raw body>", the design's scheme), so the
client's check is tested against the scheme, not against itself."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from oms_client import WebhookVerificationError, verify_webhook

from orders.services.webhooks import webhook_endpoint_create

SECRET = "whsec_test_1234"
BODY = json.dumps(
    {
        "id": 42,
        "kind": "order.fill",
        "order_id": 7,
        "client_order_id": "momo-0001",
        "created_at": "2026-12-02T04:00:00.123456+00:00",
        "data": {"quantity": 10, "price": "2450.50", "charges": "12.34", "trade_id": "T1"},
    }
).encode()


def headers_for(body: bytes, *, secret: str = SECRET, timestamp: int | None = None) -> dict:
    timestamp = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return {
        "X-OMS-Event-Id": "42",
        "X-OMS-Timestamp": str(timestamp),
        "X-OMS-Signature": f"v1={digest.hexdigest()}",
    }


def test_a_correctly_signed_delivery_gives_its_event():
    lower_case = {name.lower(): value for name, value in headers_for(BODY).items()}

    event = verify_webhook(SECRET, lower_case, BODY)

    assert (event.id, event.kind, event.client_order_id) == (42, "order.fill", "momo-0001")
    assert event.data["price"] == Decimal("2450.50")
    assert event.data["charges"] == Decimal("12.34")


@pytest.mark.parametrize(
    "tamper, reason",
    [
        (lambda h, b: (h, b.replace(b"2450.50", b"2450.60")), "does not match"),
        (lambda h, b: (headers_for(b, secret="someone else's"), b), "does not match"),
        (lambda h, b: ({**h, "X-OMS-Timestamp": str(int(h["X-OMS-Timestamp"]) + 1)}, b), "match"),
        (lambda h, b: (headers_for(b, timestamp=int(time.time()) - 301), b), "from now"),
        (lambda h, b: ({**h, "X-OMS-Event-Id": "43"}, b), "not the body's id"),
        (lambda h, b: ({k: v for k, v in h.items() if k != "X-OMS-Signature"}, b), "missing"),
        (lambda h, b: ({**h, "X-OMS-Signature": "v1=zz"}, b), "does not match"),
    ],
    ids=["body", "secret", "timestamp", "stale", "event id", "unsigned", "garbage"],
)
def test_a_wrongly_signed_delivery_is_refused(tamper, reason):
    headers, body = tamper(headers_for(BODY), BODY)

    with pytest.raises(WebhookVerificationError, match=reason):
        verify_webhook(SECRET, headers, body)


def test_the_tolerance_is_the_receivers_choice():
    old = headers_for(BODY, timestamp=int(time.time()) - 600)

    assert verify_webhook(SECRET, old, BODY, tolerance=900).id == 42
    with pytest.raises(WebhookVerificationError):
        verify_webhook(SECRET, old, BODY)


def test_any_of_several_signatures_passes_during_a_secret_rotation():
    headers = headers_for(BODY)
    old = headers_for(BODY, secret="old secret", timestamp=int(headers["X-OMS-Timestamp"]))
    headers["X-OMS-Signature"] = f"{old['X-OMS-Signature']},{headers['X-OMS-Signature']}"

    assert verify_webhook(SECRET, headers, BODY.decode()).id == 42


class Receiver:
    """A strategy's webhook receiver on 127.0.0.1: keeps each POST's headers and raw body."""

    def __init__(self):
        self.deliveries: list[tuple[dict, bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.deliveries.append((dict(self.headers), body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.django_db(transaction=True)
def test_a_delivery_from_the_oms_verifies_with_its_secret_and_no_other(
    oms, caller, run_jobs, settings
):
    settings.OMS_WEBHOOK_ALLOW_PRIVATE = True
    receiver = Receiver()
    try:
        _, secret = webhook_endpoint_create(
            strategy=caller.strategy, url=receiver.url, kinds=[], actor="test"
        )
        order = oms.place("RELIANCE", "BUY", 3, order_type="MARKET", client_order_id="hooked")
        run_jobs(["webhooks"])
    finally:
        receiver.close()

    headers, body = receiver.deliveries[0]
    event = verify_webhook(secret, headers, body)
    assert (event.kind, event.order_id, event.client_order_id) == (
        "order.status",
        order.id,
        "hooked",
    )
    assert event.data["to_status"] == "PENDING"
    assert headers["X-OMS-Event-Id"] == str(event.id)
    with pytest.raises(WebhookVerificationError, match="does not match"):
        verify_webhook(secret + "-not-it", headers, body)
    with pytest.raises(WebhookVerificationError, match="does not match"):
        verify_webhook(secret, headers, body.replace(b"hooked", b"hacked"))
