"""After the close: our charges of the day's executed LIVE orders against Kite's contract note.

For every order of a LIVE strategy with a fill on the day, Kite's virtual contract note
(POST /charges/orders, one request per strategy's broker) is asked for the charges of the
order's executed quantity at its average price, and compared with the sum of the charges our
fills carry (orders.charges), component by component: brokerage, STT/CTT, exchange
transaction charges, SEBI fee, stamp duty, GST.

Kite returns its components unrounded (an exchange charge of 0.01876): they are compared AFTER
our rounding rule is applied to them (charges.md: each to the paisa half-up, STT to the rupee
half-up; Kite's GST is rounded to the paisa as it stands, on Kite's own base). A difference
larger than OMS_CHARGES_TOLERANCE (default ₹0.01) is a CHARGES_MISMATCH issue (WARNING), one
per order and component, with both figures. Our calculator is not adjusted to Kite's figures:
where Kite's base differs from charges.md's (its samples leave part of the exchange charge
out of the GST base), the difference is reported for a person to judge.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings
from django.db.models import Sum

from orders.brokers import BrokerError, broker_for
from orders.brokers.funds import ContractNoteBroker, ContractNoteCharges, ContractNoteLeg
from orders.enums import StrategyMode, TradeKind
from orders.models import Order, Trade
from orders.money import PAISA, to_paisa
from positions.models import IssueType, Severity
from positions.services import reconciliation_issue_record
from risk.calendar import IST

logger = logging.getLogger("oms.contract_notes")

# Our component names (Trade's columns), in the contract note's order, with how each is shown.
COMPONENTS = {
    "brokerage": "brokerage",
    "stt": "STT/CTT",
    "exchange_charges": "exchange transaction charges",
    "sebi_charges": "SEBI turnover fee",
    "stamp_duty": "stamp duty",
    "gst": "GST",
}
RUPEE = Decimal("1")


def kite_rounded(component: str, amount: Decimal) -> Decimal:
    """Kite's unrounded figure under our rounding rule: STT to the rupee, the rest to the
    paisa, half up (charges.md)."""
    if component == "stt":
        return amount.quantize(RUPEE, rounding=ROUND_HALF_UP).quantize(PAISA)
    return to_paisa(amount)


@dataclass(frozen=True)
class ChargesMismatch:
    order_id: int
    component: str
    ours: Decimal
    kite: Decimal
    kite_unrounded: Decimal


@dataclass
class ContractNoteReport:
    day: date
    orders_checked: int = 0
    mismatches: list[ChargesMismatch] = field(default_factory=list)
    unmatched: list[int] = field(default_factory=list)  # orders Kite's reply did not cover
    failed_strategies: list[str] = field(default_factory=list)

    def summary(self) -> str:
        text = (
            f"{self.day}: {self.orders_checked} orders checked against Kite's contract note, "
            f"{len(self.mismatches)} charge differences"
        )
        if self.unmatched:
            text += f", {len(self.unmatched)} orders not in Kite's reply"
        if self.failed_strategies:
            text += f", not checked for {', '.join(self.failed_strategies)} (broker error)"
        return text


def day_orders(day: date) -> dict[int, list[Order]]:
    """Orders of LIVE strategies with a fill on ``day`` (IST), by strategy."""
    start = datetime.combine(day, time.min, tzinfo=IST)
    filled_that_day = Trade.objects.filter(
        kind=TradeKind.FILL, executed_at__gte=start, executed_at__lt=start + timedelta(days=1)
    ).values("order_id")
    orders = (
        Order.objects.filter(
            pk__in=filled_that_day,
            strategy__mode=StrategyMode.LIVE,
            broker_order_id__isnull=False,
            filled_quantity__gt=0,
        )
        .select_related("strategy")
        .order_by("pk")
    )
    by_strategy: dict[int, list[Order]] = defaultdict(list)
    for order in orders:
        by_strategy[order.strategy_id].append(order)
    return by_strategy


def our_charges(orders: list[Order]) -> dict[int, dict[str, Decimal]]:
    """The charges our fills carry, summed per order and component (one query)."""
    rows = (
        Trade.objects.filter(order__in=orders, kind=TradeKind.FILL)
        .values("order_id")
        .annotate(**{name: Sum(name) for name in COMPONENTS})
    )
    return {row.pop("order_id"): row for row in rows}


def contract_note_leg(order: Order) -> ContractNoteLeg:
    return ContractNoteLeg(
        broker_order_id=order.broker_order_id,
        exchange=order.exchange,
        symbol=order.symbol,
        side=order.side,
        product=order.product,
        order_type=order.order_type,
        quantity=order.filled_quantity,
        average_price=order.average_price,
    )


def _same_order(order: Order, entry: ContractNoteCharges) -> bool:
    return (entry.symbol, entry.side, entry.quantity) == (
        order.symbol,
        order.side,
        order.filled_quantity,
    )


def contract_notes_check(*, day: date) -> ContractNoteReport:
    """Compare the charges of ``day``'s executed LIVE orders with Kite's contract note and
    record a CHARGES_MISMATCH issue per order and component differing by more than
    OMS_CHARGES_TOLERANCE. Idempotent: run again, an open issue is updated, not duplicated.
    A strategy whose broker fails is reported and skipped; the others are still checked."""
    report = ContractNoteReport(day=day)
    for orders in day_orders(day).values():
        strategy = orders[0].strategy
        broker = broker_for(strategy)
        if not isinstance(broker, ContractNoteBroker):
            continue
        try:
            entries = broker.contract_note_charges([contract_note_leg(o) for o in orders])
        except BrokerError as error:
            logger.warning("contract note of %s on %s: %s", strategy, day, error)
            report.failed_strategies.append(strategy.name)
            continue
        ours = our_charges(orders)
        for index, order in enumerate(orders):
            entry = entries[index] if index < len(entries) else None
            if entry is None or not _same_order(order, entry):
                logger.warning("order %s: not in Kite's contract note reply", order.pk)
                report.unmatched.append(order.pk)
                continue
            report.orders_checked += 1
            for mismatch in order_charges_compare(order, ours.get(order.pk, {}), entry):
                _record(order, mismatch, day)
                report.mismatches.append(mismatch)
    logger.info("contract notes: %s", report.summary())
    return report


def order_charges_compare(
    order: Order, ours: dict[str, Decimal], kite: ContractNoteCharges
) -> list[ChargesMismatch]:
    """Each component whose figures differ by more than the tolerance (pure)."""
    tolerance = settings.OMS_CHARGES_TOLERANCE
    found = []
    for component in COMPONENTS:
        unrounded = getattr(kite, component)
        theirs = kite_rounded(component, unrounded)
        mine = ours.get(component) or Decimal("0.00")
        if abs(mine - theirs) > tolerance:
            found.append(ChargesMismatch(order.pk, component, mine, theirs, unrounded))
    return found


def _record(order: Order, mismatch: ChargesMismatch, day: date) -> None:
    name = COMPONENTS[mismatch.component]
    description = (
        f"{order.side} {order.filled_quantity} {order.exchange}:{order.symbol} "
        f"(order {order.pk}, Kite {order.broker_order_id}) on {day}: {name} ours "
        f"₹{mismatch.ours}, Kite's contract note ₹{mismatch.kite} (Kite's unrounded "
        f"{mismatch.kite_unrounded} rounded by our rule: STT to the rupee, the rest to the "
        f"paisa, half up); tolerance ₹{settings.OMS_CHARGES_TOLERANCE}"
    )
    # No broker name in the fingerprint: reconciliation resolves the open issues of a broker
    # that it did not see again, and it never looks at charges.
    reconciliation_issue_record(
        fingerprint=f"charges:{day}:{order.pk}:{mismatch.component}",
        strategy=order.strategy,
        order=order,
        issue_type=IssueType.CHARGES_MISMATCH,
        severity=Severity.WARNING,
        symbol=order.symbol,
        exchange=order.exchange,
        product=order.product,
        internal_price=mismatch.ours,
        broker_price=mismatch.kite,
        description=description,
        details={
            "component": mismatch.component,
            "ours": str(mismatch.ours),
            "kite": str(mismatch.kite),
            "kite_unrounded": str(mismatch.kite_unrounded),
            "tolerance": str(settings.OMS_CHARGES_TOLERANCE),
            "day": day.isoformat(),
            "broker_order_id": order.broker_order_id,
        },
    )
