"""The Kite sandbox's records and rules, as Kite shows them: errors, instruments, accounts,
orders and positions, margins and charges, and the reading of request fields.

Pure values and calculations (no state, no server): omsproject.kite_sandbox_exchange holds the
sandbox's state and omsproject.kite_sandbox serves it. Money is Decimal; the server turns it
into JSON numbers at the wire, as Kite sends them.

Not Zerodha's figures: margins are a flat share of the order's value (MIS 20%, CNC and NRML
100%), charges follow the rate card of April 2026 roughly, unrounded, as Kite's contract note
gives them.
"""

from __future__ import annotations

import csv
import hashlib
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

IST = ZoneInfo("Asia/Kolkata")
TIMESTAMP = "%Y-%m-%d %H:%M:%S"  # Kite's wall-clock IST timestamps, without an offset

ORDERS_PER_SECOND = 10  # Kite's order limit per user; beyond it HTTP 429
MAX_MODIFICATIONS = 25
WALK_STEP = Decimal("0.001")  # each second a price moves at most 0.1%
DEFAULT_TICK = Decimal("0.05")
DEFAULT_CASH = Decimal("1000000")
MAX_TAG_LENGTH = 20
MAX_FIGURE = 1_000_000_000  # no price or quantity of the sandbox is larger
AUTOMATIC_PROTECTION = -1  # market_protection: -1 (automatic) or a percentage 0..100

EXCHANGES = ("NSE", "BSE", "NFO", "BFO", "MCX", "CDS")
PRODUCTS = ("CNC", "MIS", "NRML", "MTF")
ORDER_TYPES = ("MARKET", "LIMIT", "SL", "SL-M")
SIDES = ("BUY", "SELL")
VALIDITIES = ("DAY", "IOC", "TTL")
VARIETIES = ("regular", "amo")
MARGIN_SHARE = {"MIS": Decimal("0.2")}  # every other product: the full value
LEVERAGE = {"MIS": 5}
WORKING = ("OPEN", "TRIGGER PENDING", "AMO REQ RECEIVED")

# Prices to start from when neither a prices file nor the caller names one (rupees, early 2026).
DEFAULT_PRICES = {
    "NSE:RELIANCE": "1450.00",
    "NSE:TCS": "3250.00",
    "NSE:INFY": "1600.00",
    "NSE:HDFCBANK": "1000.00",
    "NSE:ICICIBANK": "1400.00",
    "NSE:SBIN": "950.00",
    "NSE:BHARTIARTL": "2050.00",
    "NSE:ITC": "400.00",
    "NSE:LT": "3900.00",
    "NSE:KOTAKBANK": "2100.00",
    "BSE:RELIANCE": "1450.00",
    "NFO:NIFTY26DECFUT": "26100.00",
    "NFO:BANKNIFTY26DECFUT": "59300.00",
}
OPTION_PRICE = "150.00"  # an option the table above does not name
OTHER_PRICE = "500.00"

# Charges (a rough copy of Zerodha's rate card from 1 April 2026; Kite's note is unrounded).
BROKERAGE_RATE = Decimal("0.0003")
BROKERAGE_CAP = Decimal(20)
EXCHANGE_RATES = {
    ("NSE", "EQ"): Decimal("0.0000307"),
    ("BSE", "EQ"): Decimal("0.0000375"),
    ("NSE", "FUT"): Decimal("0.0000183"),
    ("NSE", "OPT"): Decimal("0.0003553"),
    ("BSE", "OPT"): Decimal("0.000325"),
}
SEBI_RATE = Decimal("0.000001")
GST_RATE = Decimal("0.18")


class KiteError(Exception):
    """A refusal in Kite's words: the HTTP status, the error_type and the message."""

    def __init__(self, http_status: int, error_type: str, message: str):
        super().__init__(message)
        self.http_status = http_status
        self.error_type = error_type
        self.message = message


def input_error(message: str) -> KiteError:
    return KiteError(400, "InputException", message)


def token_error(message: str = "Incorrect `api_key` or `access_token`.") -> KiteError:
    return KiteError(403, "TokenException", message)


@dataclass(frozen=True)
class Instrument:
    token: int
    exchange_token: int
    exchange: str
    symbol: str
    name: str
    tick_size: Decimal
    lot_size: int
    instrument_type: str  # EQ, FUT, CE, PE
    segment: str
    expiry: str = ""
    strike: Decimal = Decimal(0)

    @property
    def key(self) -> str:
        return f"{self.exchange}:{self.symbol}"

    @property
    def kind(self) -> str:
        """EQ, FUT or OPT: what the charges depend on."""
        return "OPT" if self.instrument_type in ("CE", "PE") else self.instrument_type


def instruments_read(path: str | Path) -> list[Instrument]:
    """The instruments of a file in Kite's instruments CSV format."""
    with Path(path).open(newline="") as lines:
        return [
            Instrument(
                token=int(row["instrument_token"]),
                exchange_token=int(row["exchange_token"]),
                exchange=row["exchange"],
                symbol=row["tradingsymbol"],
                name=row["name"],
                tick_size=Decimal(row["tick_size"] or DEFAULT_TICK),
                lot_size=int(row["lot_size"] or 1),
                instrument_type=row["instrument_type"],
                segment=row["segment"],
                expiry=row["expiry"],
                strike=Decimal(row["strike"] or 0),
            )
            for row in csv.DictReader(lines)
        ]


def default_price(instrument: Instrument) -> Decimal:
    named = DEFAULT_PRICES.get(instrument.key)
    if named:
        return Decimal(named)
    return Decimal(OPTION_PRICE if instrument.kind == "OPT" else OTHER_PRICE)


def on_tick(price: Decimal, tick: Decimal) -> Decimal:
    """``price`` rounded to the nearest multiple of ``tick`` (at least one tick)."""
    ticks = (price / tick).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    return max(ticks, Decimal(1)) * tick


@dataclass
class Account:
    user_id: str
    api_key: str
    api_secret: str
    user_name: str = "Sandbox Trader"
    cash: Decimal = DEFAULT_CASH
    request_tokens: set[str] = field(default_factory=set)
    access_tokens: set[str] = field(default_factory=set)
    public_tokens: dict[str, str] = field(default_factory=dict)
    order_times: deque = field(default_factory=deque)


def account_parse(spec: str) -> Account:
    """``USERID:API_KEY:API_SECRET`` as an Account."""
    parts = spec.split(":")
    if len(parts) != 3 or not all(parts):
        raise ValueError(f"account {spec!r}: must be USERID:API_KEY:API_SECRET, none empty")
    return Account(user_id=parts[0], api_key=parts[1], api_secret=parts[2])


@dataclass
class SandboxOrder:
    order_id: str
    account: Account
    instrument: Instrument
    variety: str
    side: str
    product: str
    order_type: str
    validity: str
    quantity: int
    price: Decimal
    trigger_price: Decimal
    tag: str
    order_timestamp: str
    guid: str
    market_protection: int = 0
    disclosed_quantity: int = 0
    validity_ttl: int = 0
    exchange_order_id: str | None = None
    status: str = ""
    status_message: str | None = None
    filled_quantity: int = 0
    average_price: Decimal = Decimal(0)
    cancelled_quantity: int = 0
    modifications: int = 0
    exchange_timestamp: str | None = None
    exchange_update_timestamp: str | None = None
    history: list[dict[str, Any]] = field(default_factory=list)

    def entry(self) -> dict[str, Any]:
        """The order as Kite shows it in the order book, its history and postbacks."""
        return {
            "placed_by": self.account.user_id,
            "order_id": self.order_id,
            "exchange_order_id": self.exchange_order_id,
            "parent_order_id": None,
            "status": self.status,
            "status_message": self.status_message,
            "status_message_raw": self.status_message,
            "order_timestamp": self.order_timestamp,
            "exchange_update_timestamp": self.exchange_update_timestamp,
            "exchange_timestamp": self.exchange_timestamp,
            "variety": self.variety,
            "modified": self.modifications > 0,
            "exchange": self.instrument.exchange,
            "tradingsymbol": self.instrument.symbol,
            "instrument_token": self.instrument.token,
            "order_type": self.order_type,
            "transaction_type": self.side,
            "validity": self.validity,
            "validity_ttl": self.validity_ttl,
            "product": self.product,
            "quantity": self.quantity,
            "disclosed_quantity": self.disclosed_quantity,
            "price": self.price,
            "trigger_price": self.trigger_price,
            "average_price": self.average_price,
            "filled_quantity": self.filled_quantity,
            "pending_quantity": self.pending_quantity,
            "cancelled_quantity": self.cancelled_quantity,
            "market_protection": self.market_protection,
            "meta": {},
            "tag": self.tag or None,
            "tags": [self.tag] if self.tag else [],
            "guid": self.guid,
        }

    @property
    def pending_quantity(self) -> int:
        if self.status in ("COMPLETE", "CANCELLED", "REJECTED"):
            return 0
        return self.quantity - self.filled_quantity


@dataclass
class PositionBook:
    """One (exchange, symbol, product) of an account: what was bought and sold today."""

    instrument: Instrument
    product: str
    buy_quantity: int = 0
    buy_value: Decimal = Decimal(0)
    sell_quantity: int = 0
    sell_value: Decimal = Decimal(0)

    @property
    def quantity(self) -> int:
        return self.buy_quantity - self.sell_quantity

    def entry(self, last_price: Decimal) -> dict[str, Any]:
        buy_price = self.buy_value / self.buy_quantity if self.buy_quantity else Decimal(0)
        sell_price = self.sell_value / self.sell_quantity if self.sell_quantity else Decimal(0)
        quantity = self.quantity
        average = buy_price if quantity > 0 else sell_price if quantity < 0 else Decimal(0)
        pnl = self.sell_value - self.buy_value + quantity * last_price
        realised = min(self.buy_quantity, self.sell_quantity) * (sell_price - buy_price)
        return {
            "tradingsymbol": self.instrument.symbol,
            "exchange": self.instrument.exchange,
            "instrument_token": self.instrument.token,
            "product": self.product,
            "quantity": quantity,
            "overnight_quantity": 0,
            "multiplier": 1,
            "average_price": average,
            "close_price": 0,
            "last_price": last_price,
            "value": self.sell_value - self.buy_value,
            "pnl": pnl,
            "m2m": pnl,
            "unrealised": pnl - realised,
            "realised": realised,
            "buy_quantity": self.buy_quantity,
            "buy_price": buy_price,
            "buy_value": self.buy_value,
            "buy_m2m": self.buy_value,
            "sell_quantity": self.sell_quantity,
            "sell_price": sell_price,
            "sell_value": self.sell_value,
            "sell_m2m": self.sell_value,
            "day_buy_quantity": self.buy_quantity,
            "day_buy_price": buy_price,
            "day_buy_value": self.buy_value,
            "day_sell_quantity": self.sell_quantity,
            "day_sell_price": sell_price,
            "day_sell_value": self.sell_value,
        }


def session_checksum(api_key: str, request_token: str, api_secret: str) -> str:
    return hashlib.sha256(f"{api_key}{request_token}{api_secret}".encode()).hexdigest()


def postback_checksum(order_id: str, order_timestamp: str, api_secret: str) -> str:
    return hashlib.sha256(f"{order_id}{order_timestamp}{api_secret}".encode()).hexdigest()


def leg_charges(
    instrument: Instrument, *, side: str, product: str, quantity: int, price: Decimal
) -> dict[str, Any]:
    """Kite's ``charges`` object for one leg, unrounded as Kite's contract note gives it."""
    value = price * quantity
    venue = "BSE" if instrument.exchange in ("BSE", "BFO") else "NSE"
    kind = instrument.kind if instrument.kind in ("FUT", "OPT") else "EQ"
    delivery = kind == "EQ" and product in ("CNC", "MTF")
    if delivery:
        brokerage = Decimal(0)
    elif kind == "OPT":
        brokerage = BROKERAGE_CAP
    else:
        brokerage = min(value * BROKERAGE_RATE, BROKERAGE_CAP)
    if delivery:
        stt = value * Decimal("0.001")
        stamp = value * Decimal("0.00015") if side == "BUY" else Decimal(0)
    else:
        stt_rate = {"EQ": "0.00025", "FUT": "0.0005", "OPT": "0.0015"}[kind]
        stt = value * Decimal(stt_rate) if side == "SELL" else Decimal(0)
        stamp_rate = {"EQ": "0.00003", "FUT": "0.00002", "OPT": "0.00003"}[kind]
        stamp = value * Decimal(stamp_rate) if side == "BUY" else Decimal(0)
    exchange_charge = value * EXCHANGE_RATES.get((venue, kind), Decimal(0))
    sebi = value * SEBI_RATE
    gst = (brokerage + exchange_charge + sebi) * GST_RATE
    return {
        "transaction_tax": stt,
        "transaction_tax_type": "stt",
        "exchange_turnover_charge": exchange_charge,
        "sebi_turnover_charge": sebi,
        "brokerage": brokerage,
        "stamp_duty": stamp,
        "gst": {"igst": gst, "cgst": 0, "sgst": 0, "total": gst},
        "total": brokerage + stt + exchange_charge + sebi + stamp + gst,
    }


def required_margin(product: str, value: Decimal) -> Decimal:
    return value * MARGIN_SHARE.get(product, Decimal(1))


# --- reading request fields (a refusal names the field and the rule) ----------------------------


def field_required(form: Mapping[str, Any], name: str) -> str:
    value = str(form.get(name) or "").strip()
    if not value:
        raise input_error(f"Missing or empty field `{name}`.")
    return value


def field_choice(
    form: Mapping[str, Any], name: str, allowed: tuple[str, ...], default: str | None = None
) -> str:
    value = str(form.get(name) or "").strip() or default
    if value is None:
        raise input_error(f"Missing or empty field `{name}`.")
    if value not in allowed:
        raise input_error(f"{name} {value}: must be one of {', '.join(allowed)}")
    return value


def field_decimal(form: Mapping[str, Any], name: str) -> Decimal | None:
    raw = form.get(name)
    if raw in (None, ""):
        return None
    try:
        value = Decimal(str(raw))
    except InvalidOperation:
        raise input_error(f"{name} {raw}: must be a number") from None
    if not value.is_finite() or not 0 <= value <= MAX_FIGURE:
        raise input_error(f"{name} {raw}: must be a number from 0 to {MAX_FIGURE:,}")
    return value


def field_integer(
    form: Mapping[str, Any], name: str, *, low: int, default: int | None = None
) -> int:
    """A whole number from ``low`` to MAX_FIGURE; ``default`` when absent (None: required)."""
    raw = str(form.get(name) if form.get(name) is not None else "").strip()
    if not raw:
        if default is None:
            raise input_error(f"Missing or empty field `{name}`.")
        return default
    try:
        value = int(raw)
    except ValueError:
        raise input_error(f"{name} {raw}: must be a whole number") from None
    if not low <= value <= MAX_FIGURE:
        raise input_error(f"{name} {value}: must be from {low} to {MAX_FIGURE:,}")
    return value


def field_quantity(form: Mapping[str, Any], name: str, *, lot: int) -> int:
    quantity = field_integer(form, name, low=1)
    if quantity % lot:
        raise input_error(f"{name} {quantity}: must be a multiple of the lot size {lot}")
    return quantity


def field_prices(
    form: Mapping[str, Any], order_type: str, tick: Decimal
) -> tuple[Decimal, Decimal]:
    """The order's price and trigger price (0 where the type has none), on the tick."""
    price = field_decimal(form, "price") or Decimal(0)
    trigger = field_decimal(form, "trigger_price") or Decimal(0)
    if order_type in ("LIMIT", "SL") and price <= 0:
        raise input_error(f"price: a {order_type} order needs a price above 0")
    if order_type in ("SL", "SL-M") and trigger <= 0:
        raise input_error(f"trigger_price: a {order_type} order needs a trigger price above 0")
    if order_type in ("MARKET", "SL-M"):
        price = Decimal(0)
    if order_type in ("MARKET", "LIMIT"):
        trigger = Decimal(0)
    for name, value in (("price", price), ("trigger_price", trigger)):
        if value % tick:
            raise input_error(
                f"{name} {value}: Tick size for this script is {tick}. Kindly enter {name} "
                "in the multiple of tick size for this script"
            )
    return price, trigger


def margin_figures(*, span: Decimal | int) -> dict[str, Any]:
    return {
        "span": span,
        "exposure": 0,
        "option_premium": 0,
        "additional": 0,
        "bo": 0,
        "cash": 0,
        "pnl": {"realised": 0, "unrealised": 0},
    }


def charges_sum(charges: list[dict[str, Any]]) -> dict[str, Any]:
    def total(name: str) -> Decimal:
        return sum((Decimal(c[name]) for c in charges), Decimal(0))

    gst = sum((Decimal(c["gst"]["total"]) for c in charges), Decimal(0))
    return {
        "transaction_tax": total("transaction_tax"),
        "transaction_tax_type": "stt" if charges else "",
        "exchange_turnover_charge": total("exchange_turnover_charge"),
        "sebi_turnover_charge": total("sebi_turnover_charge"),
        "brokerage": total("brokerage"),
        "stamp_duty": total("stamp_duty"),
        "gst": {"igst": gst, "cgst": 0, "sgst": 0, "total": gst},
        "total": total("total"),
    }
