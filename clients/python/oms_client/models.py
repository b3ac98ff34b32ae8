"""What the API answers, as typed values. Money is ``Decimal`` (the API sends decimal strings);
times are timezone-aware ``datetime``. Every value keeps the JSON it came from in ``raw``, so a
field the API adds later is never out of reach."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

TRADE_MONEY = (
    "price",
    "gross_value",
    "brokerage",
    "stt",
    "exchange_charges",
    "sebi_charges",
    "stamp_duty",
    "gst",
    "total_charges",
    "net_value",
)


def decimal_or_none(value: Any) -> Decimal | None:
    """A decimal string (or None) as Decimal. A JSON float is never money: refused."""
    if value is None or value == "":
        return None
    if isinstance(value, float):
        raise TypeError(f"money must be a decimal string, got the float {value!r}")
    return Decimal(str(value))


def time_or_none(value: Any) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def money_in(data: Any) -> Any:
    """A JSON value with every decimal-looking string under a money key made Decimal
    (payloads of events and the strategy's figures, whose keys are not fixed here)."""
    if isinstance(data, dict):
        return {key: _money_value(key, value) for key, value in data.items()}
    if isinstance(data, list):
        return [money_in(item) for item in data]
    return data


MONEY_KEYS = frozenset(
    {
        *TRADE_MONEY,
        "average_price",
        "trigger_price",
        "stop_loss",
        "take_profit",
        "charges",
        "realized_pnl",
        "gross_realized_pnl",
        "unrealized_pnl",
        "net_pnl",
        "turnover",
        "gross_exposure",
        "total",  # an order.fill event's charges: {"brokerage", ..., "total"}
    }
)


def _money_value(key: str, value: Any) -> Any:
    if key in MONEY_KEYS and isinstance(value, str):
        try:
            return Decimal(value)
        except ArithmeticError:
            return value
    return money_in(value)


@dataclass(frozen=True)
class Violation:
    """One pre-trade check an order broke."""

    code: str
    field: str
    message: str

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Violation:
        return cls(
            code=str(data.get("code", "")),
            field=str(data.get("field", "")),
            message=str(data.get("message", "")),
        )


@dataclass(frozen=True)
class OrderEvent:
    """One step of an order's history (``GET /orders/{id}/``)."""

    id: int
    kind: str
    from_status: str
    to_status: str
    source: str
    reason: str
    actor: str
    details: dict[str, Any]
    created_at: datetime | None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> OrderEvent:
        return cls(
            id=data["id"],
            kind=data.get("kind", ""),
            from_status=data.get("from_status") or "",
            to_status=data.get("to_status") or "",
            source=data.get("source") or "",
            reason=data.get("reason") or "",
            actor=data.get("actor") or "",
            details=data.get("details") or {},
            created_at=time_or_none(data.get("created_at")),
        )


@dataclass(frozen=True)
class Trade:
    """One fill with Zerodha's charges."""

    id: int
    order_id: int
    trade_id: str
    symbol: str
    exchange: str
    product: str
    side: str
    quantity: int
    price: Decimal
    total_charges: Decimal | None
    net_value: Decimal | None
    executed_at: datetime | None
    charges: dict[str, Decimal | None] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Trade:
        return cls(
            id=data["id"],
            order_id=data.get("order"),
            trade_id=str(data.get("trade_id", "")),
            symbol=data.get("symbol", ""),
            exchange=data.get("exchange", ""),
            product=data.get("product", ""),
            side=data.get("side", ""),
            quantity=data.get("quantity", 0),
            price=decimal_or_none(data.get("price")),
            total_charges=decimal_or_none(data.get("total_charges")),
            net_value=decimal_or_none(data.get("net_value")),
            executed_at=time_or_none(data.get("executed_at")),
            charges={
                name: decimal_or_none(data.get(name)) for name in TRADE_MONEY[1:] if name in data
            },
            raw=data,
        )


@dataclass(frozen=True)
class Order:
    """An order as the strategy sees it. ``replayed`` is True when the answer was the original
    order of a placement sent again with the same ``client_order_id``."""

    id: int
    client_order_id: str
    symbol: str
    exchange: str
    side: str
    quantity: int
    order_type: str
    product: str
    validity: str
    status: str
    price: Decimal | None
    trigger_price: Decimal | None
    filled_quantity: int
    remaining_quantity: int
    average_price: Decimal | None
    stop_loss: Decimal | None
    take_profit: Decimal | None
    tag: str
    status_message: str
    broker_order_id: str | None
    pending_modification: dict[str, Any] | None
    created_at: datetime | None
    updated_at: datetime | None
    variety: str = "regular"
    basket: int | None = None  # the basket it was placed in
    parent: int | None = None  # the sliced order it is a child of
    events: list[OrderEvent] = field(default_factory=list)
    trades: list[Trade] = field(default_factory=list)
    replayed: bool = False
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_json(cls, data: dict[str, Any], *, replayed: bool = False) -> Order:
        pending = data.get("pending_modification")
        return cls(
            id=data["id"],
            client_order_id=data.get("client_order_id", ""),
            symbol=data.get("symbol", ""),
            exchange=data.get("exchange", ""),
            side=data.get("side", ""),
            quantity=data.get("quantity", 0),
            order_type=data.get("order_type", ""),
            product=data.get("product", ""),
            validity=data.get("validity", ""),
            status=data.get("status", ""),
            price=decimal_or_none(data.get("price")),
            trigger_price=decimal_or_none(data.get("trigger_price")),
            filled_quantity=data.get("filled_quantity", 0),
            remaining_quantity=data.get("remaining_quantity", 0),
            average_price=decimal_or_none(data.get("average_price")),
            stop_loss=decimal_or_none(data.get("stop_loss")),
            take_profit=decimal_or_none(data.get("take_profit")),
            tag=data.get("tag") or "",
            status_message=data.get("status_message") or "",
            broker_order_id=data.get("broker_order_id"),
            pending_modification=money_in(pending) if pending else None,
            created_at=time_or_none(data.get("created_at")),
            updated_at=time_or_none(data.get("updated_at")),
            variety=data.get("variety") or "regular",
            basket=data.get("basket"),
            parent=data.get("parent"),
            events=[OrderEvent.from_json(e) for e in data.get("events", [])],
            trades=[Trade.from_json(t) for t in data.get("trades", [])],
            replayed=replayed,
            raw=data,
        )


@dataclass(frozen=True)
class Basket:
    """Orders placed together; each leg then lives its own life (``legs`` as they are now).
    ``replayed``: the answer was the first basket of a request sent again."""

    id: int
    client_basket_id: str
    margin_required: Decimal | None
    created_at: datetime | None
    legs: list[Order]
    replayed: bool = False
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_json(cls, data: dict[str, Any], *, replayed: bool = False) -> Basket:
        return cls(
            id=data["id"],
            client_basket_id=data.get("client_basket_id", ""),
            margin_required=decimal_or_none(data.get("margin_required")),
            created_at=time_or_none(data.get("created_at")),
            legs=[Order.from_json(leg) for leg in data.get("legs", [])],
            replayed=replayed,
            raw=data,
        )


@dataclass(frozen=True)
class Event:
    """One entry of the strategy's event feed (and the body of one webhook delivery).

    ``id`` is the feed's cursor: increasing, stable, and what a receiver dedupes on. ``data``
    is the payload with money as Decimal (status from/to, fill quantity/price/charges, new
    terms, violations, kill switch state...)."""

    id: int
    kind: str
    order_id: int | None
    client_order_id: str | None
    created_at: datetime | None
    data: dict[str, Any]
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Event:
        return cls(
            id=int(data["id"]),
            kind=data.get("kind", ""),
            order_id=data.get("order_id"),
            client_order_id=data.get("client_order_id"),
            created_at=time_or_none(data.get("created_at")),
            data=money_in(data.get("data") or {}),
            raw=data,
        )


@dataclass(frozen=True)
class Strategy:
    """The calling strategy (``GET /strategy/``): status, mode, kill switch, limits, today."""

    id: int
    name: str
    status: str
    mode: str
    kill_switch: str
    limits: dict[str, Any]
    today: dict[str, Any]
    open_positions: int | None
    working_orders: int | None
    gross_exposure: Decimal | None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Strategy:
        return cls(
            id=data.get("id"),
            name=data.get("name", ""),
            status=data.get("status", ""),
            mode=data.get("mode", ""),
            kill_switch=data.get("kill_switch", ""),
            limits=data.get("limits") or {},
            today=money_in(data.get("today") or {}),
            open_positions=data.get("open_positions"),
            working_orders=data.get("working_orders"),
            gross_exposure=decimal_or_none(data.get("gross_exposure")),
            raw=data,
        )
