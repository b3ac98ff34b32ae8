"""Checking a webhook delivery: the OMS signs each POST with the endpoint's secret.

Headers: ``X-OMS-Event-Id: <id>``, ``X-OMS-Timestamp: <unix seconds>``, ``X-OMS-Signature:
v1=<hex>`` where hex = HMAC-SHA256(secret, f"{timestamp}.{raw body}"). The body is one feed
event as JSON. Check the raw bytes (before any JSON parsing), refuse stale timestamps (a
replayed capture), and dedupe on the event id: delivery is at least once.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from typing import Any

from oms_client.errors import WebhookVerificationError
from oms_client.models import Event

EVENT_ID_HEADER = "X-OMS-Event-Id"
TIMESTAMP_HEADER = "X-OMS-Timestamp"
SIGNATURE_HEADER = "X-OMS-Signature"


def sign(secret: str, timestamp: int | str, body: bytes) -> str:
    """The ``X-OMS-Signature`` value for a body sent at ``timestamp``."""
    message = f"{timestamp}.".encode() + body
    return "v1=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def verify_webhook(
    secret: str,
    headers: Mapping[str, Any],
    body: bytes | str,
    tolerance: int = 300,
    *,
    now: float | None = None,
) -> Event:
    """The delivered event when the signature is the endpoint's and the timestamp is within
    ``tolerance`` seconds of ``now``; else ``WebhookVerificationError`` saying why.

    ``headers`` is any mapping (names in any case); ``body`` the raw request body. Several
    ``v1=`` signatures separated by commas are accepted (one per secret during a rotation).
    """
    raw = body.encode() if isinstance(body, str) else bytes(body)
    found = {str(name).lower(): value for name, value in headers.items()}
    timestamp = found.get(TIMESTAMP_HEADER.lower())
    signature = found.get(SIGNATURE_HEADER.lower())
    if not timestamp or not signature:
        raise WebhookVerificationError(f"missing {TIMESTAMP_HEADER} or {SIGNATURE_HEADER} header")
    try:
        sent_at = int(str(timestamp).strip())
    except ValueError:
        raise WebhookVerificationError(f"{TIMESTAMP_HEADER}: not unix seconds") from None
    current = time.time() if now is None else now
    if abs(current - sent_at) > tolerance:
        raise WebhookVerificationError(
            f"{TIMESTAMP_HEADER}: {sent_at} is more than {tolerance} s from now"
        )
    expected = sign(secret, sent_at, raw)
    offered = [part.strip() for part in str(signature).split(",")]
    if not any(hmac.compare_digest(expected, part) for part in offered):
        raise WebhookVerificationError(f"{SIGNATURE_HEADER}: does not match the body")
    try:
        event = Event.from_json(json.loads(raw))
    except (ValueError, KeyError, TypeError) as error:
        raise WebhookVerificationError(f"body: not an event ({error})") from None
    header_id = found.get(EVENT_ID_HEADER.lower())
    if header_id is not None and str(header_id).strip() != str(event.id):
        raise WebhookVerificationError(f"{EVENT_ID_HEADER}: {header_id} is not the body's id")
    return event
