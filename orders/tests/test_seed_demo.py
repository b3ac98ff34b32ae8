"""seed_demo --orders N: a bulk history loaded with COPY, checked by the database and by us."""

from __future__ import annotations

from collections import Counter, defaultdict
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db.models import Count, Sum
from django.utils import timezone

from omsproject.demo_history import BULK_PREFIX, NO_FILL_EVERY
from orders.charges import charges_for_value
from orders.enums import OrderStatus
from orders.models import Order, OrderEvent, Strategy, Trade
from positions.models import DailyStats, Position
from positions.statistics import daily_stats_compute, strategy_counters_check

pytestmark = pytest.mark.django_db


def seed(*args) -> str:
    out = StringIO()
    call_command("seed_demo", *args, stdout=out)
    return out.getvalue()


def bulk_orders():
    return Order.objects.filter(client_order_id__startswith=BULK_PREFIX)


def test_bulk_history_of_2000_orders():
    output = seed("--orders", "2000", "--days", "5", "--chunk", "600")

    assert "  2,000/2,000 orders (" in output
    assert "bulk history: 2000 orders, " in output
    orders = bulk_orders()
    assert orders.count() == 2000
    traders = set(orders.values_list("strategy__name", flat=True))
    assert traders == {"Momentum NIFTY50", "Mean Reversion Banks"}  # the demo's paper ones
    # One round trip in 25 never trades: a cancelled entry and a rejected exit.
    statuses = Counter(orders.values_list("status", flat=True))
    assert statuses == {
        OrderStatus.FILLED: 2000 - 2 * (1000 // NO_FILL_EVERY),
        OrderStatus.CANCELLED: 1000 // NO_FILL_EVERY,
        OrderStatus.REJECTED: 1000 // NO_FILL_EVERY,
    }
    assert Trade.objects.count() == 3 * statuses[OrderStatus.FILLED]
    assert OrderEvent.objects.filter(order__in=orders).count() == 4000
    assert Position.objects.filter(closed_at__isnull=False).count() == statuses["FILLED"] // 2
    assert not Position.objects.filter(closed_at__isnull=True).exists()  # round trips only
    assert len({timezone.localdate(at) for at in orders.values_list("created_at", flat=True)}) == 5


def test_bulk_fills_add_up_to_their_orders_and_their_charges():
    seed("--orders", "400", "--days", "3")

    fills = defaultdict(list)
    for trade in Trade.objects.select_related("order"):
        fills[trade.order].append(trade)
    assert len(fills) == 384
    for order, trades in fills.items():
        assert order.status == OrderStatus.FILLED
        assert sum(t.quantity for t in trades) == order.quantity == order.filled_quantity
        value = sum(t.gross_value for t in trades)
        assert (value / order.quantity).quantize(Decimal("0.000001")) == order.average_price
        assert all(t.gross_value == t.quantity * t.price for t in trades)
        # The fills' charges are the whole order's, component by component (charges.md).
        whole = charges_for_value(
            order.side,
            value,
            order.product,
            on=timezone.localdate(order.created_at),
        )
        assert sum(t.brokerage for t in trades) == whole.brokerage
        assert sum(t.stt for t in trades) == whole.stt
        assert sum(t.gst for t in trades) == whole.gst
        assert sum(t.total_charges for t in trades) == whole.total
        if order.order_type == "LIMIT":
            assert all(
                (t.price <= order.price) if order.side == "BUY" else (t.price >= order.price)
                for t in trades
            )


def test_bulk_history_keeps_the_strategy_counters_and_the_statistics_true():
    seed("--orders", "600", "--days", "4")

    assert strategy_counters_check() == []
    first, last = (
        Order.objects.filter(client_order_id__startswith=BULK_PREFIX)
        .order_by("created_at")
        .values_list("created_at", flat=True)[i]
        for i in (0, 599)
    )
    day_from, day_to = timezone.localdate(first), timezone.localdate(last)
    daily_stats_compute(date_from=day_from, date_to=day_to)

    totals = DailyStats.objects.filter(strategy=None).aggregate(
        orders=Sum("total_orders"), trades=Sum("total_trades"), wins=Sum("winning_trades")
    )
    assert totals["orders"] == 600
    assert totals["trades"] == Trade.objects.count()
    winners = Position.objects.filter(realized_pnl__gt=0).count()
    assert totals["wins"] == winners
    assert Strategy.objects.aggregate(w=Sum("winning_trades"))["w"] == winners


def test_a_second_run_adds_nothing_and_a_larger_one_only_the_rest():
    seed("--orders", "301", "--days", "2")

    assert "nothing to add" in seed("--orders", "301", "--days", "2")
    assert "nothing to add" in seed("--orders", "100")  # already more than that
    assert bulk_orders().count() == 301

    output = seed("--orders", "400", "--days", "2")

    assert "bulk history: 99 orders, " in output
    assert bulk_orders().count() == 400
    ids = list(bulk_orders().values_list("client_order_id", flat=True))
    assert sorted(ids) == [f"{BULK_PREFIX}{n:09d}" for n in range(400)]
    # Order 300 ended the first run alone (its exit was not asked for): a cancelled entry;
    # order 301, its exit, came with the second run: rejected.
    statuses = dict(bulk_orders().values_list("client_order_id", "status"))
    assert statuses[f"{BULK_PREFIX}000000300"] == OrderStatus.CANCELLED
    assert statuses[f"{BULK_PREFIX}000000301"] == OrderStatus.REJECTED
    assert strategy_counters_check() == []
    per_order = Trade.objects.values("order").annotate(n=Count("id")).values_list("n", flat=True)
    assert set(per_order) == {3}


def test_bulk_mode_refuses_bad_numbers():
    with pytest.raises(CommandError, match=r"^--orders -1: must be 0 or more$"):
        seed("--orders", "-1")
    with pytest.raises(CommandError, match=r"^--days 0: must be at least 1$"):
        seed("--orders", "10", "--days", "0")


def test_verbosity_0_prints_nothing():
    assert seed("--orders", "10", "--verbosity", "0") == ""
    assert bulk_orders().count() == 10
