"""Closing positions: ``position_close`` is the one owner of every exit order — stop-loss and
take-profit (the risk monitor), the MIS square-off, a flatten from the admin or a command.

A reaction: it places orders through the order services and is called by the monitors and the
entry points, never by a write. Its rules, for every path alike:

- one exit works per position at a time: under the strategy's and the position's locks, a
  position with a working exit order gets no second one (the caller is told which works), and
  the database refuses a second exit inserted around it (trigger oms_one_exit_per_position);
- an exit larger than the instrument's freeze quantity is sliced into orders within it (whole
  lots), which share the exit's key;
- an exit that failed — a slice refused by the checks or the broker, or not sent because of
  the order rate — is reported as failed (``ExitResult.failed``), never as done;
- under a HALTED kill switch no order passes, exits included: the monitors leave the position
  (and say so), and staff set REDUCING to let exits through (the HALT confirmation says it);
- a LIVE position's stop-loss and take-profit fire on a fresh mark only: a stale one
  (positions.selectors.price_is_stale) is an unknown price, and the monitor says so.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from orders.domain import OrderRequest, OrderResult
from orders.enums import EventSource, OrderSide, OrderStatus, OrderType
from orders.models import Order
from orders.money import PAISA
from orders.services import OrderThrottled, order_place
from positions.models import Position
from positions.protection import protection_cancel_before_exit, protection_yield_to_oms
from positions.selectors import marks_stale_before, price_age, price_is_stale
from risk.models import Instrument, KillSwitchState
from risk.selectors import kill_switch_state
from risk.validator import checks_lock

logger = logging.getLogger("oms.positions")

ACTIVE = sorted(OrderStatus.active())


class ExitKind(StrEnum):
    """Why a position is closed; the prefix of its exit's key (and client_order_id)."""

    STOP_LOSS = "stop-loss"
    TAKE_PROFIT = "take-profit"
    SQUARE_OFF = "MIS square-off"
    FLATTEN = "flatten"

    @property
    def prefix(self) -> str:
        return {"stop-loss": "sl", "take-profit": "tp", "MIS square-off": "sqoff"}.get(
            self.value, "flat"
        )


@dataclass(frozen=True)
class ExitResult:
    """What position_close did: the orders of its exit (accepted or refused), or why it placed
    none (the position is flat; another exit works on it)."""

    position: Position
    kind: ExitKind
    orders: tuple[OrderResult, ...] = ()
    working: tuple[Order, ...] = ()  # an exit already working: nothing was placed
    flat: bool = False  # nothing to close
    throttled: str = ""  # why the rest of the slices were not placed (the order rate)

    @property
    def failed(self) -> bool:
        """The position stays open with no exit working for it."""
        if self.flat or self.working:
            return False
        return not self.orders or bool(self.throttled) or not all(r.accepted for r in self.orders)

    def describe(self) -> str:
        position = self.position
        where = f"position {position.pk} ({position.symbol} {position.quantity:+d})"
        if self.flat:
            return f"{where}: already flat"
        if self.working:
            ids = ", ".join(str(o.pk) for o in self.working)
            return f"{where}: an exit is working already (order {ids}); none added"
        parts = [
            f"order {r.order_id} {r.status}" + (f" ({r.message})" if r.message else "")
            for r in self.orders
        ]
        if self.throttled:
            parts.append(f"not sent: {self.throttled}")
        verdict = "FAILED" if self.failed else "placed"
        return f"{where}: {self.kind} exit {verdict}: " + "; ".join(parts)


def exit_slices(quantity: int, instrument: Instrument | None) -> list[int]:
    """``quantity`` in orders within the instrument's freeze quantity, each a whole number of
    lots (the largest first): 1,820 NIFTY futures in lots of 65 against a freeze of 1,800
    are 1,755 and 65."""
    freeze = instrument.freeze_quantity if instrument is not None else None
    if not freeze or quantity <= freeze:
        return [quantity]
    lot = instrument.lot_size or 1
    largest = freeze - freeze % lot if lot <= freeze else freeze
    slices = [largest] * (quantity // largest)
    if quantity % largest:
        slices.append(quantity % largest)
    return slices


@dataclass(frozen=True)
class PlannedOrder:
    """One order an exit would place now: what a confirmation page lists."""

    symbol: str
    exchange: str
    side: OrderSide
    quantity: int
    product: str
    order_type: OrderType = OrderType.MARKET


@dataclass(frozen=True)
class ExitPlan:
    """What closing ``position`` now would place (``orders``), or why nothing (``working``:
    its exit orders already working; a flat position plans no order)."""

    position: Position
    orders: tuple[PlannedOrder, ...]
    working: tuple[Order, ...] = ()


def exit_plans(positions) -> list[ExitPlan]:
    """The orders position_close would place for each position, as it would slice them (the
    instruments' freeze quantities), in two queries for them all. A preview: position_close
    decides again under its locks."""
    positions = list(positions)
    keys = {(p.symbol, p.exchange) for p in positions}
    instruments = {}
    if keys:
        match = Q()
        for symbol, exchange in keys:
            match |= Q(tradingsymbol=symbol, exchange=exchange)
        instruments = {(i.tradingsymbol, i.exchange): i for i in Instrument.objects.filter(match)}
    working: dict[int, list[Order]] = {}
    for order in Order.objects.filter(
        closes_position__in=[p.pk for p in positions], status__in=ACTIVE
    ).order_by("pk"):
        working.setdefault(order.closes_position_id, []).append(order)
    plans = []
    for position in positions:
        if not position.is_open or position.pk in working:
            plans.append(ExitPlan(position, (), tuple(working.get(position.pk, ()))))
            continue
        side = OrderSide.SELL if position.quantity > 0 else OrderSide.BUY
        slices = exit_slices(
            abs(position.quantity), instruments.get((position.symbol, position.exchange))
        )
        orders = tuple(
            PlannedOrder(position.symbol, position.exchange, side, quantity, position.product)
            for quantity in slices
        )
        plans.append(ExitPlan(position, orders))
    return plans


def position_close(
    position: Position,
    *,
    kind: ExitKind,
    actor: str,
    reason: str = "",
    source: EventSource = EventSource.SYSTEM,
) -> ExitResult:
    """Close the whole open quantity with MARKET orders: the one exit of the position.

    Guarantees: one transaction holding the strategy's lock (the checks', so the exit's orders
    are checked as any order) then the position's; a flat position gets nothing; a position
    with a working exit order gets no second exit (ExitResult.working names it); otherwise one
    exit — its orders sliced within the freeze quantity, numbered ``<kind>-<position>-<n>``
    (n: this position's exits so far + 1, so an exit that died is followed by a new one) —
    and the position's exit_order points to its first accepted order. Every order goes
    through order_place: refused ones are kept REJECTED with their violations, and the result
    says the exit failed.
    """
    with transaction.atomic():
        checks_lock(position.strategy_id)
        locked = Position.objects.select_for_update().get(pk=position.pk)
        if not locked.is_open:
            return ExitResult(locked, kind, flat=True)
        exits = Order.objects.filter(closes_position=locked)
        working = tuple(exits.filter(status__in=ACTIVE).order_by("pk"))
        if working:
            return ExitResult(locked, kind, working=working)
        key = f"{kind.prefix}-{locked.pk}-{exits.values('exit_key').distinct().count() + 1}"
        instrument = Instrument.objects.filter(
            tradingsymbol=locked.symbol, exchange=locked.exchange
        ).first()
        slices = exit_slices(abs(locked.quantity), instrument)
        placed, throttled = [], ""
        for number, quantity in enumerate(slices, start=1):
            request = OrderRequest(
                strategy_id=locked.strategy_id,
                client_order_id=key if len(slices) == 1 else f"{key}.{number}",
                symbol=locked.symbol,
                exchange=locked.exchange,
                side=OrderSide.SELL if locked.quantity > 0 else OrderSide.BUY,
                quantity=quantity,
                order_type=OrderType.MARKET,
                product=locked.product,
                tag=str(kind),
            )
            try:
                result = order_place(
                    request,
                    actor=actor,
                    source=source,
                    metadata={"exit": str(kind), "reason": reason} if reason else {},
                    closes_position=locked,
                    exit_key=key,
                )
            except OrderThrottled as error:
                throttled = error.message
                break
            placed.append(result)
        first = next((r for r in placed if r.accepted), None)
        if first is not None:
            locked.exit_order_id = first.order_id
            locked.save(update_fields=["exit_order", "updated_at"])
    outcome = ExitResult(locked, kind, orders=tuple(placed), throttled=throttled)
    log = logger.error if outcome.failed else logger.info
    log("%s", outcome.describe(), extra={"strategy_id": locked.strategy_id, "actor": actor})
    return outcome


def position_exit_reason(position: Position, *, stale_before=None) -> ExitKind | None:
    """Why a position should be closed at its last price: stop-loss or take-profit, or None.

    A LIVE position's mark seen before ``stale_before`` (marks_stale_before) is no price: None,
    whatever it says (logged when it would have fired)."""
    if position.last_price is None or not position.is_open:
        return None
    if position.should_trigger_stop_loss(position.last_price):
        kind = ExitKind.STOP_LOSS
    elif position.should_trigger_take_profit(position.last_price):
        kind = ExitKind.TAKE_PROFIT
    else:
        return None
    if position.strategy.is_live and price_is_stale(
        position.last_price_at, stale_before=stale_before
    ):
        logger.warning(
            "position %s: %s exit not fired on a stale mark %s (%s old, over %ss)",
            position.pk,
            kind,
            position.last_price.quantize(PAISA),
            price_age(position.last_price_at),
            settings.OMS_MARK_STALE_SECONDS,
        )
        return None
    return kind


def exit_may_start(position: Position, *, now, retry_after: timedelta) -> bool:
    """Whether a monitor should ask position_close for this position now: no exit order works
    on it, none died within ``retry_after`` (a refused exit is not sent again every tick), and
    its strategy is not HALTED (where no order passes: staff decide, see the module's doc)."""
    latest = Order.objects.filter(closes_position=position).order_by("-updated_at").first()
    if latest is not None and (latest.is_active or latest.updated_at > now - retry_after):
        return False
    if kill_switch_state(strategy=position.strategy) == KillSwitchState.HALTED:
        logger.warning(
            "position %s left open: the kill switch is HALTED (REDUCING lets exits through)",
            position.pk,
        )
        return False
    return True


def positions_check_exits(*, actor: str = "stop-loss monitor", now=None, strategy=None) -> list:
    """Close every open position whose last price crossed its stop-loss or take-profit.

    Never twice for one breach: while an exit works (or the position is flat), position_close
    adds nothing. An exit that died (rejected by the broker or the checks, cancelled) is tried
    again, as the position's next exit, once OMS_EXIT_RETRY_SECONDS have passed. A LIVE
    position with a stale mark is left (position_exit_reason). A position whose stop is held
    at the broker (a GTT) is left to it, or its GTT deleted first (protection_yield_to_oms).
    """
    stale_before = marks_stale_before()
    now = now or timezone.now()
    retry_after = timedelta(seconds=settings.OMS_EXIT_RETRY_SECONDS)
    candidates = Position.objects.filter(closed_at__isnull=True).select_related("strategy")
    if strategy is not None:
        candidates = candidates.filter(strategy=strategy)
    results = []
    for position in candidates:
        kind = position_exit_reason(position, stale_before=stale_before)
        if kind is None or not exit_may_start(position, now=now, retry_after=retry_after):
            continue
        if not protection_yield_to_oms(position):  # the broker's GTT holds (or took) this exit
            continue
        results.append(position_close(position, kind=kind, actor=actor, reason=str(kind)))
    return results


def position_flatten(position: Position, *, actor: str, reason: str) -> ExitResult:
    """Close one position with MARKET orders: a person's confirmed act (the admin's position
    page). position_close's guarantees: one transaction under the strategy's and the
    position's locks, no second exit while one works, every order through the pre-trade
    checks (a HALTED kill switch refuses them: the result then says the exit failed). The
    orders carry ``actor`` and ``reason``."""
    if not reason.strip():
        raise ValueError("reason: required to close a position")
    return position_close(
        position, kind=ExitKind.FLATTEN, actor=actor, reason=reason, source=EventSource.ADMIN
    )


def positions_flatten(*, actor: str, reason: str, strategy=None) -> list[ExitResult]:
    """Close every open position of the scope (a strategy, or all) with MARKET orders: a
    separate, confirmed act of a person. One ExitResult per position (none for a position
    whose broker-held GTT triggered: its order is the exit). A live GTT is deleted first."""
    positions = Position.objects.filter(closed_at__isnull=True).order_by("pk")
    if strategy is not None:
        positions = positions.filter(strategy=strategy)
    return [
        position_close(position, kind=ExitKind.FLATTEN, actor=actor, reason=reason)
        for position in positions
        if protection_cancel_before_exit(position)  # a GTT that fired is the exit already
    ]
