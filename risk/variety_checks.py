"""The pre-trade checks particular to a variety (called by risk.validator).

An iceberg's legs, not its whole quantity, are what the exchange sees: each leg within the
freeze quantity and a whole number of lots. An AMO is checked in two halves: what can be known
now (the request itself, the instrument, the strategy's limits on quantity and value, open
orders, exposure, the kill switch, the AMO window) and what only the next session can say (the
price band and the stop's side against its prices, and its market hours): the latter are left
to the exchange at the open, and the order says so (``checks`` in its metadata).
"""

from __future__ import annotations

from orders.domain import OrderRequest, Violation
from orders.enums import Variety

AMO_CHECKED_NOW = (
    "request",
    "strategy_state",
    "kill_switch",
    "broker_session",
    "instrument",
    "size",
    "value_unknown",
    "open_orders",
    "exposure",
    "daily_loss",
    "amo_window",
)
AMO_CHECKED_AT_OPEN = ("price_band", "trigger_side", "price_stale", "market_hours")


def variety_checks(request: OrderRequest) -> dict[str, list[str]] | None:
    """Which checks ran now and which are the next session's (an AMO's), else None."""
    if request.variety != Variety.AMO:
        return None
    return {"now": list(AMO_CHECKED_NOW), "at_open": list(AMO_CHECKED_AT_OPEN)}


def iceberg_leg_violations(request: OrderRequest, instrument) -> list[Violation]:
    """An iceberg's leg quantity against the instrument's freeze quantity and lot size."""
    if request.variety != Variety.ICEBERG or request.iceberg_quantity is None:
        return []
    found = []
    leg = request.iceberg_quantity
    if instrument.freeze_quantity and leg > instrument.freeze_quantity:
        found.append(
            Violation(
                "freeze_quantity",
                "iceberg_quantity",
                f"iceberg_quantity {leg}: above the freeze quantity "
                f"{instrument.freeze_quantity} for one leg",
            )
        )
    if leg % instrument.lot_size:
        found.append(
            Violation(
                "lot_size",
                "iceberg_quantity",
                f"iceberg_quantity {leg}: must be a multiple of the lot size {instrument.lot_size}",
            )
        )
    return found
