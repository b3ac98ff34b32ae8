"""Typed errors: one class per kind of answer a strategy branches on. Each carries the API's
error body (``{"error": {"code", "message", "fields", ...}}``) as ``code``, ``message``,
``fields`` and ``body``, and the HTTP ``status``."""

from __future__ import annotations

from typing import Any

from oms_client.models import Violation


class OMSError(Exception):
    """Anything the client could not do."""


class WebhookVerificationError(OMSError):
    """A webhook delivery whose signature, timestamp or headers do not check out: drop it."""


class TransportError(OMSError):
    """The server could not be reached (or did not answer in time), every retry included."""


class APIError(OMSError):
    """The API answered with an error status."""

    def __init__(self, status: int, body: dict[str, Any] | None, headers: Any = None):
        error = (body or {}).get("error") if isinstance(body, dict) else None
        error = error if isinstance(error, dict) else {}
        self.status = status
        self.body = body or {}
        self.headers = dict(headers or {})
        self.code: str = error.get("code", "")
        self.message: str = error.get("message", "") or f"HTTP {status}"
        self.fields: dict[str, str] = error.get("fields") or {}
        self.replayed = self.headers.get("Idempotent-Replayed") == "true"
        super().__init__(f"{status} {self.code}: {self.message}")


class InvalidRequest(APIError):
    """400: a field broke a rule (``fields`` names each)."""


class AuthenticationFailed(APIError):
    """401: no key, or a key that is unknown or revoked."""


class PermissionDenied(APIError):
    """403: the key may not do this."""


class NotFound(APIError):
    """404: no such row for this strategy (another strategy's rows are 404s too)."""


class Conflict(APIError):
    """409: the same client_order_id with other content, or an order in a state that refuses
    the change (already cancelled, filled...)."""


class RequestTooLarge(APIError):
    """413."""


class RiskRefused(APIError):
    """422: the pre-trade checks refused the order (it is kept as REJECTED, ``order_id``) with
    every ``violations``; ``replayed`` when this answers a placement sent again."""

    def __init__(self, status: int, body: dict[str, Any] | None, headers: Any = None):
        super().__init__(status, body, headers)
        error = (body or {}).get("error") or {}
        self.violations: list[Violation] = [
            Violation.from_json(v) for v in error.get("violations") or []
        ]
        self.order_id: int | None = error.get("order_id")


class KillSwitchEngaged(RiskRefused):
    """423: a kill switch refused the order; ``kill_switch`` is its state."""

    def __init__(self, status: int, body: dict[str, Any] | None, headers: Any = None):
        super().__init__(status, body, headers)
        self.kill_switch: str | None = ((body or {}).get("error") or {}).get("kill_switch")


class Throttled(APIError):
    """429: over a rate (the key's requests, or the strategy's orders); ``retry_after`` s.
    Raised when retries are spent or the wait is longer than the client may sleep."""

    def __init__(self, status: int, body: dict[str, Any] | None, headers: Any = None):
        super().__init__(status, body, headers)
        self.retry_after: float | None = retry_after_of(self.headers, self.body)


class ServerError(APIError):
    """5xx, every retry included (503 ``database_unavailable`` is safe to send again)."""


def retry_after_of(headers: Any, body: dict[str, Any] | None) -> float | None:
    """Seconds from the Retry-After header (or the body's ``retry_after``); None if neither."""
    value = (headers or {}).get("Retry-After")
    if value is None and isinstance(body, dict):
        value = (body.get("error") or {}).get("retry_after")
    try:
        return max(float(value), 0.0) if value is not None else None
    except (TypeError, ValueError):
        return None  # an HTTP date: not sent by this API


STATUS_ERRORS: dict[int, type[APIError]] = {
    400: InvalidRequest,
    401: AuthenticationFailed,
    403: PermissionDenied,
    404: NotFound,
    409: Conflict,
    413: RequestTooLarge,
    422: RiskRefused,
    423: KillSwitchEngaged,
    429: Throttled,
}


def error_for(status: int, body: dict[str, Any] | None, headers: Any = None) -> APIError:
    kind = STATUS_ERRORS.get(status) or (ServerError if status >= 500 else APIError)
    return kind(status, body, headers)
