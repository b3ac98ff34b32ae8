"""The order state machine: one explicit table of the status changes that may happen.

A change not in the table is refused (recorded as a REFUSED event and logged), never applied.
Fills may race a cancel: an order in CANCEL_PENDING can still fill, and a fill reported after
the broker said CANCELLED or EXPIRED is real and may complete the order.
"""

from orders.enums import OrderStatus as S

TRANSITIONS: dict[S, frozenset[S]] = {
    S.PENDING: frozenset({S.SUBMITTED, S.REJECTED, S.CANCELLED, S.EXPIRED}),
    S.SUBMITTED: frozenset(
        {
            S.OPEN,
            S.TRIGGER_PENDING,
            S.PARTIALLY_FILLED,
            S.FILLED,
            S.CANCEL_PENDING,
            S.CANCELLED,
            S.REJECTED,
            S.EXPIRED,
            S.UNKNOWN,
        }
    ),
    S.UNKNOWN: frozenset(
        {
            S.OPEN,
            S.TRIGGER_PENDING,
            S.PARTIALLY_FILLED,
            S.FILLED,
            S.CANCEL_PENDING,
            S.CANCELLED,
            S.REJECTED,
            S.EXPIRED,
        }
    ),
    S.OPEN: frozenset(
        {S.PARTIALLY_FILLED, S.FILLED, S.CANCEL_PENDING, S.CANCELLED, S.REJECTED, S.EXPIRED}
    ),
    S.TRIGGER_PENDING: frozenset(
        {S.OPEN, S.PARTIALLY_FILLED, S.FILLED, S.CANCEL_PENDING, S.CANCELLED, S.REJECTED, S.EXPIRED}
    ),
    S.PARTIALLY_FILLED: frozenset({S.FILLED, S.CANCEL_PENDING, S.CANCELLED, S.EXPIRED}),
    # The broker may refuse a cancel (the order goes back to working) or fill it first; and
    # a cancel requested while the order was in flight can meet the broker's rejection of it.
    S.CANCEL_PENDING: frozenset(
        {
            S.OPEN,
            S.TRIGGER_PENDING,
            S.PARTIALLY_FILLED,
            S.FILLED,
            S.CANCELLED,
            S.REJECTED,
            S.EXPIRED,
        }
    ),
    # A late fill report completes an order the broker had already reported as closed.
    S.CANCELLED: frozenset({S.FILLED}),
    S.EXPIRED: frozenset({S.FILLED}),
    S.FILLED: frozenset(),
    S.REJECTED: frozenset(),
}

# Statuses from which a cancel or a modification may be requested.
CANCELLABLE = frozenset(
    {S.PENDING, S.SUBMITTED, S.UNKNOWN, S.OPEN, S.TRIGGER_PENDING, S.PARTIALLY_FILLED}
)
MODIFIABLE = frozenset({S.OPEN, S.TRIGGER_PENDING, S.PARTIALLY_FILLED})
# Statuses in which a broker fill may be applied.
FILLABLE = frozenset(
    {
        S.SUBMITTED,
        S.UNKNOWN,
        S.OPEN,
        S.TRIGGER_PENDING,
        S.PARTIALLY_FILLED,
        S.CANCEL_PENDING,
        S.CANCELLED,
        S.EXPIRED,
    }
)
# Where the status goes after a fill that does not complete the order.
AFTER_PARTIAL_FILL = {
    S.SUBMITTED: S.PARTIALLY_FILLED,
    S.UNKNOWN: S.PARTIALLY_FILLED,
    S.OPEN: S.PARTIALLY_FILLED,
    S.TRIGGER_PENDING: S.PARTIALLY_FILLED,
}
# The timestamp column each status stamps when entered.
STAMPS = {
    S.SUBMITTED: "submitted_at",
    S.OPEN: "acknowledged_at",
    S.TRIGGER_PENDING: "acknowledged_at",
    S.FILLED: "filled_at",
    S.CANCEL_PENDING: "cancel_requested_at",
    S.CANCELLED: "cancelled_at",
    S.REJECTED: "rejected_at",
    S.EXPIRED: "expired_at",
}


def can_transition(current: S, target: S) -> bool:
    return target in TRANSITIONS[S(current)]
