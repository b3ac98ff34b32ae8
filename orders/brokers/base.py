"""The broker interface and the plain values that cross it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Protocol

from orders.enums import OrderStatus

if TYPE_CHECKING:
    from orders.models import Order


class BrokerError(Exception):
    """Something went wrong talking to the broker."""


class BrokerTimeout(BrokerError):
    """No answer: the broker may or may not have the order. Resolve by tag, never by resending."""


class BrokerRejected(BrokerError):
    """The broker refused the request; its message is kept on the order."""


class BrokerUnavailable(BrokerError):
    """Nothing was sent (rate limit, session, network down before sending): safe to retry later."""

    def __init__(self, message: str, retry_in: float = 1.0):
        super().__init__(message)
        self.retry_in = retry_in


class BrokerSessionExpired(BrokerUnavailable):
    """No session with the broker (its token expired, or none is configured): nothing was sent.
    Asked again every ``retry_in`` seconds for as long as it lasts: a person logs in again."""


class BrokerRateLimited(BrokerUnavailable):
    """Over the broker's request rate (ours, counted before sending, or its HTTP 429): nothing
    was sent. A slot is due in ``retry_in`` seconds, so the request is asked again then, however
    often that takes."""


@dataclass(frozen=True)
class BrokerFill:
    trade_id: str
    quantity: int
    price: Decimal
    executed_at: datetime


@dataclass(frozen=True)
class BrokerOrderUpdate:
    """The broker's view of one order. ``filled_quantity`` and ``average_price`` are cumulative.

    ``fills`` lists individual executions when the broker reports them (the paper broker does;
    a Kite postback does not, and the increment is derived from the cumulative figures).
    ``fills_complete``: ``fills`` is every execution of the order so far (Kite's trades of the
    order), not only new ones: those already booked, under their id or within the quantity
    booked from cumulative figures, are skipped (orders.services.broker_reports).
    ``symbol``, ``exchange`` and ``side`` are the instrument and side the broker names, when it
    names them (Kite does): a report naming another is refused (orders.report_checks).

    ``quantity``, ``price``, ``trigger_price`` and ``order_type`` are the order's terms as the
    broker holds them (None / "" when the report does not say): a modification a broker
    confirms by report (``Broker.confirms_modifications``) is applied when they show it.
    ``market_protected``: the broker turned a MARKET (SL-M) order into a protected LIMIT (SL)
    one (Kite's ``mktp`` tag), so a reported LIMIT is our MARKET. ``modifying``: a modification
    is in flight at the broker; the terms reported are not settled yet.
    ``modification_refused``: the broker says it did not make the last modification asked
    (Kite's NOT MODIFIED, whose entry shows the terms refused, not the order's).
    ``status_unknown``: the broker's ``raw_status`` is none the adapter knows. ``status`` is
    then SUBMITTED (which moves nothing) and the OMS raises an alert instead of guessing.
    """

    broker_order_id: str
    tag: str
    status: OrderStatus
    filled_quantity: int = 0
    average_price: Decimal | None = None
    message: str = ""
    fills: tuple[BrokerFill, ...] = ()
    timestamp: datetime | None = None
    raw_status: str = ""
    symbol: str = ""
    exchange: str = ""
    side: str = ""
    fills_complete: bool = False
    quantity: int | None = None
    price: Decimal | None = None
    trigger_price: Decimal | None = None
    order_type: str = ""
    market_protected: bool = False
    modifying: bool = False
    modification_refused: bool = False
    status_unknown: bool = False


@dataclass(frozen=True)
class PlaceAck:
    broker_order_id: str
    updates: tuple[BrokerOrderUpdate, ...] = field(default=())


@dataclass(frozen=True)
class BrokerPosition:
    symbol: str
    exchange: str
    product: str
    quantity: int
    average_price: Decimal
    last_price: Decimal | None = None


class Broker(Protocol):
    """What the OMS needs from a broker. Calls are made with no database locks held."""

    name: str
    # True: a modify call's success only says "request accepted" and returns no report; the
    # OMS applies the modification when a report shows the new terms (Kite). False: modify
    # returns the broker's report of the modified order (the paper broker).
    confirms_modifications: bool

    def place(self, order: Order) -> PlaceAck: ...

    def modify(
        self,
        order: Order,
        *,
        quantity: int,
        price: Decimal | None,
        trigger_price: Decimal | None,
        order_type: str,
    ) -> tuple[BrokerOrderUpdate, ...]: ...

    def cancel(self, order: Order) -> tuple[BrokerOrderUpdate, ...]: ...

    def cancel_many(self, orders: list[Order]) -> tuple[tuple[BrokerOrderUpdate, ...], list[Order]]:
        """Cancel several orders at once where the broker can: the reports of those cancelled,
        and the orders left for ``cancel``, one by one (all of them, for a broker without a
        bulk cancel)."""
        ...

    def find_by_tag(self, tag: str) -> BrokerOrderUpdate | None: ...

    def order_status(self, order: Order) -> BrokerOrderUpdate | None: ...

    def orders(self) -> list[BrokerOrderUpdate]: ...

    def positions(self) -> list[BrokerPosition]: ...

    def holdings(self) -> list[BrokerHolding]:
        """Delivery (CNC) shares held from earlier days (Kite's ``holdings()``): they are not
        in ``positions()``, which holds today's trades and carried F&O positions."""
        ...


@dataclass(frozen=True)
class BrokerHolding:
    """One instrument of the account's holdings. ``quantity`` is settled in the demat account,
    ``t1_quantity`` bought on the last trading day and not settled yet (T+1): the account
    holds both. Today's sales of them are a negative CNC day position in ``positions()``, so
    what the account holds of a CNC instrument is quantity + t1_quantity + the net position."""

    symbol: str
    exchange: str
    quantity: int
    t1_quantity: int = 0
    average_price: Decimal | None = None
    last_price: Decimal | None = None
    product: str = "CNC"


# --- GTTs: triggers the broker holds for us (a position's broker-held protection) -------------


@dataclass(frozen=True)
class GttLeg:
    """One order of a GTT: a LIMIT ``side`` ``quantity`` at ``price``, placed by the broker when
    its trigger value is hit. Once triggered: ``order_id`` of the order placed (blank when the
    broker failed to place it, with ``rejection``)."""

    side: str
    quantity: int
    price: Decimal
    order_id: str = ""
    rejection: str = ""
    triggered: bool = False


@dataclass(frozen=True)
class GttRequest:
    """A GTT to place or amend: ``trigger_values`` ascending (one for a single trigger, two for
    a two-leg OCO), one leg per trigger value in the same order."""

    symbol: str
    exchange: str
    product: str
    trigger_values: tuple[Decimal, ...]
    last_price: Decimal
    legs: tuple[GttLeg, ...]

    @property
    def trigger_type(self) -> str:
        return "two-leg" if len(self.trigger_values) == 2 else "single"


@dataclass(frozen=True)
class BrokerGtt:
    """A GTT as the broker holds it. ``status`` in Kite's words: active, triggered, disabled,
    expired, cancelled, rejected, deleted."""

    trigger_id: str
    status: str
    symbol: str
    exchange: str
    trigger_values: tuple[Decimal, ...]
    legs: tuple[GttLeg, ...]

    @property
    def quantity(self) -> int:
        return self.legs[0].quantity if self.legs else 0

    @property
    def triggered_leg(self) -> GttLeg | None:
        return next((leg for leg in self.legs if leg.triggered), None)


class GttBroker(Protocol):
    """The GTT calls of a broker (the paper broker and Kite both have them)."""

    def place_gtt(self, request: GttRequest) -> str:
        """Place a GTT; its trigger id."""
        ...

    def modify_gtt(self, trigger_id: str, request: GttRequest) -> None: ...

    def delete_gtt(self, trigger_id: str) -> None: ...

    def gtts(self) -> list[BrokerGtt]: ...
