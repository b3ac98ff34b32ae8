"""The positions app's tables, views and SQL functions as PostgreSQL enforces and computes them."""

import threading
import time as clock
from datetime import date, datetime, timedelta
from decimal import Decimal
from importlib import import_module
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
from django.apps import apps
from django.db import IntegrityError, connection, transaction
from hypothesis import given, settings
from hypothesis import strategies as st

from omsproject.pg import triggers_ignored
from orders.enums import OrderSide, OrderStatus
from orders.tests.factories import (
    OrderFactory,
    StrategyFactory,
    TradeFactory,
    database_now,
    raw_fetch,
    raw_insert,
    raw_update,
    violated_constraint,
)
from positions import pnl, selectors
from positions.models import (
    ActivePosition,
    DailyStats,
    OpenReconciliationIssue,
    Position,
    ReconciliationIssue,
    Severity,
)
from positions.tests.factories import (
    DailyStatsFactory,
    PositionFactory,
    ReconciliationIssueFactory,
    daily_stats_row,
    issue_row,
    position_row,
)

pytestmark = pytest.mark.django_db

IST = ZoneInfo("Asia/Kolkata")
LONG_AGO = datetime(2020, 1, 1, tzinfo=ZoneInfo("UTC"))


def assert_refused(write, constraint: str) -> None:
    """``write`` fails, and PostgreSQL names ``constraint`` as the reason."""
    with pytest.raises(IntegrityError) as excinfo, transaction.atomic():
        write()
    assert violated_constraint(excinfo.value) == constraint


def insert_or_update(table: str, base_row: dict, overrides: dict, how: str):
    """A write ending with ``base_row | overrides`` in ``table``: an INSERT, or an UPDATE of a
    good row."""
    if how == "insert":
        return lambda: raw_insert(table, {**base_row, **overrides})
    row_id = raw_insert(table, base_row)
    return lambda: raw_update(table, row_id, overrides)


def ist(*args: int) -> datetime:
    return datetime(*args, tzinfo=IST)


@pytest.fixture
def strategy():
    return StrategyFactory()


# --- positions ----------------------------------------------------------------------------------

NOW = datetime(2025, 3, 10, 9, 15, tzinfo=IST)

POSITION_REFUSED = [
    pytest.param("position_open_iff_nonzero", {"quantity": 0}, id="open-at-zero"),
    pytest.param(
        "position_open_iff_nonzero",
        {"quantity": 5, "opened_at": NOW, "closed_at": NOW},
        id="closed-not-zero",
    ),
    pytest.param("position_open_iff_nonzero", {"average_price": Decimal("0")}, id="open-average-0"),
    pytest.param(
        "position_closed_after_opened",
        {"quantity": 0, "opened_at": NOW, "closed_at": NOW - timedelta(seconds=1)},
        id="closed-before-opened",
    ),
    pytest.param(
        "position_drawdown_positive", {"max_drawdown": Decimal("-0.01")}, id="drawdown-negative"
    ),
    pytest.param(
        "position_extremes_ordered",
        {"highest_price": Decimal("99.00"), "lowest_price": Decimal("101.00")},
        id="high-below-low",
    ),
    pytest.param(
        "position_last_price_on_paisa", {"last_price": Decimal("100.005")}, id="last-off-paisa"
    ),
    pytest.param("position_last_price_on_paisa", {"last_price": Decimal("0")}, id="last-0"),
    pytest.param(
        "position_stop_loss_on_paisa", {"stop_loss": Decimal("95.001")}, id="stop-off-paisa"
    ),
    pytest.param("position_take_profit_on_paisa", {"take_profit": Decimal("0")}, id="target-0"),
    pytest.param(
        "position_take_profit_on_paisa",
        {"take_profit": Decimal("-110.00")},
        id="target-negative",
    ),
    pytest.param("position_product_valid", {"product": "BO"}, id="product-invalid"),
    pytest.param("position_exchange_valid", {"exchange": "MCX"}, id="exchange-invalid"),
]

POSITION_ACCEPTED = [
    pytest.param({}, id="long"),
    pytest.param({"quantity": -10}, id="short"),
    pytest.param({"quantity": 0, "closed_at": NOW, "opened_at": NOW}, id="closed-same-instant"),
    pytest.param(
        {"quantity": 0, "average_price": Decimal("0"), "closed_at": NOW, "opened_at": NOW},
        id="closed-average-0",
    ),
    pytest.param(
        {"highest_price": Decimal("101.00"), "lowest_price": Decimal("101.00")},
        id="extremes-equal",
    ),
    pytest.param(
        {
            "last_price": Decimal("100.0500"),
            "stop_loss": Decimal("95.05"),
            "take_profit": Decimal("110.95"),
        },
        id="prices-on-paisa",
    ),
    pytest.param({"average_price": Decimal("100.123457")}, id="average-six-decimals"),
    *[pytest.param({"product": p}, id=f"product-{p}") for p in ["CNC", "NRML"]],
    *[pytest.param({"exchange": e}, id=f"exchange-{e}") for e in ["BSE", "NFO", "BFO"]],
]


@pytest.mark.parametrize("how", ["insert", "update"])
@pytest.mark.parametrize(("constraint", "overrides"), POSITION_REFUSED)
def test_positions_refuse(strategy, constraint, overrides, how):
    write = insert_or_update("positions", position_row(strategy.pk), overrides, how)
    assert_refused(write, constraint)


@pytest.mark.parametrize("overrides", POSITION_ACCEPTED)
def test_positions_accept(strategy, overrides):
    row_id = raw_insert("positions", position_row(strategy.pk, **overrides))
    position = Position.objects.get(pk=row_id)
    for column, value in overrides.items():
        assert getattr(position, column) == value


def test_one_open_position_per_instrument(strategy):
    instrument = {"symbol": "SBIN", "exchange": "NSE", "product": "MIS"}
    closed = {"quantity": 0, "opened_at": NOW, "closed_at": NOW}
    raw_insert("positions", position_row(strategy.pk, **instrument, **closed))
    raw_insert("positions", position_row(strategy.pk, **instrument, **closed))
    open_id = raw_insert("positions", position_row(strategy.pk, **instrument))

    assert_refused(
        lambda: raw_insert("positions", position_row(strategy.pk, **instrument)),
        "position_one_open_per_instrument",
    )
    # Other product, other strategy: other positions.
    raw_insert("positions", position_row(strategy.pk, **{**instrument, "product": "CNC"}))
    raw_insert("positions", position_row(StrategyFactory().pk, **instrument))
    assert Position.objects.filter(symbol="SBIN", closed_at__isnull=True).count() == 3
    assert Position.objects.get(pk=open_id).is_open


def test_reopening_a_closed_position_beside_an_open_one_is_refused(strategy):
    instrument = {"symbol": "TCS", "exchange": "NSE", "product": "MIS"}
    closed_id = raw_insert(
        "positions",
        position_row(strategy.pk, **instrument, quantity=0, opened_at=NOW, closed_at=NOW),
    )
    raw_insert("positions", position_row(strategy.pk, **instrument))
    assert_refused(
        lambda: raw_update("positions", closed_id, {"quantity": 5, "closed_at": None}),
        "position_one_open_per_instrument",
    )


# --- reconciliation_log -------------------------------------------------------------------------

ISSUE_REFUSED = [
    pytest.param("issue_type_valid", {"issue_type": "GHOST"}, id="type-invalid"),
    pytest.param("issue_severity_valid", {"severity": "FATAL"}, id="severity-invalid"),
    pytest.param(
        "issue_resolved_has_when_and_why",
        {"resolved": True, "resolution": "broker corrected"},
        id="resolved-without-resolved-at",
    ),
    pytest.param(
        "issue_resolved_has_when_and_why",
        {"resolved": True, "resolved_at": NOW},
        id="resolved-without-resolution",
    ),
    pytest.param(
        "issue_resolved_has_when_and_why",
        {"resolved_at": NOW, "resolution": "broker corrected"},
        id="resolved-at-but-unresolved",
    ),
    pytest.param("issue_auto_fixed_is_resolved", {"auto_fixed": True}, id="auto-fixed-open"),
]

RESOLVED = {"resolved": True, "resolved_at": NOW, "resolution": "broker corrected"}
ISSUE_ACCEPTED = [
    pytest.param({}, id="open"),
    pytest.param(RESOLVED, id="resolved"),
    pytest.param({**RESOLVED, "auto_fixed": True, "resolved_by": "system"}, id="auto-fixed"),
    pytest.param({"symbol": "", "exchange": "", "product": ""}, id="account-wide"),
    *[pytest.param({"severity": s}, id=f"severity-{s}") for s in Severity],
    *[
        pytest.param({"issue_type": t}, id=f"type-{t}")
        for t in ["PRICE_MISMATCH", "MISSING_AT_BROKER", "UNKNOWN_POSITION", "MISSING_FILL"]
    ],
]


@pytest.mark.parametrize("how", ["insert", "update"])
@pytest.mark.parametrize(("constraint", "overrides"), ISSUE_REFUSED)
def test_reconciliation_log_refuses(constraint, overrides, how):
    assert_refused(insert_or_update("reconciliation_log", issue_row(), overrides, how), constraint)


@pytest.mark.parametrize("overrides", ISSUE_ACCEPTED)
def test_reconciliation_log_accepts(overrides):
    row_id = raw_insert("reconciliation_log", issue_row(**overrides))
    issue = ReconciliationIssue.objects.get(pk=row_id)
    for column, value in overrides.items():
        assert getattr(issue, column) == value


def test_one_open_issue_per_fingerprint():
    fingerprint = {"fingerprint": "QUANTITY_MISMATCH:NSE:SBIN:MIS"}
    raw_insert("reconciliation_log", issue_row(**fingerprint, **RESOLVED))
    raw_insert("reconciliation_log", issue_row(**fingerprint, **RESOLVED))
    raw_insert("reconciliation_log", issue_row(**fingerprint))
    assert_refused(
        lambda: raw_insert("reconciliation_log", issue_row(**fingerprint)),
        "issue_one_open_per_fingerprint",
    )
    assert ReconciliationIssue.objects.filter(**fingerprint).count() == 3


# --- daily_stats --------------------------------------------------------------------------------

STATS_REFUSED = [
    pytest.param(
        "daily_stats_net_is_gross_less_charges",
        {
            "gross_pnl": Decimal("100.00"),
            "total_charges": Decimal("10.00"),
            "net_pnl": Decimal("100.00"),
        },
        id="net-not-gross-less-charges",
    ),
    pytest.param(
        "daily_stats_amounts_positive",
        {"total_charges": Decimal("-1.00"), "net_pnl": Decimal("1.00")},
        id="charges-negative",
    ),
    pytest.param(
        "daily_stats_amounts_positive", {"turnover": Decimal("-0.01")}, id="turnover-negative"
    ),
    pytest.param(
        "daily_stats_amounts_positive", {"max_drawdown": Decimal("-5")}, id="drawdown-negative"
    ),
    pytest.param(
        "daily_stats_order_counts_consistent",
        {"total_orders": 2, "filled_orders": 1, "cancelled_orders": 1, "rejected_orders": 1},
        id="outcomes-above-orders",
    ),
]

STATS_ACCEPTED = [
    pytest.param({}, id="empty-day"),
    pytest.param(
        {
            "gross_pnl": Decimal("-50.00"),
            "total_charges": Decimal("10.00"),
            "net_pnl": Decimal("-60.00"),
        },
        id="losing-day",
    ),
    pytest.param(
        {"total_orders": 3, "filled_orders": 1, "cancelled_orders": 1, "rejected_orders": 1},
        id="outcomes-at-limit",
    ),
]


@pytest.mark.parametrize("how", ["insert", "update"])
@pytest.mark.parametrize(("constraint", "overrides"), STATS_REFUSED)
def test_daily_stats_refuse(constraint, overrides, how):
    assert_refused(insert_or_update("daily_stats", daily_stats_row(), overrides, how), constraint)


@pytest.mark.parametrize("overrides", STATS_ACCEPTED)
def test_daily_stats_accept(overrides):
    row_id = raw_insert("daily_stats", daily_stats_row(**overrides))
    stats = DailyStats.objects.get(pk=row_id)
    for column, value in overrides.items():
        assert getattr(stats, column) == value


def test_one_global_daily_stats_row_per_date(strategy):
    day = {"date": date(2020, 6, 1)}
    raw_insert("daily_stats", daily_stats_row(**day))
    assert_refused(
        lambda: raw_insert("daily_stats", daily_stats_row(**day)), "daily_stats_one_global_day"
    )
    raw_insert("daily_stats", daily_stats_row(date=date(2020, 6, 2)))
    raw_insert("daily_stats", daily_stats_row(**day, strategy_id=strategy.pk))
    assert DailyStats.objects.filter(date__in=[date(2020, 6, 1), date(2020, 6, 2)]).count() == 3


def test_one_daily_stats_row_per_strategy_and_date(strategy):
    day = {"date": date(2020, 6, 1)}
    raw_insert("daily_stats", daily_stats_row(**day, strategy_id=strategy.pk))
    assert_refused(
        lambda: raw_insert("daily_stats", daily_stats_row(**day, strategy_id=strategy.pk)),
        "daily_stats_one_per_strategy_day",
    )
    raw_insert("daily_stats", daily_stats_row(**day, strategy_id=StrategyFactory().pk))
    assert DailyStats.objects.filter(**day, strategy__isnull=False).count() == 2


# --- updated_at triggers ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("factory", "change"),
    [
        pytest.param(PositionFactory, {"last_price": Decimal("101.00")}, id="positions"),
        pytest.param(ReconciliationIssueFactory, {"occurrences": 2}, id="reconciliation_log"),
        pytest.param(DailyStatsFactory, {"total_orders": 1}, id="daily_stats"),
    ],
)
def test_update_sets_updated_at(factory, change):
    instance = factory()
    table = instance._meta.db_table
    with triggers_ignored(f"{instance._meta.label}:set_updated_at"):
        raw_update(table, instance.pk, {"updated_at": LONG_AGO})
    assert raw_fetch(table, instance.pk, "updated_at") == (LONG_AGO,)

    raw_update(table, instance.pk, change)

    assert raw_fetch(table, instance.pk, "updated_at") == (database_now(),)


# --- v_active_positions -------------------------------------------------------------------------


def test_active_positions_are_the_open_ones_with_name_and_value():
    strategy = StrategyFactory(name="Mean Reversion")
    long = PositionFactory(
        strategy=strategy,
        quantity=10,
        average_price=Decimal("100.000000"),
        last_price=Decimal("101.50"),
        realized_pnl=Decimal("12.30"),
        unrealized_pnl=Decimal("15.00"),
    )
    short_unmarked = PositionFactory(
        strategy=strategy, quantity=-7, average_price=Decimal("100.123457")
    )
    closed = PositionFactory(
        strategy=strategy,
        quantity=0,
        opened_at=long.opened_at,
        closed_at=long.opened_at,
        realized_pnl=Decimal("5"),
    )

    rows = {row.id: row for row in ActivePosition.objects.all()}

    assert set(rows) == {long.pk, short_unmarked.pk}
    assert closed.pk not in rows
    assert rows[long.pk].strategy_name == "Mean Reversion"
    assert rows[long.pk].strategy_id == strategy.pk
    assert rows[long.pk].total_pnl == Decimal("27.30")
    assert rows[long.pk].position_value == Decimal("1015.00")  # 10 x last price 101.50
    # Unmarked: 7 x average 100.123457 = 700.864199, to the paisa.
    assert rows[short_unmarked.pk].position_value == Decimal("700.86")
    assert rows[short_unmarked.pk].quantity == -7


# --- v_reconciliation_issues --------------------------------------------------------------------


def test_open_issues_most_severe_then_oldest_first():
    now = database_now()
    info_oldest = ReconciliationIssueFactory(
        severity=Severity.INFO, detected_at=now - timedelta(hours=9)
    )
    critical_newer = ReconciliationIssueFactory(
        severity=Severity.CRITICAL, detected_at=now - timedelta(hours=1)
    )
    warning = ReconciliationIssueFactory(
        severity=Severity.WARNING, detected_at=now - timedelta(hours=8)
    )
    critical_older = ReconciliationIssueFactory(
        severity=Severity.CRITICAL, detected_at=now - timedelta(hours=2)
    )
    ReconciliationIssueFactory(
        severity=Severity.CRITICAL,
        detected_at=now - timedelta(hours=20),
        resolved=True,
        resolved_at=now,
        resolution="fixed by hand",
    )
    expected = [critical_older.pk, critical_newer.pk, warning.pk, info_oldest.pk]

    assert [i.id for i in OpenReconciliationIssue.objects.all()] == expected
    with connection.cursor() as cursor:
        cursor.execute("SELECT id, severity_rank FROM v_reconciliation_issues")
        assert cursor.fetchall() == list(zip(expected, [3, 3, 2, 1], strict=True))


def test_open_issue_hours_and_strategy_name_come_from_sql():
    now = database_now()
    strategy = StrategyFactory(name="Pairs")
    with_strategy = ReconciliationIssueFactory(
        strategy=strategy, detected_at=now - timedelta(hours=5, minutes=30)
    )
    account_wide = ReconciliationIssueFactory(
        strategy=None, detected_at=now - timedelta(minutes=45)
    )

    rows = {row.id: row for row in OpenReconciliationIssue.objects.all()}

    assert (rows[with_strategy.pk].strategy_name, rows[with_strategy.pk].hours_unresolved) == (
        "Pairs",
        Decimal("5.5"),
    )
    assert (rows[account_wide.pk].strategy_name, rows[account_wide.pk].hours_unresolved) == (
        None,
        Decimal("0.8"),  # 0.75 hours, half up
    )
    for issue in (with_strategy, account_wide):
        assert rows[issue.pk].hours_unresolved == issue.hours_unresolved(now=now)


# --- position_unrealized_pnl --------------------------------------------------------------------


def unrealized_in_sql(quantity: int, average_price: Decimal, price: Decimal) -> Decimal:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT position_unrealized_pnl(%s::integer, %s::numeric, %s::numeric)",
            [quantity, average_price, price],
        )
        return cursor.fetchone()[0]


UNREALIZED_CASES = [
    pytest.param(10, "2450.00", "2465.00", "150.00", id="long-gain"),
    pytest.param(10, "2450.00", "2430.00", "-200.00", id="long-loss"),
    pytest.param(-10, "2450.00", "2465.00", "-150.00", id="short-loss"),
    pytest.param(-10, "2450.00", "2430.00", "200.00", id="short-gain"),
    pytest.param(0, "2450.00", "2465.00", "0.00", id="flat"),
    pytest.param(1, "100.000000", "100.005", "0.01", id="half-paisa-up"),
    pytest.param(1, "100.005000", "100.00", "-0.01", id="negative-half-paisa-away-from-zero"),
    pytest.param(-1, "100.000000", "100.005", "-0.01", id="short-negative-half"),
    pytest.param(3, "100.006667", "100.00", "-0.02", id="six-decimal-average"),
]


@pytest.mark.parametrize(("quantity", "average", "price", "expected"), UNREALIZED_CASES)
def test_position_unrealized_pnl_sql_is_hand_checked_and_matches_python(
    quantity, average, price, expected
):
    average, price, expected = Decimal(average), Decimal(price), Decimal(expected)
    assert unrealized_in_sql(quantity, average, price) == expected
    assert pnl.unrealized_pnl(quantity, average, price) == expected


@settings(max_examples=200, deadline=None)
@given(
    quantity=st.integers(min_value=-100_000, max_value=100_000),
    average=st.integers(min_value=1, max_value=10**12).map(lambda n: Decimal(n).scaleb(-6)),
    price=st.integers(min_value=1, max_value=10**8).map(lambda n: Decimal(n).scaleb(-3)),
)
def test_position_unrealized_pnl_sql_agrees_with_python(quantity, average, price):
    in_sql = unrealized_in_sql(quantity, average, price)
    assert in_sql == pnl.unrealized_pnl(quantity, average, price)


def test_position_unrealized_pnl_sql_of_null_is_null():
    with connection.cursor() as cursor:
        cursor.execute("SELECT position_unrealized_pnl(10, NULL, 100)")
        assert cursor.fetchone() == (None,)


# --- strategy_metrics ---------------------------------------------------------------------------

RANGE = {"date_from": date(2025, 3, 10), "date_to": date(2025, 3, 12)}


def _trade(
    strategy, side: OrderSide, quantity: int, price: str, executed_at, realized="0", **charges
):
    order = OrderFactory(
        strategy=strategy, side=side, status=OrderStatus.OPEN, broker_order_id=None
    )
    return TradeFactory(
        order=order,
        quantity=quantity,
        price=Decimal(price),
        executed_at=executed_at,
        realized_pnl=Decimal(realized),
        **{name: Decimal(value) for name, value in charges.items()},
    )


def _closed(strategy, realized: str, closed_at):
    return PositionFactory(
        strategy=strategy,
        quantity=0,
        realized_pnl=Decimal(realized),
        opened_at=closed_at - timedelta(hours=1),
        closed_at=closed_at,
    )


def test_strategy_metrics_over_ist_days():
    strategy, other = StrategyFactory(), StrategyFactory()
    # Trades: the range is 10 Mar 00:00 IST up to (not including) 13 Mar 00:00 IST.
    _trade(strategy, OrderSide.BUY, 10, "100.00", ist(2025, 3, 10, 0, 0), brokerage="20")
    # Gross PnL: what the fills in the range realized (the SELL's 100 and the BUY's -40).
    _trade(
        strategy,
        OrderSide.SELL,
        10,
        "110.00",
        ist(2025, 3, 12, 23, 59, 59),
        realized="100.00",
        brokerage="20",
        stt="0.28",
    )
    _trade(strategy, OrderSide.BUY, 5, "200.00", ist(2025, 3, 11, 12, 0), "-40.00", brokerage="5")
    _trade(strategy, OrderSide.BUY, 1, "50.00", ist(2025, 3, 9, 23, 59, 59), "-300", brokerage="9")
    _trade(strategy, OrderSide.SELL, 1, "50.00", ist(2025, 3, 13, 0, 0), "500", brokerage="9")
    _trade(other, OrderSide.BUY, 1, "50.00", ist(2025, 3, 11, 10, 0), brokerage="9")
    # Round trips: positions closed in the range (by their closing fill's time).
    _closed(strategy, "100.00", ist(2025, 3, 12, 15, 0))
    _closed(strategy, "-40.00", ist(2025, 3, 10, 0, 0))
    _closed(strategy, "0.00", ist(2025, 3, 11, 11, 0))
    _closed(strategy, "500.00", ist(2025, 3, 13, 0, 0))
    _closed(strategy, "-300.00", ist(2025, 3, 9, 23, 59))
    _closed(other, "1000.00", ist(2025, 3, 11, 11, 0))
    PositionFactory(strategy=strategy, quantity=5, realized_pnl=Decimal("77.00"))

    metrics = selectors.strategy_metrics(strategy=strategy, **RANGE)

    assert metrics == {
        "total_trades": 3,
        "buy_trades": 2,
        "sell_trades": 1,
        "winning_trades": 1,
        "losing_trades": 1,
        "win_rate": Decimal("50.00"),
        "gross_pnl": Decimal("60.00"),  # 100 - 40 + 0
        "total_charges": Decimal("45.28"),  # 20 + 20.28 + 5
        "net_pnl": Decimal("14.72"),
        "turnover": Decimal("3100.00"),  # 1000 + 1100 + 1000
    }


def test_strategy_metrics_of_an_idle_strategy_are_zero():
    metrics = selectors.strategy_metrics(strategy=StrategyFactory(), **RANGE)
    assert metrics == dict.fromkeys(
        ["total_trades", "buy_trades", "sell_trades", "winning_trades", "losing_trades"], 0
    ) | dict.fromkeys(
        ["win_rate", "gross_pnl", "total_charges", "net_pnl", "turnover"], Decimal("0")
    )


def test_strategy_metrics_win_rate_rounds_half_up():
    strategy = StrategyFactory()
    closed_at = ist(2025, 3, 11, 10, 0)
    _closed(strategy, "10.00", closed_at)
    for _ in range(31):
        _closed(strategy, "-1.00", closed_at)

    metrics = selectors.strategy_metrics(strategy=strategy, **RANGE)

    # 1 of 32 = 3.125 %: half up (away from zero) gives 3.13, half-even would give 3.12.
    assert (metrics["winning_trades"], metrics["losing_trades"]) == (1, 31)
    assert metrics["win_rate"] == Decimal("3.13")


def test_strategy_metrics_refuses_a_reversed_range():
    with pytest.raises(ValueError, match="date_from 2025-03-12: must not be after date_to"):
        selectors.strategy_metrics(
            strategy=StrategyFactory(), date_from=date(2025, 3, 12), date_to=date(2025, 3, 10)
        )


# --- default data -------------------------------------------------------------------------------

default_data = import_module("positions.migrations.0003_default_data")
MIGRATION_EDITOR = SimpleNamespace(connection=connection)


def _today_ist() -> date:
    with connection.cursor() as cursor:
        cursor.execute("SELECT (now() AT TIME ZONE 'Asia/Kolkata')::date")
        return cursor.fetchone()[0]


def test_todays_global_daily_stats_row_exists():
    today = DailyStats.objects.get(date=_today_ist(), strategy__isnull=True)
    assert (today.total_orders, today.net_pnl) == (0, Decimal("0"))


def test_daily_stats_migration_can_run_again():
    default_data.create_today_stats(apps, MIGRATION_EDITOR)
    default_data.create_today_stats(apps, MIGRATION_EDITOR)
    assert DailyStats.objects.filter(date=_today_ist(), strategy__isnull=True).count() == 1


def test_daily_stats_reverse_keeps_a_day_with_figures():
    DailyStats.objects.filter(date=_today_ist(), strategy__isnull=True).update(total_orders=4)
    default_data.remove_today_stats(apps, MIGRATION_EDITOR)
    assert DailyStats.objects.filter(date=_today_ist(), strategy__isnull=True).exists()


def test_daily_stats_reverse_removes_an_empty_day():
    default_data.remove_today_stats(apps, MIGRATION_EDITOR)
    assert not DailyStats.objects.filter(date=_today_ist(), strategy__isnull=True).exists()


# --- concurrency --------------------------------------------------------------------------------

WRITERS = 20


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_to_one_position_serialise():
    # An open position cannot hold 0, so the writers start from 100.
    position = PositionFactory(quantity=100)
    connection.close()  # hand the main thread's connection back to the pool for the writers
    start = threading.Barrier(WRITERS)
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            start.wait(timeout=30)
            with transaction.atomic():
                locked = Position.objects.select_for_update().get(pk=position.pk)
                clock.sleep(0.01)  # without the lock, this window loses updates for sure
                locked.quantity += 1
                locked.save()
        except BaseException as error:  # reported by the main thread
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=writer) for _ in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert not errors
    assert not any(thread.is_alive() for thread in threads)
    assert Position.objects.get(pk=position.pk).quantity == 100 + WRITERS
