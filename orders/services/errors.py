"""What the order services refuse with: each error has a stable ``code`` for API clients and
``fields`` naming each field and its rule."""

from __future__ import annotations


class OrderError(Exception):
    """A request the OMS refuses; ``code`` is stable for API clients."""

    code = "order_error"

    def __init__(self, message: str, *, fields: dict[str, str] | None = None):
        super().__init__(message)
        self.message = message
        self.fields = fields or {}


class StrategyNotFound(OrderError):
    code = "strategy_not_found"


class OrderNotFound(OrderError):
    code = "order_not_found"


class IdempotencyConflict(OrderError):
    code = "idempotency_conflict"


class IllegalOrderState(OrderError):
    code = "illegal_state"


class StrategyStatusRefused(OrderError):
    """A strategy asked for a status it may not set itself (a staff pause, INACTIVE, ERROR)."""

    code = "strategy_status_refused"


class FillRefused(OrderError):
    code = "fill_refused"


class OrderRefused(OrderError):
    """A modification the pre-trade checks refuse; ``violations`` lists every one."""

    code = "risk_rejected"

    def __init__(self, violations):
        self.violations = tuple(violations)
        super().__init__(
            "; ".join(v.message for v in self.violations),
            fields={v.field: v.message for v in self.violations},
        )


class OrderThrottled(OrderError):
    """Over the strategy's order rate: nothing was recorded; retry after ``retry_after`` s."""

    code = "order_rate"

    def __init__(self, message: str, *, retry_after: float):
        super().__init__(message, fields={"strategy": message})
        self.retry_after = retry_after

    @classmethod
    def over_rate(cls, strategy, *, rate: int, wait: float) -> OrderThrottled:
        return cls(
            f"more than {rate} orders a second from strategy {strategy.name}: retry in {wait:.2f}s",
            retry_after=wait,
        )


class SubmissionInFlight(Exception):
    """Another attempt is sending this order to the broker right now; try again later."""
