"""A strategy changes broker (PAPER ⇄ LIVE) only when flat: orders.services.strategy_mode_set."""

from __future__ import annotations

import pytest
from django.utils import timezone

from orders.enums import OrderStatus, StrategyMode
from orders.services import OrderError, strategy_mode_refusal, strategy_mode_set
from orders.tests.factories import OrderFactory, StrategyFactory
from positions.tests.factories import PositionFactory

pytestmark = pytest.mark.django_db


def test_a_flat_strategy_switches():
    strategy = StrategyFactory(mode=StrategyMode.PAPER)
    OrderFactory(strategy=strategy, status=OrderStatus.CANCELLED)
    now = timezone.now()
    PositionFactory(strategy=strategy, quantity=0, opened_at=now, closed_at=now)

    assert strategy_mode_set(strategy, mode="LIVE", actor="rita").mode == StrategyMode.LIVE
    strategy.refresh_from_db()
    assert strategy.mode == StrategyMode.LIVE


def test_working_orders_or_open_positions_refuse_it():
    busy = StrategyFactory()
    OrderFactory(strategy=busy, status=OrderStatus.TRIGGER_PENDING)
    holding = StrategyFactory()
    PositionFactory(strategy=holding)

    with pytest.raises(OrderError, match="1 working order"):
        strategy_mode_set(busy, mode="LIVE", actor="rita")
    assert "1 open position" in strategy_mode_refusal(holding, mode="LIVE")
    for strategy in (busy, holding):
        strategy.refresh_from_db()
        assert strategy.mode == StrategyMode.PAPER


def test_the_same_mode_is_a_no_op():
    strategy = StrategyFactory()
    OrderFactory(strategy=strategy, status=OrderStatus.OPEN)

    assert strategy_mode_refusal(strategy, mode="PAPER") is None
    assert strategy_mode_set(strategy, mode="PAPER", actor="rita").mode == StrategyMode.PAPER
