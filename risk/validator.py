"""The pre-trade validator: every order passes it inside order_place and order_modify.

It returns every violation at once (never stops at the first), each with a stable code, the
field it concerns and a message naming the rule.
"""

from __future__ import annotations

from orders.domain import OrderRequest, Violation
from orders.enums import StrategyStatus
from positions.models import Position
from risk.models import KillSwitchState
from risk.selectors import kill_switch_state


def _reduces_position(request: OrderRequest, *, strategy) -> bool:
    """True when the order only shrinks the strategy's open position in that instrument."""
    position = Position.objects.filter(
        strategy=strategy,
        symbol=request.symbol,
        exchange=request.exchange,
        product=request.product,
        closed_at__isnull=True,
    ).first()
    if position is None or position.quantity == 0:
        return False
    opposite = (position.quantity > 0) != (request.signed_quantity > 0)
    return opposite and request.quantity <= abs(position.quantity)


def validate_order(request: OrderRequest, *, strategy, order=None) -> list[Violation]:
    violations: list[Violation] = []
    if strategy.status in (StrategyStatus.INACTIVE, StrategyStatus.ERROR):
        violations.append(
            Violation(
                "strategy_inactive",
                "strategy",
                f"strategy {strategy.name} is {strategy.status}: it may not trade",
            )
        )
    reduces = None
    if strategy.status == StrategyStatus.PAUSED:
        reduces = _reduces_position(request, strategy=strategy)
        if not reduces:
            violations.append(
                Violation(
                    "strategy_paused",
                    "strategy",
                    f"strategy {strategy.name} is PAUSED: only orders that reduce a position pass",
                )
            )
    state = kill_switch_state(strategy=strategy, lock=True)
    if state == KillSwitchState.HALTED:
        violations.append(
            Violation("kill_switch_halted", "kill_switch", "kill switch is HALTED: no order passes")
        )
    elif state == KillSwitchState.REDUCING:
        if reduces is None:
            reduces = _reduces_position(request, strategy=strategy)
        if not reduces:
            violations.append(
                Violation(
                    "kill_switch_reducing",
                    "kill_switch",
                    "kill switch is REDUCING: only orders that reduce a position pass",
                )
            )
    return violations
