"""The Kite sandbox's GTTs with the official client: placed, listed, amended, deleted, and a
two-leg GTT triggered by the sandbox's price, its leg placed as an order of the account (OCO:
the other leg goes with it); read back through the OMS's own Kite adapter."""

from __future__ import annotations

from decimal import Decimal

import pytest
from kiteconnect.exceptions import InputException

from omsproject.tests.test_kite_sandbox import API_KEY, buy, log_in, sandbox_start
from omsproject.tests.test_kite_sandbox import Clock as SandboxClock
from orders.brokers.kite import KiteBroker

D = Decimal


@pytest.fixture
def sandbox():
    server = sandbox_start(SandboxClock())
    yield server
    server.stop()


@pytest.fixture
def kite(sandbox):
    return log_in(sandbox)[0]


def oco(kite, quantity=5, low=1550.0, high=1700.0):
    orders = [
        {
            "transaction_type": "SELL",
            "quantity": quantity,
            "price": price,
            "order_type": "LIMIT",
            "product": "MIS",
        }
        for price in (low - 15, high)
    ]
    return kite.place_gtt("two-leg", "INFY", "NSE", [low, high], 1600.0, orders)["trigger_id"]


def test_a_two_leg_gtt_fires_its_lower_leg_when_the_price_falls_through(sandbox, kite):
    buy(kite, quantity=5)
    trigger_id = oco(kite)
    assert kite.get_gtt(trigger_id)["status"] == "active"

    sandbox.exchange.price_set("NSE:INFY", "1560.00")  # not yet
    assert kite.get_gtt(trigger_id)["status"] == "active"
    sandbox.exchange.price_set("NSE:INFY", "1548.00")

    gtt = kite.get_gtt(trigger_id)
    assert gtt["status"] == "triggered"
    lower, upper = gtt["orders"]
    assert upper["result"] is None
    order_id = lower["result"]["order_result"]["order_id"]
    assert lower["result"]["order_result"]["status"] == "success"
    history = kite.order_history(order_id)
    assert history[-1]["status"] == "COMPLETE" and history[-1]["transaction_type"] == "SELL"
    assert history[-1]["average_price"] == 1548.0
    (position,) = kite.positions()["net"]
    assert position["quantity"] == 0

    sandbox.exchange.price_set("NSE:INFY", "1710.00")  # the other leg went with the trigger
    assert len(kite.orders()) == 2


def test_a_gtt_is_amended_and_deleted_and_then_refuses_both(sandbox, kite):
    trigger_id = oco(kite)
    orders = [
        {
            "transaction_type": "SELL",
            "quantity": 9,
            "price": 1500.0,
            "order_type": "LIMIT",
            "product": "MIS",
        }
    ]

    kite.modify_gtt(trigger_id, "single", "INFY", "NSE", [1510.0], 1600.0, orders)
    gtt = kite.get_gtt(trigger_id)
    assert (gtt["type"], gtt["condition"]["trigger_values"]) == ("single", [1510.0])
    assert gtt["orders"][0]["quantity"] == 9

    kite.delete_gtt(trigger_id)
    assert kite.get_gtt(trigger_id)["status"] == "deleted"
    with pytest.raises(InputException, match="deleted"):
        kite.delete_gtt(trigger_id)
    sandbox.exchange.price_set("NSE:INFY", "1400.00")
    assert kite.orders() == []


def test_the_oms_adapter_reads_the_sandboxs_gtts(sandbox, kite):
    trigger_id = oco(kite)
    sandbox.exchange.price_set("NSE:INFY", "1720.00")
    adapter = KiteBroker(api_key=API_KEY, access_token=kite.access_token, root=sandbox.root)

    (gtt,) = adapter.gtts()

    assert (gtt.trigger_id, gtt.status, gtt.symbol) == (str(trigger_id), "triggered", "INFY")
    assert gtt.trigger_values == (D("1550.00"), D("1700.00"))
    leg = gtt.triggered_leg
    assert leg is gtt.legs[1] and leg.order_id and leg.quantity == 5
