"""Reconciliation: our book against the broker's, issues logged, safe differences fixed.

Each book (the paper exchange, or one Kite account) is read once (its order book, net
positions and holdings: ``_book_run``), then BOOK_CHECKS run in turn, each a function of the
``BookRun`` returning Findings: orders in both directions (positions.reconciliation_orders),
unconfirmed cancels, positions and holdings (here). A check is added by adding it to the list.

Kite nets positions per instrument across everything the account holds, and the paper broker
does the same across paper strategies. So ours are netted the same way (per broker, symbol,
exchange and product) before comparing, and a difference is attributed to a strategy only when
exactly one strategy holds that instrument; otherwise the issue names no strategy and its
details list every strategy's share. CNC shares from earlier days are in the broker's holdings,
not its positions: what it holds of a CNC instrument is holdings + T+1 + today's net.

Quantities are always compared; average prices only where both mean the same thing
(``_price_comparable``): Kite's average is that of the side the day's trades are on, ours a
weighted-average cost that a reduce leaves alone and that carries across days. M2M and PnL
are never compared.

An issue already open for the same thing (its fingerprint) is updated, never duplicated; an
open issue that this run no longer sees is resolved with a note. Safe fixes (the broker's
fills, its end of an order, adopting its report of an order in doubt) are applied when
``auto_fix`` is on, through the same order services a broker report goes through; everything
else waits for a person. The order checks run before positions are compared, so a fill the
broker reported and we missed is one issue (fixed), not also a position difference.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from orders.brokers import BrokerError, broker_for
from orders.enums import Product, StrategyMode, StrategyStatus
from orders.models import Strategy
from positions.models import IssueType, Position, ReconciliationIssue, Severity
from positions.reconciliation_findings import (
    Book,
    BookRun,
    Finding,
    ReconcileReport,
    severity,
)
from positions.reconciliation_gtt import gtts_check
from positions.reconciliation_orders import (
    cancels_check,
    compare_orders,
    orders_check,
    unconfirmed_cancels,
)
from positions.services import reconciliation_issue_record, reconciliation_run_record
from risk.kill_switch import kill_switch_on_critical_issue

logger = logging.getLogger("oms.reconciliation")

AVERAGE = Decimal("0.000001")

__all__ = [
    "BOOK_CHECKS",
    "Book",
    "BookRun",
    "Finding",
    "ReconcileReport",
    "compare_orders",
    "compare_positions",
    "reconcile_positions",
    "unconfirmed_cancels",
]


NET_POSITIONS = """
SELECT p.symbol, p.exchange, p.product, sum(p.quantity), bool_and(p.opened_at >= %(today)s),
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

# Instruments the book traded on both sides today: a reduce, a close and reopen, a reversal,
# or two strategies on opposite sides. Kite's average then is not our weighted-average cost.
TWO_SIDED_TODAY = """
SELECT t.symbol, t.exchange, t.product
FROM trades t JOIN strategies s ON s.id = t.strategy_id
WHERE t.executed_at >= %(today)s AND s.mode = %(mode)s
  AND (%(account)s::bigint IS NULL OR s.broker_account_id = %(account)s::bigint)
GROUP BY 1, 2, 3
HAVING count(DISTINCT t.side) > 1
"""


def _today_start():
    """Midnight IST today: Kite's positions are the day's, its holdings the days before."""
    return timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)


def _our_net_positions(mode: str, strategy=None, account_id: int | None = None) -> dict:
    """Our open positions of one broker, netted per instrument (in the database: thousands of
    positions make a few hundred instruments); with ``strategy``, the instruments it holds.

    {(symbol, exchange, product): {"quantity", "long", "long_cost", "short", "short_cost"}}:
    the long and short holdings are kept apart, as the broker's average is the one of the side
    that is open (``_average``). Who holds what is read only for differences (``_holders``).
    ``price_comparable``: see ``_price_comparable``.
    """
    params = {"mode": str(mode), "account": account_id, "today": _today_start()}
    with connection.cursor() as cursor:
        cursor.execute(
            NET_POSITIONS,
            {**params, "strategy": strategy and strategy.pk},
        )
        rows = cursor.fetchall()
        cursor.execute(TWO_SIDED_TODAY, params)
        two_sided = set(cursor.fetchall())
    return {
        (symbol, exchange, product): {
            "quantity": held,
            "long": long,
            "long_cost": long_cost,
            "short": short,
            "short_cost": short_cost,
            "price_comparable": today and (symbol, exchange, product) not in two_sided,
        }
        for symbol, exchange, product, held, today, long, long_cost, short, short_cost in rows
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


def _price_comparable(mine: dict, key: tuple, holdings: dict) -> bool:
    """Whether the broker's average means what ours means. Kite's net average is that of the
    side the day's trades are on (buy_price for a long, sell_price for a short), over the
    day only; ours is a weighted-average cost, which a reduce does not move and which carries
    across days. They agree only for a position opened today (every holder's) that the book
    traded on one side only today, and not for a CNC instrument with holdings (their average
    is of earlier days' buys)."""
    return bool(mine.get("price_comparable", True)) and key not in holdings


def compare_positions(
    ours: dict, theirs: dict, *, live: bool, broker: str, holdings: dict | None = None
) -> list[Finding]:
    """One pass over the union of instruments; pure (no database), so it can be tested alone.

    ``theirs``: {instrument: (quantity, average)}, holdings included in a CNC instrument's
    quantity; ``holdings``: {instrument: {"holdings", "t1", "day_net"}}, what that quantity is
    made of (kept in the issue's details). Quantities are always compared, averages only where
    ``_price_comparable``; m2m and PnL never."""
    holdings = holdings or {}
    tolerance = Decimal(str(settings.OMS_RECONCILE_PRICE_TOLERANCE))
    nothing = _empty()
    findings = []
    for key in sorted(set(ours) | set(theirs)):
        mine = ours.get(key, nothing)
        broker_qty, broker_avg = theirs.get(key, (0, None))
        ours_avg = _average(mine)
        held = holdings.get(key)
        if mine["quantity"] == broker_qty:
            if not (
                _price_comparable(mine, key, holdings)
                and ours_avg
                and broker_avg
                and abs(ours_avg - broker_avg) * 100 > tolerance * broker_avg
            ):
                continue  # the usual case: agreement, nothing built
            kind, level = IssueType.PRICE_MISMATCH, severity(live=live, exposure=False)
            text = f"{key[0]}: average {ours_avg} here, {broker_avg} at the broker"
        else:
            level = severity(live=live, exposure=True)
            if broker_qty == 0:
                kind, text = IssueType.MISSING_AT_BROKER, "held here, not at the broker"
            elif mine["quantity"] == 0:
                kind, text = IssueType.UNKNOWN_POSITION, "held at the broker, unknown here"
                if held and not held["day_net"]:
                    # Shares from earlier days the OMS never held (the desk's own investments):
                    # shown, never a halt.
                    level = Severity.INFO
                    text = "in the broker's holdings, never held through the OMS"
            else:
                kind, text = IssueType.QUANTITY_MISMATCH, "quantities differ"
            text = f"{key[0]} {key[2]}: {text} (ours {mine['quantity']}, broker {broker_qty})"
        finding = _position_finding(
            key, mine, (broker_qty, broker_avg), kind, level, text, broker=broker
        )
        if held:
            finding = replace(finding, details={**finding.details, "holdings": held})
        findings.append(finding)
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


def _broker_holdings(run: BookRun) -> tuple[dict, dict]:
    """The broker's positions with its holdings added to the CNC instruments' quantities
    (their average left out: it is earlier days' buys), and what each such quantity is made of
    {instrument: {"holdings": settled, "t1": unsettled, "day_net": today's net}}."""
    theirs = dict(run.positions)
    made_of = {}
    for holding in run.holdings:
        key = (holding.symbol, holding.exchange, holding.product or Product.CNC)
        day_net, _ = theirs.get(key, (0, None))
        theirs[key] = (day_net + holding.quantity + holding.t1_quantity, None)
        made_of[key] = {"holdings": holding.quantity, "t1": holding.t1_quantity, "day_net": day_net}
    return theirs, made_of


def positions_check(run: BookRun) -> list[Finding]:
    """Our net positions against the broker's positions and holdings."""
    book, strategy = run.book, run.strategy
    ours = _our_net_positions(book.mode, strategy, book.account_id)
    theirs, made_of = _broker_holdings(run)
    if strategy is not None:
        theirs = {k: v for k, v in theirs.items() if k in ours}
        made_of = {k: v for k, v in made_of.items() if k in ours}
    run.report.positions_compared += len(set(ours) | set(theirs))
    run.report.holdings_compared += len(made_of)
    findings = compare_positions(ours, theirs, live=run.live, broker=run.name, holdings=made_of)
    if findings:
        keys = {(f.symbol, f.exchange, f.product) for f in findings}
        holders = _holders(book.mode, keys, book.account_id)
        findings = [_attributed(f, holders[(f.symbol, f.exchange, f.product)]) for f in findings]
    return findings


# The checks every book that could be read goes through, in this order (the order fixes come
# before positions are compared). A check: ``check(run: BookRun) -> list[Finding]``.
BOOK_CHECKS = [
    orders_check,
    cancels_check,
    positions_check,
    gtts_check,
]


def _book_run(book: Book, report: ReconcileReport, *, strategy, fixing: bool) -> BookRun:
    """Read the book's broker once: its order book, net positions and holdings (like Kite's,
    the paper broker's books hold every paper strategy's orders and positions).
    BrokerError (or any failure) when it cannot be read."""
    broker = broker_for(book.strategies[0])
    run = BookRun(book, broker, report, strategy=strategy, fixing=fixing)
    run.orders = {update.broker_order_id: update for update in broker.orders()}
    for position in broker.positions():
        key = (position.symbol, position.exchange, position.product)
        run.positions[key] = (position.quantity, position.average_price or None)
    run.holdings = list(broker.holdings())
    return run


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
    """Compare our orders, positions and CNC holdings with each broker account's and log the
    differences (BOOK_CHECKS).

    Guarantees: one open issue per difference (a repeat updates it and counts the
    occurrence), earlier issues of a broker read this time and no longer seen are resolved;
    with ``auto_fix`` (default OMS_RECONCILE_AUTO_FIX) the safe fixes (missing fills, order
    statuses the broker ended, an order in doubt the broker holds) are applied through
    order_updates_apply before positions are compared, and an issue is marked fixed only when
    the order then agrees with the broker. A new CRITICAL issue left open calls the kill
    switch rule. ``dry_run``: compares only; nothing is fixed or written. A broker that cannot
    be read, or a check that cannot finish, is logged and its book's open issues are left
    alone. Orders CANCEL_PENDING for longer than OMS_CANCEL_UNCONFIRMED_SECONDS are
    CANCEL_UNCONFIRMED issues, whether or not the broker could be read.
    """
    auto_fix = settings.OMS_RECONCILE_AUTO_FIX if auto_fix is None else auto_fix
    fixing = auto_fix and not dry_run
    started_at = timezone.now()
    report = ReconcileReport()
    for book in _books(strategy):
        live = book.mode == StrategyMode.LIVE
        try:
            run = _book_run(book, report, strategy=strategy, fixing=fixing)
        except Exception as error:  # a broker that cannot be reached is a finding, not a crash
            logger.error("reconciliation: %s broker unavailable: %s", book.broker, error)
            # A cancel left unconfirmed while the broker cannot be read is all the more so.
            report.findings += unconfirmed_cancels(
                book.strategies, {}, live=live, broker=book.broker
            )
            continue
        complete = True
        for check in BOOK_CHECKS:
            try:
                report.findings += check(run)
            except BrokerError as error:
                logger.error("reconciliation: %s %s failed: %s", book.broker, check.__name__, error)
                complete = False
        if complete:
            report.brokers.add(book.broker)
    if not dry_run:
        _record(report, strategy=strategy)
        reconciliation_run_record(report=report, started_at=started_at, strategy=strategy)
    return report


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
            "safe_fix": finding.safe_fix,
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
