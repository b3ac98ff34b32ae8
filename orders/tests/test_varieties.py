"""Kite's varieties on the paper broker, end to end: iceberg (leg by leg) and AMO (queued for
the next open), with the rules in the request, the checks and the database."""

from __future__ import annotations

import itertools
from datetime import datetime
from decimal import Decimal
from types import SimpleNamespace

import pytest
from django.db import IntegrityError, transaction

from orders import tasks
from orders.domain import OrderRequest, OrderRequestError
from orders.enums import OrderStatus, Variety
from orders.models import Order, PaperOrder, Trade
from orders.services import order_cancel, order_modify, order_place
from orders.tests.factories import (
    StrategyFactory,
    order_row,
    raw_insert,
    violated_constraint,
)
from orders.varieties import iceberg_leg_quantities
from positions.models import Position
from positions.services import market_prices_update
from risk import calendar

FUT = "NIFTY26DECFUT"  # NFO, lot 65, tick 0.10, freeze 1,800 (the sample master)
_ids = itertools.count(1)


def request(strategy, **overrides) -> OrderRequest:
    fields = {
        "strategy_id": strategy.pk,
        "client_order_id": f"var-{next(_ids)}",
        "symbol": FUT,
        "exchange": "NFO",
        "side": "BUY",
        "quantity": 3900,
        "order_type": "LIMIT",
        "price": Decimal("26000.00"),
        "product": "NRML",
        "variety": "iceberg",
        "iceberg_legs": 3,
        "iceberg_quantity": 1300,
    }
    fields.update(overrides)
    return OrderRequest(**fields)


@pytest.fixture
def clock(monkeypatch):
    """The calendar's "now" (the validator's and the paper exchange's clock), in IST."""

    def set_clock(moment: str) -> None:
        at = datetime.fromisoformat(moment).replace(tzinfo=calendar.IST)
        monkeypatch.setattr(calendar, "timezone", SimpleNamespace(now=lambda: at))

    return set_clock


# --- the rules, in the request and in the database ------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "field", "rule"),
    [
        ({"iceberg_legs": 1}, "iceberg_legs", "iceberg_legs 1: must be from 2 to 50"),
        ({"iceberg_legs": 51}, "iceberg_legs", "iceberg_legs 51: must be from 2 to 50"),
        ({"iceberg_legs": None}, "iceberg_legs", "iceberg_legs missing"),
        ({"iceberg_quantity": 1000}, "iceberg_quantity", "at least quantity / legs = 1300"),
        ({"iceberg_quantity": 1950}, "iceberg_quantity", "leave the last one empty"),
        (
            {"order_type": "MARKET", "price": None},
            "order_type",
            "order_type MARKET: an iceberg order is LIMIT or SL",
        ),
        ({"validity": "IOC"}, "validity", "validity IOC: an iceberg order is DAY"),
        (
            {"variety": "regular", "quantity": 65},
            "iceberg_legs",
            "iceberg_legs 3: only for variety iceberg",
        ),
        ({"variety": "co"}, "variety", "variety 'co': must be one of regular, amo, iceberg"),
    ],
)
def test_a_request_breaking_the_iceberg_rules_names_the_field_and_the_rule(
    db, overrides, field, rule
):
    strategy = StrategyFactory()
    with pytest.raises(OrderRequestError) as refused:
        request(strategy, **overrides)

    assert rule in refused.value.errors[field]


def test_iceberg_legs_are_the_leg_quantity_and_the_rest():
    assert iceberg_leg_quantities(2015, 2, 1040) == [1040, 975]
    assert iceberg_leg_quantities(3900, 3, 1300) == [1300, 1300, 1300]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("columns", "constraint"),
    [
        ({"variety": "co"}, "order_variety_valid"),
        (
            {"variety": "iceberg", "iceberg_legs": 1, "iceberg_quantity": 10},
            "order_iceberg_legs_valid",
        ),
        (
            {"variety": "iceberg", "iceberg_legs": 2, "iceberg_quantity": 4},
            "order_iceberg_legs_valid",
        ),
        (
            {"variety": "iceberg", "iceberg_legs": 2, "iceberg_quantity": 10},
            "order_iceberg_legs_valid",
        ),
        (
            {"variety": "regular", "iceberg_legs": 2, "iceberg_quantity": 5},
            "order_iceberg_legs_valid",
        ),
        (
            {
                "variety": "iceberg",
                "iceberg_legs": 2,
                "iceberg_quantity": 5,
                "order_type": "MARKET",
                "price": None,
            },
            "order_iceberg_legs_valid",
        ),
    ],
)
def test_the_database_refuses_an_order_breaking_the_variety_rules(columns, constraint):
    strategy = StrategyFactory()
    with pytest.raises(IntegrityError) as refused, transaction.atomic():
        raw_insert("orders", order_row(strategy.pk, quantity=10, **columns))

    assert violated_constraint(refused.value) == constraint


@pytest.mark.django_db
def test_the_database_takes_a_valid_iceberg_and_defaults_the_variety_to_regular():
    strategy = StrategyFactory()
    iceberg = raw_insert(
        "orders", order_row(strategy.pk, variety="iceberg", iceberg_legs=2, iceberg_quantity=5)
    )
    plain = raw_insert("orders", order_row(strategy.pk))

    assert Order.objects.get(pk=iceberg).variety == Variety.ICEBERG
    assert Order.objects.get(pk=plain).variety == Variety.REGULAR


# --- the pre-trade checks ----------------------------------------------------------------------


@pytest.mark.django_db
def test_an_iceberg_leg_above_the_freeze_quantity_is_refused_on_its_leg_quantity():
    strategy = StrategyFactory()
    result = order_place(
        request(strategy, quantity=3900, iceberg_legs=2, iceberg_quantity=1950), actor="t"
    )

    odd_lots = order_place(
        request(strategy, quantity=3900, iceberg_legs=3, iceberg_quantity=1310), actor="t"
    )

    assert result.status == OrderStatus.REJECTED
    (violation,) = result.violations
    assert (violation.code, violation.field) == ("freeze_quantity", "iceberg_quantity")
    assert violation.message == (
        "iceberg_quantity 1950: above the freeze quantity 1800 for one leg"
    )
    assert [(v.code, v.field) for v in odd_lots.violations] == [("lot_size", "iceberg_quantity")]


@pytest.mark.django_db
def test_an_iceberg_splits_what_a_regular_order_may_not_send():
    strategy = StrategyFactory()
    regular = order_place(
        request(strategy, variety="regular", iceberg_legs=None, iceberg_quantity=None),
        actor="t",
    )
    iceberg = order_place(request(strategy), actor="t")

    assert [(v.code, v.field) for v in regular.violations] == [("freeze_quantity", "quantity")]
    assert iceberg.accepted, iceberg.violations
    assert (iceberg.order.iceberg_legs, iceberg.order.iceberg_quantity) == (3, 1300)


@pytest.mark.django_db
def test_an_amo_during_the_session_is_refused_and_outside_it_taken_with_its_checks(clock, settings):
    settings.OMS_PAPER_MARKET_HOURS = "enforce"
    strategy = StrategyFactory()
    amo = {"variety": "amo", "iceberg_legs": None, "iceberg_quantity": None, "quantity": 65}
    clock("2026-01-14 11:00")
    during = order_place(request(strategy, **amo), actor="t")
    clock("2026-01-14 15:50")  # F&O takes AMOs from 15:45
    after_close = order_place(request(strategy, **amo), actor="t")
    clock("2026-01-17 12:00")  # a Saturday: at any hour
    weekend = order_place(request(strategy, **amo, side="SELL"), actor="t")

    (violation,) = during.violations
    assert (violation.code, violation.field) == ("amo_window", "variety")
    assert "after-market orders are taken 15:45-09:10" in violation.message
    assert after_close.accepted and weekend.accepted
    checks = Order.objects.get(pk=after_close.order_id).metadata["checks"]
    assert checks["at_open"] == ["price_band", "trigger_side", "price_stale", "market_hours"]
    assert "kill_switch" in checks["now"]


@pytest.mark.django_db
def test_an_equity_amo_waits_for_4_pm(clock):
    strategy = StrategyFactory()
    equity = {
        "symbol": "SBIN",
        "exchange": "NSE",
        "product": "CNC",
        "quantity": 1,
        "price": Decimal("800.00"),
        "variety": "amo",
        "iceberg_legs": None,
        "iceberg_quantity": None,
    }
    clock("2026-01-14 15:50")
    early = order_place(request(strategy, **equity), actor="t")
    clock("2026-01-14 16:00")
    taken = order_place(request(strategy, **equity), actor="t")

    assert [v.code for v in early.violations] == ["amo_window"]
    assert taken.accepted


# --- the paper exchange, end to end ----------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_an_iceberg_fills_leg_by_leg_and_only_its_fills_move_the_position(run_jobs):
    strategy = StrategyFactory()
    market_prices_update([(FUT, "NFO", Decimal("26050.00"))])
    order = order_place(request(strategy), actor="t").order
    run_jobs()
    assert Order.objects.get(pk=order.pk).status == OrderStatus.OPEN

    tasks.apply_prices.defer(prices=[[FUT, "NFO", "25990.00"]])
    run_jobs()

    order.refresh_from_db()
    assert (order.status, order.filled_quantity) == (OrderStatus.FILLED, 3900)
    legs = list(Trade.objects.filter(order=order).order_by("id").values_list("quantity", "price"))
    assert legs == [(1300, Decimal("25990.00"))] * 3
    assert Position.objects.get(strategy=strategy, symbol=FUT).quantity == 3900


@pytest.mark.django_db(transaction=True)
def test_an_amo_is_queued_by_the_paper_exchange_and_released_at_the_open(clock, run_jobs):
    strategy = StrategyFactory()
    market_prices_update([(FUT, "NFO", Decimal("26050.00"))])
    clock("2026-01-13 18:30")
    amo = request(
        strategy,
        variety="amo",
        iceberg_legs=None,
        iceberg_quantity=None,
        quantity=65,
        order_type="MARKET",
        price=None,
    )
    order = order_place(amo, actor="t").order
    run_jobs()
    tasks.apply_prices.defer(prices=[[FUT, "NFO", "26040.00"]])  # after hours: no match
    run_jobs()

    order.refresh_from_db()
    assert (order.status, order.filled_quantity) == (OrderStatus.OPEN, 0)
    assert PaperOrder.objects.get(tag=order.broker_tag).status == "AMO REQ RECEIVED"

    clock("2026-01-14 09:15")
    tasks.apply_prices.defer(prices=[[FUT, "NFO", "26010.00"]])
    run_jobs()

    order.refresh_from_db()
    assert (order.status, order.filled_quantity) == (OrderStatus.FILLED, 65)
    assert order.average_price == Decimal("26010.00")
    assert PaperOrder.objects.get(tag=order.broker_tag).message == (
        "after-market order released at the open"
    )


@pytest.mark.django_db(transaction=True)
def test_a_queued_amo_can_be_cancelled_before_the_open(clock, run_jobs):
    strategy = StrategyFactory()
    clock("2026-01-13 18:30")
    amo = request(strategy, variety="amo", iceberg_legs=None, iceberg_quantity=None, quantity=65)
    order = order_place(amo, actor="t").order
    run_jobs()

    order_cancel(order.pk, actor="t", reason="changed my mind")
    run_jobs()

    order.refresh_from_db()
    assert order.status == OrderStatus.CANCELLED
    assert PaperOrder.objects.get(tag=order.broker_tag).status == "CANCELLED"


@pytest.mark.django_db(transaction=True)
def test_a_modified_iceberg_is_checked_as_an_iceberg(run_jobs):
    strategy = StrategyFactory()
    market_prices_update([(FUT, "NFO", Decimal("26050.00"))])
    order = order_place(request(strategy), actor="t").order
    run_jobs()

    order_modify(order.pk, actor="t", price=Decimal("26010.00"))
    with pytest.raises(OrderRequestError) as refused:
        order_modify(order.pk, actor="t", quantity=5200)  # 3 legs of 1,300 hold 3,900

    assert Order.objects.get(pk=order.pk).metadata["pending_modification"] is not None
    assert "iceberg_quantity 1300: at least quantity / legs = 1734" in str(refused.value)


@pytest.mark.django_db(transaction=True)
def test_an_amo_released_at_the_open_is_modified_like_any_order(clock, run_jobs):
    strategy = StrategyFactory()
    market_prices_update([(FUT, "NFO", Decimal("26050.00"))])
    clock("2026-01-13 18:30")
    amo = request(strategy, variety="amo", iceberg_legs=None, iceberg_quantity=None, quantity=65)
    order = order_place(amo, actor="t").order
    run_jobs()
    clock("2026-01-14 10:00")

    order_modify(order.pk, actor="t", price=Decimal("26020.00"))

    assert Order.objects.get(pk=order.pk).metadata["pending_modification"]["price"] == "26020.00"
