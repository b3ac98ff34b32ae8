"""Risk monitors, reactions run by periodic jobs (and by operators' commands): market prices
driving the paper exchange, marks and exits; MIS square-off; stop-loss / take-profit exits;
PnL snapshots and the automatic kill switch rules. They call the writes below them (the order
services, position closing through positions.exits), never the other way round."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, time
from decimal import Decimal

from django.conf import settings

from orders.brokers.paper import PaperBroker
from orders.enums import EventSource, OrderStatus, Product, StrategyMode
from orders.selectors import orders_cancellable
from orders.services import IllegalOrderState, order_cancel, order_updates_apply
from positions.exits import ExitKind, position_close, positions_check_exits
from positions.models import Position
from positions.protection import protection_cancel_before_exit, protections_poll
from positions.services import market_prices_update, positions_mark, strategy_prices_update
from risk import calendar
from risk.kill_switch import risk_auto_triggers
from risk.models import KillSwitchState
from risk.selectors import kill_switch_state
from risk.services import pnl_snapshot_take

logger = logging.getLogger("oms.risk")


@dataclass
class SquareOffPlan:
    orders_to_cancel: list = field(default_factory=list)
    positions_to_close: list = field(default_factory=list)
    held: list = field(default_factory=list)  # positions of HALTED strategies, left open
    exits: list = field(default_factory=list)  # what position_close did for each position

    @property
    def failed(self) -> list:
        return [result for result in self.exits if result.failed]


def square_off_plan() -> SquareOffPlan:
    """The working MIS orders that open or add (exits are left to work), and the open MIS
    positions that no exit is closing already — those of HALTED strategies apart, held."""
    orders = orders_cancellable(strategy=None).filter(product=Product.MIS)
    positions = (
        Position.objects.filter(product=Product.MIS, closed_at__isnull=True)
        .exclude(exit_orders__status__in=sorted(OrderStatus.active()))
        .select_related("strategy")
        .order_by("pk")
    )
    plan = SquareOffPlan(
        # Cancelling an exit would undo the close, or race its fill.
        orders_to_cancel=list(orders.filter(closes_position__isnull=True).order_by("pk"))
    )
    for position in positions:
        halted = kill_switch_state(strategy=position.strategy) == KillSwitchState.HALTED
        (plan.held if halted else plan.positions_to_close).append(position)
    return plan


def square_off_mis(*, dry_run: bool = False, actor: str = "rule:mis-square-off") -> SquareOffPlan:
    """Cancel open MIS orders and close open MIS positions through position_close (the one
    owner of exits). Safe to run every minute: cancelled orders and positions with a working
    exit are not in the next plan, and position_close never adds a second exit. An exit that
    died (rejected by the broker or a check, cancelled, part filled) is followed by the
    position's next exit at the next run: an MIS position must not outlive the day. Positions
    of HALTED strategies are held (no order passes a HALT) and listed in ``plan.held``;
    ``plan.failed`` lists the exits that failed."""
    plan = square_off_plan()
    if dry_run:
        return plan
    for order in plan.orders_to_cancel:
        try:
            order_cancel(order.pk, actor=actor, source=EventSource.SYSTEM, reason="MIS square-off")
        except IllegalOrderState:
            continue
    plan.exits = [
        position_close(position, kind=ExitKind.SQUARE_OFF, actor=actor, reason="MIS square-off")
        for position in plan.positions_to_close
        if protection_cancel_before_exit(position)  # its GTT deleted first, or it fired
    ]
    logger.warning(
        "MIS square-off: %s orders cancelled, %s positions closing, %s failed, %s held by HALT",
        len(plan.orders_to_cancel),
        len(plan.positions_to_close),
        len(plan.failed),
        len(plan.held),
    )
    return plan


def square_off_due(now: datetime | None = None) -> bool:
    """On a trading day, from the square-off time until the close."""
    now = calendar.ist(now)
    start = time.fromisoformat(settings.OMS_MIS_SQUARE_OFF)
    return calendar.is_trading_day(now.date()) and start <= now.time() < calendar.MARKET_CLOSE


def risk_monitor(*, now: datetime | None = None) -> None:
    """One pass of every risk monitor (the periodic job calls this each minute)."""
    positions_check_exits()
    pnl_snapshot_take(now=now)
    risk_auto_triggers(now=now)
    if square_off_due(now):
        square_off_mis()


def market_tick(prices: list[tuple[str, str, Decimal]], *, strategy=None) -> None:
    """A batch of last prices: store them, let the paper exchange match its working orders,
    mark positions to market, and close positions whose stop-loss or take-profit was crossed.

    Without ``strategy``: shared market prices (market data, staff, commands), stored in
    market_prices; they move every book that sees the shared price (LIVE strategies, and
    PAPER ones with no price of their own for the instrument). With ``strategy`` (a PAPER
    strategy's own feed, through the API): stored as that strategy's own prices, and only its
    paper orders, positions and exits are touched: one strategy's prices never move another's
    book, nor a LIVE one's. A strategy no longer PAPER when the job runs moves nothing.
    """
    if strategy is None:
        market_prices_update(prices)
    elif strategy.mode != StrategyMode.PAPER:
        logger.warning(
            "prices posted by strategy %s ignored: it is %s now, and only PAPER strategies "
            "trade on their own prices",
            strategy.name,
            strategy.mode,
        )
        return
    else:
        strategy_prices_update(prices, strategy=strategy)
    for symbol, exchange, price in prices:
        order_updates_apply(
            PaperBroker.on_price(symbol.upper(), exchange.upper(), price, strategy=strategy),
            source=EventSource.BROKER,
        )
    # A paper GTT the prices triggered: its order adopted and booked now, not at the next poll.
    protections_poll(strategy_id=strategy.pk if strategy else None, live=False)
    positions_mark(prices, strategy=strategy)
    positions_check_exits(strategy=strategy)


def market_data_apply(
    prices: list[tuple[str, str, Decimal]], *, rules: bool = True, now: datetime | None = None
) -> None:
    """A batch of prices from market data (the market feed): ``market_tick`` as the shared
    feed — marks of LIVE positions (and of PAPER ones without a price of their own), the paper
    exchange's matching, the stop-loss / take-profit exits — then, with ``rules``, a PnL
    snapshot at these marks and the kill switch's automatic rules (the daily loss limit and
    the drawdown from the peak on live prices, not a minute late)."""
    market_tick(prices)
    if rules:
        pnl_snapshot_take(now=now)
        risk_auto_triggers(now=now)
