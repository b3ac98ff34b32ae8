"""Kite's postbacks: reading and verifying the order updates Kite POSTs for every order this
app placed (the endpoint itself is orders.views.kite_postback).

A postback's checksum is SHA-256 of order_id + order_timestamp (the exact string received) + our
API secret: it proves Kite sent a postback about that order, nothing more. The status, the
filled quantity and the prices are not signed, and a captured postback replayed with other
figures keeps a valid checksum. So a postback is a notification only: the OMS asks Kite for the
order's history and applies that (orders.services.order_confirm_request).

A signed postback is still read with suspicion: a body nested too deep or over
DATA_UPLOAD_MAX_MEMORY_SIZE, or figures no real order has (a price that is not a finite number
from 0 to MAX_PRICE, a quantity that is not a whole number from 0 to MAX_QUANTITY, more filled
than ordered), is refused with a 4xx naming the field and the rule. The checksum never reaches
a log (postback_redacted).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from decimal import Decimal, InvalidOperation
from typing import Any

from orders.brokers.kite import REDACTED, redacted
from orders.domain import MAX_PRICE, MAX_QUANTITY

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


SECRET_FIELDS = ("checksum",)  # and any text holding the API secret, wherever it appears


def postback_redacted(payload: dict[str, Any], api_secret: str) -> str:
    """The postback as JSON for a log: its checksum (and the API secret, should anything hold
    it) blanked out. What Kite sent is otherwise kept: it is the broker's own record."""
    shown = {key: REDACTED if key in SECRET_FIELDS else value for key, value in payload.items()}
    return redacted(json.dumps(shown, default=str, sort_keys=True), [api_secret])


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
