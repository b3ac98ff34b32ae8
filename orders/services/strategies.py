"""A strategy's status and mode, changed by staff under the strategy's row lock."""

from __future__ import annotations

import logging

from django.db import transaction

from orders.enums import OrderStatus, StrategyMode, StrategyStatus
from orders.models import Order, Strategy
from orders.services.errors import OrderError
from positions.models import Position
from positions.services import strategy_prices_clear

logger = logging.getLogger("oms.orders")


def strategy_status_set(strategy: Strategy, *, status: StrategyStatus, actor: str) -> Strategy:
    """Change a strategy's status (ACTIVE, PAUSED, INACTIVE, ERROR)."""
    with transaction.atomic():
        locked = Strategy.objects.select_for_update().get(pk=strategy.pk)
        locked.status = status
        locked.save(update_fields=["status", "updated_at"])
    logger.info("strategy %s status %s by %s", locked.name, status, actor)
    return locked


def strategy_mode_refusal(strategy: Strategy, *, mode: str) -> str | None:
    """Why ``strategy`` cannot switch to ``mode`` now (None when it can).

    A strategy changes broker only when it is flat: an open position or a working order
    would otherwise be left at a broker the OMS no longer reconciles it against.
    """
    mode = StrategyMode(mode)
    if mode == strategy.mode:
        return None
    return _not_flat(strategy, f"mode {mode}")


def strategy_account_refusal(strategy: Strategy, *, account_id: int | None) -> str | None:
    """Why ``strategy`` cannot move to another broker account now (None when it can): as for
    the mode, its orders and positions live at the account it trades through."""
    if account_id == strategy.broker_account_id:
        return None
    return _not_flat(strategy, "broker account")


def _not_flat(strategy: Strategy, change: str) -> str | None:
    working = Order.objects.filter(strategy=strategy, status__in=sorted(OrderStatus.active()))
    if working.exists():
        return (
            f"{change}: strategy {strategy.name} has {working.count()} working order(s) at "
            f"its {strategy.mode} broker; cancel them first"
        )
    held = Position.objects.filter(strategy=strategy, closed_at__isnull=True)
    if held.exists():
        return (
            f"{change}: strategy {strategy.name} holds {held.count()} open position(s) at "
            f"its {strategy.mode} broker; close them first"
        )
    return None


def strategy_mode_set(strategy: Strategy, *, mode: str, actor: str) -> Strategy:
    """Switch a strategy between PAPER and LIVE (its broker).

    Guarantees: under the strategy's row lock (every fill and placement takes it first), the
    strategy is flat — no working order, no open position — or OrderError is raised with the
    reason (``strategy_mode_refusal``). The prices it posted for itself as a paper strategy
    are forgotten. Setting the current mode is a no-op. Logged with the actor.
    """
    mode = StrategyMode(mode)
    with transaction.atomic():
        locked = Strategy.objects.select_for_update().get(pk=strategy.pk)
        refusal = strategy_mode_refusal(locked, mode=mode)
        if refusal:
            raise OrderError(refusal, fields={"mode": refusal})
        if locked.mode != mode:
            before = locked.mode
            locked.mode = mode
            locked.save(update_fields=["mode", "updated_at"])
            strategy_prices_clear(strategy=locked)
            logger.warning("strategy %s mode %s -> %s by %s", locked.name, before, mode, actor)
    return locked
