"""A Python client for the OMS strategy API: place, modify and cancel orders with retries that
are safe (placement is idempotent by ``client_order_id``), the event feed as an iterator that
resumes from the last id, and webhook signature verification.

    from oms_client import OMSClient

    oms = OMSClient("http://127.0.0.1:8000", "oms_1a2b3c4d_...")
    order = oms.place("RELIANCE", "BUY", 10, price="2450.50")
"""

from oms_client.client import EventFeed, EventPage, OMSClient, __version__
from oms_client.errors import (
    APIError,
    AuthenticationFailed,
    Conflict,
    InvalidRequest,
    KillSwitchEngaged,
    NotFound,
    OMSError,
    PermissionDenied,
    RequestTooLarge,
    RiskRefused,
    ServerError,
    Throttled,
    TransportError,
    WebhookVerificationError,
)
from oms_client.models import Basket, Event, Order, OrderEvent, Strategy, Trade, Violation
from oms_client.webhooks import sign, verify_webhook

__all__ = [
    "APIError",
    "AuthenticationFailed",
    "Basket",
    "Conflict",
    "Event",
    "EventFeed",
    "EventPage",
    "InvalidRequest",
    "KillSwitchEngaged",
    "NotFound",
    "OMSClient",
    "OMSError",
    "Order",
    "OrderEvent",
    "PermissionDenied",
    "RequestTooLarge",
    "RiskRefused",
    "ServerError",
    "Strategy",
    "Throttled",
    "Trade",
    "TransportError",
    "Violation",
    "WebhookVerificationError",
    "__version__",
    "sign",
    "verify_webhook",
]
