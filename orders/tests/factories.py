"""Factories for the orders app, and helpers that write rows with raw SQL.

The raw helpers go around the ORM on purpose: they are how tests prove that the database itself
refuses a bad row (constraints) or fills one in (triggers), whatever the Python code does.
"""

from __future__ import annotations

import itertools
from decimal import Decimal
from typing import Any

import factory
from django.db import IntegrityError, connection
from django.utils import timezone

from orders.enums import (
    EventSource,
    Exchange,
    OrderSide,
    OrderStatus,
    OrderType,
    Product,
    StrategyMode,
    StrategyStatus,
    Validity,
)
from orders.models import Order, OrderEvent, Strategy, Trade


class StrategyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Strategy

    name = factory.Sequence(lambda n: f"Strategy {n}")
    description = "A test strategy"
    status = StrategyStatus.ACTIVE
    mode = StrategyMode.PAPER
    config = factory.LazyFunction(dict)


class OrderFactory(factory.django.DjangoModelFactory):
    """A valid LIMIT order, recorded but not yet sent (PENDING)."""

    class Meta:
        model = Order

    strategy = factory.SubFactory(StrategyFactory)
    client_order_id = factory.Sequence(lambda n: f"client-{n}")
    broker_tag = factory.Sequence(lambda n: f"T{n:08d}")
    symbol = "RELIANCE"
    exchange = Exchange.NSE
    side = OrderSide.BUY
    quantity = 10
    order_type = OrderType.LIMIT
    price = Decimal("2450.50")
    product = Product.MIS
    validity = Validity.DAY
    status = OrderStatus.PENDING


class OrderEventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = OrderEvent

    order = factory.SubFactory(OrderFactory)
    from_status = ""
    to_status = OrderStatus.PENDING
    source = EventSource.SYSTEM
    reason = "recorded"


class TradeFactory(factory.django.DjangoModelFactory):
    """A fill of its order; the database computes gross_value, total_charges and net_value."""

    class Meta:
        model = Trade

    order = factory.SubFactory(OrderFactory, status=OrderStatus.OPEN)
    strategy = factory.SelfAttribute("order.strategy")
    trade_id = factory.Sequence(lambda n: f"TRD{n:010d}")
    symbol = factory.SelfAttribute("order.symbol")
    exchange = factory.SelfAttribute("order.exchange")
    product = factory.SelfAttribute("order.product")
    side = factory.SelfAttribute("order.side")
    quantity = 10
    price = Decimal("2450.50")
    executed_at = factory.LazyFunction(timezone.now)


# --- Raw SQL ------------------------------------------------------------------------------------

_raw_sequence = itertools.count(1)


def unique_suffix() -> int:
    return next(_raw_sequence)


def raw_insert(table: str, values: dict[str, Any]) -> int:
    """INSERT one row with exactly these columns; return its id."""
    columns = ", ".join(values)
    placeholders = ", ".join(["%s"] * len(values))
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} ({columns}) VALUES ({placeholders}) RETURNING id",  # noqa: S608
            list(values.values()),
        )
        return cursor.fetchone()[0]


def raw_update(table: str, row_id: int, values: dict[str, Any]) -> None:
    assignments = ", ".join(f"{column} = %s" for column in values)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET {assignments} WHERE id = %s",  # noqa: S608
            [*values.values(), row_id],
        )


def raw_fetch(table: str, row_id: int, *columns: str) -> tuple:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {', '.join(columns)} FROM {table} WHERE id = %s", [row_id])  # noqa: S608
        return cursor.fetchone()


def database_now():
    """The transaction's ``now()``: what triggers and views see as the current time."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT now()")
        return cursor.fetchone()[0]


def violated_constraint(error: IntegrityError) -> str | None:
    """The name of the constraint PostgreSQL reported (None for a NOT NULL violation)."""
    return error.__cause__.diag.constraint_name


def strategy_row(**overrides: Any) -> dict[str, Any]:
    """Every NOT NULL column of ``strategies``: Django keeps defaults in Python, not in SQL."""
    now = timezone.now()
    row = {
        "name": f"Raw strategy {unique_suffix()}",
        "description": "",
        "status": "ACTIVE",
        "mode": "PAPER",
        "config": "{}",
        "total_trades": 0,
        "winning_trades": 0,
        "losing_trades": 0,
        "total_pnl": Decimal("0"),
        "created_at": now,
        "updated_at": now,
    }
    return {**row, **overrides}


def order_row(strategy_id: int, **overrides: Any) -> dict[str, Any]:
    """A valid PENDING LIMIT order, as raw columns."""
    now = timezone.now()
    row = {
        "strategy_id": strategy_id,
        "client_order_id": f"raw-{unique_suffix()}",
        "broker_tag": f"RAW{unique_suffix():08d}",
        "symbol": "INFY",
        "exchange": "NSE",
        "segment": "EQ",
        "side": "BUY",
        "quantity": 10,
        "order_type": "LIMIT",
        "price": Decimal("1500.25"),
        "product": "MIS",
        "validity": "DAY",
        "status": "PENDING",
        "filled_quantity": 0,
        "tag": "",
        "status_message": "",
        "request_fingerprint": "",
        "modification_count": 0,
        "metadata": "{}",
        "created_at": now,
        "updated_at": now,
    }
    return {**row, **overrides}


def order_event_row(order_id: int, **overrides: Any) -> dict[str, Any]:
    row = {
        "order_id": order_id,
        "kind": "TRANSITION",
        "from_status": "",
        "to_status": "SUBMITTED",
        "source": "SYSTEM",
        "reason": "",
        "actor": "",
        "details": "{}",
        "created_at": timezone.now(),
    }
    return {**row, **overrides}


def trade_row(order_id: int, strategy_id: int, **overrides: Any) -> dict[str, Any]:
    """A fill's own columns and its charge components; the trigger computes the totals."""
    now = timezone.now()
    row = {
        "order_id": order_id,
        "strategy_id": strategy_id,
        "trade_id": f"RAW{unique_suffix():010d}",
        "symbol": "INFY",
        "exchange": "NSE",
        "product": "MIS",
        "side": "BUY",
        "quantity": 10,
        "price": Decimal("1500.25"),
        "brokerage": Decimal("20.00"),
        "stt": Decimal("3.75"),
        "exchange_charges": Decimal("0.49"),
        "sebi_charges": Decimal("0.02"),
        "stamp_duty": Decimal("0.45"),
        "gst": Decimal("3.69"),
        "executed_at": now,
        "created_at": now,
    }
    return {**row, **overrides}
