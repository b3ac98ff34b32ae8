"""A position's stop-loss / take-profit held at the broker as a GTT (positions.protection), on
the paper broker end to end: the real worker runs the jobs, the paper exchange triggers its
GTTs on prices. Placed when the position opens, amended when it grows, cancelled when it
closes; a GTT that triggers is booked to the position once; with "both", no double exit."""

from __future__ import annotations

import itertools
from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction

from omsproject.testing.threads import run_together
from orders import tasks
from orders.brokers.paper import PaperBroker
from orders.domain import OrderRequest
from orders.enums import OrderStatus, ProtectionMode
from orders.models import Order, PaperGtt, Trade
from orders.services import order_place
from orders.tests.factories import StrategyFactory
from positions.exits import positions_check_exits, positions_flatten
from positions.models import BrokerProtection, Position, ProtectionState
from positions.protection import gtt_request, held_terms, protections_poll, protections_sync
from positions.services import market_prices_update, position_protection_set, positions_mark

pytestmark = pytest.mark.django_db(transaction=True)

D = Decimal
SYMBOL = "SBIN"
LAST = D("812.35")
_ids = itertools.count(1)


@pytest.fixture
def last_price():
    market_prices_update([(SYMBOL, "NSE", LAST)])
    return LAST


def strategy_with(mode: str):
    return StrategyFactory(protection_mode=mode)


def buy(strategy, quantity=10, side="BUY", **levels) -> Order:
    result = order_place(
        OrderRequest(
            strategy_id=strategy.pk,
            client_order_id=f"gtt-test-{next(_ids)}",
            symbol=SYMBOL,
            side=side,
            quantity=quantity,
            order_type="MARKET",
            product="MIS",
            **levels,
        ),
        actor="tester",
    )
    assert result.accepted, result
    return Order.objects.get(pk=result.order_id)


def tick(run_jobs, price: str) -> None:
    tasks.apply_prices.defer(prices=[[SYMBOL, "NSE", price]])
    run_jobs()


def open_position(strategy, run_jobs, **levels) -> Position:
    buy(strategy, stop_loss=D("800.00"), take_profit=D("830.00"), **levels)
    run_jobs()  # submit, fill; the fill defers the protection's job, which runs too
    return Position.objects.get(strategy=strategy, closed_at__isnull=True)


def test_an_opened_position_gets_a_two_leg_gtt_at_the_broker(last_price, run_jobs):
    strategy = strategy_with(ProtectionMode.BROKER)

    position = open_position(strategy, run_jobs)

    protection = BrokerProtection.objects.get(position=position)
    assert protection.state == ProtectionState.ACTIVE
    assert (protection.quantity, protection.stop_loss, protection.take_profit) == (
        10,
        D("800.00"),
        D("830.00"),
    )
    gtt = PaperGtt.objects.get(pk=int(protection.trigger_id))
    assert gtt.status == "active" and gtt.trigger_type == "two-leg"
    assert gtt.trigger_values == ["800.00", "830.00"]
    # SELL legs: the stop 1% below its trigger (to 0.05), the target at its trigger.
    assert [(leg["transaction_type"], leg["quantity"], leg["price"]) for leg in gtt.legs] == [
        ("SELL", 10, "792.00"),
        ("SELL", 10, "830.00"),
    ]


def test_a_short_gets_buy_legs_with_the_stop_as_the_upper_trigger():
    strategy = strategy_with(ProtectionMode.BROKER)
    position = Position(
        strategy=strategy,
        symbol=SYMBOL,
        exchange="NSE",
        product="MIS",
        quantity=-7,
        average_price=D("100"),
        stop_loss=D("105.00"),
        take_profit=D("90.00"),
    )
    request = gtt_request(position, held_terms_of(position))
    assert request.trigger_values == (D("90.00"), D("105.00"))
    assert [(leg.side, leg.quantity, leg.price) for leg in request.legs] == [
        ("BUY", 7, D("90.00")),
        ("BUY", 7, D("106.05")),
    ]


def held_terms_of(position):
    return held_terms(
        BrokerProtection(
            quantity=abs(position.quantity),
            stop_loss=position.stop_loss,
            take_profit=position.take_profit,
        )
    )


def test_the_gtt_follows_the_quantity_and_the_levels(last_price, run_jobs):
    strategy = strategy_with(ProtectionMode.BROKER)
    position = open_position(strategy, run_jobs)
    protection = BrokerProtection.objects.get(position=position)

    buy(strategy, quantity=5)
    run_jobs()
    gtt = PaperGtt.objects.get(pk=int(protection.trigger_id))
    assert [leg["quantity"] for leg in gtt.legs] == [15, 15]

    position_protection_set(position, stop_loss=D("805.00"), take_profit=None, actor="rita")
    run_jobs()
    gtt.refresh_from_db()
    protection.refresh_from_db()
    assert gtt.trigger_type == "single" and gtt.trigger_values == ["805.00"]
    assert protection.state == ProtectionState.ACTIVE
    assert (protection.quantity, protection.stop_loss, protection.take_profit) == (
        15,
        D("805.00"),
        None,
    )
    # A partial close amends it down.
    buy(strategy, quantity=6, side="SELL")
    run_jobs()
    gtt.refresh_from_db()
    assert [leg["quantity"] for leg in gtt.legs] == [9]
    assert BrokerProtection.objects.filter(position=position).count() == 1


def test_the_gtt_is_cancelled_when_the_position_closes(last_price, run_jobs):
    strategy = strategy_with(ProtectionMode.BROKER)
    position = open_position(strategy, run_jobs)
    protection = BrokerProtection.objects.get(position=position)

    buy(strategy, quantity=10, side="SELL")
    run_jobs()

    protection.refresh_from_db()
    assert protection.state == ProtectionState.CANCELLED and protection.ended_at is not None
    assert PaperGtt.objects.get(pk=int(protection.trigger_id)).status == "deleted"


def test_a_triggered_gtt_closes_the_position_and_is_booked_once(last_price, run_jobs):
    strategy = strategy_with(ProtectionMode.BROKER)
    position = open_position(strategy, run_jobs)
    protection = BrokerProtection.objects.get(position=position)

    tick(run_jobs, "799.00")  # through the stop: the GTT's SELL LIMIT 792 fills at 799
    tick(run_jobs, "798.00")
    protections_poll()
    protections_sync()

    position.refresh_from_db()
    protection.refresh_from_db()
    assert position.quantity == 0 and position.closed_at is not None
    assert protection.state == ProtectionState.TRIGGERED
    exits = Order.objects.filter(closes_position=position)
    assert exits.count() == 1  # the GTT's order only: the OMS monitor left it to the broker
    exit_order = exits.get()
    assert exit_order == protection.exit_order == position.exit_order
    assert (exit_order.status, exit_order.side, exit_order.filled_quantity) == (
        OrderStatus.FILLED,
        "SELL",
        10,
    )
    trades = Trade.objects.filter(order=exit_order)
    assert trades.count() == 1 and trades.get().price == D("799.00")
    assert trades.get().total_charges > 0
    assert position.realized_pnl == (D("799.00") - LAST) * 10
    assert Order.objects.filter(strategy=strategy).count() == 2


def test_with_both_the_oms_exit_deletes_the_gtt_first(last_price, run_jobs):
    strategy = strategy_with(ProtectionMode.BOTH)
    position = open_position(strategy, run_jobs)
    protection = BrokerProtection.objects.get(position=position)

    # A mark through the stop that the paper exchange has not seen (its GTT not triggered).
    positions_mark([(SYMBOL, "NSE", D("799.00"))])
    positions_check_exits()

    protection.refresh_from_db()
    assert protection.state == ProtectionState.CANCELLED
    assert PaperGtt.objects.get(pk=int(protection.trigger_id)).status == "deleted"
    exits = Order.objects.filter(closes_position=position)
    assert exits.count() == 1 and exits.get().tag == "stop-loss"
    run_jobs()
    position.refresh_from_db()
    assert position.quantity == 0
    assert BrokerProtection.objects.filter(position=position).count() == 1  # none placed again


def test_with_both_a_triggered_gtt_means_no_oms_exit(last_price, run_jobs):
    strategy = strategy_with(ProtectionMode.BOTH)
    position = open_position(strategy, run_jobs)

    tick(run_jobs, "799.00")  # the GTT triggers in the tick, before the monitor looks

    position.refresh_from_db()
    assert position.quantity == 0
    exits = Order.objects.filter(closes_position=position)
    assert [o.tag for o in exits] == ["gtt"]
    assert Order.objects.filter(strategy=strategy).count() == 2


def test_oms_only_strategies_get_no_gtt(last_price, run_jobs):
    strategy = strategy_with(ProtectionMode.OMS)

    open_position(strategy, run_jobs)

    assert not BrokerProtection.objects.exists() and not PaperGtt.objects.exists()


def test_a_refused_gtt_fails_and_leaves_the_oms_monitor_in_charge(last_price, run_jobs):
    strategy = strategy_with(ProtectionMode.BROKER)
    strategy.config = {"paper": {"fault": "gtt_reject"}}
    strategy.save(update_fields=["config"])

    position = open_position(strategy, run_jobs)

    protection = BrokerProtection.objects.get(position=position)
    assert protection.state == ProtectionState.FAILED
    assert "simulated GTT rejection" in protection.last_error
    positions_mark([(SYMBOL, "NSE", D("799.00"))])
    positions_check_exits()
    assert Order.objects.filter(closes_position=position, tag="stop-loss").count() == 1


def test_the_database_refuses_a_second_live_protection_and_an_unknown_mode(last_price, run_jobs):
    strategy = strategy_with(ProtectionMode.BROKER)
    position = open_position(strategy, run_jobs)

    with (
        pytest.raises(IntegrityError, match="protection_one_live_per_position"),
        transaction.atomic(),
    ):
        BrokerProtection.objects.create(
            position=position, strategy=strategy, broker="paper", quantity=10, stop_loss=1
        )
    with (
        pytest.raises(IntegrityError, match="protection_held_has_trigger_id"),
        transaction.atomic(),
    ):
        BrokerProtection.objects.filter(position=position).update(trigger_id="")
    with (
        pytest.raises(IntegrityError, match="strategy_protection_mode_valid"),
        transaction.atomic(),
    ):
        type(strategy).objects.filter(pk=strategy.pk).update(protection_mode="GTT")


def test_with_broker_held_the_oms_monitor_stays_out_while_the_gtt_is_live(last_price, run_jobs):
    strategy = strategy_with(ProtectionMode.BROKER)
    position = open_position(strategy, run_jobs)

    positions_mark([(SYMBOL, "NSE", D("799.00"))])  # a mark the paper exchange has not seen
    positions_check_exits()

    assert not Order.objects.filter(closes_position=position).exists()
    assert BrokerProtection.objects.get(position=position).state == ProtectionState.ACTIVE


def test_a_flatten_deletes_the_gtt_before_its_exit(last_price, run_jobs):
    strategy = strategy_with(ProtectionMode.BROKER)
    position = open_position(strategy, run_jobs)
    protection = BrokerProtection.objects.get(position=position)

    [result] = positions_flatten(actor="asha", reason="desk flattens", strategy=strategy)

    protection.refresh_from_db()
    assert protection.state == ProtectionState.CANCELLED
    assert PaperGtt.objects.get(pk=int(protection.trigger_id)).status == "deleted"
    assert not result.failed
    run_jobs()
    position.refresh_from_db()
    assert position.quantity == 0
    assert Order.objects.filter(closes_position=position).count() == 1


def test_three_polls_at_once_adopt_a_triggered_gtt_once(last_price, run_jobs):
    strategy = strategy_with(ProtectionMode.BROKER)
    position = open_position(strategy, run_jobs)
    # The paper exchange triggers the GTT and fills its order; no OMS poll has seen it yet.
    PaperBroker.gtts_on_price(SYMBOL, "NSE", D("799.00"))

    outcomes = run_together([protections_poll] * 3)

    assert [error for _, error in outcomes if error is not None] == []
    position.refresh_from_db()
    assert position.quantity == 0
    exits = Order.objects.filter(closes_position=position)
    assert exits.count() == 1 and exits.get().filled_quantity == 10
    assert Trade.objects.filter(order=exits.get()).count() == 1
    assert BrokerProtection.objects.get(position=position).exit_order == exits.get()
