"""The orders app's tables as PostgreSQL enforces them: constraints, triggers, the view, the
default data and transactions. Bad rows are written with raw SQL, so nothing in Python helps.
"""

from datetime import datetime, time, timedelta
from decimal import Decimal
from importlib import import_module
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
from django.apps import apps
from django.db import IntegrityError, ProgrammingError, connection, transaction

from omsproject.pg import history_truncate_allowed, triggers_ignored
from orders.enums import OrderStatus, StrategyStatus
from orders.models import Order, OrderEvent, Strategy, TodayOrder, Trade
from orders.tests.factories import (
    OrderEventFactory,
    OrderFactory,
    StrategyFactory,
    TradeFactory,
    database_now,
    order_event_row,
    order_row,
    raw_fetch,
    raw_insert,
    raw_update,
    strategy_row,
    trade_row,
    violated_constraint,
)
from risk.tests.factories import KillSwitchEventFactory

pytestmark = pytest.mark.django_db

IST = ZoneInfo("Asia/Kolkata")
LONG_AGO = datetime(2020, 1, 1, tzinfo=ZoneInfo("UTC"))
FILLED_AT = Decimal("1500.123456")


def assert_refused(write, constraint: str | frozenset[str]) -> None:
    """``write`` fails, and PostgreSQL names ``constraint`` (or one of them) as the reason.

    A row breaking two checks is reported by the first in name order; a set says "either".
    """
    with pytest.raises(IntegrityError) as excinfo, transaction.atomic():
        write()
    expected = constraint if isinstance(constraint, frozenset) else {constraint}
    assert violated_constraint(excinfo.value) in expected


def insert_or_update(table: str, base_row: dict, overrides: dict, how: str):
    """A write that ends with ``base_row | overrides`` in ``table``: one INSERT, or an UPDATE
    of a good row (so both paths into the table are covered)."""
    if how == "insert":
        return lambda: raw_insert(table, {**base_row, **overrides})
    row_id = raw_insert(table, base_row)
    return lambda: raw_update(table, row_id, overrides)


@pytest.fixture
def strategy():
    return StrategyFactory()


# --- strategies ---------------------------------------------------------------------------------

STRATEGY_REFUSED = [
    pytest.param("strategy_status_valid", {"status": "RUNNING"}, id="status-invalid"),
    pytest.param("strategy_mode_valid", {"mode": "DEMO"}, id="mode-invalid"),
    pytest.param(
        "strategy_counters_consistent",
        {"total_trades": 5, "winning_trades": 3, "losing_trades": 3},
        id="wins-plus-losses-above-total",
    ),
    pytest.param("strategy_name_not_blank", {"name": ""}, id="name-blank"),
]

STRATEGY_ACCEPTED = [
    pytest.param({}, id="defaults"),
    *[pytest.param({"status": status}, id=f"status-{status}") for status in StrategyStatus],
    pytest.param({"mode": "LIVE"}, id="mode-live"),
    pytest.param(
        {"total_trades": 6, "winning_trades": 3, "losing_trades": 3}, id="counters-at-limit"
    ),
]


@pytest.mark.parametrize("how", ["insert", "update"])
@pytest.mark.parametrize(("constraint", "overrides"), STRATEGY_REFUSED)
def test_strategies_refuse(constraint, overrides, how):
    write = insert_or_update("strategies", strategy_row(), overrides, how)
    assert_refused(write, constraint)


@pytest.mark.parametrize("overrides", STRATEGY_ACCEPTED)
def test_strategies_accept(overrides):
    row_id = raw_insert("strategies", strategy_row(**overrides))
    assert Strategy.objects.filter(pk=row_id).exists()


def test_strategy_name_is_unique():
    raw_insert("strategies", strategy_row(name="Momentum"))
    assert_refused(
        lambda: raw_insert("strategies", strategy_row(name="Momentum")), "strategies_name_key"
    )


# --- orders -------------------------------------------------------------------------------------


def _filled(status: str, filled_quantity: int, **extra) -> dict:
    return {
        "status": status,
        "broker_order_id": "250101000000001",
        "filled_quantity": filled_quantity,
        "average_price": FILLED_AT,
        **extra,
    }


ORDER_REFUSED = [
    pytest.param("order_quantity_positive", {"quantity": 0}, id="quantity-0"),
    pytest.param("order_filled_within_quantity", _filled("OPEN", 11), id="filled-above-quantity"),
    pytest.param("order_price_on_paisa", {"price": Decimal("100.005")}, id="price-off-paisa"),
    pytest.param("order_price_on_paisa", {"price": Decimal("0")}, id="price-0"),
    pytest.param("order_price_on_paisa", {"price": Decimal("-1.00")}, id="price-negative"),
    pytest.param(
        "order_trigger_price_on_paisa",
        {"order_type": "SL", "trigger_price": Decimal("99.999")},
        id="trigger-off-paisa",
    ),
    pytest.param(
        "order_trigger_price_on_paisa",
        {"order_type": "SL", "trigger_price": Decimal("0")},
        id="trigger-0",
    ),
    pytest.param(
        "order_stop_loss_on_paisa", {"stop_loss": Decimal("1490.001")}, id="stop-off-paisa"
    ),
    pytest.param("order_stop_loss_on_paisa", {"stop_loss": Decimal("0")}, id="stop-0"),
    pytest.param(
        "order_take_profit_on_paisa", {"take_profit": Decimal("1510.0050")}, id="target-off-paisa"
    ),
    pytest.param("order_price_matches_type", {"price": None}, id="limit-without-price"),
    pytest.param("order_price_matches_type", {"order_type": "MARKET"}, id="market-with-price"),
    pytest.param(
        "order_price_matches_type",
        {"order_type": "SL", "price": None, "trigger_price": Decimal("1499.00")},
        id="sl-without-price",
    ),
    pytest.param(
        "order_price_matches_type",
        {"order_type": "SL-M", "trigger_price": Decimal("1499.00")},
        id="slm-with-price",
    ),
    pytest.param("order_trigger_matches_type", {"order_type": "SL"}, id="sl-without-trigger"),
    pytest.param(
        "order_trigger_matches_type",
        {"order_type": "SL-M", "price": None},
        id="slm-without-trigger",
    ),
    pytest.param(
        "order_trigger_matches_type",
        {"trigger_price": Decimal("1499.00")},
        id="limit-with-trigger",
    ),
    pytest.param(
        "order_trigger_matches_type",
        {"order_type": "MARKET", "price": None, "trigger_price": Decimal("1499.00")},
        id="market-with-trigger",
    ),
    pytest.param(
        "order_average_price_iff_filled",
        {"average_price": FILLED_AT},
        id="average-without-fill",
    ),
    pytest.param(
        "order_average_price_iff_filled",
        _filled("PARTIALLY_FILLED", 5, average_price=None),
        id="fill-without-average",
    ),
    pytest.param(
        "order_average_price_iff_filled",
        _filled("PARTIALLY_FILLED", 5, average_price=Decimal("0")),
        id="fill-with-average-0",
    ),
    pytest.param(
        "order_filled_status_means_complete", _filled("FILLED", 5), id="filled-status-partial"
    ),
    pytest.param(
        "order_pending_not_at_broker",
        {"broker_order_id": "250101000000001"},
        id="pending-with-broker-id",
    ),
    pytest.param(
        "order_pending_not_at_broker",
        {"filled_quantity": 5, "average_price": FILLED_AT},
        id="pending-with-fill",
    ),
    pytest.param("order_client_id_set", {"client_order_id": ""}, id="client-id-blank"),
    pytest.param("order_symbol_set", {"symbol": ""}, id="symbol-blank"),
    pytest.param("order_status_valid", {"status": "DONE"}, id="status-invalid"),
    pytest.param("order_status_valid", {"status": "open"}, id="status-lowercase"),
    pytest.param("order_side_valid", {"side": "HOLD"}, id="side-invalid"),
    # An unknown type also fails order_price_matches_type (both lists miss it).
    pytest.param(
        frozenset({"order_type_valid", "order_price_matches_type"}),
        {"order_type": "STOP"},
        id="type-invalid",
    ),
    pytest.param("order_product_valid", {"product": "BO"}, id="product-invalid"),
    pytest.param("order_validity_valid", {"validity": "GTC"}, id="validity-invalid"),
    pytest.param("order_exchange_valid", {"exchange": "MCX"}, id="exchange-invalid"),
    pytest.param("order_segment_valid", {"segment": "CUR"}, id="segment-invalid"),
]


def _status_row(status: OrderStatus) -> dict:
    if status == OrderStatus.PENDING:
        return {"status": status}
    if status == OrderStatus.FILLED:
        return _filled(status, 10)
    return {"status": status, "broker_order_id": "250101000000001"}


ORDER_ACCEPTED = [
    pytest.param({}, id="limit-pending"),
    pytest.param({"order_type": "MARKET", "price": None}, id="market"),
    pytest.param({"order_type": "SL", "trigger_price": Decimal("1499.50")}, id="sl"),
    pytest.param(
        {"order_type": "SL-M", "price": None, "trigger_price": Decimal("1499.50")}, id="slm"
    ),
    pytest.param({"price": Decimal("0.01")}, id="price-one-paisa"),
    pytest.param({"price": Decimal("100.0100")}, id="price-four-decimals-on-paisa"),
    pytest.param(
        {"stop_loss": Decimal("1490.05"), "take_profit": Decimal("1510.95")}, id="stop-and-target"
    ),
    pytest.param(_filled("PARTIALLY_FILLED", 5), id="partially-filled"),
    pytest.param(_filled("CANCELLED", 10), id="filled-quantity-equals-quantity"),
    *[pytest.param(_status_row(status), id=f"status-{status}") for status in OrderStatus],
]


@pytest.mark.parametrize("how", ["insert", "update"])
@pytest.mark.parametrize(("constraint", "overrides"), ORDER_REFUSED)
def test_orders_refuse(strategy, constraint, overrides, how):
    write = insert_or_update("orders", order_row(strategy.pk), overrides, how)
    assert_refused(write, constraint)


@pytest.mark.parametrize("overrides", ORDER_ACCEPTED)
def test_orders_accept(strategy, overrides):
    row_id = raw_insert("orders", order_row(strategy.pk, **overrides))
    order = Order.objects.get(pk=row_id)
    for column, value in overrides.items():
        assert getattr(order, column) == value


def test_client_order_id_is_unique_per_strategy_only(strategy):
    raw_insert("orders", order_row(strategy.pk, client_order_id="abc-1"))
    assert_refused(
        lambda: raw_insert("orders", order_row(strategy.pk, client_order_id="abc-1")),
        "order_client_id_unique_per_strategy",
    )
    other = StrategyFactory()
    raw_insert("orders", order_row(other.pk, client_order_id="abc-1"))
    assert Order.objects.filter(client_order_id="abc-1").count() == 2


def test_broker_order_id_is_unique_but_many_may_be_unset(strategy):
    at_broker = {"status": "OPEN", "broker_order_id": "250101000000042"}
    raw_insert("orders", order_row(strategy.pk, **at_broker))
    assert_refused(
        lambda: raw_insert("orders", order_row(strategy.pk, **at_broker)),
        "order_broker_order_id_unique",
    )
    raw_insert("orders", order_row(strategy.pk))
    raw_insert("orders", order_row(strategy.pk))
    assert Order.objects.filter(strategy=strategy, broker_order_id__isnull=True).count() == 2


def test_broker_tag_is_unique(strategy):
    raw_insert("orders", order_row(strategy.pk, broker_tag="OMS0000001"))
    assert_refused(
        lambda: raw_insert("orders", order_row(strategy.pk, broker_tag="OMS0000001")),
        "orders_broker_tag_key",
    )


# --- order events ------------------------------------------------------------------------------

EVENT_REFUSED = [
    pytest.param("order_event_kind_valid", {"kind": "CREATED"}, id="kind-invalid"),
    pytest.param("order_event_source_valid", {"source": "WEB"}, id="source-invalid"),
    pytest.param("order_event_to_status_valid", {"to_status": "DONE"}, id="to-status-invalid"),
    pytest.param(
        "order_event_from_status_valid", {"from_status": "DONE"}, id="from-status-invalid"
    ),
]

EVENT_ACCEPTED = [
    pytest.param({}, id="first-event-without-from-status"),
    pytest.param({"from_status": "PENDING"}, id="from-status"),
    *[pytest.param({"kind": kind}, id=f"kind-{kind}") for kind in ["FILL", "MODIFY", "NOTE"]],
    *[pytest.param({"source": s}, id=f"source-{s}") for s in ["API", "ADMIN", "BROKER"]],
]


@pytest.mark.parametrize(("constraint", "overrides"), EVENT_REFUSED)
def test_order_events_refuse(constraint, overrides):
    order = OrderFactory()
    assert_refused(
        lambda: raw_insert("order_events", order_event_row(order.pk, **overrides)), constraint
    )


@pytest.mark.parametrize("overrides", EVENT_ACCEPTED)
def test_order_events_accept(overrides):
    order = OrderFactory()
    row_id = raw_insert("order_events", order_event_row(order.pk, **overrides))
    assert OrderEvent.objects.filter(pk=row_id, order=order).exists()


# --- trades -------------------------------------------------------------------------------------

TRADE_REFUSED = [
    pytest.param("trade_quantity_positive", {"quantity": 0}, id="quantity-0"),
    pytest.param("trade_price_on_paisa", {"price": Decimal("100.005")}, id="price-off-paisa"),
    pytest.param("trade_price_on_paisa", {"price": Decimal("0")}, id="price-0"),
    # An unknown side also fails trade_net_value_exact (neither BUY nor SELL).
    pytest.param(
        frozenset({"trade_side_valid", "trade_net_value_exact"}),
        {"side": "HOLD"},
        id="side-invalid",
    ),
    pytest.param("trade_product_valid", {"product": "BO"}, id="product-invalid"),
    pytest.param("trade_exchange_valid", {"exchange": "MCX"}, id="exchange-invalid"),
]


@pytest.fixture
def order():
    return OrderFactory(status=OrderStatus.OPEN, broker_order_id="250101000000007")


@pytest.mark.parametrize(("constraint", "overrides"), TRADE_REFUSED)
def test_trades_refuse(order, constraint, overrides):
    row = trade_row(order.pk, order.strategy_id, **overrides)
    assert_refused(lambda: raw_insert("trades", row), constraint)


def test_trade_id_is_unique(order):
    raw_insert("trades", trade_row(order.pk, order.strategy_id, trade_id="T-1"))
    assert_refused(
        lambda: raw_insert("trades", trade_row(order.pk, order.strategy_id, trade_id="T-1")),
        "trades_trade_id_key",
    )


# With the computing trigger switched off, the checks behind it are what remains.
COMPUTED_REFUSED = [
    pytest.param(
        "trade_gross_value_exact",
        {"gross_value": Decimal("15002.49"), "net_value": Decimal("15030.89")},
        id="gross-value-wrong",
    ),
    pytest.param(
        "trade_total_charges_sum",
        {"total_charges": Decimal("28.41"), "net_value": Decimal("15030.91")},
        id="total-charges-wrong",
    ),
    pytest.param("trade_net_value_exact", {"net_value": Decimal("15002.50")}, id="net-wrong"),
    pytest.param("trade_net_value_exact", {"net_value": Decimal("14974.10")}, id="buy-net-as-sell"),
]
EXACT_BUY = {
    "gross_value": Decimal("15002.50"),
    "total_charges": Decimal("28.40"),
    "net_value": Decimal("15030.90"),
}


@pytest.mark.parametrize(("constraint", "overrides"), COMPUTED_REFUSED)
def test_trade_value_checks_hold_without_the_trigger(order, constraint, overrides):
    row = trade_row(order.pk, order.strategy_id, **{**EXACT_BUY, **overrides})
    with triggers_ignored("orders.Trade:compute_values"):
        assert_refused(lambda: raw_insert("trades", row), constraint)


def test_trade_with_exact_values_passes_without_the_trigger(order):
    with triggers_ignored("orders.Trade:compute_values"):
        row_id = raw_insert("trades", trade_row(order.pk, order.strategy_id, **EXACT_BUY))
    assert raw_fetch("trades", row_id, "gross_value", "total_charges", "net_value") == tuple(
        EXACT_BUY.values()
    )


@pytest.mark.parametrize(
    ("side", "net_value"),
    [("BUY", Decimal("15030.90")), ("SELL", Decimal("14974.10"))],
)
def test_trade_values_are_computed_by_the_database(order, side, net_value):
    # 10 x 1500.25 = 15002.50; charges 20 + 3.75 + 0.49 + 0.02 + 0.45 + 3.69 = 28.40.
    row_id = raw_insert("trades", trade_row(order.pk, order.strategy_id, side=side))
    assert raw_fetch("trades", row_id, "gross_value", "total_charges", "net_value") == (
        Decimal("15002.50"),
        Decimal("28.40"),
        net_value,
    )


def test_trade_values_given_by_the_caller_are_replaced(order):
    row = trade_row(
        order.pk,
        order.strategy_id,
        gross_value=Decimal("1.00"),
        total_charges=Decimal("0"),
        net_value=Decimal("1.00"),
    )
    row_id = raw_insert("trades", row)
    assert raw_fetch("trades", row_id, "net_value") == (Decimal("15030.90"),)


def test_trade_through_the_orm_gets_the_same_values():
    trade = TradeFactory(quantity=3, price=Decimal("99.95"), brokerage=Decimal("0.09"))
    trade.refresh_from_db()
    assert trade.gross_value == Decimal("299.85")
    assert trade.total_charges == Decimal("0.09")
    assert trade.net_value == Decimal("299.94")


# --- append-only tables ---------------------------------------------------------------------------

APPEND_ONLY = [
    pytest.param("order_events", OrderEventFactory, {"reason": "rewritten"}, id="order_events"),
    pytest.param("trades", TradeFactory, {"price": Decimal("1.00")}, id="trades"),
]


def assert_protected(write, table: str) -> None:
    """pgtrigger's Protect is ``RAISE EXCEPTION`` (SQLSTATE P0001, "raise_exception"), which
    psycopg classes as a ProgrammingError, and Django re-raises as its own ProgrammingError."""
    with pytest.raises(ProgrammingError) as excinfo, transaction.atomic():
        write()
    assert excinfo.value.__cause__.sqlstate == "P0001"
    assert f"Cannot update or delete rows from {table} table" in str(excinfo.value)


@pytest.mark.parametrize(("table", "factory", "change"), APPEND_ONLY)
def test_append_only_rows_cannot_be_updated(table, factory, change):
    row = factory()
    before = raw_fetch(table, row.pk, *change)
    assert_protected(lambda: raw_update(table, row.pk, change), table)
    assert_protected(lambda: type(row).objects.filter(pk=row.pk).update(**change), table)
    assert raw_fetch(table, row.pk, *change) == before


def _raw_delete(table: str, row_id: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {table} WHERE id = %s", [row_id])  # noqa: S608


@pytest.mark.parametrize(("table", "factory", "change"), APPEND_ONLY)
def test_append_only_rows_cannot_be_deleted(table, factory, change):
    row = factory()
    assert_protected(lambda: _raw_delete(table, row.pk), table)
    assert_protected(lambda: type(row).objects.filter(pk=row.pk).delete(), table)
    assert type(row).objects.filter(pk=row.pk).exists()


HISTORY_TABLES = [
    pytest.param(OrderEventFactory, id="order_events"),
    pytest.param(TradeFactory, id="trades"),
    pytest.param(KillSwitchEventFactory, id="kill_switch_events"),
]


def _truncate(table: str) -> None:
    with connection.cursor() as cursor:
        # The test's rows have deferred foreign key checks pending, which TRUNCATE would
        # refuse on its own ("pending trigger events"): run them first.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute(f"TRUNCATE {table} CASCADE")


@pytest.mark.parametrize("factory", HISTORY_TABLES)
def test_history_tables_refuse_truncate(factory):
    """Row triggers do not fire on TRUNCATE: a statement trigger refuses it, CASCADE or not."""
    row = factory()
    table = row._meta.db_table
    with pytest.raises(ProgrammingError) as excinfo, transaction.atomic():
        _truncate(table)
    assert excinfo.value.__cause__.sqlstate == "P0001"
    assert f"Cannot truncate {table} table" in str(excinfo.value)
    assert type(row).objects.filter(pk=row.pk).exists()


@pytest.mark.parametrize("factory", HISTORY_TABLES)
def test_history_truncate_allowed_lifts_the_refusal_for_its_block_only(factory):
    """What the test suite's flush uses between transactional tests; nothing else does."""
    row = factory()
    table = row._meta.db_table
    with transaction.atomic():
        with history_truncate_allowed():
            _truncate(table)
        assert not type(row).objects.exists()
        with pytest.raises(ProgrammingError), transaction.atomic():
            _truncate(table)


# --- updated_at triggers ------------------------------------------------------------------------


def assert_update_sets_updated_at(instance, change: dict) -> None:
    """Backdate ``updated_at`` (trigger off), UPDATE by raw SQL, and find it set to now()."""
    table = instance._meta.db_table
    with triggers_ignored(f"{instance._meta.label}:set_updated_at"):
        raw_update(table, instance.pk, {"updated_at": LONG_AGO})
    assert raw_fetch(table, instance.pk, "updated_at") == (LONG_AGO,)
    raw_update(table, instance.pk, change)
    assert raw_fetch(table, instance.pk, "updated_at") == (database_now(),)


def test_strategy_update_sets_updated_at():
    assert_update_sets_updated_at(StrategyFactory(), {"description": "changed in psql"})


def test_order_update_sets_updated_at():
    assert_update_sets_updated_at(OrderFactory(), {"status_message": "changed in psql"})


# --- v_today_orders -----------------------------------------------------------------------------


def _created_at(order: Order, when: datetime) -> Order:
    raw_update("orders", order.pk, {"created_at": when})
    return order


def test_today_orders_are_those_since_midnight_ist():
    with connection.cursor() as cursor:
        cursor.execute("SELECT (now() AT TIME ZONE 'Asia/Kolkata')::date")
        today = cursor.fetchone()[0]
    midnight = datetime.combine(today, time(0, 0), tzinfo=IST)
    yesterday_late = _created_at(OrderFactory(), midnight - timedelta(minutes=1))
    at_midnight = _created_at(OrderFactory(), midnight)
    today_early = _created_at(OrderFactory(), midnight + timedelta(minutes=5))
    tomorrow = _created_at(OrderFactory(), midnight + timedelta(days=1))

    ids = set(TodayOrder.objects.values_list("id", flat=True))

    assert {at_midnight.pk, today_early.pk} <= ids
    assert yesterday_late.pk not in ids
    assert tomorrow.pk not in ids


def test_today_order_carries_the_strategy_name_and_order_columns():
    strategy = StrategyFactory(name="Opening Range Breakout")
    order = OrderFactory(
        strategy=strategy,
        status=OrderStatus.PARTIALLY_FILLED,
        broker_order_id="250101000000099",
        filled_quantity=4,
        average_price=Decimal("2450.500000"),
        stop_loss=Decimal("2430.00"),
    )

    row = TodayOrder.objects.get(pk=order.pk)

    assert row.strategy_id == strategy.pk
    assert row.strategy_name == "Opening Range Breakout"
    assert (row.quantity, row.filled_quantity, row.remaining_quantity) == (10, 4, 6)
    assert (row.broker_order_id, row.status) == ("250101000000099", "PARTIALLY_FILLED")
    assert (row.price, row.average_price, row.stop_loss) == (
        Decimal("2450.50"),
        Decimal("2450.5"),
        Decimal("2430"),
    )
    assert row.created_at == Order.objects.get(pk=order.pk).created_at


# --- default data -------------------------------------------------------------------------------

default_data = import_module("orders.migrations.0003_default_data")
MIGRATION_EDITOR = SimpleNamespace(connection=connection)


def test_manual_trading_strategy_exists():
    manual = Strategy.objects.get(name="Manual Trading")
    assert (manual.status, manual.mode, manual.config) == ("ACTIVE", "PAPER", {})
    assert manual.description == "Orders placed by hand from the admin"


def test_manual_trading_migration_can_run_again():
    Strategy.objects.filter(name="Manual Trading").update(description="edited by the desk")
    default_data.create_manual_trading(apps, MIGRATION_EDITOR)
    manual = Strategy.objects.get(name="Manual Trading")
    assert manual.description == "edited by the desk"


def test_manual_trading_reverse_keeps_a_strategy_with_orders():
    manual = Strategy.objects.get(name="Manual Trading")
    OrderFactory(strategy=manual)
    default_data.remove_manual_trading(apps, MIGRATION_EDITOR)
    assert Strategy.objects.filter(pk=manual.pk).exists()


def test_manual_trading_reverse_removes_an_unused_strategy():
    default_data.remove_manual_trading(apps, MIGRATION_EDITOR)
    assert not Strategy.objects.filter(name="Manual Trading").exists()


# --- transactions -------------------------------------------------------------------------------


class BrokerSaidNo(Exception):
    pass


@pytest.mark.django_db(transaction=True)
def test_failed_transaction_leaves_nothing_behind():
    tables = (Strategy, Order, OrderEvent, Trade)
    before = [model.objects.count() for model in tables]
    with pytest.raises(BrokerSaidNo), transaction.atomic():
        strategy = StrategyFactory(name="Doomed")
        order = OrderFactory(strategy=strategy, status=OrderStatus.OPEN, broker_order_id="1")
        TradeFactory(order=order)
        OrderEventFactory(order=order)
        # Written, and visible inside the block.
        assert [model.objects.count() for model in tables] == [n + 1 for n in before]
        raise BrokerSaidNo

    assert not Strategy.objects.filter(name="Doomed").exists()
    assert [model.objects.count() for model in tables] == before
