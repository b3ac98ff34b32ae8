"""Signing a webhook delivery, and checking a signature (what a receiver does).

A delivery carries three headers:

- ``X-OMS-Event-Id``: the event's id (its feed cursor, ``seq``); a receiver dedupes by it,
  because delivery is at least once;
- ``X-OMS-Timestamp``: when it was signed, in Unix seconds;
- ``X-OMS-Signature``: ``v1=`` and the hex HMAC-SHA256, under the endpoint's secret, of
  ``f"{timestamp}.{raw body}"``.

Signing the timestamp with the body lets a receiver refuse a replayed delivery (``tolerance``).
Pure: no database, no settings.
"""

from __future__ import annotations

import hashlib
import hmac
import random
import time

EVENT_ID_HEADER = "X-OMS-Event-Id"
TIMESTAMP_HEADER = "X-OMS-Timestamp"
SIGNATURE_HEADER = "X-OMS-Signature"
SIGNATURE_VERSION = "v1"
DEFAULT_TOLERANCE = 300  # seconds a receiver accepts between the signature and its clock


def _as_bytes(body: bytes | str) -> bytes:
    return body.encode() if isinstance(body, str) else body


def sign(secret: str, timestamp: int, body: bytes | str) -> str:
    """The ``X-OMS-Signature`` value of ``body`` signed at ``timestamp`` under ``secret``."""
    message = f"{int(timestamp)}.".encode() + _as_bytes(body)
    digest = hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
    return f"{SIGNATURE_VERSION}={digest}"


def verify(
    secret: str,
    timestamp: str | int,
    body: bytes | str,
    signature: str,
    *,
    tolerance: int | None = DEFAULT_TOLERANCE,
    now: float | None = None,
) -> bool:
    """Whether ``signature`` (the header, ``v1=<hex>``) signs ``body`` at ``timestamp`` under
    ``secret``, and the timestamp is within ``tolerance`` seconds of ``now`` (None: any age).
    Compared in constant time."""
    try:
        signed_at = int(timestamp)
    except (TypeError, ValueError):
        return False
    if tolerance is not None:
        clock = time.time() if now is None else now
        if abs(clock - signed_at) > tolerance:
            return False
    return hmac.compare_digest(sign(secret, signed_at, body), signature or "")


def signed_headers(secret: str, event_id: int, body: bytes, *, timestamp: int) -> dict[str, str]:
    """The headers of one delivery of event ``event_id`` with ``body``."""
    return {
        "Content-Type": "application/json",
        EVENT_ID_HEADER: str(event_id),
        TIMESTAMP_HEADER: str(int(timestamp)),
        SIGNATURE_HEADER: sign(secret, timestamp, body),
    }


def backoff_seconds(
    attempt: int, *, first: float = 1.0, longest: float = 600.0, rng: random.Random | None = None
) -> float:
    """Seconds before trying a failed delivery again after its ``attempt``-th failure (1, 2...):
    exponential (first, 2 x first, 4 x first... capped at ``longest``) with jitter (a random
    point in the upper half of that), so endpoints failing together do not retry in step."""
    ceiling = min(longest, first * 2 ** max(attempt - 1, 0))
    return ceiling / 2 + (rng or random).uniform(0, ceiling / 2)
