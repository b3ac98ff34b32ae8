"""Risk monitors run by periodic jobs (and by operators' commands): MIS square-off, stop-loss /
take-profit exits, PnL snapshots and the automatic kill switch rules."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.utils import timezone

from orders.enums import EventSource, OrderStatus, Product

logger = logging.getLogger("oms.risk")


@dataclass
class SquareOffPlan:
    orders_to_cancel: list = field(default_factory=list)
    positions_to_close: list = field(default_factory=list)


def square_off_plan() -> SquareOffPlan:
    """The working MIS orders that open or add (closing orders are left to work), and the open
    MIS positions that no working exit order is closing already."""
    from orders.models import Order
    from positions.models import Position

    cancellable = [s for s in OrderStatus.active() if s != OrderStatus.CANCEL_PENDING]
    orders = Order.objects.filter(product=Product.MIS, status__in=cancellable)
    positions = Position.objects.filter(product=Product.MIS, closed_at__isnull=True)
    return SquareOffPlan(
        # position_close marks its orders with the position they close (square-off,
        # stop-loss, flatten): cancelling one would undo the close, or race its fill.
        orders_to_cancel=list(orders.exclude(metadata__has_key="closes").order_by("pk")),
        positions_to_close=list(
            positions.exclude(exit_order__status__in=OrderStatus.active()).order_by("pk")
        ),
    )


def square_off_mis(*, dry_run: bool = False, actor: str = "rule:mis-square-off") -> SquareOffPlan:
    """Cancel open MIS orders and close open MIS positions. Safe to run every minute: cancelled
    orders and closing orders are not in the next plan, a position whose closing order works is
    left to it, and each closing order's client_order_id is derived from the position, the day
    and the attempt, so a run that meets one anyway replays it instead of closing twice. A
    closing order that died (rejected by the broker or a check, cancelled, part filled) is
    followed by the next attempt at the next run: an MIS position must not outlive the day."""
    from orders.models import Order
    from orders.services import IllegalOrderState, order_cancel
    from positions.services import position_close

    plan = square_off_plan()
    if dry_run:
        return plan
    day = timezone.localdate().isoformat()
    for order in plan.orders_to_cancel:
        try:
            order_cancel(order.pk, actor=actor, source=EventSource.SYSTEM, reason="MIS square-off")
        except IllegalOrderState:
            continue
    for position in plan.positions_to_close:
        prefix = f"sqoff-{position.pk}-{day}-"
        attempts = Order.objects.filter(
            strategy_id=position.strategy_id, client_order_id__startswith=prefix
        )
        working = attempts.filter(status__in=OrderStatus.active()).first()
        position_close(
            position,
            actor=actor,
            reason="MIS square-off",
            # The working attempt again (a replay), or the next one after those that died.
            client_order_id=working.client_order_id
            if working is not None
            else f"{prefix}{attempts.count() + 1}",
        )
    logger.warning(
        "MIS square-off: %s orders cancelled, %s positions closing",
        len(plan.orders_to_cancel),
        len(plan.positions_to_close),
    )
    return plan


def square_off_due(now: datetime | None = None) -> bool:
    """On a trading day, from the square-off time until the close."""
    from datetime import time

    from risk import calendar

    now = calendar.ist(now)
    start = time.fromisoformat(settings.OMS_MIS_SQUARE_OFF)
    return calendar.is_trading_day(now.date()) and start <= now.time() < calendar.MARKET_CLOSE


def risk_monitor(*, now: datetime | None = None) -> None:
    """One pass of every risk monitor (the periodic job calls this each minute)."""
    from positions.services import positions_check_exits
    from risk.services import pnl_snapshot_take, risk_auto_triggers

    positions_check_exits()
    pnl_snapshot_take(now=now)
    risk_auto_triggers(now=now)
    if square_off_due(now):
        square_off_mis()
