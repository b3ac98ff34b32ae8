"""Every write to positions and last prices outside a fill: the shared market prices and a paper
strategy's own, marking to market, stop-loss and take-profit set by a person, and
reconciliation issues settled by a person. (A fill's effect
on a position is positions.ledger's; closing a position is positions.exits'.)"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from orders.enums import ProtectionMode
from orders.models import Strategy
from orders.money import PAISA, on_paisa, to_paisa
from orders.services.fills import adjustment_fill_record
from positions import pnl
from positions.jobs import defer_protection_sync
from positions.ledger import position_lock
from positions.models import (
    MarketPrice,
    OwnPrice,
    Position,
    ReconciliationIssue,
    ReconciliationRun,
    Severity,
    StrategyPrice,
)

logger = logging.getLogger("oms.positions")


def market_prices_update(prices: list[tuple[str, str, Decimal]]) -> int:
    """Record shared last prices (symbol, exchange, price), as market data or staff give them,
    in one statement (the latest of an instrument's prices in the batch wins; each row's
    updated_at is when it was seen, what the stale rule reads): every strategy's checks, paper
    fills and marks see them, but for a PAPER strategy's own posted prices
    (strategy_prices_update). Never call it with a strategy's posted prices. Returns how many
    instruments were stored."""
    latest = {(symbol.upper(), exchange.upper()): price for symbol, exchange, price in prices}
    MarketPrice.objects.bulk_create(
        [
            MarketPrice(symbol=symbol, exchange=exchange, last_price=price)
            for (symbol, exchange), price in latest.items()
        ],
        update_conflicts=True,
        unique_fields=["symbol", "exchange"],
        update_fields=["last_price", "updated_at"],
    )
    return len(latest)


def strategy_prices_update(prices: list[tuple[str, str, Decimal]], *, strategy) -> int:
    """Record last prices a PAPER strategy posted for itself, in one statement (the latest of
    an instrument's prices in the batch wins). Only that strategy ever reads them
    (``oms_last_price``); the database refuses them for a strategy that is not PAPER.
    Returns how many instruments were stored."""
    latest = {(symbol.upper(), exchange.upper()): price for symbol, exchange, price in prices}
    StrategyPrice.objects.bulk_create(
        [
            StrategyPrice(strategy=strategy, symbol=symbol, exchange=exchange, last_price=price)
            for (symbol, exchange), price in latest.items()
        ],
        update_conflicts=True,
        unique_fields=["strategy", "symbol", "exchange"],
        update_fields=["last_price", "updated_at"],
    )
    return len(latest)


def strategy_prices_clear(*, strategy) -> int:
    """Forget the prices a strategy posted for itself (it changes mode: a LIVE strategy never
    sees them, and one back to PAPER starts again from the shared market prices). Returns
    how many were removed."""
    removed, _ = StrategyPrice.objects.filter(strategy=strategy).delete()
    return removed


def positions_mark(prices: list[tuple[str, str, Decimal]], *, strategy=None) -> int:
    """Mark open positions to a feed's prices: last price, unrealized PnL, extremes, drawdown.

    The feed moves exactly the positions that see it (``oms_own_price``): the shared feed
    (``strategy`` None) those of strategies without a price of their own for the instrument;
    a PAPER strategy's own feed only that strategy's, where it sees its own price. Each
    position is locked for its update, one short transaction each. Returns the number of
    positions marked.
    """
    marked = 0
    for symbol, exchange, price in prices:
        open_positions = Position.objects.filter(
            symbol=symbol.upper(), exchange=exchange.upper(), closed_at__isnull=True
        ).annotate(own_price=OwnPrice("strategy_id", "symbol", "exchange"))
        if strategy is None:
            open_positions = open_positions.filter(own_price__isnull=True)
        else:
            open_positions = open_positions.filter(strategy=strategy, own_price__isnull=False)
        ids = list(open_positions.values_list("pk", flat=True))
        for position_id in ids:
            with transaction.atomic():
                position = Position.objects.select_for_update().get(pk=position_id)
                if not position.is_open:
                    continue
                position.mark(Decimal(price))
                position.save()
                marked += 1
    return marked


# --- stop-loss and take-profit set by a person -------------------------------------------------


class PositionError(Exception):
    """A change of a position that is refused; ``fields`` maps each field to its rule."""

    def __init__(self, fields: dict[str, str]):
        self.fields = fields
        super().__init__("; ".join(fields.values()))


def position_protection_errors(
    position: Position, *, stop_loss: Decimal | None, take_profit: Decimal | None
) -> dict[str, str]:
    """Why these levels cannot protect the position ({} when they can).

    Levels are positive whole paise. For a long, the stop-loss is below the reference price and
    the take-profit above it; for a short, the reverse. The reference is the last price (or the
    average price before any is known): a level already crossed would close the position on
    the next tick. A level may be cleared (None).
    """
    errors = {}
    if not position.is_open:
        return {"stop_loss": f"position {position.pk} is closed: nothing to protect"}
    reference = position.last_price or position.average_price
    shown = f"{reference.quantize(PAISA)}"
    long = position.quantity > 0
    for field, level in (("stop_loss", stop_loss), ("take_profit", take_profit)):
        if level is None:
            continue
        name = field.replace("_", "-")
        if level <= 0 or not on_paisa(level):
            errors[field] = f"{name} {level}: must be a positive amount in whole paise"
        elif field == "stop_loss" and long and level >= reference:
            errors[field] = f"{name} {level}: a long's stop-loss must be below {shown}"
        elif field == "stop_loss" and not long and level <= reference:
            errors[field] = f"{name} {level}: a short's stop-loss must be above {shown}"
        elif field == "take_profit" and long and level <= reference:
            errors[field] = f"{name} {level}: a long's take-profit must be above {shown}"
        elif field == "take_profit" and not long and level >= reference:
            errors[field] = f"{name} {level}: a short's take-profit must be below {shown}"
    return errors


def position_protection_set(
    position: Position,
    *,
    stop_loss: Decimal | None,
    take_profit: Decimal | None,
    actor: str,
) -> Position:
    """Set (or clear, with None) an open position's stop-loss and take-profit.

    Guarantees: the levels are checked against the position as it is under its row lock (the
    side and last price may have moved since the form was shown), by the rules of
    ``position_protection_errors`` (PositionError otherwise); the risk monitor acts on the new
    levels from its next tick. The change is logged with the levels before and after.
    """
    with transaction.atomic():
        locked = Position.objects.select_for_update().get(pk=position.pk)
        errors = position_protection_errors(locked, stop_loss=stop_loss, take_profit=take_profit)
        if errors:
            raise PositionError(errors)
        before = (locked.stop_loss, locked.take_profit)
        locked.stop_loss = stop_loss
        locked.take_profit = take_profit
        locked.save(update_fields=["stop_loss", "take_profit", "updated_at"])
        if locked.strategy.protection_mode != ProtectionMode.OMS:
            defer_protection_sync(locked.strategy_id)  # its GTT follows (positions.protection)
    logger.info(
        "position %s protection by %s: stop-loss %s -> %s, take-profit %s -> %s",
        locked.pk,
        actor,
        before[0],
        stop_loss,
        before[1],
        take_profit,
    )
    return locked


# --- reconciliation issues settled by a person ---------------------------------------------------


class ReconciliationIssueError(Exception):
    """A resolution or fix of a reconciliation issue that is refused; the message says why."""


def reconciliation_run_record(*, report, started_at, strategy=None) -> ReconciliationRun:
    """Record one finished reconciliation run (``report``: its ReconcileReport)."""
    return ReconciliationRun.objects.create(
        strategy=strategy,
        started_at=started_at,
        finished_at=timezone.now(),
        positions_compared=report.positions_compared,
        orders_compared=report.orders_compared,
        differences=len(report.findings),
        created=report.created,
        resolved=report.resolved,
        auto_fixed=report.auto_fixed,
        brokers=sorted(report.brokers),
    )


def reconciliation_issue_record(
    *, fingerprint: str, now=None, **values
) -> tuple[ReconciliationIssue, bool]:
    """Record a difference with the broker: open an issue for ``fingerprint``, or update the
    one still open (its figures, ``last_seen_at``, one more occurrence).

    Returns (the issue, whether it became CRITICAL with this call: the caller then calls the
    kill switch's rule). ``values`` are ReconciliationIssue's fields. Runs in one transaction
    with the open issue locked, so two recorders never open the same issue twice.
    """
    now = now or timezone.now()
    values["last_seen_at"] = now
    with transaction.atomic():
        issue = (
            ReconciliationIssue.objects.select_for_update()
            .filter(fingerprint=fingerprint, resolved=False)
            .first()
        )
        if issue is None:
            issue = ReconciliationIssue.objects.create(
                fingerprint=fingerprint, detected_at=now, **values
            )
            return issue, issue.is_critical
        became_critical = values.get("severity") == Severity.CRITICAL and not issue.is_critical
        for name, value in values.items():
            setattr(issue, name, value)
        issue.occurrences += 1
        issue.save()
        return issue, became_critical


AUTO_FIXABLE = frozenset({"QUANTITY_MISMATCH", "MISSING_AT_BROKER", "UNKNOWN_POSITION"})


def _check_open_and_allowed(issue, *, may_resolve_critical: bool) -> None:
    if issue.resolved:
        when = timezone.localtime(issue.resolved_at)
        raise ReconciliationIssueError(
            f"issue {issue.pk} was resolved by {issue.resolved_by or 'someone'} at "
            f"{when:%Y-%m-%d %H:%M}: a resolved issue cannot be changed"
        )
    if issue.is_critical and not may_resolve_critical:
        raise ReconciliationIssueError(
            f"issue {issue.pk} is CRITICAL: settling it needs the permission "
            "'Can resolve or auto-fix CRITICAL reconciliation issues'"
        )


def reconciliation_issue_resolve(
    issue, *, note: str, actor: str, may_resolve_critical: bool = True
):
    """Mark an unresolved issue resolved by a person, with the note saying what was done.

    Guarantees: a non-blank note (ReconciliationIssueError otherwise); who and when are
    recorded; a resolved issue is never changed again (refused, whoever asks); a CRITICAL
    issue is refused unless ``may_resolve_critical`` (the caller's permission). The issue row
    is locked, so two people resolving at once cannot both succeed.
    """
    note = (note or "").strip()
    if not note:
        raise ReconciliationIssueError(
            "note: required — say what was checked and what was done about it"
        )
    with transaction.atomic():
        locked = ReconciliationIssue.objects.select_for_update().get(pk=issue.pk)
        _check_open_and_allowed(locked, may_resolve_critical=may_resolve_critical)
        locked.resolved = True
        locked.resolved_at = timezone.now()
        locked.resolved_by = actor
        locked.resolution = note
        locked.save(
            update_fields=["resolved", "resolved_at", "resolved_by", "resolution", "updated_at"]
        )
    logger.info("reconciliation issue %s resolved by %s: %s", locked.pk, actor, note)
    return locked


@dataclass(frozen=True)
class AutoFixPlan:
    """What adopting the broker's quantity does to the strategy's position: the adjustment
    fills (``legs``: signed quantity and price) that take it there, and the position after."""

    position_id: int | None
    quantity_before: int
    quantity_after: int
    average_before: Decimal | None
    average_after: Decimal | None
    legs: tuple[tuple[int, Decimal], ...] = ()

    @property
    def reverses(self) -> bool:
        return self.quantity_before * self.quantity_after < 0

    def describe(self) -> str:
        fills = ", ".join(f"{quantity:+d} @ {price}" for quantity, price in self.legs)
        fills = f" by adjustment fills {fills}" if fills else ""
        if self.quantity_before == 0:
            return (
                f"opened position {self.position_id or '(new)'} of {self.quantity_after:+d} at "
                f"the broker's average {self.average_after}{fills}"
            )
        if self.quantity_after == 0:
            return (
                f"closed position {self.position_id} ({self.quantity_before:+d} → 0, as the "
                f"broker holds none){fills}, at our average: no PnL invented"
            )
        text = (
            f"position {self.position_id}: {self.quantity_before:+d} → "
            f"{self.quantity_after:+d}, average {self.average_before} → {self.average_after}"
            f"{fills}"
        )
        if self.reverses:
            text += "; closed and a new position opened (the side changed)"
        return text

    def as_dict(self) -> dict:
        return {
            "position_id": self.position_id,
            "quantity_before": self.quantity_before,
            "quantity_after": self.quantity_after,
            "average_before": None if self.average_before is None else str(self.average_before),
            "average_after": None if self.average_after is None else str(self.average_after),
            "fills": [[quantity, str(price)] for quantity, price in self.legs],
        }


def _adjustment_legs(ours: int, after: int, our_price, broker_price) -> list[tuple[int, Decimal]]:
    """The adjustment fills from ``ours`` to ``after``: what is taken away goes at our average
    (no PnL invented), what is added at the broker's average (ours when it reports none)."""
    if after == ours:
        return []
    if ours == 0:
        return [(after, broker_price)]
    if after == 0 or (ours > 0) != (after > 0):
        closing = [(-ours, our_price)]
        return closing if after == 0 else [*closing, (after, broker_price)]
    if abs(after) < abs(ours):
        return [(after - ours, our_price)]
    return [(after - ours, broker_price or our_price)]


def reconciliation_issue_auto_fix_plan(issue, position: Position | None) -> AutoFixPlan:
    """How ``issue`` would be fixed given the strategy's open position now, or why it cannot
    (ReconciliationIssueError). Pure: reads nothing, writes nothing.

    Only a quantity difference (QUANTITY_MISMATCH, MISSING_AT_BROKER, UNKNOWN_POSITION)
    attributed to one strategy can be fixed, and only while our position is still the one the
    issue saw (otherwise reconciliation must look again). The change is made by adjustment
    fills (``_adjustment_legs``); a new or reversed position needs the broker's average price.
    A reduction keeps our average (a fill that reduces does not move it): a different average
    at the broker stays a price difference for a person.
    """
    if issue.issue_type not in AUTO_FIXABLE:
        raise ReconciliationIssueError(
            f"issue {issue.pk} is a {issue.issue_type}: only quantity differences are "
            "auto-fixed here (missing fills and order statuses are fixed by reconciliation)"
        )
    if issue.strategy_id is None:
        raise ReconciliationIssueError(
            f"issue {issue.pk} names no strategy: the broker nets several strategies' "
            "positions in this instrument, so whose quantity to change is a person's call"
        )
    if issue.broker_quantity is None:
        raise ReconciliationIssueError(f"issue {issue.pk}: the broker's quantity is unknown")
    ours = position.quantity if position is not None else 0
    if ours != (issue.internal_quantity or 0):
        raise ReconciliationIssueError(
            f"issue {issue.pk}: our position is now {ours}, not the {issue.internal_quantity} the "
            "issue saw; run reconciliation again before fixing"
        )
    after = issue.broker_quantity
    before_average = position.average_price if position is not None else None
    broker_average = issue.broker_price if issue.broker_price and issue.broker_price > 0 else None
    same_side = position is not None and (ours > 0) == (after > 0)
    if after != 0 and broker_average is None and not same_side:
        raise ReconciliationIssueError(
            f"issue {issue.pk}: the broker reports no average price for a position of "
            f"{after:+d}; it cannot be opened here without one"
        )
    legs = _adjustment_legs(
        ours,
        after,
        None if before_average is None else to_paisa(before_average),
        None if broker_average is None else to_paisa(broker_average),
    )
    quantity, average = ours, before_average or Decimal(0)
    for signed, price in legs:
        effect = pnl.apply_fill(quantity, average, signed, price)
        quantity, average = effect.quantity, effect.average_price
    return AutoFixPlan(
        position_id=position.pk if position is not None else None,
        quantity_before=ours,
        quantity_after=after,
        average_before=before_average,
        average_after=None if after == 0 else average,
        legs=tuple(legs),
    )


def reconciliation_issue_auto_fix(issue, *, actor: str, may_resolve_critical: bool = True):
    """Adopt the broker's quantity for the issue's strategy and instrument, and resolve it.

    Guarantees: one transaction, locks taken strategy, position, issue (the order every writer
    of positions uses); the plan is decided under those locks
    (``reconciliation_issue_auto_fix_plan``), so a fill landing meanwhile makes it refuse
    rather than fix the wrong figure. Our position changes only through adjustment fills
    (orders.services.adjustment_fill_record: trades rows of kind ADJUSTMENT, with the issue
    and the reason), applied by the ledger like any fill: the position is still the sum of its
    fills. The issue becomes resolved and auto-fixed, by ``actor``; its resolution says old →
    new and its details keep the position before and after and the fills. CRITICAL issues
    need ``may_resolve_critical``.
    """
    _check_open_and_allowed(issue, may_resolve_critical=may_resolve_critical)
    if issue.strategy_id is None:
        reconciliation_issue_auto_fix_plan(issue, None)  # raises: names no strategy
    now = timezone.now()
    with transaction.atomic():
        strategy = Strategy.objects.select_for_update().get(pk=issue.strategy_id)
        instrument = {"symbol": issue.symbol, "exchange": issue.exchange, "product": issue.product}
        position = position_lock(strategy=strategy, **instrument)
        locked = ReconciliationIssue.objects.select_for_update().get(pk=issue.pk)
        _check_open_and_allowed(locked, may_resolve_critical=may_resolve_critical)
        seen = (issue.strategy_id, issue.symbol, issue.exchange, issue.product)
        if (locked.strategy_id, locked.symbol, locked.exchange, locked.product) != seen:
            raise ReconciliationIssueError(
                f"issue {issue.pk} changed while it was being fixed; look at it again"
            )
        plan = reconciliation_issue_auto_fix_plan(locked, position)
        reason = f"reconciliation issue {locked.pk} ({locked.issue_type}) auto-fixed by {actor}"
        for number, (quantity, price) in enumerate(plan.legs, start=1):
            adjustment_fill_record(
                strategy,
                position,
                **instrument,
                quantity=quantity,
                price=price,
                executed_at=now,
                issue=locked,
                reason=reason,
                trade_id=f"ADJ-{locked.pk}-{number}",
            )
            position = position_lock(strategy=strategy, **instrument)
        if position is not None:
            plan = replace(plan, position_id=position.pk)
        locked.resolved = locked.auto_fixed = True
        locked.resolved_at = now
        locked.resolved_by = actor
        locked.resolution = (
            f"auto-fixed by {actor}, adopting the broker's quantity: {plan.describe()}"
        )
        record = {**plan.as_dict(), "by": actor, "at": now.isoformat()}
        locked.details = {**locked.details, "auto_fix": record}
        locked.save()
    logger.warning(
        "reconciliation issue %s auto-fixed by %s: %s", locked.pk, actor, locked.resolution
    )
    return locked
