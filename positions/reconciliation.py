"""Reconciliation: our book against the broker's, issues logged, safe differences fixed.

Kite nets positions per instrument across everything the account holds, and the paper broker
does the same across paper strategies. So ours are netted the same way (per broker, symbol,
exchange and product) before comparing, and a difference is attributed to a strategy only when
exactly one strategy holds that instrument; otherwise the issue names no strategy and its
details list every strategy's share.

An issue already open for the same thing (its fingerprint) is updated, never duplicated; an
open issue that this run no longer sees is resolved with a note. Missing fills and order
statuses the broker knows better are fixed automatically when ``auto_fix`` is on, through the
same order services a broker report goes through; everything else waits for a person.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q, Sum
from django.utils import timezone

from orders.enums import EventSource, OrderStatus, StrategyMode, StrategyStatus
from positions.models import IssueType, Position, ReconciliationIssue, Severity

logger = logging.getLogger("oms.reconciliation")

AVERAGE = Decimal("0.000001")


@dataclass(frozen=True)
class Finding:
    issue_type: IssueType
    severity: Severity
    fingerprint: str
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


@dataclass
class ReconcileReport:
    findings: list[Finding] = field(default_factory=list)
    created: int = 0
    updated: int = 0
    resolved: int = 0
    auto_fixed: int = 0
    positions_compared: int = 0
    orders_compared: int = 0
    brokers: set[str] = field(default_factory=set)

    def summary(self) -> str:
        return (
            f"{self.positions_compared} positions and {self.orders_compared} orders compared: "
            f"{len(self.findings)} differences ({self.created} new, {self.updated} still open, "
            f"{self.auto_fixed} fixed), {self.resolved} earlier issues gone"
        )


def _our_net_positions(mode: str, strategy=None):
    """Our open positions of one broker, netted per instrument: {key: (qty, avg, shares)}."""
    rows = (
        Position.objects.filter(closed_at__isnull=True, strategy__mode=mode)
        .values("symbol", "exchange", "product", "strategy_id")
        .annotate(held=Sum("quantity"), cost=Sum(F("quantity") * F("average_price")))
    )
    netted: dict[tuple, dict] = defaultdict(lambda: {"quantity": 0, "cost": Decimal(0), "by": {}})
    for row in rows:
        key = (row["symbol"], row["exchange"], row["product"])
        netted[key]["quantity"] += row["held"]
        netted[key]["cost"] += row["cost"]
        netted[key]["by"][row["strategy_id"]] = row["held"]
    if strategy is not None:
        netted = {k: v for k, v in netted.items() if strategy.pk in v["by"]}
    return netted


def _average(entry) -> Decimal | None:
    if not entry["quantity"]:
        return None
    return (entry["cost"] / entry["quantity"]).quantize(AVERAGE, rounding=ROUND_HALF_UP)


def compare_positions(ours: dict, theirs: dict, *, live: bool, broker: str) -> list[Finding]:
    """One pass over the union of instruments; pure (no database), so it can be tested alone."""
    tolerance = Decimal(str(settings.OMS_RECONCILE_PRICE_TOLERANCE))
    findings = []
    for key in sorted(set(ours) | set(theirs)):
        symbol, exchange, product = key
        mine = ours.get(key, {"quantity": 0, "cost": Decimal(0), "by": {}})
        broker_qty, broker_avg = theirs.get(key, (0, None))
        holders = {k: v for k, v in mine["by"].items() if v}
        strategy_id = next(iter(holders)) if len(holders) == 1 else None
        common = {
            "strategy_id": strategy_id,
            "symbol": symbol,
            "exchange": exchange,
            "product": product,
            "internal_quantity": mine["quantity"],
            "broker_quantity": broker_qty,
            "internal_price": _average(mine),
            "broker_price": broker_avg,
            "details": {"broker": broker, "by_strategy": {str(k): v for k, v in holders.items()}},
        }
        fingerprint = f"{broker}:{symbol}:{exchange}:{product}"
        if mine["quantity"] == broker_qty:
            ours_avg = _average(mine)
            if (
                ours_avg
                and broker_avg
                and abs(ours_avg - broker_avg) * 100 > tolerance * broker_avg
            ):
                findings.append(
                    Finding(
                        IssueType.PRICE_MISMATCH,
                        Severity.WARNING if live else Severity.INFO,
                        f"PRICE:{fingerprint}",
                        f"{symbol}: average {ours_avg} here, {broker_avg} at the broker",
                        **common,
                    )
                )
            continue
        if broker_qty == 0:
            kind, text = IssueType.MISSING_AT_BROKER, "held here, not at the broker"
        elif mine["quantity"] == 0:
            kind, text = IssueType.UNKNOWN_POSITION, "held at the broker, unknown here"
        else:
            kind, text = IssueType.QUANTITY_MISMATCH, "quantities differ"
        findings.append(
            Finding(
                kind,
                Severity.CRITICAL if live else Severity.WARNING,
                f"QTY:{fingerprint}",
                f"{symbol} {product}: {text} (ours {mine['quantity']}, broker {broker_qty})",
                **common,
            )
        )
    return findings


def compare_orders(orders, broker_orders: dict, *, live: bool, broker: str) -> list[Finding]:
    """Our working orders against the broker's order book (by broker order id)."""
    findings = []
    for order in orders:
        update = broker_orders.get(order.broker_order_id)
        if update is None:
            continue
        base = {
            "strategy_id": order.strategy_id,
            "symbol": order.symbol,
            "exchange": order.exchange,
            "product": order.product,
            "order_id": order.pk,
            "internal_quantity": order.filled_quantity,
            "broker_quantity": update.filled_quantity,
            "details": {"ours": order.status, "broker": update.raw_status or str(update.status)},
            "fix": update,
        }
        if update.filled_quantity > order.filled_quantity:
            findings.append(
                Finding(
                    IssueType.MISSING_FILL,
                    Severity.CRITICAL if live else Severity.WARNING,
                    f"FILL:{broker}:order:{order.pk}",
                    f"order {order.pk}: broker filled {update.filled_quantity}, we have "
                    f"{order.filled_quantity}",
                    **base,
                )
            )
        elif OrderStatus(update.status) in OrderStatus.terminal() and order.is_active:
            findings.append(
                Finding(
                    IssueType.ORDER_STATUS_MISMATCH,
                    Severity.WARNING,
                    f"STATUS:{broker}:order:{order.pk}",
                    f"order {order.pk}: {order.status} here, {update.status} at the broker",
                    **base,
                )
            )
    return findings


def _broker_books(mode: str, strategies):
    """The broker's net positions and order book for the strategies of one mode."""
    from orders.brokers import broker_for

    positions: dict[tuple, tuple[int, Decimal | None]] = {}
    orders = {}
    brokers = {}
    for strategy in strategies:
        broker = broker_for(strategy)
        orders.update({u.broker_order_id: u for u in broker.orders()})
        brokers.setdefault(broker.name, broker)
    for broker in brokers.values():
        for position in broker.positions():
            key = (position.symbol, position.exchange, position.product)
            positions[key] = (position.quantity, position.average_price or None)
    return positions, orders


def reconcile_positions(
    *, strategy=None, dry_run: bool = False, auto_fix: bool | None = None
) -> ReconcileReport:
    """Compare our positions and working orders with each broker's and log the differences."""
    from orders.models import Order, Strategy

    auto_fix = settings.OMS_RECONCILE_AUTO_FIX if auto_fix is None else auto_fix
    report = ReconcileReport()
    for mode in (StrategyMode.PAPER, StrategyMode.LIVE):
        # An inactive strategy holding nothing has nothing to reconcile.
        strategies = (
            Strategy.objects.filter(mode=mode)
            .filter(~Q(status=StrategyStatus.INACTIVE) | Q(positions__closed_at__isnull=True))
            .distinct()
        )
        if strategy is not None:
            strategies = strategies.filter(pk=strategy.pk)
        strategies = list(strategies)
        if not strategies:
            continue
        broker_name = "kite" if mode == StrategyMode.LIVE else "paper"
        live = mode == StrategyMode.LIVE
        try:
            broker_positions, broker_orders = _broker_books(mode, strategies)
        except Exception as error:  # a broker that cannot be reached is a finding, not a crash
            logger.error("reconciliation: %s broker unavailable: %s", broker_name, error)
            continue
        ours = _our_net_positions(mode, strategy)
        if strategy is not None:
            broker_positions = {k: v for k, v in broker_positions.items() if k in ours}
        report.positions_compared += len(set(ours) | set(broker_positions))
        working = Order.objects.filter(
            strategy__in=strategies,
            broker_order_id__isnull=False,
        ).exclude(status__in=[OrderStatus.REJECTED])
        working = working.filter(broker_order_id__in=list(broker_orders)).only(
            "pk",
            "strategy_id",
            "symbol",
            "exchange",
            "product",
            "status",
            "filled_quantity",
            "broker_order_id",
        )
        report.orders_compared += len(working)
        report.findings += compare_positions(ours, broker_positions, live=live, broker=broker_name)
        report.findings += compare_orders(working, broker_orders, live=live, broker=broker_name)
        report.brokers.add(broker_name)
    if not dry_run:
        _record(report, auto_fix=auto_fix, strategy=strategy)
    return report


def _record(report: ReconcileReport, *, auto_fix: bool, strategy) -> None:
    from orders.services import order_updates_apply
    from risk.services import kill_switch_on_critical_issue

    now = timezone.now()
    seen = set()
    for finding in report.findings:
        seen.add(finding.fingerprint)
        fixable = finding.fix is not None and finding.issue_type in (
            IssueType.MISSING_FILL,
            IssueType.ORDER_STATUS_MISMATCH,
        )
        if auto_fix and fixable:
            order_updates_apply([finding.fix], source=EventSource.SYSTEM)
        values = {
            "issue_type": finding.issue_type,
            "severity": finding.severity,
            "strategy_id": finding.strategy_id,
            "symbol": finding.symbol,
            "exchange": finding.exchange,
            "product": finding.product,
            "order_id": finding.order_id,
            "internal_quantity": finding.internal_quantity,
            "broker_quantity": finding.broker_quantity,
            "internal_price": finding.internal_price,
            "broker_price": finding.broker_price,
            "description": finding.description,
            "details": finding.details,
            "last_seen_at": now,
        }
        with transaction.atomic():
            issue = (
                ReconciliationIssue.objects.select_for_update()
                .filter(fingerprint=finding.fingerprint, resolved=False)
                .first()
            )
            if issue is None:
                issue = ReconciliationIssue.objects.create(
                    fingerprint=finding.fingerprint, detected_at=now, **values
                )
                report.created += 1
                new_critical = issue.is_critical
            else:
                new_critical = finding.severity == Severity.CRITICAL and not issue.is_critical
                for name, value in values.items():
                    setattr(issue, name, value)
                issue.occurrences += 1
                issue.save()
                report.updated += 1
            if auto_fix and fixable:
                issue.resolved = issue.auto_fixed = True
                issue.resolved_at = now
                issue.resolved_by = "reconciliation"
                issue.resolution = (
                    f"auto-fixed: applied the broker's report of order {finding.order_id} "
                    f"({finding.broker_quantity} filled, {finding.details.get('broker')})"
                )
                issue.save()
                report.auto_fixed += 1
        if new_critical and not issue.resolved:
            kill_switch_on_critical_issue(issue)
        logger.warning("reconciliation: %s", finding.description)
    # Only issues of the brokers this run could read are known to be gone.
    of_brokers = Q(pk__in=[])
    for broker in report.brokers:
        of_brokers |= Q(fingerprint__contains=f":{broker}:")
    gone = ReconciliationIssue.objects.filter(of_brokers, resolved=False).exclude(
        fingerprint__in=seen
    )
    if strategy is not None:
        gone = gone.filter(strategy=strategy)
    report.resolved = gone.update(
        resolved=True,
        resolved_at=now,
        resolved_by="reconciliation",
        resolution=f"no longer seen by reconciliation at {timezone.localtime(now):%Y-%m-%d %H:%M}",
    )
