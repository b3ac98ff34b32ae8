"""Kite's postbacks: the order updates Kite POSTs for every order this app placed.

A postback is believed only when its checksum matches: SHA-256 of order_id + order_timestamp
(the exact string received) + our API secret. Otherwise it is refused and nothing is written.
Its cumulative filled_quantity and average_price go to order_updates_apply, which turns the
increment over what we already have into one fill, so a repeated or late postback changes
nothing twice. A postback for an order we do not know is acknowledged and logged; the next
reconciliation looks at it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from orders.brokers.kite import order_update
from orders.enums import EventSource

logger = logging.getLogger("oms.brokers.kite.postback")


def postback_checksum(order_id: str, order_timestamp: str, api_secret: str) -> str:
    """The checksum Kite puts in a postback: hex SHA-256 of the three strings joined."""
    return hashlib.sha256(f"{order_id}{order_timestamp}{api_secret}".encode()).hexdigest()


def checksum_valid(payload: dict[str, Any], api_secret: str) -> bool:
    order_id = payload.get("order_id")
    order_timestamp = payload.get("order_timestamp")
    checksum = payload.get("checksum")
    if not api_secret or not all(isinstance(v, str) for v in (order_id, order_timestamp, checksum)):
        return False
    expected = postback_checksum(order_id, order_timestamp, api_secret)
    return hmac.compare_digest(expected.encode(), checksum.lower().encode())


def _error(status: int, message: str) -> JsonResponse:
    return JsonResponse({"status": "error", "message": message}, status=status)


@csrf_exempt
@require_POST
def kite_postback(request: HttpRequest) -> JsonResponse:
    from orders.services import order_updates_apply

    try:
        # Money as Decimal from the first moment: no float ever holds a price.
        payload = json.loads(request.body, parse_float=Decimal)
    except (ValueError, UnicodeDecodeError):
        return _error(400, "body: not JSON")
    if not isinstance(payload, dict):
        return _error(400, "body: a JSON object is expected")
    if not settings.KITE_API_SECRET:
        logger.error("Kite postback refused: KITE_API_SECRET is not set")
        return _error(403, "checksum: cannot be verified")
    if not checksum_valid(payload, settings.KITE_API_SECRET):
        logger.warning(
            "Kite postback refused: bad or missing checksum",
            extra={"broker_order_id": payload.get("order_id")},
        )
        return _error(403, "checksum: does not match order_id + order_timestamp")
    # The raw postback is the broker's own record of the update: keep it in the log.
    logger.info(
        "Kite postback %s", request.body.decode(), extra={"broker_order_id": payload["order_id"]}
    )
    try:
        update = order_update(payload)
    except (KeyError, TypeError, ValueError) as error:
        logger.error("Kite postback unreadable: %s", error)
        return _error(400, f"postback: unreadable ({error})")
    try:
        # Unknown orders are logged there and skipped.
        order_updates_apply([update], source=EventSource.BROKER)
    except (OperationalError, InterfaceError) as error:
        # Whatever was applied stays (every step is idempotent); the order poll reads the
        # order's state from the broker again once the database is back.
        logger.warning(
            "Kite postback not applied, database unavailable: %s",
            (str(error).strip().splitlines() or [""])[0],
            extra={"broker_order_id": payload["order_id"]},
        )
        response = _error(503, "database unavailable: the order poll will catch up")
        response["Retry-After"] = "1"
        return response
    return JsonResponse({"status": "ok"})
