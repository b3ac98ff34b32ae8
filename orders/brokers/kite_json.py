"""Kite's JSON and CSV values read into ours, and ours written as Kite wants them (pure).

Numbers: the official client parses JSON numbers as floats, so every figure is read from its
own digits (``Decimal(str(x))``), never through float arithmetic; the SDK sends JSON, so
figures written for it are floats built from a Decimal's digits. Timestamps: Kite's are IST
wall-clock times without an offset.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from django.utils import timezone

from orders.brokers.base import BrokerGtt, GttLeg, GttRequest
from orders.brokers.funds import (
    AvailableFunds,
    ContractNoteCharges,
    ContractNoteLeg,
    OrderMargin,
)
from orders.money import PAISA

if TYPE_CHECKING:
    from orders.models import Order

logger = logging.getLogger("oms.brokers.kite")

IST = ZoneInfo("Asia/Kolkata")  # Kite's timestamps are IST wall-clock times without an offset
VARIETY = "regular"


def kite_decimal(value: Any, places: Decimal) -> Decimal | None:
    """A JSON number as a Decimal rounded to ``places``.

    The client parses JSON numbers as floats; ``Decimal(str(x))`` keeps the digits Kite sent
    (2450.55, not 2450.5500000000001818989...) before any arithmetic touches them. A postback
    is parsed with parse_float=Decimal and passes through unchanged. NaN, Infinity and numbers
    too large to hold to ``places`` are not prices: None, like any other non-number.
    """
    if value is None or value == "":
        return None
    try:
        number = value if isinstance(value, Decimal) else Decimal(str(value))
        if not number.is_finite():
            raise InvalidOperation
        return number.quantize(places, rounding=ROUND_HALF_UP)
    except InvalidOperation:
        logger.warning("not a number from Kite: %r", value)
        return None


def kite_time(value: Any) -> datetime | None:
    """A Kite timestamp ("2026-04-01 09:15:02", or the client's naive datetime) in IST."""
    if not value:
        return None
    if not isinstance(value, datetime):
        try:
            value = datetime.fromisoformat(str(value))
        except ValueError:
            logger.warning("not a timestamp from Kite: %r", value)
            return None
    return value.replace(tzinfo=IST) if timezone.is_naive(value) else value


# --- money before and after the trade ----------------------------------------------------------

UNROUNDED = Decimal("0.0000000001")  # Kite's charges come unrounded; kept to 10 places


def _money(value: Any) -> Decimal:
    return kite_decimal(value, PAISA) or Decimal("0.00")


def _exact(value: Any) -> Decimal:
    return kite_decimal(value, UNROUNDED) or Decimal(0)


def margin_params(order: Order) -> dict[str, Any]:
    """One order as /margins/orders and /margins/basket want it (prices 0 when none). The
    SDK sends JSON, whose numbers are floats: built from the Decimal's own digits."""
    return {
        "exchange": order.exchange,
        "tradingsymbol": order.symbol,
        "transaction_type": order.side,
        "variety": order.variety or VARIETY,
        "product": order.product,
        "order_type": order.order_type,
        "quantity": order.quantity,
        "price": float(order.price or 0),
        "trigger_price": float(order.trigger_price or 0),
    }


def order_margin(entry: Mapping[str, Any]) -> OrderMargin:
    charges = entry.get("charges") or {}
    return OrderMargin(
        segment=str(entry.get("type") or "equity"),
        symbol=str(entry.get("tradingsymbol") or ""),
        exchange=str(entry.get("exchange") or ""),
        total=_money(entry.get("total")),
        span=_money(entry.get("span")),
        exposure=_money(entry.get("exposure")),
        option_premium=_money(entry.get("option_premium")),
        var=_money(entry.get("var")),
        charges=_money(charges.get("total")),
    )


def available_funds(segment: str, entry: Mapping[str, Any]) -> AvailableFunds:
    available = entry.get("available") or {}
    utilised = entry.get("utilised") or {}
    return AvailableFunds(
        segment=segment,
        net=_money(entry.get("net")),
        cash=_money(available.get("cash")),
        live_balance=_money(available.get("live_balance")),
        utilised=_money(utilised.get("debits")),
    )


def contract_note_params(leg: ContractNoteLeg) -> dict[str, Any]:
    return {
        "order_id": leg.broker_order_id,
        "exchange": leg.exchange,
        "tradingsymbol": leg.symbol,
        "transaction_type": leg.side,
        "variety": VARIETY,
        "product": leg.product,
        "order_type": leg.order_type,
        "quantity": leg.quantity,
        # The SDK sends JSON: a float, from the Decimal's own digits.
        "average_price": float(leg.average_price),
    }


def contract_note_entry(entry: Mapping[str, Any]) -> ContractNoteCharges:
    charges = entry.get("charges") or {}
    gst = charges.get("gst") or {}
    return ContractNoteCharges(
        symbol=str(entry.get("tradingsymbol") or ""),
        exchange=str(entry.get("exchange") or ""),
        side=str(entry.get("transaction_type") or ""),
        quantity=int(entry.get("quantity") or 0),
        brokerage=_exact(charges.get("brokerage")),
        stt=_exact(charges.get("transaction_tax")),
        stt_kind=str(charges.get("transaction_tax_type") or ""),
        exchange_charges=_exact(charges.get("exchange_turnover_charge")),
        sebi_charges=_exact(charges.get("sebi_turnover_charge")),
        stamp_duty=_exact(charges.get("stamp_duty")),
        gst=_exact(gst.get("total")),
        total=_exact(charges.get("total")),
    )


def _csv_text(value: Any) -> str:
    """A value the SDK parsed out of the instruments CSV, written back as the CSV had it."""
    if value is None:
        return ""
    if isinstance(value, float):
        return format(Decimal(str(value)), "f")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def instrument_row(entry: Mapping[str, Any]) -> dict[str, str]:
    return {column: _csv_text(value) for column, value in entry.items()}


# --- GTTs -------------------------------------------------------------------------------------


def gtt_params(request: GttRequest) -> dict[str, Any]:
    """The SDK's place_gtt / modify_gtt arguments for a GTT request (LIMIT legs)."""
    return {
        "trigger_type": request.trigger_type,
        "tradingsymbol": request.symbol,
        "exchange": request.exchange,
        "trigger_values": [float(value) for value in request.trigger_values],
        "last_price": float(request.last_price),
        "orders": [
            {
                "transaction_type": leg.side,
                "quantity": leg.quantity,
                "price": float(leg.price),
                "order_type": "LIMIT",
                "product": request.product,
            }
            for leg in request.legs
        ],
    }


def gtt_from_json(entry: Mapping[str, Any]) -> BrokerGtt:
    """One GTT of GET /gtt/triggers (Kite's JSON) as ours; a leg with a ``result`` triggered."""
    condition = entry.get("condition") or {}
    legs = []
    for leg in entry.get("orders") or ():
        result = leg.get("result") or None
        order_result = (result or {}).get("order_result") or {}
        legs.append(
            GttLeg(
                side=str(leg.get("transaction_type") or ""),
                quantity=int(leg.get("quantity") or 0),
                price=kite_decimal(leg.get("price"), PAISA) or Decimal(0),
                order_id=str(order_result.get("order_id") or ""),
                rejection=str(order_result.get("rejection_reason") or ""),
                triggered=result is not None,
            )
        )
    return BrokerGtt(
        trigger_id=str(entry.get("id")),
        status=str(entry.get("status") or ""),
        symbol=str(condition.get("tradingsymbol") or ""),
        exchange=str(condition.get("exchange") or ""),
        trigger_values=tuple(
            kite_decimal(value, PAISA) for value in condition.get("trigger_values") or ()
        ),
        legs=tuple(legs),
    )
