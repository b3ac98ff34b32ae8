"""Kite's order varieties beyond "regular": the rules an iceberg's legs follow, and the slices a
quantity above the freeze quantity is cut into (pure: no database).

Kite's iceberg (variety ``iceberg``): ``iceberg_legs`` from 2 to 50, ``iceberg_quantity`` the
size of each leg, quantity / legs rounded up (the last leg takes what is left, so every leg has
some); LIMIT or SL orders only, DAY validity; each leg within the freeze quantity (checked by
risk.validator against the instrument). Kite places the first leg, and the next when it fills.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from django.db import models
from django.db.models import F, Q

from orders.enums import OrderStatus, OrderType, Validity, Variety

AVERAGE_PLACES = Decimal("0.000001")  # as orders.average_price

ICEBERG_MIN_LEGS = 2
ICEBERG_MAX_LEGS = 50
ICEBERG_ORDER_TYPES = (OrderType.LIMIT, OrderType.SL)


def iceberg_errors(
    *,
    variety: str,
    quantity: int,
    order_type: str,
    validity: str,
    legs: int | None,
    leg_quantity: int | None,
) -> dict[str, str]:
    """Every field of an order that breaks the iceberg rules, each naming the rule."""
    errors: dict[str, str] = {}
    if variety != Variety.ICEBERG:
        if legs is not None:
            errors["iceberg_legs"] = f"iceberg_legs {legs}: only for variety iceberg"
        if leg_quantity is not None:
            errors["iceberg_quantity"] = (
                f"iceberg_quantity {leg_quantity}: only for variety iceberg"
            )
        return errors
    if order_type not in ICEBERG_ORDER_TYPES:
        errors["order_type"] = f"order_type {order_type}: an iceberg order is LIMIT or SL"
    if validity != Validity.DAY:
        errors["validity"] = f"validity {validity}: an iceberg order is DAY"
    if legs is None:
        errors["iceberg_legs"] = "iceberg_legs missing: an iceberg order needs 2 to 50 legs"
    elif not ICEBERG_MIN_LEGS <= legs <= ICEBERG_MAX_LEGS:
        errors["iceberg_legs"] = (
            f"iceberg_legs {legs}: must be from {ICEBERG_MIN_LEGS} to {ICEBERG_MAX_LEGS}"
        )
    if leg_quantity is None:
        errors["iceberg_quantity"] = "iceberg_quantity missing: an iceberg order needs it"
    elif "iceberg_legs" not in errors:
        smallest = math.ceil(quantity / legs)
        if leg_quantity < smallest:
            errors["iceberg_quantity"] = (
                f"iceberg_quantity {leg_quantity}: at least quantity / legs = {smallest}"
            )
        elif leg_quantity * (legs - 1) >= quantity:
            errors["iceberg_quantity"] = (
                f"iceberg_quantity {leg_quantity}: {legs} legs of it leave the last one empty "
                f"(quantity {quantity}); use {smallest}"
            )
    return errors


def iceberg_leg_quantities(quantity: int, legs: int, leg_quantity: int) -> list[int]:
    """The legs as the exchange works them: ``leg_quantity`` each, the last the rest."""
    full = [leg_quantity] * (legs - 1)
    return [*full, quantity - sum(full)]


def variety_constraints() -> list[models.CheckConstraint]:
    """The database's half of the rules above (orders.Order's Meta)."""
    return [
        models.CheckConstraint(condition=Q(variety__in=Variety.values), name="order_variety_valid"),
        models.CheckConstraint(
            condition=Q(
                variety=Variety.ICEBERG,
                order_type__in=ICEBERG_ORDER_TYPES,
                validity=Validity.DAY,
                iceberg_legs__gte=ICEBERG_MIN_LEGS,
                iceberg_legs__lte=ICEBERG_MAX_LEGS,
                iceberg_quantity__gte=1,
                quantity__lte=F("iceberg_quantity") * F("iceberg_legs"),
                quantity__gt=F("iceberg_quantity") * (F("iceberg_legs") - 1),
            )
            | ~Q(variety=Variety.ICEBERG)
            & Q(iceberg_legs__isnull=True, iceberg_quantity__isnull=True),
            name="order_iceberg_legs_valid",
        ),
    ]


def freeze_slices(quantity: int, freeze_quantity: int, lot_size: int = 1) -> list[int]:
    """``quantity`` cut into orders within the freeze quantity, each a whole number of lots,
    the largest first: 3,900 NIFTY futures (lot 65, freeze 1,800) are 1,755 + 1,755 + 390."""
    largest = freeze_quantity - freeze_quantity % lot_size if lot_size <= freeze_quantity else 1
    slices = [largest] * (quantity // largest)
    if quantity % largest:
        slices.append(quantity % largest)
    return slices


@dataclass(frozen=True)
class ParentState:
    """A sliced parent as its children make it: never stored, derived when read."""

    status: OrderStatus
    filled_quantity: int
    average_price: Decimal | None


def parent_state(quantity: int, children) -> ParentState:
    """The parent's status, filled quantity and average price from its children (objects with
    ``status``, ``filled_quantity`` and ``average_price``).

    Working while any child works (PARTIALLY_FILLED once something filled, OPEN once a child
    is at the broker, else PENDING); when all are done, FILLED if everything filled, REJECTED
    if every child was rejected, else CANCELLED (or EXPIRED) with whatever filled kept.
    """
    filled = sum(child.filled_quantity for child in children)
    value = sum(
        (
            child.average_price * child.filled_quantity
            for child in children
            if child.filled_quantity
        ),
        Decimal(0),
    )
    average = (value / filled).quantize(AVERAGE_PLACES, rounding=ROUND_HALF_UP) if filled else None
    statuses = {child.status for child in children}
    working = statuses & OrderStatus.active()
    if working:
        if filled:
            status = OrderStatus.PARTIALLY_FILLED
        elif working - {OrderStatus.PENDING, OrderStatus.SUBMITTED, OrderStatus.UNKNOWN}:
            status = OrderStatus.OPEN
        else:
            status = OrderStatus.PENDING
    elif filled == quantity:
        status = OrderStatus.FILLED
    elif statuses == {OrderStatus.REJECTED}:
        status = OrderStatus.REJECTED
    elif statuses <= {OrderStatus.EXPIRED, OrderStatus.FILLED}:
        status = OrderStatus.EXPIRED
    else:
        status = OrderStatus.CANCELLED
    return ParentState(status, filled, average)
