"""One error shape for every API response that is not a success.

    {"error": {"code": "...", "message": "...", "fields": {"field": "rule broken"}, ...}}

``code`` is stable (clients branch on it), ``message`` is for people, ``fields`` maps each bad
input to its rule (empty when no field is at fault). Some errors add keys beside these three
(``violations``, ``order_id``, ``kill_switch``, ``retry_after``); none is ever renamed.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from django.conf import settings
from django.core import signals
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.db import InterfaceError, OperationalError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import set_rollback

from orders.domain import OrderRequestError, OrderResult
from orders.services import (
    IdempotencyConflict,
    IllegalOrderState,
    OrderError,
    OrderNotFound,
    OrderRefused,
    OrderThrottled,
    StrategyNotFound,
    StrategyStatusRefused,
)

logger = logging.getLogger("oms.api")

REPLAY_HEADER = "Idempotent-Replayed"
KILL_SWITCH_CODES = {"kill_switch_halted": "HALTED", "kill_switch_reducing": "REDUCING"}
HTTP_423_LOCKED = 423
DATABASE_RETRY_AFTER = 1  # seconds: a restart or a failover takes a few

ORDER_ERROR_STATUS = {
    IdempotencyConflict: status.HTTP_409_CONFLICT,
    IllegalOrderState: status.HTTP_409_CONFLICT,
    OrderNotFound: status.HTTP_404_NOT_FOUND,
    StrategyNotFound: status.HTTP_404_NOT_FOUND,
    StrategyStatusRefused: status.HTTP_409_CONFLICT,
}


def error_body(
    code: str, message: str, fields: dict[str, str] | None = None, **extra: Any
) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "fields": fields or {}, **extra}}


class ApiError(exceptions.APIException):
    """An API refusal that carries its whole error body (and the headers to send with it)."""

    def __init__(
        self,
        *,
        status_code: int,
        code: str,
        message: str,
        fields: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ):
        super().__init__(detail=message, code=code)
        self.status_code = status_code
        self.body = error_body(code, message, fields, **extra)
        self.headers = headers or {}


def order_refused(result: OrderResult) -> ApiError:
    """A placement the pre-trade checks refused (the order is kept as REJECTED).

    422 listing every violation; 423 when the kill switch is one of them, with its state. A
    replay of a refused placement is answered with the original refusal, marked as a replay
    like any other (the switch may have been released since: this answer is about that order).
    """
    headers = {REPLAY_HEADER: "true"} if result.replayed else None
    return _refusal(result.violations, order_id=result.order_id, headers=headers)


def _refusal(violations, headers: dict[str, str] | None = None, **extra: Any) -> ApiError:
    listed = [v.as_dict() for v in violations]
    fields: dict[str, str] = {}
    for violation in violations:
        fields[violation.field] = "; ".join(
            filter(None, [fields.get(violation.field), violation.message])
        )
    message = "; ".join(v.message for v in violations)
    switch = next(
        (KILL_SWITCH_CODES[v.code] for v in violations if v.code in KILL_SWITCH_CODES), None
    )
    if switch:
        return ApiError(
            status_code=HTTP_423_LOCKED,
            code="kill_switch_engaged",
            message=message,
            fields=fields,
            headers=headers,
            violations=listed,
            kill_switch=switch,
            **extra,
        )
    return ApiError(
        status_code=status.HTTP_422_UNPROCESSABLE_ENTITY,
        code="risk_rejected",
        message=message,
        fields=fields,
        headers=headers,
        violations=listed,
        **extra,
    )


def _flatten(detail: Any, prefix: str = "") -> dict[str, str]:
    """DRF's nested error details as {"field": "message", "prices.0.price": "message"}."""
    if isinstance(detail, dict):
        flat: dict[str, str] = {}
        for key, value in detail.items():
            if key == "non_field_errors" and prefix:
                name = prefix  # the error is about the object at prefix as a whole
            else:
                name = f"{prefix}.{key}" if prefix else str(key)
            flat.update(_flatten(value, name))
        return flat
    if isinstance(detail, list):
        if all(not isinstance(item, dict | list) for item in detail):
            return {prefix or "non_field_errors": " ".join(str(item) for item in detail)}
        flat = {}
        for index, item in enumerate(detail):
            if item:
                flat.update(_flatten(item, f"{prefix}.{index}" if prefix else str(index)))
        return flat
    return {prefix or "non_field_errors": str(detail)}


def _validation_error(detail: Any) -> dict[str, Any]:
    fields = _flatten(detail)
    message = "; ".join(
        message if name == "non_field_errors" or _names(message, name) else f"{name}: {message}"
        for name, message in fields.items()
    )
    return error_body("invalid", message or "invalid input", fields)


def _names(message: str, name: str) -> bool:
    """Whether the message names its field already ("price 1500: must be ...")."""
    return message.startswith((f"{name} ", f"{name}:"))


def _too_big() -> dict[str, Any]:
    """A body over DATA_UPLOAD_MAX_MEMORY_SIZE: refused before a byte of it is parsed."""
    rule = f"must be at most {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes"
    return error_body("request_too_large", f"body: {rule}", {"body": rule})


def _order_request_error(error: OrderRequestError) -> tuple[int, dict[str, Any]]:
    """A request that cannot be an order: 400, each field with its rule."""
    fields = dict(error.errors)
    return status.HTTP_400_BAD_REQUEST, error_body(
        "invalid_order", "; ".join(fields.values()), fields
    )


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    """DRF's EXCEPTION_HANDLER: every error as the one shape, with the right status."""
    headers: dict[str, str] = {}
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()

    if isinstance(exc, OrderRefused):
        exc = _refusal(exc.violations)
    if isinstance(exc, ApiError):
        code, body = exc.status_code, exc.body
        headers.update(exc.headers)
    elif isinstance(exc, RequestDataTooBig):
        code, body = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE, _too_big()
    elif isinstance(exc, OrderThrottled):
        wait = math.ceil(exc.retry_after)
        headers["Retry-After"] = str(wait)
        code = status.HTTP_429_TOO_MANY_REQUESTS
        body = error_body(exc.code, exc.message, exc.fields, retry_after=wait)
    elif isinstance(exc, OrderRequestError):
        code, body = _order_request_error(exc)
    elif isinstance(exc, OrderError):
        code = ORDER_ERROR_STATUS.get(type(exc), status.HTTP_400_BAD_REQUEST)
        body = error_body(exc.code, exc.message, exc.fields)
    elif isinstance(exc, exceptions.ValidationError):
        code, body = exc.status_code, _validation_error(exc.detail)
    elif isinstance(exc, exceptions.Throttled):
        wait = math.ceil(exc.wait or 1)
        headers["Retry-After"] = str(wait)
        code = exc.status_code
        body = error_body(
            "throttled",
            f"request rate: over this key's limit; retry in {wait} s",
            retry_after=wait,
        )
    elif isinstance(exc, OperationalError | InterfaceError):
        # The database went away (restart, failover, connection killed): the request's
        # transaction did not commit — or, if the connection died during the commit, may have;
        # sending the same request again settles it (a placement replays its client_order_id).
        logger.warning("database unavailable: %s", (str(exc).strip().splitlines() or [""])[0])
        headers["Retry-After"] = str(DATABASE_RETRY_AFTER)
        code = status.HTTP_503_SERVICE_UNAVAILABLE
        body = error_body(
            "database_unavailable",
            "database unavailable: send the same request again in a moment",
            retry_after=DATABASE_RETRY_AFTER,
        )
    elif isinstance(exc, exceptions.APIException):
        code = exc.status_code
        detail = exc.detail
        text = " ".join(map(str, detail)) if isinstance(detail, list) else str(detail)
        body = error_body(_code_of(exc), text, getattr(exc, "fields", None))
    else:
        # Not an API refusal: a bug. Logged with its traceback, signalled (the test client
        # re-raises it), and answered in the same shape, never as an HTML page.
        request = context.get("request")
        view = context.get("view")
        logger.error("unhandled error in %s", type(view).__name__, exc_info=exc)
        signals.got_request_exception.send(sender=None, request=request)
        code = status.HTTP_500_INTERNAL_SERVER_ERROR
        body = error_body("server_error", "internal error; it has been logged")

    if auth_header := getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = auth_header
    set_rollback()
    return Response(body, status=code, headers=headers)


def _code_of(exc: exceptions.APIException) -> str:
    codes = exc.get_codes()
    if isinstance(codes, str):
        return codes
    if isinstance(codes, list) and codes and isinstance(codes[0], str):
        return codes[0]
    return exc.default_code
