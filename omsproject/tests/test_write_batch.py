"""WriteBatch: several row writes in one statement, in the order they were added."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.db import DatabaseError, DataError, connection
from django.test.utils import CaptureQueriesContext

from omsproject.write_batch import WriteBatch
from orders.models import OrderEvent, Strategy
from orders.tests.factories import OrderFactory, StrategyFactory
from positions.models import Position

pytestmark = pytest.mark.django_db


def position(strategy, **values) -> Position:
    fields = {"symbol": "INFY", "exchange": "NSE", "product": "MIS", "quantity": 10}
    fields.update({"average_price": Decimal("1500.25"), **values})
    return Position(strategy=strategy, **fields)


def test_inserts_and_updates_go_in_one_statement_and_the_keys_come_back():
    strategy = StrategyFactory()
    order = OrderFactory(strategy=strategy)
    writes = WriteBatch()
    event = OrderEvent(order=order, to_status="PENDING", source="API", details={"a": [1, "x"]})
    writes.insert(event)
    strategy.total_trades = 7
    strategy.total_pnl = Decimal("-12.34")
    writes.update(strategy, ["total_trades", "total_pnl"])

    with CaptureQueriesContext(connection) as queries:
        writes.execute()

    assert len(queries) == 1
    assert event.pk is not None and not event._state.adding
    saved = OrderEvent.objects.get(pk=event.pk)
    assert (saved.details, saved.created_at) == ({"a": [1, "x"]}, event.created_at)
    strategy.refresh_from_db()
    assert (strategy.total_trades, strategy.total_pnl) == (7, Decimal("-12.34"))
    assert len(writes) == 0


def test_values_arrive_exactly():
    strategy = StrategyFactory()
    at = datetime(2026, 3, 2, 9, 15, 1, 123456, tzinfo=UTC)
    row = position(strategy, average_price=Decimal("1234.567891"), opened_at=at)
    writes = WriteBatch()
    writes.insert(row)
    writes.execute()

    saved = Position.objects.get(pk=row.pk)
    assert (saved.average_price, saved.opened_at) == (Decimal("1234.567891"), at)
    assert saved.realized_pnl == Decimal("0.00")


def test_the_writes_happen_in_the_order_added():
    """Closing a position and opening its successor in one statement: the partial unique index
    (one open position per instrument) sees the close first."""
    strategy = StrategyFactory()
    old = position(strategy)
    old.save()
    writes = WriteBatch()
    old.quantity, old.closed_at = 0, datetime.now(UTC)
    writes.update(old, ["quantity", "closed_at", "updated_at"])
    new = position(strategy, quantity=-5)
    writes.insert(new)
    writes.execute()

    assert Position.objects.get(strategy=strategy, closed_at__isnull=True).pk == new.pk


def test_the_database_refuses_as_for_any_insert():
    strategy = StrategyFactory()
    writes = WriteBatch()
    writes.insert(position(strategy, symbol="X" * 51))  # varchar(50)
    with pytest.raises(DataError):
        writes.execute()


def test_an_update_that_finds_no_row_fails():
    strategy = StrategyFactory()
    gone = Strategy(pk=strategy.pk + 1000, name="gone")
    writes = WriteBatch()
    writes.update(gone, ["total_trades"])
    with pytest.raises(DatabaseError, match="the update found no row"):
        writes.execute()
