"""The pre-trade margin check of LIVE orders, against the fake Kite serving Kite's margin JSON."""

from __future__ import annotations

from decimal import Decimal

import pytest

from omsproject.testing.threads import run_together
from orders.brokers import KiteBroker
from orders.brokers.funds import AvailableFunds
from orders.enums import EventKind, OrderStatus, StrategyMode
from orders.models import Order
from orders.services import order_submit
from orders.services.margins import order_margin_verdict
from orders.tests.factories import OrderFactory, StrategyFactory
from orders.tests.fake_kite import recorded
from risk.models import MarginCache

PLACE = ("POST", "/orders/regular")
ORDER_MARGINS = ("POST", "/margins/orders")
BASKET = ("POST", "/margins/basket")
FUNDS = ("GET", "/user/margins")
REQUIRED = Decimal("4901.00")  # margins_orders.json: RELIANCE 10 x 2450.50, MIS


@pytest.fixture
def margin_check(settings):
    settings.OMS_MARGIN_CHECK_ENABLED = True
    settings.OMS_MARGIN_CACHE_SECONDS = 60
    settings.OMS_MARGIN_API_ERROR_POLICY = "refuse"
    return settings


@pytest.fixture
def live_strategy(db):
    return StrategyFactory(mode=StrategyMode.LIVE)


def funds(net: str) -> dict:
    """Kite's /user/margins reply with the equity segment's net funds set to ``net``."""
    body = recorded("margins_user")
    body["data"]["equity"]["net"] = float(net)
    return body


def serve_margins(kite_server, *, net: str = "99725.05", orders: int = 1) -> None:
    kite_server.reply(*ORDER_MARGINS, "margins_orders")
    kite_server.reply(*FUNDS, funds(net))
    for number in range(orders):
        kite_server.reply(*PLACE, "place_order", order_id=f"2604010009{number:05d}")


# --- the adapter ----------------------------------------------------------------------------


def test_order_margins_are_read_from_kites_json_as_decimals(
    kite_server, kite_account, live_strategy
):
    kite_server.reply(*ORDER_MARGINS, "margins_orders")
    order = OrderFactory(strategy=live_strategy)

    [margin] = KiteBroker.for_account(kite_account).order_margins([order])

    assert margin.total == REQUIRED
    assert margin.var == REQUIRED
    assert margin.segment == "equity"
    assert margin.charges == Decimal("10.34")
    [sent] = kite_server.sent
    assert sent.json == [
        {
            "exchange": "NSE",
            "tradingsymbol": "RELIANCE",
            "transaction_type": "BUY",
            "variety": "regular",
            "product": "MIS",
            "order_type": "LIMIT",
            "quantity": 10,
            "price": 2450.5,
            "trigger_price": 0,
        }
    ]


def test_available_funds_are_the_segments_net(kite_server, kite_account):
    kite_server.reply(*FUNDS, "margins_user")

    equity = KiteBroker.for_account(kite_account).available_funds("equity")

    assert equity == AvailableFunds(
        segment="equity",
        net=Decimal("99725.05"),
        cash=Decimal("245431.60"),
        live_balance=Decimal("99725.05"),
        utilised=Decimal("145706.55"),
    )


def test_basket_margins_give_the_hedged_total_and_each_leg(
    kite_server, kite_account, live_strategy
):
    kite_server.reply(*BASKET, "margins_basket")
    legs = [OrderFactory(strategy=live_strategy), OrderFactory(strategy=live_strategy)]

    basket = KiteBroker.for_account(kite_account).basket_margins(legs)

    assert basket.initial == Decimal("197710.60")
    assert basket.final == Decimal("81520.60")
    assert [leg.total for leg in basket.orders] == [Decimal("174635.30"), Decimal("32825.30")]
    assert kite_server.sent[0].params == {"consider_positions": "True"}
    assert len(kite_server.sent[0].json) == 2


# --- the check in the submission ------------------------------------------------------------


def test_an_order_within_the_funds_is_sent_and_its_margin_reserved(
    kite_server, margin_check, live_strategy
):
    serve_margins(kite_server)
    order = OrderFactory(strategy=live_strategy)

    order_submit(order.pk)

    order.refresh_from_db()
    assert order.status == OrderStatus.OPEN
    assert kite_server.count(*PLACE) == 1
    cache = MarginCache.objects.get(segment="equity")
    assert (cache.available, cache.reserved) == (Decimal("99725.05"), REQUIRED)


def test_an_order_beyond_the_funds_is_rejected_with_the_figures_and_never_sent(
    kite_server, margin_check, live_strategy
):
    serve_margins(kite_server, net="1200.50")
    order = OrderFactory(strategy=live_strategy)

    order_submit(order.pk)

    order.refresh_from_db()
    assert order.status == OrderStatus.REJECTED
    assert kite_server.count(*PLACE) == 0
    event = order.events.get(to_status=OrderStatus.REJECTED)
    assert event.kind == EventKind.TRANSITION
    assert event.details == {
        "code": "margin_insufficient",
        "required": "4901.00",
        "available": "1200.50",
        "segment": "equity",
    }
    assert event.reason == ("margin insufficient: required ₹4,901.00, available ₹1,200.50 (equity)")
    assert order.status_message == event.reason
    assert MarginCache.objects.get(segment="equity").reserved == 0


def test_a_burst_fetches_the_funds_once_and_deducts_each_order_sent(
    kite_server, margin_check, live_strategy
):
    # Funds for two orders of 4,901 but not three.
    serve_margins(kite_server, net="10000.00", orders=3)
    orders = [OrderFactory(strategy=live_strategy) for _ in range(3)]

    for order in orders:
        order_submit(order.pk)

    statuses = [Order.objects.get(pk=o.pk).status for o in orders]
    assert statuses == [OrderStatus.OPEN, OrderStatus.OPEN, OrderStatus.REJECTED]
    assert kite_server.count(*FUNDS) == 1
    assert kite_server.count(*ORDER_MARGINS) == 3
    assert kite_server.count(*PLACE) == 2
    rejected = orders[2].events.get(to_status=OrderStatus.REJECTED)
    assert rejected.details["available"] == "198.00"  # 10,000 - 2 x 4,901


def test_funds_older_than_the_cache_seconds_are_fetched_again(
    kite_server, margin_check, live_strategy
):
    margin_check.OMS_MARGIN_CACHE_SECONDS = 0
    serve_margins(kite_server, net="10000.00", orders=3)
    orders = [OrderFactory(strategy=live_strategy) for _ in range(3)]

    for order in orders:
        order_submit(order.pk)

    # Each fresh figure counts what Kite already blocks: here it stays 10,000 every time.
    assert kite_server.count(*FUNDS) == 3
    assert kite_server.count(*PLACE) == 3


@pytest.mark.parametrize("failing", [ORDER_MARGINS, FUNDS])
def test_a_margin_api_error_refuses_the_order_by_default(
    kite_server, margin_check, live_strategy, failing
):
    serve_margins(kite_server)
    kite_server.reply(*failing, "error_network", http_status=503, replace=True)
    order = OrderFactory(strategy=live_strategy)

    order_submit(order.pk)

    order.refresh_from_db()
    assert order.status == OrderStatus.REJECTED
    assert kite_server.count(*PLACE) == 0
    event = order.events.get(to_status=OrderStatus.REJECTED)
    assert event.details["code"] == "margin_check_failed"
    assert event.details["policy"] == "refuse"
    assert "margin check could not run" in event.reason


def test_a_margin_api_error_under_policy_allow_sends_and_says_the_check_did_not_run(
    kite_server, margin_check, live_strategy
):
    margin_check.OMS_MARGIN_API_ERROR_POLICY = "allow"
    serve_margins(kite_server)
    kite_server.reply(*ORDER_MARGINS, "error_network", http_status=503, replace=True)
    order = OrderFactory(strategy=live_strategy)

    order_submit(order.pk)

    order.refresh_from_db()
    assert order.status == OrderStatus.OPEN
    assert kite_server.count(*PLACE) == 1
    note = order.events.get(kind=EventKind.NOTE)
    assert note.details["code"] == "margin_check_failed"
    assert note.details["policy"] == "allow"
    assert "sent anyway" in note.reason


def test_paper_orders_are_not_margin_checked(kite_server, margin_check, db):
    order = OrderFactory(strategy=StrategyFactory(mode=StrategyMode.PAPER))

    order_submit(order.pk)

    order.refresh_from_db()
    assert order.status != OrderStatus.REJECTED
    assert kite_server.sent == []  # the fixture also fails on any request to Kite


def test_the_check_can_be_turned_off(kite_server, kite_account, margin_check, live_strategy):
    margin_check.OMS_MARGIN_CHECK_ENABLED = False
    order = OrderFactory(strategy=live_strategy, status=OrderStatus.SUBMITTED)

    verdict = order_margin_verdict(KiteBroker.for_account(kite_account), order)

    assert verdict.send
    assert kite_server.sent == []


@pytest.mark.django_db(transaction=True)
def test_a_burst_from_many_processes_fetches_the_funds_once(kite_server, margin_check):
    strategy = StrategyFactory(mode=StrategyMode.LIVE)
    # Funds for 5 of the 8 orders.
    serve_margins(kite_server, net=str(REQUIRED * 5 + 100), orders=8)
    orders = [OrderFactory(strategy=strategy) for _ in range(8)]

    outcomes = run_together([lambda pk=o.pk: order_submit(pk) for o in orders])

    assert [error for _, error in outcomes] == [None] * 8
    assert kite_server.count(*FUNDS) == 1
    assert kite_server.count(*ORDER_MARGINS) == 8
    statuses = [Order.objects.get(pk=o.pk).status for o in orders]
    assert statuses.count(OrderStatus.OPEN) == 5
    assert statuses.count(OrderStatus.REJECTED) == 3
    assert kite_server.count(*PLACE) == 5
    assert MarginCache.objects.get(segment="equity").reserved == REQUIRED * 5


def test_an_order_kite_needs_no_margin_for_passes_with_no_funds(
    kite_server, margin_check, live_strategy
):
    # Kite counts the positions: an order closing one blocks nothing.
    kite_server.reply(*ORDER_MARGINS, "margins_orders", total=0, var=0)
    kite_server.reply(*FUNDS, funds("0"))
    kite_server.reply(*PLACE, "place_order")
    order = OrderFactory(strategy=live_strategy)

    order_submit(order.pk)

    order.refresh_from_db()
    assert order.status == OrderStatus.OPEN
    assert MarginCache.objects.get(segment="equity").reserved == 0
