"""Endpoints brokers call: Kite's order postbacks.

A postback is a notification, not a report to apply: its checksum signs only the order id and
timestamp, so its status and figures could be anyone's. Once the checksum matches and the body
is well-formed, the view defers one job that asks Kite for the order's history and applies
that (orders.services.order_confirm_request), and answers 200 at once. It writes nothing else.
A postback for an order we do not know is acknowledged and logged.
Errors answer ``{"status": "error", "message": ...}``, the shape Kite's own API uses.
"""

from __future__ import annotations

import logging
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from omsproject.json_body import JsonBodyError, json_body_load
from orders.brokers.kite import order_update
from orders.brokers.postback import checksum_valid, figures_errors, postback_redacted
from orders.services import order_confirm_request

logger = logging.getLogger("oms.brokers.kite.postback")


def _error(status: int, message: str) -> JsonResponse:
    return JsonResponse({"status": "error", "message": message}, status=status)


@csrf_exempt
@require_POST
def kite_postback(request: HttpRequest) -> JsonResponse:
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
            extra={"broker_order_id": str(payload.get("order_id"))},
        )
        return _error(403, "checksum: does not match order_id + order_timestamp")
    context = {"broker_order_id": payload["order_id"]}
    # What Kite said, for the record (it is not what the OMS applies): without the checksum.
    logger.info(
        "Kite postback %s", postback_redacted(payload, settings.KITE_API_SECRET), extra=context
    )
    if errors := figures_errors(payload):
        logger.error("Kite postback refused: %s", "; ".join(errors.values()), extra=context)
        return _error(400, "; ".join(errors.values()))
    try:
        update = order_update(payload)
    except (KeyError, TypeError, ValueError) as error:
        logger.error("Kite postback unreadable: %s", error, extra=context)
        return _error(400, f"postback: unreadable ({error})")
    try:
        order_confirm_request(update)
    except (OperationalError, InterfaceError) as error:
        # Nothing was deferred; Kite sends again on a 5xx, and the order poll catches up.
        logger.warning(
            "Kite postback not recorded, database unavailable: %s",
            (str(error).strip().splitlines() or [""])[0],
            extra=context,
        )
        response = _error(503, "database unavailable: the order poll will catch up")
        response["Retry-After"] = "1"
        return response
    return JsonResponse({"status": "ok"})
