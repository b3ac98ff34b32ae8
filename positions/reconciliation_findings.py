"""The values a reconciliation run passes around: a book (one broker account), what was read of
it (``BookRun``), the differences found (``Finding``) and the run's report.

A check is a function ``check(run: BookRun) -> list[Finding]``; positions.reconciliation runs
the list BOOK_CHECKS for every book it could read. Severities follow one rule (``severity``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from positions.models import IssueType, Severity


@dataclass(frozen=True)
class Finding:
    issue_type: IssueType
    severity: Severity
    fingerprint: str  # "<KIND>:<broker>:<object>": one open issue per fingerprint
    description: str
    strategy_id: int | None = None
    symbol: str = ""
    exchange: str = ""
    product: str = ""
    order_id: int | None = None
    internal_quantity: int | None = None
    broker_quantity: int | None = None
    internal_price: Decimal | None = None
    broker_price: Decimal | None = None
    details: dict = field(default_factory=dict)
    fix: object = None  # a broker order update that settles it, when one does
    safe_fix: str = ""  # what that fix does, in words; blank when only a person can decide


def severity(*, live: bool, exposure: bool) -> Severity:
    """The one rule. ``exposure``: what we hold, or may come to hold, differs from the broker
    (quantities, fills, an order working at the broker that we do not count as working, or the
    other way round). LIVE: CRITICAL with exposure (the kill switch's rule runs), WARNING
    without. PAPER: WARNING with, INFO without (INFO only for a price: an order's state on
    paper is still a WARNING, see ``order_severity``)."""
    if exposure:
        return Severity.CRITICAL if live else Severity.WARNING
    return Severity.WARNING if live else Severity.INFO


def order_severity(*, live: bool, exposure: bool) -> Severity:
    """An order's difference: as ``severity``, but never below WARNING (an order's state is
    what a strategy acts on, on paper too)."""
    return severity(live=live, exposure=exposure) if exposure else Severity.WARNING


@dataclass(frozen=True)
class Book:
    """What one broker account holds: the paper exchange's book, or one Kite user's (Kite nets
    positions per user, whatever strategies placed the orders)."""

    broker: str  # in the issues' fingerprints: "paper", "kite-AB1234"
    mode: str
    account_id: int | None
    strategies: list


@dataclass
class ReconcileReport:
    findings: list[Finding] = field(default_factory=list)
    created: int = 0
    updated: int = 0
    resolved: int = 0
    auto_fixed: int = 0
    positions_compared: int = 0
    orders_compared: int = 0
    holdings_compared: int = 0
    brokers: set[str] = field(default_factory=set)

    def summary(self) -> str:
        return (
            f"{self.positions_compared} positions, {self.holdings_compared} holdings and "
            f"{self.orders_compared} orders compared: "
            f"{len(self.findings)} differences ({self.created} new, {self.updated} still open, "
            f"{self.auto_fixed} fixed), {self.resolved} earlier issues gone"
        )


@dataclass
class BookRun:
    """One book being reconciled: the broker's adapter and what was read of it once (its order
    book by broker order id, its net positions, its holdings), for every check to use."""

    book: Book
    broker: object  # orders.brokers.Broker
    report: ReconcileReport
    strategy: object = None  # --strategy: only what this strategy holds
    fixing: bool = False  # safe fixes are applied (auto_fix and not a dry run)
    orders: dict = field(default_factory=dict)  # {broker_order_id: BrokerOrderUpdate}
    positions: dict = field(default_factory=dict)  # {(symbol, exchange, product): (qty, avg)}
    holdings: list = field(default_factory=list)  # [BrokerHolding]

    @property
    def live(self) -> bool:
        return self.book.mode == "LIVE"

    @property
    def name(self) -> str:
        return self.book.broker
