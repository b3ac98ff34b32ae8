"""Every write to orders, their events and their trades goes through these functions.

The API, the admin, the commands, the background jobs and the risk reactions all call them;
none writes an order row itself. One module per family of verbs:

- ``placement``: order_place — the whole placement sequence, top to bottom;
- ``submission``: order_submit, order_resolve_unknown — the broker call, exactly once;
- ``broker_reports``: order_updates_apply, orders_poll, order_update_notified (postbacks and
  the ticker's order updates; order_confirm_request for postbacks) and
  order_confirm_at_broker — what brokers report, refused when it contradicts the order
  (report_contradictions);
- ``pending_modification``: a modification sent to a broker that confirms it by report;
- ``fills``: fill_apply — one execution into the order, position and counters;
  adjustment_fill_record — a position changed by reconciliation, as a fill without an order;
- ``cancellation``: order_cancel, orders_cancel and their broker jobs;
- ``modification``: order_modify and its broker job;
- ``expiry``: orders_expire — DAY orders after the close;
- ``strategies``: a strategy's status and mode;
- ``events``: the order's history and the state machine; ``errors``: what they refuse with.

Locks are always taken in one order — the kill switch's lock, the strategy's row, the
position's, the order's — so two writers can never deadlock; no broker is called while a lock
is held: the intent is committed first, with the broker call deferred as a job in the same
transaction.
"""

from orders.services.broker_reports import (
    PollOutcome,
    order_confirm_at_broker,
    order_confirm_request,
    order_update_notified,
    order_updates_apply,
    orders_poll,
    report_contradictions,
)
from orders.services.cancellation import (
    CANCEL_BATCH,
    order_cancel,
    order_cancel_at_broker,
    orders_cancel,
    orders_cancel_at_broker,
)
from orders.services.errors import (
    FillRefused,
    IdempotencyConflict,
    IllegalOrderState,
    OrderError,
    OrderNotFound,
    OrderRefused,
    OrderThrottled,
    StrategyNotFound,
    StrategyStatusRefused,
    SubmissionInFlight,
)
from orders.services.events import log_context, order_event_record, order_transition
from orders.services.expiry import orders_expire
from orders.services.fills import adjustment_fill_record, fill_apply
from orders.services.modification import (
    MAX_MODIFICATIONS,
    Modification,
    order_modify,
    order_modify_at_broker,
)
from orders.services.placement import order_place
from orders.services.strategies import (
    strategy_account_refusal,
    strategy_mode_refusal,
    strategy_mode_set,
    strategy_settings_set,
    strategy_status_set,
    strategy_steer,
)
from orders.services.submission import order_resolve_unknown, order_submit

__all__ = [
    "CANCEL_BATCH",
    "MAX_MODIFICATIONS",
    "FillRefused",
    "IdempotencyConflict",
    "IllegalOrderState",
    "Modification",
    "OrderError",
    "OrderNotFound",
    "OrderRefused",
    "OrderThrottled",
    "PollOutcome",
    "StrategyNotFound",
    "StrategyStatusRefused",
    "SubmissionInFlight",
    "adjustment_fill_record",
    "fill_apply",
    "log_context",
    "order_cancel",
    "order_cancel_at_broker",
    "order_confirm_at_broker",
    "order_confirm_request",
    "order_event_record",
    "order_modify",
    "order_modify_at_broker",
    "order_place",
    "order_resolve_unknown",
    "order_submit",
    "order_transition",
    "order_update_notified",
    "order_updates_apply",
    "orders_cancel",
    "orders_cancel_at_broker",
    "orders_expire",
    "orders_poll",
    "report_contradictions",
    "strategy_account_refusal",
    "strategy_mode_refusal",
    "strategy_mode_set",
    "strategy_settings_set",
    "strategy_status_set",
    "strategy_steer",
]
