"""Reconciliation: our book against the broker's, issues logged, safe differences fixed.

Kite nets positions per instrument across everything the account holds, and the paper broker
does the same across paper strategies. So ours are netted the same way (per broker, symbol,
exchange and product) before comparing, and a difference is attributed to a strategy only when
exactly one strategy holds that instrument; otherwise the issue names no strategy and its
details list every strategy's share.

An issue already open for the same thing (its fingerprint) is updated, never duplicated; an
open issue that this run no longer sees is resolved with a note. Missing fills and order
statuses the broker knows better are fixed automatically when ``auto_fix`` is on, through the
same order services a broker report goes through; everything else waits for a person. The fixes
are applied before positions are compared, so a fill the broker reported and we missed is one
issue (fixed), not also a position difference that the fix has already settled.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from orders.brokers import broker_for
from orders.enums import EventSource, OrderStatus, StrategyMode, StrategyStatus
from orders.models import Order, Strategy
from orders.services import order_updates_apply
from positions.models import IssueType, Position, ReconciliationIssue, Severity
from positions.reconciliation_gtt import gtt_findings
from positions.services import reconciliation_issue_record
from risk.kill_switch import kill_switch_on_critical_issue

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


NET_POSITIONS = """
SELECT p.symbol, p.exchange, p.product, sum(p.quantity),
       coalesce(sum(p.quantity) FILTER (WHERE p.quantity > 0), 0),
       coalesce(sum(p.quantity * p.average_price) FILTER (WHERE p.quantity > 0), 0),
       coalesce(-sum(p.quantity) FILTER (WHERE p.quantity < 0), 0),
       coalesce(-sum(p.quantity * p.average_price) FILTER (WHERE p.quantity < 0), 0)
FROM positions p JOIN strategies s ON s.id = p.strategy_id
WHERE p.closed_at IS NULL AND s.mode = %(mode)s
  AND (%(account)s::bigint IS NULL OR s.broker_account_id = %(account)s::bigint)
GROUP BY 1, 2, 3
HAVING %(strategy)s::bigint IS NULL OR bool_or(p.strategy_id = %(strategy)s::bigint)
"""


def _our_net_positions(mode: str, strategy=None, account_id: int | None = None) -> dict:
    """Our open positions of one broker, netted per instrument (in the database: thousands of
    positions make a few hundred instruments); with ``strategy``, the instruments it holds.

    {(symbol, exchange, product): {"quantity", "long", "long_cost", "short", "short_cost"}}:
    the long and short holdings are kept apart, as the broker's average is the one of the side
    that is open (``_average``). Who holds what is read only for differences (``_holders``).
    """
    with connection.cursor() as cursor:
        cursor.execute(
            NET_POSITIONS,
            {"mode": str(mode), "strategy": strategy and strategy.pk, "account": account_id},
        )
        rows = cursor.fetchall()
    return {
        (symbol, exchange, product): {
            "quantity": held,
            "long": long,
            "long_cost": long_cost,
            "short": short,
            "short_cost": short_cost,
        }
        for symbol, exchange, product, held, long, long_cost, short, short_cost in rows
    }


def _holders(mode: str, keys: set[tuple], account_id: int | None = None) -> dict:
    """{instrument: {strategy id: quantity}} of our open positions in these instruments (of
    one broker account's strategies, for a LIVE book)."""
    held: dict[tuple, dict[int, int]] = {key: {} for key in keys}
    rows = Position.objects.filter(
        closed_at__isnull=True, strategy__mode=mode, symbol__in={key[0] for key in keys}
    )
    if account_id is not None:
        rows = rows.filter(strategy__broker_account_id=account_id)
    rows = rows.values_list("symbol", "exchange", "product", "strategy_id", "quantity")
    for symbol, exchange, product, strategy_id, quantity in rows:
        if (symbol, exchange, product) in held:
            held[(symbol, exchange, product)][strategy_id] = quantity
    return held


def _attributed(finding: Finding, holders: dict[int, int]) -> Finding:
    """A position difference names its strategy when exactly one holds the instrument; its
    details list every holder's share."""
    return replace(
        finding,
        strategy_id=next(iter(holders)) if len(holders) == 1 else None,
        details={**finding.details, "by_strategy": {str(k): v for k, v in holders.items()}},
    )


def _empty() -> dict:
    return {"quantity": 0, "long": 0, "long_cost": Decimal(0), "short": 0, "short_cost": Decimal(0)}


def _average(entry) -> Decimal | None:
    """The average price of the side the net quantity is on, over the strategies holding that
    side: what the broker reports for a net position (one strategy long 10 @ 100 and another
    short 4 @ 105 net to long 6 @ 100, not to the 96.67 of their signed costs)."""
    side = "long" if entry["quantity"] > 0 else "short" if entry["quantity"] < 0 else None
    if side is None or not entry[side]:
        return None
    return (entry[f"{side}_cost"] / entry[side]).quantize(AVERAGE, rounding=ROUND_HALF_UP)


def compare_positions(ours: dict, theirs: dict, *, live: bool, broker: str) -> list[Finding]:
    """One pass over the union of instruments; pure (no database), so it can be tested alone."""
    tolerance = Decimal(str(settings.OMS_RECONCILE_PRICE_TOLERANCE))
    nothing = _empty()
    findings = []
    for key in sorted(set(ours) | set(theirs)):
        mine = ours.get(key, nothing)
        broker_qty, broker_avg = theirs.get(key, (0, None))
        ours_avg = _average(mine)
        if mine["quantity"] == broker_qty:
            if not (
                ours_avg
                and broker_avg
                and abs(ours_avg - broker_avg) * 100 > tolerance * broker_avg
            ):
                continue  # the usual case: agreement, nothing built
            kind, severity = IssueType.PRICE_MISMATCH, Severity.WARNING if live else Severity.INFO
            text = f"{key[0]}: average {ours_avg} here, {broker_avg} at the broker"
        else:
            if broker_qty == 0:
                kind, text = IssueType.MISSING_AT_BROKER, "held here, not at the broker"
            elif mine["quantity"] == 0:
                kind, text = IssueType.UNKNOWN_POSITION, "held at the broker, unknown here"
            else:
                kind, text = IssueType.QUANTITY_MISMATCH, "quantities differ"
            severity = Severity.CRITICAL if live else Severity.WARNING
            text = f"{key[0]} {key[2]}: {text} (ours {mine['quantity']}, broker {broker_qty})"
        findings.append(
            _position_finding(
                key, mine, (broker_qty, broker_avg), kind, severity, text, broker=broker
            )
        )
    return findings


def _position_finding(key, mine, theirs, kind, severity, text, *, broker: str) -> Finding:
    """A position difference, not yet attributed to a strategy (``_attributed``)."""
    symbol, exchange, product = key
    broker_qty, broker_avg = theirs
    prefix = "PRICE" if kind == IssueType.PRICE_MISMATCH else "QTY"
    return Finding(
        kind,
        severity,
        f"{prefix}:{broker}:{symbol}:{exchange}:{product}",
        text,
        symbol=symbol,
        exchange=exchange,
        product=product,
        internal_quantity=mine["quantity"],
        broker_quantity=broker_qty,
        internal_price=_average(mine),
        broker_price=broker_avg,
        details={"broker": broker, "by_strategy": {}},
    )


def compare_orders(orders, broker_orders: dict, *, live: bool, broker: str) -> list[Finding]:
    """Our orders (rows with id, strategy_id, client_order_id, symbol, exchange, product,
    status, filled_quantity, broker_order_id) against the broker's order book."""
    active = OrderStatus.active()
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
            "order_id": order.id,
            "internal_quantity": order.filled_quantity,
            "broker_quantity": update.filled_quantity,
            "details": {
                "ours": order.status,
                "broker": update.raw_status or str(update.status),
                "client_order_id": order.client_order_id,
            },
            "fix": update,
        }
        if update.filled_quantity > order.filled_quantity:
            findings.append(
                Finding(
                    IssueType.MISSING_FILL,
                    Severity.CRITICAL if live else Severity.WARNING,
                    f"FILL:{broker}:order:{order.id}",
                    f"order {order.id}: broker filled {update.filled_quantity}, we have "
                    f"{order.filled_quantity}",
                    **base,
                )
            )
        elif OrderStatus(update.status) in OrderStatus.terminal() and order.status in active:
            findings.append(
                Finding(
                    IssueType.ORDER_STATUS_MISMATCH,
                    Severity.WARNING,
                    f"STATUS:{broker}:order:{order.id}",
                    f"order {order.id}: {order.status} here, {update.status} at the broker",
                    **base,
                )
            )
    return findings


def unconfirmed_cancels(strategies, broker_orders: dict, *, live: bool, broker: str) -> list:
    """Orders CANCEL_PENDING for longer than OMS_CANCEL_UNCONFIRMED_SECONDS: the broker has not
    confirmed their cancel (its job may have run out of retries), so the order may still be
    working at the broker while we show it being cancelled. CRITICAL for LIVE orders. A HALT
    sends their cancels again; the sweep re-defers their jobs."""
    since = timezone.now() - timedelta(seconds=settings.OMS_CANCEL_UNCONFIRMED_SECONDS)
    pending = Order.objects.filter(
        strategy__in=strategies, status=OrderStatus.CANCEL_PENDING
    ).filter(
        Q(cancel_requested_at__lte=since)
        | Q(cancel_requested_at__isnull=True, updated_at__lte=since)
    )
    findings = []
    for order in pending.order_by("pk"):
        update = broker_orders.get(order.broker_order_id) if order.broker_order_id else None
        at_broker = (update.raw_status or str(update.status)) if update else "not in its book"
        asked = order.cancel_requested_at or order.updated_at
        findings.append(
            Finding(
                IssueType.CANCEL_UNCONFIRMED,
                Severity.CRITICAL if live else Severity.WARNING,
                f"CANCEL:{broker}:order:{order.pk}",
                f"order {order.pk}: cancel requested at {timezone.localtime(asked):%H:%M:%S}, "
                f"not confirmed by the broker (broker: {at_broker})",
                strategy_id=order.strategy_id,
                symbol=order.symbol,
                exchange=order.exchange,
                product=order.product,
                order_id=order.pk,
                internal_quantity=order.filled_quantity,
                broker_quantity=update.filled_quantity if update else None,
                details={
                    "ours": order.status,
                    "broker": at_broker,
                    "client_order_id": order.client_order_id,
                    "broker_order_id": order.broker_order_id or "",
                    "cancel_requested_at": asked.isoformat(),
                },
            )
        )
    return findings


# Orders cancelled or expired longer ago than this are settled: a fill racing a cancel comes
# within the session, and Kite's order book holds only the day's orders.
SETTLED_AFTER = timedelta(days=1)


def _orders_to_compare(strategies) -> list:
    """Our orders the broker may know better: the working ones, and the ones cancelled or
    expired lately (a fill can follow a cancel). FILLED and REJECTED ones are final."""
    recent = timezone.now() - SETTLED_AFTER
    return list(
        Order.objects.filter(strategy__in=strategies, broker_order_id__isnull=False)
        .filter(
            Q(status__in=sorted(OrderStatus.active()))
            | Q(status__in=[OrderStatus.CANCELLED, OrderStatus.EXPIRED], created_at__gte=recent)
        )
        .values_list(
            "id",
            "strategy_id",
            "client_order_id",
            "symbol",
            "exchange",
            "product",
            "status",
            "filled_quantity",
            "broker_order_id",
            named=True,
        )
    )


def _broker_books(strategies, *, with_orders: bool):
    """The broker's net positions and (``with_orders``) order book, read once for the book's
    strategies, which share one broker account (like Kite's, the paper broker's books hold
    every paper strategy's orders and positions)."""
    broker = broker_for(strategies[0])
    orders = {u.broker_order_id: u for u in broker.orders()} if with_orders else {}
    positions: dict[tuple, tuple[int, Decimal | None]] = {}
    for position in broker.positions():
        key = (position.symbol, position.exchange, position.product)
        positions[key] = (position.quantity, position.average_price or None)
    return positions, orders


@dataclass(frozen=True)
class Book:
    """What one broker account holds: the paper exchange's book, or one Kite user's (Kite nets
    positions per user, whatever strategies placed the orders)."""

    broker: str  # in the issues' fingerprints: "paper", "kite-AB1234"
    mode: str
    account_id: int | None
    strategies: list


def _books(strategy=None) -> list[Book]:
    """The books to compare: the paper one and one per Kite account, with the strategies of
    each that may hold something (an inactive strategy holding nothing has nothing)."""
    holding = Position.objects.filter(strategy=OuterRef("pk"), closed_at__isnull=True)
    strategies = Strategy.objects.filter(~Q(status=StrategyStatus.INACTIVE) | Exists(holding))
    if strategy is not None:
        strategies = strategies.filter(pk=strategy.pk)
    paper, accounts, orphans = [], {}, []
    for each in strategies.select_related("broker_account").order_by("pk"):
        if not each.is_live:
            paper.append(each)
        elif each.broker_account is None:
            orphans.append(each.name)
        else:
            accounts.setdefault(each.broker_account, []).append(each)
    if orphans:
        logger.warning("reconciliation: LIVE without a broker account, skipped: %s", orphans)
    books = [Book("paper", StrategyMode.PAPER, None, paper)] if paper else []
    for account, held in sorted(accounts.items(), key=lambda item: item[0].user_id):
        books.append(Book(f"kite-{account.user_id}", StrategyMode.LIVE, account.pk, held))
    return books


def reconcile_positions(
    *, strategy=None, dry_run: bool = False, auto_fix: bool | None = None
) -> ReconcileReport:
    """Compare our positions and working orders with each broker's and log the differences.

    Guarantees: one open issue per difference (a repeat updates it and counts the
    occurrence), earlier issues of a broker read this time and no longer seen are resolved;
    with ``auto_fix`` (default OMS_RECONCILE_AUTO_FIX) missing fills and order statuses are
    settled through order_updates_apply before positions are compared, and an issue is marked
    fixed only when the order then agrees with the broker. A new CRITICAL issue left open
    calls the kill switch rule. ``dry_run``: compares only; nothing is fixed or written.
    A broker that cannot be read is logged and skipped; its open issues are left alone.
    Orders CANCEL_PENDING for longer than OMS_CANCEL_UNCONFIRMED_SECONDS are CANCEL_UNCONFIRMED
    issues (unconfirmed_cancels), whether or not the broker could be read.
    """
    auto_fix = settings.OMS_RECONCILE_AUTO_FIX if auto_fix is None else auto_fix
    fixing = auto_fix and not dry_run
    report = ReconcileReport()
    for book in _books(strategy):
        broker_name, strategies, live = book.broker, book.strategies, book.mode == "LIVE"
        candidates = _orders_to_compare(strategies)
        try:
            broker_positions, broker_orders = _broker_books(
                strategies, with_orders=bool(candidates)
            )
        except Exception as error:  # a broker that cannot be reached is a finding, not a crash
            logger.error("reconciliation: %s broker unavailable: %s", broker_name, error)
            # A cancel left unconfirmed while the broker cannot be read is all the more so.
            report.findings += unconfirmed_cancels(strategies, {}, live=live, broker=broker_name)
            continue
        working = [order for order in candidates if order.broker_order_id in broker_orders]
        report.orders_compared += len(working)
        order_findings = compare_orders(working, broker_orders, live=live, broker=broker_name)
        if fixing:
            order_findings = [_fix(finding) for finding in order_findings]
        # After the fixes: a cancel the broker's book confirms is no longer pending.
        order_findings += unconfirmed_cancels(
            strategies, broker_orders, live=live, broker=broker_name
        )
        ours = _our_net_positions(book.mode, strategy, book.account_id)
        if strategy is not None:
            broker_positions = {k: v for k, v in broker_positions.items() if k in ours}
        report.positions_compared += len(set(ours) | set(broker_positions))
        position_findings = compare_positions(ours, broker_positions, live=live, broker=broker_name)
        if position_findings:
            keys = {(f.symbol, f.exchange, f.product) for f in position_findings}
            holders = _holders(book.mode, keys, book.account_id)
            position_findings = [
                _attributed(f, holders[(f.symbol, f.exchange, f.product)])
                for f in position_findings
            ]
        report.findings += position_findings
        report.findings += order_findings
        report.findings += gtt_findings(strategies, broker=broker_name, finding=Finding)
        report.brokers.add(broker_name)
    if not dry_run:
        _record(report, strategy=strategy)
    return report


FIXABLE = (IssueType.MISSING_FILL, IssueType.ORDER_STATUS_MISMATCH)


def _fix(finding: Finding) -> Finding:
    """Apply the broker's report of the order behind ``finding``; say in ``details`` whether
    the order now agrees with the broker (``fixed``) or what is still wrong."""
    if finding.fix is None or finding.issue_type not in FIXABLE:
        return finding
    update = finding.fix
    try:
        order_updates_apply([update], source=EventSource.SYSTEM)
    except Exception as error:  # an order that cannot be fixed stays an open issue
        logger.exception("reconciliation: auto-fix of order %s failed", finding.order_id)
        outcome = {"fixed": False, "error": f"{type(error).__name__}: {error}"}
    else:
        order = Order.objects.only("status", "filled_quantity").get(pk=finding.order_id)
        still = []
        if order.filled_quantity < update.filled_quantity:
            still.append(f"filled {order.filled_quantity} of the broker's {update.filled_quantity}")
        if OrderStatus(update.status) in OrderStatus.terminal() and order.is_active:
            still.append(f"still {order.status}, the broker says {update.status}")
        outcome = {"fixed": not still, "status": order.status, "filled": order.filled_quantity}
        if still:
            outcome["error"] = "; ".join(still)
    return replace(finding, details={**finding.details, "auto_fix": outcome})


def _log_context(finding: Finding) -> dict:
    """What a log line about a finding carries: its order's, as orders.services logs them."""
    context = {"issue_type": str(finding.issue_type), "strategy_id": finding.strategy_id}
    if finding.order_id is not None:
        context["order_id"] = finding.order_id
        context["client_order_id"] = finding.details.get("client_order_id")
    return context


def _record(report: ReconcileReport, *, strategy) -> None:
    now = timezone.now()
    seen = set()
    for finding in report.findings:
        seen.add(finding.fingerprint)
        fixed = finding.details.get("auto_fix", {}).get("fixed", False)
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
        }
        with transaction.atomic():
            issue, new_critical = reconciliation_issue_record(
                fingerprint=finding.fingerprint, now=now, **values
            )
            if issue.occurrences == 1:
                report.created += 1
            else:
                report.updated += 1
            if fixed:
                issue.resolved = issue.auto_fixed = True
                issue.resolved_at = now
                issue.resolved_by = "reconciliation"
                issue.resolution = (
                    f"auto-fixed: applied the broker's report of order {finding.order_id} "
                    f"({finding.broker_quantity} filled, {finding.details.get('broker')}); "
                    f"the order is now {finding.details['auto_fix']['status']} with "
                    f"{finding.details['auto_fix']['filled']} filled"
                )
                issue.save()
                report.auto_fixed += 1
        if new_critical and not issue.resolved:
            kill_switch_on_critical_issue(issue)
        logger.warning("reconciliation: %s", finding.description, extra=_log_context(finding))
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
