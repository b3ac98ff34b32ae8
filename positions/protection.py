"""A position's stop-loss / take-profit held at the broker as a GTT (Kite's two-leg OCO, or a
single trigger when only one level is set): it closes the position even while the OMS, its
workers or the network are down. Per strategy (Strategy.protection_mode): OMS only (nothing
here runs), broker-held, or both (the OMS monitor as the second line).

A reaction, like positions.exits: it calls the broker and the order writes. Its rules:

- the intent first, then the broker: under the position's lock the protection row is written
  PLACING / AMENDING / CANCELLING with the terms wanted, committed, then the broker is called
  with no lock held, and its answer recorded in a new transaction (ACTIVE, FAILED,
  CANCELLED). A job that dies in between is run again (the periodic sweep) and resumes from
  the row: a PLACING row without a trigger id first looks for a GTT it placed (same
  instrument, quantity and triggers, held by no other protection), never placing blindly twice;
- wanted: an open position of a BROKER / BOTH strategy with a stop-loss or a take-profit, its
  whole quantity; legs SELL for a long, BUY for a short, LIMIT orders — the take-profit at its
  trigger, the stop-loss OMS_GTT_LIMIT_TOLERANCE_PERCENT beyond it (rounded to 0.05 away from
  the market), so it fills when the price runs through;
- a GTT that triggered (protections_poll reads the broker's GTTs): the order it placed is
  adopted as an OMS exit order of the position (orders.services.adoption), linked from the
  protection, and the broker's report of it applied: its fills are booked once (the
  protection's row lock and the order's unique broker id and client id decide);
- with BOTH, the OMS monitor cancels the GTT before it sends its own exit
  (protection_yield_to_oms): a GTT that cannot be deleted because it triggered is adopted
  instead, and the monitor sends nothing. With BROKER the monitor stays out while a
  protection is live, and acts when none is (it failed, or the GTT's order was refused).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from orders.brokers import BrokerError, BrokerRejected, broker_for
from orders.brokers.base import BrokerGtt, GttLeg, GttRequest
from orders.enums import EventSource, OrderSide, OrderStatus, ProtectionMode
from orders.models import Order, Strategy
from orders.money import PAISA
from orders.services.adoption import order_adopt
from orders.services.broker_reports import order_updates_apply
from positions.models import BrokerProtection, Position, ProtectionState

logger = logging.getLogger("oms.positions")

LIMIT_TICK = Decimal("0.05")  # a multiple of every segment's tick
ENDED_AT_BROKER = ("deleted", "cancelled", "expired", "disabled", "rejected")
ACTOR = "broker-held protection"
ACTIVE_ORDERS = sorted(OrderStatus.active())


@dataclass(frozen=True)
class Terms:
    quantity: int
    stop_loss: Decimal | None
    take_profit: Decimal | None


def protection_terms(position: Position, mode: str) -> Terms | None:
    """What the broker should hold for ``position`` under the strategy's ``mode``; None when
    nothing (pure)."""
    if mode == ProtectionMode.OMS or not position.is_open:
        return None
    if position.stop_loss is None and position.take_profit is None:
        return None
    return Terms(abs(position.quantity), position.stop_loss, position.take_profit)


def held_terms(protection: BrokerProtection) -> Terms:
    return Terms(protection.quantity, protection.stop_loss, protection.take_profit)


def gtt_request(position: Position, terms: Terms) -> GttRequest:
    """The GTT for these terms (pure): triggers ascending, one LIMIT leg per trigger."""
    side = OrderSide.SELL if position.quantity > 0 else OrderSide.BUY
    tolerance = settings.OMS_GTT_LIMIT_TOLERANCE_PERCENT / 100
    levels = []
    terms = Terms(
        terms.quantity,
        terms.stop_loss and terms.stop_loss.quantize(PAISA),
        terms.take_profit and terms.take_profit.quantize(PAISA),
    )
    if terms.stop_loss is not None:
        if side == OrderSide.SELL:
            limit = _to_tick(terms.stop_loss * (1 - tolerance), ROUND_FLOOR)
        else:
            limit = _to_tick(terms.stop_loss * (1 + tolerance), ROUND_CEILING)
        levels.append((terms.stop_loss, limit))
    if terms.take_profit is not None:
        levels.append((terms.take_profit, terms.take_profit))
    levels.sort()
    last_price = position.last_price or position.average_price
    return GttRequest(
        symbol=position.symbol,
        exchange=position.exchange,
        product=position.product,
        trigger_values=tuple(trigger for trigger, _ in levels),
        last_price=last_price.quantize(PAISA),
        legs=tuple(GttLeg(side=side, quantity=terms.quantity, price=limit) for _, limit in levels),
    )


def _to_tick(price: Decimal, rounding: str) -> Decimal:
    ticks = (price / LIMIT_TICK).to_integral_value(rounding=rounding)
    return max(ticks * LIMIT_TICK, LIMIT_TICK).quantize(PAISA)


# --- placing, amending, cancelling ---------------------------------------------------------------


def protections_sync(*, strategy_id: int | None = None) -> list[BrokerProtection]:
    """Bring every broker-held protection (of one strategy, or all) in line with its position:
    positions that want one and have none, and live protections (their position may have
    changed or closed). One protection_sync per position; a broker failure of one is logged
    and left for the next run (the row says where it stands)."""
    wanting = Position.objects.filter(closed_at__isnull=True).exclude(
        strategy__protection_mode=ProtectionMode.OMS
    )
    held = BrokerProtection.objects.filter(state__in=ProtectionState.live())
    if strategy_id is not None:
        wanting, held = (
            wanting.filter(strategy_id=strategy_id),
            held.filter(strategy_id=strategy_id),
        )
    position_ids = sorted(
        set(wanting.values_list("pk", flat=True)) | set(held.values_list("position_id", flat=True))
    )
    results = []
    for position_id in position_ids:
        try:
            protection = protection_sync(position_id)
        except BrokerError as error:
            logger.warning("position %s: protection not synced: %s", position_id, error)
            continue
        if protection is not None:
            results.append(protection)
    return results


def protection_sync(position_id: int) -> BrokerProtection | None:
    """Place, amend or cancel one position's GTT so the broker holds what the position wants.

    Guarantees: the intent is written under the position's lock before the broker is called
    with no lock held, and the answer recorded after (see the module). A broker refusal ends
    the protection FAILED with the broker's message (the OMS monitor acts instead; the same
    terms are not asked again, the next change of the position's quantity or levels is); a
    BrokerUnavailable or BrokerTimeout is raised with the row left as it was, for the job to
    run again. Returns the protection (None: the position wants none and has none)."""
    with transaction.atomic():
        position = Position.objects.select_related("strategy").select_for_update(of=("self",))
        position = position.get(pk=position_id)
        protection = (
            BrokerProtection.objects.select_for_update()
            .filter(position=position, state__in=ProtectionState.live())
            .first()
        )
        wanted = protection_terms(position, position.strategy.protection_mode)
        if Order.objects.filter(closes_position=position, status__in=ACTIVE_ORDERS).exists():
            wanted = None  # an exit works on it: no GTT to race it
        if protection is None:
            if wanted is None:
                return None
            latest = BrokerProtection.objects.filter(position=position).order_by("-pk").first()
            refused = latest is not None and latest.state == ProtectionState.FAILED
            if refused and held_terms(latest) == wanted:
                return latest  # refused as it is: tried again when the position changes
            protection = BrokerProtection.objects.create(
                position=position,
                strategy=position.strategy,
                broker=_broker_name(position.strategy),
                quantity=wanted.quantity,
                stop_loss=wanted.stop_loss,
                take_profit=wanted.take_profit,
            )
        elif wanted is None:
            protection.state = ProtectionState.CANCELLING
        elif protection.state in (ProtectionState.ACTIVE, ProtectionState.AMENDING):
            if held_terms(protection) == wanted and protection.state == ProtectionState.ACTIVE:
                return protection
            protection.state = ProtectionState.AMENDING
        if wanted is not None and protection.state != ProtectionState.CANCELLING:
            protection.quantity = wanted.quantity
            protection.stop_loss, protection.take_profit = wanted.stop_loss, wanted.take_profit
        protection.attempts += 1
        protection.save()
    broker = broker_for(position.strategy)
    if protection.state == ProtectionState.PLACING:
        return _place(protection, position, broker)
    if protection.state == ProtectionState.AMENDING:
        return _amend(protection, position, broker)
    return _cancel(protection, broker)


def _place(protection: BrokerProtection, position: Position, broker) -> BrokerProtection:
    request = gtt_request(position, held_terms(protection))
    trigger_id = ""
    if protection.attempts > 1:  # an earlier run may have placed it and died before recording
        trigger_id = _placed_before(protection, request, broker)
    if not trigger_id:
        try:
            trigger_id = broker.place_gtt(request)
        except BrokerRejected as error:
            return _end(protection, ProtectionState.FAILED, error=str(error))
    return _record(protection, state=ProtectionState.ACTIVE, trigger_id=trigger_id)


def _placed_before(protection: BrokerProtection, request: GttRequest, broker) -> str:
    claimed = set(
        BrokerProtection.objects.filter(broker=protection.broker)
        .exclude(pk=protection.pk)
        .values_list("trigger_id", flat=True)
    )
    for gtt in broker.gtts():
        if (
            gtt.status == "active"
            and gtt.trigger_id not in claimed
            and (gtt.symbol, gtt.exchange) == (request.symbol, request.exchange)
            and gtt.trigger_values == request.trigger_values
            and gtt.quantity == request.legs[0].quantity
        ):
            logger.warning(
                "protection %s: adopting GTT %s placed by an earlier run",
                protection.pk,
                gtt.trigger_id,
            )
            return gtt.trigger_id
    return ""


def _amend(protection: BrokerProtection, position: Position, broker) -> BrokerProtection:
    try:
        broker.modify_gtt(protection.trigger_id, gtt_request(position, held_terms(protection)))
    except BrokerRejected as error:
        return _after_refusal(protection, broker, error)
    return _record(protection, state=ProtectionState.ACTIVE)


def _cancel(protection: BrokerProtection, broker) -> BrokerProtection:
    if not protection.trigger_id:  # never placed: nothing at the broker
        return _end(protection, ProtectionState.CANCELLED)
    try:
        broker.delete_gtt(protection.trigger_id)
    except BrokerRejected as error:
        return _after_refusal(protection, broker, error)
    return _end(protection, ProtectionState.CANCELLED)


def _after_refusal(protection: BrokerProtection, broker, error: BrokerRejected) -> BrokerProtection:
    """The broker refused to change or delete the GTT: most often because it triggered."""
    gtt = next((g for g in broker.gtts() if g.trigger_id == protection.trigger_id), None)
    if gtt is not None and gtt.status == "triggered":
        return protection_triggered(protection, gtt, broker)
    if protection.state == ProtectionState.CANCELLING:
        return _end(protection, ProtectionState.CANCELLED, error=str(error))
    return _end(protection, ProtectionState.FAILED, error=str(error))


def _record(
    protection: BrokerProtection, *, state: str, trigger_id: str | None = None
) -> BrokerProtection:
    with transaction.atomic():
        locked = BrokerProtection.objects.select_for_update().get(pk=protection.pk)
        if locked.state not in ProtectionState.live():
            return locked  # ended meanwhile (it triggered, seen by a poll)
        locked.state = state
        locked.last_error = ""
        if trigger_id is not None:
            locked.trigger_id = trigger_id
        locked.save()
    logger.info(
        "protection %s of position %s: %s (GTT %s)",
        locked.pk,
        locked.position_id,
        state,
        locked.trigger_id,
    )
    return locked


def _end(protection: BrokerProtection, state: str, *, error: str = "") -> BrokerProtection:
    with transaction.atomic():
        locked = BrokerProtection.objects.select_for_update().get(pk=protection.pk)
        if locked.state not in ProtectionState.live():
            return locked
        locked.state, locked.last_error, locked.ended_at = state, error, timezone.now()
        locked.save()
    log = logger.error if state == ProtectionState.FAILED else logger.info
    log("protection %s of position %s: %s %s", locked.pk, locked.position_id, state, error)
    return locked


def _broker_name(strategy: Strategy) -> str:
    return "kite" if strategy.is_live else "paper"


# --- a GTT that triggered ------------------------------------------------------------------------


def protections_poll(*, strategy_id: int | None = None, live: bool | None = None) -> list:
    """Read the broker's GTTs for every live protection with a trigger id (of one strategy, or
    all; ``live`` False: the paper ones only): a triggered GTT's order is adopted and booked
    (protection_triggered); a GTT the broker ended otherwise (deleted, expired...) ends its
    protection (CANCELLED when we were cancelling it, FAILED otherwise: the OMS monitor acts).
    Returns the protections that changed."""
    held = BrokerProtection.objects.filter(state__in=ProtectionState.live()).exclude(trigger_id="")
    if strategy_id is not None:
        held = held.filter(strategy_id=strategy_id)
    if live is not None:
        held = held.filter(broker="kite" if live else "paper")
    changed = []
    by_strategy: dict[int, list[BrokerProtection]] = {}
    for protection in held.order_by("pk"):
        by_strategy.setdefault(protection.strategy_id, []).append(protection)
    for strategy_id_, protections in by_strategy.items():
        broker = broker_for(Strategy.objects.get(pk=strategy_id_))
        try:
            gtts = {gtt.trigger_id: gtt for gtt in broker.gtts()}
        except BrokerError as error:
            logger.warning("strategy %s: GTTs not read: %s", strategy_id_, error)
            continue
        for protection in protections:
            gtt = gtts.get(protection.trigger_id)
            if gtt is not None and gtt.status == "triggered":
                changed.append(protection_triggered(protection, gtt, broker))
            elif gtt is None or gtt.status in ENDED_AT_BROKER:
                ended = (
                    ProtectionState.CANCELLED
                    if protection.state == ProtectionState.CANCELLING
                    else ProtectionState.FAILED
                )
                status = gtt.status if gtt else "not listed"
                changed.append(
                    _end(
                        protection,
                        ended,
                        error=f"GTT {protection.trigger_id} is {status} at the broker",
                    )
                )
    return changed


def protection_triggered(protection: BrokerProtection, gtt: BrokerGtt, broker) -> BrokerProtection:
    """The GTT triggered at the broker: adopt the order it placed as the position's exit and
    apply the broker's report of it (its fills booked once). A leg the broker failed to place
    ends the protection TRIGGERED with its rejection: the position stays open and the OMS
    monitor is the line left."""
    leg = gtt.triggered_leg
    if leg is None or not leg.order_id:
        reason = leg.rejection if leg else "no leg triggered"
        return _end(protection, ProtectionState.TRIGGERED, error=f"GTT order not placed: {reason}")
    report = broker.order_status(Order(broker_order_id=leg.order_id, broker_tag=""))
    with transaction.atomic():
        position = Position.objects.select_for_update().get(pk=protection.position_id)
        locked = BrokerProtection.objects.select_for_update().get(pk=protection.pk)
        if locked.exit_order_id is None:
            working_exit = Order.objects.filter(
                closes_position=position, status__in=ACTIVE_ORDERS
            ).exists()
            if working_exit:
                logger.error(
                    "position %s: GTT %s triggered while an OMS exit works: both executed at "
                    "the broker; the GTT's order is booked as an order of its own",
                    position.pk,
                    gtt.trigger_id,
                )
            order = order_adopt(
                strategy_id=locked.strategy_id,
                client_order_id=f"gtt-{locked.broker}-{gtt.trigger_id}",
                broker_order_id=leg.order_id,
                symbol=gtt.symbol or position.symbol,
                exchange=gtt.exchange or position.exchange,
                product=position.product,
                side=leg.side,
                quantity=leg.quantity,
                price=leg.price,
                reason=f"placed at the broker by GTT {gtt.trigger_id} (position {position.pk})",
                actor=ACTOR,
                closes_position=None if working_exit else position,
                exit_key="" if working_exit else f"gtt-{position.pk}-{gtt.trigger_id}",
                metadata={"gtt": gtt.trigger_id, "protection": locked.pk},
            )
            locked.exit_order = order
            if not working_exit and position.exit_order_id is None:
                position.exit_order = order
                position.save(update_fields=["exit_order", "updated_at"])
        if locked.state in ProtectionState.live():
            locked.state, locked.ended_at = ProtectionState.TRIGGERED, timezone.now()
        locked.save()
    if report is not None:
        order_updates_apply([report], source=EventSource.BROKER)
    logger.info(
        "protection %s: GTT %s triggered; order %s adopted",
        locked.pk,
        gtt.trigger_id,
        locked.exit_order_id,
    )
    return locked


# --- the OMS monitor and the broker's GTT, with BOTH -------------------------------------------


def protection_yield_to_oms(position: Position) -> bool:
    """Whether the OMS monitor may send its own stop-loss / take-profit exit for ``position``.

    OMS-only strategies, and positions with no live protection: yes. BROKER: no while a
    protection is live (the broker holds the stop). BOTH: the GTT is deleted first (no double
    exit): yes once it is; no when it triggered (its order is adopted instead) or the broker
    cannot be reached (the next tick tries again)."""
    mode = position.strategy.protection_mode
    if mode == ProtectionMode.BROKER:
        return not _live(position).exists()
    return protection_cancel_before_exit(position, when_unreachable=False)


def protection_cancel_before_exit(position: Position, *, when_unreachable: bool = True) -> bool:
    """Delete a position's live GTT before an exit of the OMS (the monitor with BOTH, a
    flatten, the MIS square-off) is sent; whether that exit may go.

    No live protection: yes. Deleted: yes. The GTT triggered (the broker refused the delete
    and lists it triggered): no, its order is adopted as the exit. The broker cannot be
    reached: ``when_unreachable`` (a person's flatten and the square-off go anyway; the
    protection's job deletes the GTT after, and a GTT that fired meanwhile is booked as an
    order of its own, logged as such)."""
    protection = _live(position).first()
    if protection is None:
        return True
    with transaction.atomic():
        locked = BrokerProtection.objects.select_for_update().get(pk=protection.pk)
        if locked.state not in ProtectionState.live():
            return locked.state != ProtectionState.TRIGGERED
        locked.state = ProtectionState.CANCELLING
        locked.save()
    try:
        ended = _cancel(locked, broker_for(position.strategy))
    except BrokerError as error:
        logger.warning(
            "position %s: GTT %s not deleted before the OMS exit: %s",
            position.pk,
            locked.trigger_id,
            error,
        )
        return when_unreachable
    return ended.state == ProtectionState.CANCELLED


def _live(position: Position):
    return BrokerProtection.objects.filter(position=position, state__in=ProtectionState.live())
