"""Broker-held protection through Kite Connect: the official SDK against the fake Kite HTTP
server answering with Kite's GTT JSON (kiteconnect-mocks' gtt_*.json). Placed, amended and
deleted with the SDK's own requests; a GTT Kite triggered is adopted and booked once."""

from __future__ import annotations

import copy
import json
from decimal import Decimal

import pytest

from orders.brokers.base import GttLeg, GttRequest
from orders.brokers.kite import KiteBroker
from orders.enums import OrderStatus, ProtectionMode, StrategyMode
from orders.models import Order, Trade
from orders.tests.conftest import kite_account_create
from orders.tests.factories import StrategyFactory
from orders.tests.fake_kite import BROKER_ORDER_ID, FakeKiteServer, recorded
from positions.models import BrokerProtection, ProtectionState
from positions.protection import protections_poll, protections_sync
from positions.services import position_protection_set
from positions.tests.factories import PositionFactory

pytestmark = pytest.mark.django_db

D = Decimal
TRIGGERS = ("POST", "/gtt/triggers")
LIST = ("GET", "/gtt/triggers")


@pytest.fixture
def kite_account(db):
    return kite_account_create()


@pytest.fixture
def kite_server(settings, kite_account):
    """As the orders tests': a fake Kite and a LIVE desk's account logged in to it."""
    server = FakeKiteServer().start()
    settings.KITE_API_ROOT = server.root
    yield server
    server.stop()
    assert not server.unexpected, f"requests Kite was not expected to get: {server.unexpected}"


def kite_broker(kite_account) -> KiteBroker:
    return KiteBroker.for_account(kite_account)


def test_the_adapter_places_a_two_leg_gtt_as_kite_wants_it(kite_server, kite_account):
    kite_server.reply(*TRIGGERS, "gtt_place_order")
    request = GttRequest(
        symbol="INFY",
        exchange="NSE",
        product="MIS",
        trigger_values=(D("1450.00"), D("1600.00")),
        last_price=D("1500.00"),
        legs=(
            GttLeg(side="SELL", quantity=5, price=D("1435.50")),
            GttLeg(side="SELL", quantity=5, price=D("1600.00")),
        ),
    )

    trigger_id = kite_broker(kite_account).place_gtt(request)

    assert trigger_id == "123"
    sent = kite_server.sent[-1]
    assert sent.data["type"] == "two-leg"
    condition = json.loads(sent.data["condition"])
    assert condition == {
        "exchange": "NSE",
        "tradingsymbol": "INFY",
        "trigger_values": [1450.0, 1600.0],
        "last_price": 1500.0,
    }
    legs = json.loads(sent.data["orders"])
    assert [(o["transaction_type"], o["quantity"], o["price"], o["order_type"]) for o in legs] == [
        ("SELL", 5, 1435.5, "LIMIT"),
        ("SELL", 5, 1600.0, "LIMIT"),
    ]


def test_the_adapter_reads_kites_gtts(kite_server, kite_account):
    kite_server.reply(*LIST, "gtt_get_orders")

    single, oco = kite_broker(kite_account).gtts()

    assert (single.trigger_id, single.status, single.trigger_values) == (
        "112127",
        "active",
        (D("702.00"),),
    )
    assert single.triggered_leg is None and single.legs[0].price == D("702.50")
    assert (oco.status, oco.symbol, oco.trigger_values) == (
        "triggered",
        "RAIN",
        (D("102.00"), D("103.70")),
    )
    leg = oco.triggered_leg
    assert leg is oco.legs[1] and leg.order_id == ""
    assert "lower than the current lower circuit" in leg.rejection


def live_short_with_levels(kite_account):
    strategy = StrategyFactory(
        mode=StrategyMode.LIVE, broker_account=kite_account, protection_mode=ProtectionMode.BROKER
    )
    return PositionFactory(
        strategy=strategy,
        symbol="RELIANCE",
        quantity=-10,
        average_price=D("2400.00"),
        last_price=D("2400.00"),
        stop_loss=D("2450.00"),
        take_profit=D("2300.00"),
    )


def triggered_gtt(trigger_id: int, order_id: str) -> dict:
    """Kite's GET /gtt/triggers with our two-leg GTT triggered on its upper leg (the stop)."""
    body = copy.deepcopy(recorded("gtt_get_orders"))
    gtt = body["data"][1]
    gtt["id"] = trigger_id
    gtt["condition"].update(tradingsymbol="RELIANCE", trigger_values=[2300.0, 2450.0])
    for leg in gtt["orders"]:
        leg.update(tradingsymbol="RELIANCE", product="MIS", transaction_type="BUY", quantity=10)
    gtt["orders"][0]["price"] = 2300.0
    gtt["orders"][1]["price"] = 2474.5
    gtt["orders"][1]["result"]["order_result"] = {
        "status": "success",
        "order_id": order_id,
        "rejection_reason": "",
    }
    body["data"] = [gtt]
    return body


def test_a_live_position_gets_its_gtt_amended_then_triggered_and_booked_once(
    kite_server, kite_account
):
    position = live_short_with_levels(kite_account)
    kite_server.reply(*TRIGGERS, "gtt_place_order")

    protections_sync()

    protection = BrokerProtection.objects.get(position=position)
    assert (protection.state, protection.trigger_id, protection.broker) == ("ACTIVE", "123", "kite")
    legs = json.loads(kite_server.sent[-1].data["orders"])
    assert [(o["transaction_type"], o["quantity"], o["price"]) for o in legs] == [
        ("BUY", 10, 2300.0),  # the take-profit, the lower trigger of a short
        ("BUY", 10, 2474.5),  # the stop-loss, 1% above its trigger
    ]

    kite_server.reply("PUT", "/gtt/triggers/123", "gtt_modify_order")
    position_protection_set(position, stop_loss=D("2440.00"), take_profit=D("2300.00"), actor="r")
    protections_sync()
    assert json.loads(kite_server.sent[-1].data["condition"])["trigger_values"] == [2300.0, 2440.0]

    # Kite triggered it (the OMS was away): its BUY 10 filled in two trades.
    kite_server.reply(*LIST, triggered_gtt(123, BROKER_ORDER_ID))
    kite_server.reply("GET", f"/orders/{BROKER_ORDER_ID}", "order_history")
    kite_server.reply("GET", f"/orders/{BROKER_ORDER_ID}/trades", "order_trades")
    protections_poll()
    protections_poll()  # nothing live is left to read: no second adoption, no second fill

    position.refresh_from_db()
    protection.refresh_from_db()
    assert position.quantity == 0 and position.closed_at is not None
    assert protection.state == ProtectionState.TRIGGERED
    exit_order = Order.objects.get(closes_position=position)
    assert exit_order == protection.exit_order
    assert (exit_order.status, exit_order.broker_order_id, exit_order.filled_quantity) == (
        OrderStatus.FILLED,
        BROKER_ORDER_ID,
        10,
    )
    assert sorted(Trade.objects.filter(order=exit_order).values_list("quantity", flat=True)) == [
        4,
        6,
    ]
    assert kite_server.count(*LIST) == 1


def test_a_closed_position_has_its_gtt_deleted_at_kite(kite_server, kite_account):
    position = live_short_with_levels(kite_account)
    kite_server.reply(*TRIGGERS, "gtt_place_order")
    protections_sync()
    kite_server.reply("DELETE", "/gtt/triggers/123", "gtt_delete_order")

    type(position).objects.filter(pk=position.pk).update(
        quantity=0, closed_at=position.opened_at, stop_loss=None, take_profit=None
    )
    protections_sync()

    protection = BrokerProtection.objects.get(position=position)
    assert protection.state == ProtectionState.CANCELLED
    assert kite_server.count("DELETE", "/gtt/triggers/123") == 1
