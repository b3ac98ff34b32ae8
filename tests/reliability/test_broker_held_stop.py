"""Worker down while the price crosses the stop: the broker-held GTT closes the position.

A LIVE strategy holds its stop-loss at Kite (protection mode BROKER): the OMS placed a two-leg
GTT for its short of 10 RELIANCE. Every worker stops; the price runs through the stop; Kite
(the cluster's fake Kite) triggers the GTT and its BUY 10 fills, with no OMS process able to
do anything. A worker comes back: the OMS reads the GTT as triggered, adopts the order Kite
placed as the position's exit and books its fills: the position is flat, with one exit order
and its charges, exactly once (the OMS's own monitor, seeing the same price, sends nothing).
"""

from __future__ import annotations

import contextlib
import time
from decimal import Decimal

import pytest
from django.db.models import Sum
from procrastinate.exceptions import AlreadyEnqueued

from orders import tasks
from orders.enums import OrderStatus, ProtectionMode, StrategyMode
from orders.models import Order, Trade
from orders.tests.conftest import kite_account_create
from orders.tests.factories import StrategyFactory
from orders.tests.fake_kite import BROKER_ORDER_ID
from positions import tasks as position_tasks
from positions.models import BrokerProtection, Position, ProtectionState
from positions.protection import protections_poll
from positions.services import position_protection_set
from positions.tests.test_broker_protection_kite import triggered_gtt
from tests.reliability.cluster import KITE_ACCESS_TOKEN, KITE_API_KEY, KITE_API_SECRET
from tests.reliability.conftest import wait_until

pytestmark = [pytest.mark.reliability, pytest.mark.django_db(transaction=True)]

D = Decimal
TRIGGER_ID = 123  # Kite's answer to the placement (gtt_place_order.json)


def active_gtt() -> dict:
    """Kite's GET /gtt/triggers while our GTT waits: the same GTT, active, no leg fired."""
    body = triggered_gtt(TRIGGER_ID, BROKER_ORDER_ID)
    gtt = body["data"][0]
    gtt["status"] = "active"
    for leg in gtt["orders"]:
        leg["result"] = None
    return body


def test_worker_down_while_the_price_crosses_the_stop(cluster, figures, settings):
    settings.KITE_API_ROOT = cluster.kite.root  # the test's own protections_poll at the end
    kite = cluster.kite
    kite_account_create(
        "AB1234", api_key=KITE_API_KEY, api_secret=KITE_API_SECRET, access_token=KITE_ACCESS_TOKEN
    )
    strategy = StrategyFactory(
        name="Broker-held stop", mode=StrategyMode.LIVE, protection_mode=ProtectionMode.BROKER
    )
    position = Position.objects.create(
        strategy=strategy,
        symbol="RELIANCE",
        exchange="NSE",
        product="MIS",
        quantity=-10,
        average_price=D("2400.00"),
        cash_flow=D("24000.00"),
        last_price=D("2400.00"),
    )
    kite.reply("POST", "/gtt/triggers", "gtt_place_order")
    kite.reply("GET", "/gtt/triggers", active_gtt())

    # The levels set: the job the service defers places the GTT (a worker, through Kite).
    position_protection_set(position, stop_loss=D("2450.00"), take_profit=D("2300.00"), actor="r")
    protection = wait_until(
        lambda: BrokerProtection.objects.filter(
            position=position, state=ProtectionState.ACTIVE
        ).first(),
        timeout=60,
        message="the GTT placed at Kite",
    )
    assert protection.trigger_id == str(TRIGGER_ID)

    # Every worker stops. The price runs through the stop (the market feed's job waits in the
    # queue); Kite triggers the GTT and fills its BUY 10 with nobody at the OMS to see it.
    workers = [w for w in cluster.workers if w.alive]
    for worker in workers:
        cluster.stop_member(worker)
    down_at = time.monotonic()
    tasks.apply_prices.defer(prices=[["RELIANCE", "NSE", "2460.00"]])
    kite.reply("GET", "/gtt/triggers", triggered_gtt(TRIGGER_ID, BROKER_ORDER_ID), replace=True)
    kite.reply("GET", f"/orders/{BROKER_ORDER_ID}", "order_history", replace=True)
    kite.reply("GET", f"/orders/{BROKER_ORDER_ID}/trades", "order_trades", replace=True)
    time.sleep(2)
    position.refresh_from_db()
    assert position.quantity == -10  # nothing at the OMS moved

    # A worker comes back: the minute's protections job (deferred here at once) reads the GTT.
    back = cluster.start_worker("worker-back")
    with contextlib.suppress(AlreadyEnqueued):  # its own periodic deferrer may be first
        position_tasks.protections.defer(timestamp=int(time.time()))
    wait_until(
        lambda: Position.objects.get(pk=position.pk).closed_at is not None,
        timeout=60,
        message="the exit Kite made booked to the position",
    )
    booked_in = time.monotonic() - down_at
    cluster.drain(timeout=60)
    protections_poll()  # once more, from here: nothing left to adopt

    position.refresh_from_db()
    protection.refresh_from_db()
    exits = Order.objects.filter(closes_position=position)
    assert exits.count() == 1
    exit_order = exits.get()
    assert (exit_order.status, exit_order.side, exit_order.filled_quantity) == (
        OrderStatus.FILLED,
        "BUY",
        10,
    )
    assert exit_order.broker_order_id == BROKER_ORDER_ID
    assert Order.objects.filter(strategy=strategy).count() == 1  # no OMS-side exit besides
    trades = Trade.objects.filter(order=exit_order)
    assert trades.aggregate(total=Sum("quantity"))["total"] == 10
    assert trades.count() == 2 and all(t.total_charges > 0 for t in trades)
    assert (protection.state, protection.exit_order_id) == (
        ProtectionState.TRIGGERED,
        exit_order.pk,
    )
    assert position.quantity == 0 and position.realized_pnl < 0  # stopped out of the short
    assert kite.count("POST", "/gtt/triggers") == 1

    cluster.start_worker("worker-back-2")  # the cluster as it was: two workers
    figures(
        f"all workers down while the price crossed a broker-held stop: Kite's GTT closed the "
        f"position; {back.name} booked the exit {booked_in:.1f}s after the workers stopped "
        f"(1 exit order, {trades.count()} fills, once)"
    )
