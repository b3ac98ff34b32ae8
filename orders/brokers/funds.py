"""Money at the broker, before and after the trade: margins, available funds and the charges
of a contract note, as plain values (the Kite adapter builds them from Kite's JSON).

A broker that can answer margin questions satisfies ``MarginBroker``; the paper simulator does
not, so paper orders are never margin-checked.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from orders.models import Order


@dataclass(frozen=True)
class OrderMargin:
    """What the broker blocks for one order (Kite's /margins/orders entry), in rupees."""

    segment: str  # Kite's "type": equity or commodity
    symbol: str
    exchange: str
    total: Decimal
    span: Decimal
    exposure: Decimal
    option_premium: Decimal
    var: Decimal
    charges: Decimal  # the order's estimated charges, not part of ``total``


@dataclass(frozen=True)
class BasketMargin:
    """The margin of several legs together (hedges offset): ``initial`` before the positions
    already held, ``final`` after them, and each leg on its own in ``orders``."""

    initial: Decimal
    final: Decimal
    orders: tuple[OrderMargin, ...]


@dataclass(frozen=True)
class AvailableFunds:
    """An account's funds in one segment (Kite's /user/margins), in rupees. ``net`` is what
    new orders may use: opening balance and pay-ins plus collateral, less what is blocked."""

    segment: str
    net: Decimal
    cash: Decimal
    live_balance: Decimal
    utilised: Decimal  # Kite's utilised.debits


@dataclass(frozen=True)
class ContractNoteLeg:
    """One executed order as the virtual contract note wants it (quantity and average price
    are what was executed)."""

    broker_order_id: str
    exchange: str
    symbol: str
    side: str
    product: str
    order_type: str
    quantity: int
    average_price: Decimal


@dataclass(frozen=True)
class ContractNoteCharges:
    """The broker's charges for one executed order, unrounded, as it reports them.

    ``stt`` is the transaction tax (STT, or CTT for commodities: ``stt_kind``).
    """

    symbol: str
    exchange: str
    side: str
    quantity: int
    brokerage: Decimal
    stt: Decimal
    stt_kind: str
    exchange_charges: Decimal
    sebi_charges: Decimal
    stamp_duty: Decimal
    gst: Decimal
    total: Decimal


@runtime_checkable
class MarginBroker(Protocol):
    """A broker that answers margin questions before an order is sent."""

    def margin_account_key(self) -> str:
        """Whose funds: one key per broker account (the margin cache is kept per key)."""
        ...

    def order_margins(self, orders: list[Order]) -> list[OrderMargin]: ...

    def available_funds(self, segment: str) -> AvailableFunds: ...


@runtime_checkable
class ContractNoteBroker(Protocol):
    """A broker that reports its own charges of executed orders."""

    def contract_note_charges(self, legs: list[ContractNoteLeg]) -> list[ContractNoteCharges]: ...
