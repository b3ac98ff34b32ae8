"""Kite's postbacks: the order updates Kite POSTs for every order this app placed.

A postback is believed only when its checksum matches: SHA-256 of order_id + order_timestamp
(the exact string received) + our API secret. Otherwise it is refused and nothing is written.
Its cumulative filled_quantity and average_price go to order_updates_apply, which turns the
increment over what we already have into one fill, so a repeated or late postback changes
nothing twice. A postback for an order we do not know is acknowledged and logged; the next
reconciliation looks at it.

A signed postback is still read with suspicion before anything is applied: a body nested too
deep or over DATA_UPLOAD_MAX_MEMORY_SIZE, or figures no real order has (a price that is not a
finite number from 0 to MAX_PRICE, a quantity that is not a whole number from 0 to
MAX_QUANTITY, more filled than ordered), is refused with a 4xx naming the field and the rule.
Errors answer ``{"status": "error", "message": ...}``, the shape Kite's own API uses.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from omsproject.json_body import JsonBodyError, json_body_load
from orders.brokers.kite import order_update
from orders.domain import MAX_PRICE, MAX_QUANTITY
from orders.enums import EventSource

logger = logging.getLogger("oms.brokers.kite.postback")

# Kite sends 0 for a price the order has not (a MARKET order's price, no trigger, no fill yet).
PRICE_FIELDS = ("price", "trigger_price", "average_price")
QUANTITY_FIELDS = (
    "quantity",
    "filled_quantity",
    "pending_quantity",
    "unfilled_quantity",
    "cancelled_quantity",
    "disclosed_quantity",
)
PRICE_RULE = f"must be a finite number from 0 to {MAX_PRICE}"
QUANTITY_RULE = f"must be a whole number from 0 to {MAX_QUANTITY}"


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


def figures_errors(payload: dict[str, Any]) -> dict[str, str]:
    """Each price and quantity of a postback that no real order could have, with its rule.

    The JSON was read with parse_float=Decimal: prices are ints or Decimals (a string is let
    through when it is a plain decimal); a quantity is an int, never 10.0 nor "10".
    """
    errors: dict[str, str] = {}
    for name in PRICE_FIELDS:
        value = payload.get(name)
        if value is not None and _price(value) is None:
            errors[name] = f"{name} {value}: {PRICE_RULE}"
    for name in QUANTITY_FIELDS:
        value = payload.get(name)
        if value is not None and not _quantity_valid(value):
            errors[name] = f"{name} {value}: {QUANTITY_RULE}"
    if errors:
        return errors
    filled, ordered = payload.get("filled_quantity") or 0, payload.get("quantity")
    if ordered is not None and filled > ordered:
        errors["filled_quantity"] = (
            f"filled_quantity {filled}: must be at most the order's quantity {ordered}"
        )
    if filled and not _price(payload.get("average_price") or 0):
        errors["average_price"] = (
            f"average_price {payload.get('average_price')}: must be above 0 when "
            f"filled_quantity is {filled}"
        )
    return errors


def _price(value: Any) -> Decimal | None:
    """The price as a Decimal when it is one (0 included), else None."""
    if isinstance(value, bool) or not isinstance(value, int | Decimal | str):
        return None
    try:
        price = Decimal(value)
    except InvalidOperation:
        return None
    if not price.is_finite() or not 0 <= price <= MAX_PRICE:
        return None
    return price


def _quantity_valid(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_QUANTITY


def _error(status: int, message: str) -> JsonResponse:
    return JsonResponse({"status": "error", "message": message}, status=status)


@csrf_exempt
@require_POST
def kite_postback(request: HttpRequest) -> JsonResponse:
    from orders.services import order_updates_apply

    try:
        body = request.body
    except RequestDataTooBig:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        return _error(413, f"body: must be at most {limit} bytes")
    try:
        # Money as Decimal from the first moment: no float ever holds a price.
        payload = json_body_load(body, parse_float=Decimal)
    except JsonBodyError as error:
        return _error(400, str(error))
    except ValueError:  # UnicodeDecodeError is one too
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
        "Kite postback %s",
        body.decode(errors="replace"),
        extra={"broker_order_id": payload["order_id"]},
    )
    if errors := figures_errors(payload):
        logger.error(
            "Kite postback refused: %s",
            "; ".join(errors.values()),
            extra={"broker_order_id": payload["order_id"]},
        )
        return _error(400, "; ".join(errors.values()))
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
