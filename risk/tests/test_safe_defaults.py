"""The global limits row that migration risk/0007 ships: its values, that it never overwrites a
desk's own row, that undoing it removes only the row it made, and what the limits report says."""

from __future__ import annotations

from decimal import Decimal
from importlib import import_module

import pytest
from django.apps import apps

from orders.tests.factories import StrategyFactory
from risk.limits import LIMIT_FIELDS, limits_report
from risk.models import RiskLimit

pytestmark = pytest.mark.django_db

migration = import_module("risk.migrations.0008_default_limits")

SHIPPED = {
    "price_band_percent": Decimal("5.00"),
    "max_order_quantity": 1000,
    "max_order_value": Decimal("1000000.00"),
    "max_open_orders": 25,
    "orders_per_second": 10,
    "daily_loss_limit": Decimal("50000.00"),
}


def test_a_fresh_database_has_the_shipped_global_limits(shipped_limits):
    """Read from the test database right after its migrations, before any test ran."""
    assert shipped_limits is not None
    assert shipped_limits["strategy_id"] is None
    assert {name: shipped_limits[name] for name in SHIPPED} == SHIPPED
    off = {name for name in LIMIT_FIELDS if shipped_limits[name] is None}
    assert off == {
        "max_position_quantity",
        "max_strategy_exposure",
        "max_total_exposure",
        "drawdown_limit",
        "rejection_burst",
    }


@pytest.mark.safe_defaults
def test_a_test_marked_safe_defaults_sees_the_shipped_row():
    row = RiskLimit.objects.get(strategy__isnull=True)
    assert {name: getattr(row, name) for name in SHIPPED} == SHIPPED


def test_other_tests_start_without_a_global_row():
    assert not RiskLimit.objects.filter(strategy__isnull=True).exists()


def test_the_migration_keeps_a_global_row_the_desk_already_has():
    RiskLimit.objects.create(strategy=None, max_order_quantity=5)
    migration.create_global_limits(apps, None)
    row = RiskLimit.objects.get(strategy__isnull=True)
    assert (row.max_order_quantity, row.max_order_value) == (5, None)


def test_the_migration_creates_the_row_when_none_exists_and_ignores_strategy_rows():
    RiskLimit.objects.create(strategy=StrategyFactory(), max_order_quantity=5)
    migration.create_global_limits(apps, None)
    row = RiskLimit.objects.get(strategy__isnull=True)
    assert {name: getattr(row, name) for name in SHIPPED} == SHIPPED


def test_undoing_the_migration_deletes_its_row_only_if_unchanged():
    migration.create_global_limits(apps, None)
    RiskLimit.objects.filter(strategy__isnull=True).update(max_order_quantity=2000)
    migration.delete_global_limits(apps, None)
    assert RiskLimit.objects.filter(strategy__isnull=True).exists()  # the desk changed it

    RiskLimit.objects.filter(strategy__isnull=True).update(max_order_quantity=1000)
    own = RiskLimit.objects.create(strategy=StrategyFactory(), **SHIPPED)
    migration.delete_global_limits(apps, None)
    assert list(RiskLimit.objects.all()) == [own]


# --- the limits report (the API's /strategy/ and the admin show it) ------------------------------


@pytest.mark.safe_defaults
def test_the_report_gives_each_limit_its_value_sources_and_a_warning_when_off():
    strategy = StrategyFactory(config={"limits": {"max_order_quantity": 50}})
    RiskLimit.objects.create(
        strategy=strategy, max_order_quantity=800, max_order_value=Decimal("2000000")
    )

    report = {limit.name: limit for limit in limits_report(strategy).in_force}

    assert list(report) == list(LIMIT_FIELDS)
    quantity = report["max_order_quantity"]
    assert (quantity.value, quantity.sources) == (50, ("config",))
    assert quantity.levels == {"global": 1000, "strategy": 800, "config": Decimal("50")}
    value = report["max_order_value"]  # the global row is stricter than the strategy's
    assert (value.value, value.sources) == (Decimal("1000000.00"), ("global",))
    band = report["price_band_percent"]
    assert (band.value, band.sources, band.off, band.warning) == (
        Decimal("5.00"),
        ("global",),
        False,
        None,
    )
    drawdown = report["drawdown_limit"]
    assert (drawdown.value, drawdown.sources, drawdown.off) == (None, (), True)
    assert drawdown.warning.startswith("drawdown_limit is off")


def test_the_order_rate_falls_back_to_the_setting_and_says_so(settings):
    settings.OMS_ORDERS_PER_SECOND = 7
    rate = {limit.name: limit for limit in limits_report(None).in_force}["orders_per_second"]
    assert (rate.value, rate.sources, rate.off) == (7, ("setting",), False)


def test_without_a_global_row_the_report_warns_first_and_every_limit_but_the_rate_is_off():
    report = limits_report(StrategyFactory())
    assert report.warnings[0] == ("no global risk limits row: only a strategy's own limits apply")
    assert [limit.name for limit in report.in_force if limit.off] == [
        name for name in LIMIT_FIELDS if name != "orders_per_second"
    ]
