"""The market feed against a fake Kite: a real WebSocket ticker on 127.0.0.1 sending Kite's
binary ltp packets (orders/tests/fake_kite_ticker.py) and the fake Kite HTTP server for ltp().

The feed's passes run in the test's thread (MarketFeed.step, or the command), so they see the
test's transaction; the socket lives in twisted's reactor thread, as in production.
"""

from __future__ import annotations

import json
import re
import time
from datetime import date, timedelta
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from orders import jobs
from orders.brokers.base import BrokerUnavailable
from orders.brokers.kite import KiteBroker
from orders.brokers.kite_feed import KiteFeed, kite_ltp
from orders.domain import Violation
from orders.enums import OrderStatus, OrderType, StrategyMode
from orders.models import BrokerAccount, Order
from orders.services import order_place
from orders.tests.conftest import kite_account_create
from orders.tests.factories import OrderFactory, StrategyFactory
from orders.tests.fake_kite import FakeKiteServer, recorded
from orders.tests.fake_kite_ticker import FakeKiteTicker
from positions.exits import positions_check_exits
from positions.models import MarketPrice, Position
from positions.selectors import instruments_to_follow, marks_health, marks_stale_before
from positions.services import market_prices_update, positions_mark, strategy_prices_update
from positions.tests.factories import PositionFactory
from risk.market_feed import MarketFeed
from risk.models import KillSwitchState, PnlSnapshot
from risk.monitors import market_tick
from risk.selectors import day_pnl, kill_switch_state
from risk.tests.checks import validate_order
from risk.tests.factories import MarketHolidayFactory, limits_set, order_request

pytestmark = pytest.mark.django_db

INFY, RELIANCE, TCS = 408065, 738561, 2953217
KITE_API_KEY = "kite-key"
KITE_ACCESS_TOKEN = "kite-access-token-0123456789"


@pytest.fixture
def kite_server(settings, db):
    """The fake Kite HTTP server, and a LIVE desk's account logged in today pointed at it."""
    server = FakeKiteServer().start()
    settings.KITE_API_ROOT = server.root
    desk_account()
    yield server
    server.stop()


def desk_account() -> BrokerAccount:
    """The desk's Kite account, logged in today (made once, whichever fixture asks first)."""
    found = BrokerAccount.objects.filter(user_id="AB1234").first()
    return found or kite_account_create(api_key=KITE_API_KEY, access_token=KITE_ACCESS_TOKEN)


def desk_broker() -> KiteBroker:
    return KiteBroker.for_account(BrokerAccount.objects.get())


@pytest.fixture
def ticker(settings):
    server = FakeKiteTicker().start()
    settings.KITE_TICKER_ROOT = server.root
    yield server
    server.stop()


@pytest.fixture
def feed_settings(settings, clock):
    """A session morning (10:00 IST on a trading day), quick passes and polls."""
    clock("2026-01-14 10:00")
    settings.OMS_MARKET_FEED_FLUSH_SECONDS = 0.1
    settings.OMS_MARKET_FEED_REFRESH_SECONDS = 0.2
    settings.OMS_MARKET_FEED_POLL_SECONDS = 1.0
    settings.OMS_MARKET_FEED_RULES_SECONDS = 0.5
    settings.OMS_MARK_STALE_SECONDS = 30
    settings.OMS_MARKET_FEED_WATCH = []
    return settings


@pytest.fixture
def live(db):
    return StrategyFactory(
        name="Live momentum", mode=StrategyMode.LIVE, broker_account=desk_account()
    )


@pytest.fixture
def market(kite_server, ticker, feed_settings):
    """The feed of the desk's Kite user, connected to the fake ticker; closed at the end."""
    broker = desk_broker()
    feed = KiteFeed.for_broker(broker)
    market = MarketFeed(broker, feed)
    feed.connect()
    yield market
    feed.close()


def run_until(market: MarketFeed, condition, timeout: float = 15.0) -> bool:
    """Run the feed's passes until ``condition()`` holds (False after ``timeout``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        market.step(time.monotonic())
        if condition():
            return True
        time.sleep(0.1)
    return False


def mark_of(position) -> Decimal | None:
    position.refresh_from_db()
    return position.last_price


def exits_of(position) -> list[Order]:
    return list(Order.objects.filter(closes_position=position).order_by("pk"))


# --- what the feed follows -----------------------------------------------------------------------


def test_the_feed_follows_live_positions_live_orders_stop_orders_and_the_watch_list(live):
    paper = StrategyFactory(mode=StrategyMode.PAPER)
    PositionFactory(strategy=live, symbol="INFY")
    PositionFactory(
        strategy=live,
        symbol="ITC",
        opened_at=timezone.now() - timedelta(hours=1),
        closed_at=timezone.now(),
        quantity=0,
    )
    PositionFactory(strategy=paper, symbol="SBIN")  # a paper book: its own business
    OrderFactory(strategy=live, symbol="TCS", status=OrderStatus.OPEN)
    OrderFactory(strategy=live, symbol="LT", status=OrderStatus.CANCELLED)
    OrderFactory(
        strategy=paper,
        symbol="HDFCBANK",
        status=OrderStatus.TRIGGER_PENDING,
        order_type=OrderType.SL_M,
        price=None,
        trigger_price=Decimal("1500.00"),
    )
    OrderFactory(strategy=paper, symbol="KOTAKBANK", status=OrderStatus.OPEN)  # paper LIMIT

    followed = instruments_to_follow(watch=["NFO:NIFTY26DECFUT", "nse:reliance", "NSE:NOSUCH"])

    assert followed == {
        INFY: ("INFY", "NSE"),
        TCS: ("TCS", "NSE"),
        341249: ("HDFCBANK", "NSE"),
        13238786: ("NIFTY26DECFUT", "NFO"),
        RELIANCE: ("RELIANCE", "NSE"),
    }


# --- ticks ------------------------------------------------------------------------------------


def test_ticks_mark_a_live_position_and_fire_its_stop_loss(market, ticker, live):
    position = PositionFactory(
        strategy=live,
        symbol="INFY",
        quantity=10,
        average_price=Decimal("1100.00"),
        stop_loss=Decimal("1080.00"),
    )
    ticker.price(INFY, "1090.00")

    assert run_until(market, lambda: mark_of(position) == Decimal("1090.00"))
    assert ticker.subscribed == {INFY: "ltp"}  # in ltp mode, nothing else
    assert ticker.query[-1] == {"api_key": KITE_API_KEY, "access_token": KITE_ACCESS_TOKEN}
    assert position.last_price_at > timezone.now() - timedelta(seconds=5)
    assert position.unrealized_pnl == Decimal("-100.00")
    assert exits_of(position) == []

    ticker.price(INFY, "1075.50")
    assert run_until(market, lambda: exits_of(position))

    (exit_order,) = exits_of(position)
    assert (exit_order.side, exit_order.quantity, exit_order.order_type) == ("SELL", 10, "MARKET")
    assert exit_order.status == OrderStatus.PENDING  # accepted, queued for Kite
    assert mark_of(position) == Decimal("1075.50")
    assert market.report.ticked >= 2 and market.report.polls == 0


def test_ticks_pull_the_kill_switch_at_the_daily_loss_limit(market, ticker, live):
    limits_set(live, daily_loss_limit=Decimal("500.00"))
    PositionFactory(strategy=live, symbol="INFY", quantity=100, average_price=Decimal("1100.00"))
    ticker.price(INFY, "1096.00")  # -400: within the limit
    assert run_until(market, lambda: PnlSnapshot.objects.filter(strategy=live).exists())
    assert kill_switch_state(strategy=live) == KillSwitchState.ACTIVE

    ticker.price(INFY, "1094.90")  # -510
    assert run_until(market, lambda: kill_switch_state(strategy=live) != KillSwitchState.ACTIVE)
    assert kill_switch_state(strategy=live) == KillSwitchState.REDUCING


def test_the_feed_subscribes_and_unsubscribes_as_the_book_changes(market, ticker, live):
    position = PositionFactory(strategy=live, symbol="INFY")
    assert run_until(market, lambda: set(ticker.subscribed) == {INFY})

    order = OrderFactory(strategy=live, symbol="TCS", status=OrderStatus.OPEN)
    assert run_until(market, lambda: set(ticker.subscribed) == {INFY, TCS})

    Position.objects.filter(pk=position.pk).update(closed_at=timezone.now(), quantity=0)
    Order.objects.filter(pk=order.pk).update(status=OrderStatus.CANCELLED)
    assert run_until(market, lambda: ticker.subscribed == {})


def test_a_dropped_socket_falls_back_to_ltp_polling_until_the_ticker_is_back(
    market, ticker, kite_server, live
):
    position = PositionFactory(strategy=live, symbol="INFY", average_price=Decimal("1000.00"))
    kite_server.reply("GET", "/quote/ltp", "quote_ltp")  # INFY at 1074.35
    ticker.price(INFY, "1090.00")
    assert run_until(market, lambda: mark_of(position) == Decimal("1090.00"))
    assert kite_server.count("GET", "/quote/ltp") == 0  # no polling while ticks flow

    ticker.drop()
    assert run_until(market, lambda: mark_of(position) == Decimal("1074.35"))
    assert not market.feed.connected
    (poll,) = [r for r in kite_server.sent if r.path == "/quote/ltp"][:1]
    assert poll.params == {"i": "NSE:INFY"}
    assert poll.headers["Authorization"] == f"token {KITE_API_KEY}:{KITE_ACCESS_TOKEN}"
    # Kite's quote rate: polls at least a second apart.
    assert run_until(market, lambda: kite_server.count("GET", "/quote/ltp") >= 2)

    ticker.price(INFY, "1095.00")
    ticker.resume()
    assert run_until(market, lambda: mark_of(position) == Decimal("1095.00"), timeout=20)
    assert market.feed.connected and market.report.connections == 2
    polls = kite_server.count("GET", "/quote/ltp")
    run_until(market, lambda: False, timeout=1.5)
    assert kite_server.count("GET", "/quote/ltp") == polls  # ticks again, no more polls
    assert ticker.subscribed == {INFY: "ltp"}  # subscribed again on the new socket


def test_ltp_spends_the_quote_rate_and_reads_decimal_prices(kite_server, feed_settings):
    kite_server.reply("GET", "/quote/ltp", "quote_ltp")
    broker = desk_broker()

    prices = kite_ltp(broker, ["NSE:INFY", "NSE:RELIANCE"])

    assert prices == {"NSE:INFY": Decimal("1074.35"), "NSE:RELIANCE": Decimal("2450.55")}
    with pytest.raises(BrokerUnavailable, match=r"quote rate \(1/s\)") as refused:
        kite_ltp(broker, ["NSE:INFY"])  # within the same second: not sent
    assert 0 < refused.value.retry_in <= 1
    assert kite_server.count("GET", "/quote/ltp") == 1


def test_an_order_update_on_the_socket_defers_a_confirmation(market, ticker, live):
    order = OrderFactory(strategy=live, status=OrderStatus.OPEN, broker_order_id="260401000123456")
    assert run_until(market, lambda: set(ticker.subscribed) == {RELIANCE})

    ticker.send_order_update(recorded("postback_open"))
    assert run_until(market, lambda: market.report.order_updates == 1)

    with connection.cursor() as cursor:
        cursor.execute("SELECT args FROM procrastinate_jobs WHERE task_name = %s", [jobs.CONFIRM])
        assert [json.loads(row[0]) for row in cursor.fetchall()] == [{"order_id": order.pk}]


def test_the_command_runs_for_a_bounded_time_and_closes_a_crossed_position(
    kite_server, ticker, feed_settings, live
):
    position = PositionFactory(
        strategy=live,
        symbol="INFY",
        quantity=-5,
        average_price=Decimal("1000.00"),
        take_profit=Decimal("990.00"),
    )
    ticker.price(INFY, "985.00")
    out = StringIO()

    call_command("market_feed", "--seconds", "3", stdout=out)

    assert mark_of(position) == Decimal("985.00")
    (exit_order,) = exits_of(position)
    assert (exit_order.side, exit_order.quantity) == ("BUY", 5)
    assert "1 connections" in out.getvalue()


# --- stale marks ------------------------------------------------------------------------------


def _age(position, seconds: int) -> None:
    Position.objects.filter(pk=position.pk).update(
        last_price_at=timezone.now() - timedelta(seconds=seconds)
    )


def test_a_stale_mark_fires_no_exit_and_a_fresh_one_does(live, feed_settings, caplog):

    position = PositionFactory(
        strategy=live,
        symbol="INFY",
        average_price=Decimal("1100.00"),
        stop_loss=Decimal("1080.00"),
    )
    positions_mark([("INFY", "NSE", Decimal("1070.00"))])
    _age(position, 45)

    assert positions_check_exits() == []
    assert exits_of(position) == []
    assert re.search(
        r"stop-loss exit not fired on a stale mark 1070.00 \(4\ds old, over 30s\)", caplog.text
    )

    positions_mark([("INFY", "NSE", Decimal("1071.00"))])
    (result,) = positions_check_exits()
    assert result.orders[0].accepted


def test_outside_the_session_no_mark_is_stale(live, feed_settings, clock):

    clock("2026-01-14 16:00")
    position = PositionFactory(strategy=live, symbol="INFY", stop_loss=Decimal("90.00"))
    positions_mark([("INFY", "NSE", Decimal("85.00"))])
    _age(position, 3600)

    assert marks_health().stale == 0
    # The monitor asks for the exit (the validator then refuses it: the market is closed).
    (result,) = positions_check_exits()
    assert result.position == position


def test_a_market_order_of_a_live_strategy_on_a_stale_price_is_refused(live, feed_settings):

    PositionFactory(strategy=live, symbol="INFY", quantity=10)
    market_prices_update([("INFY", "NSE", Decimal("1074.35"))])
    MarketPrice.objects.filter(symbol="INFY").update(
        updated_at=timezone.now() - timedelta(seconds=90)
    )

    opening = order_place(
        order_request(live, symbol="INFY", order_type="MARKET", quantity=5), actor="test"
    )
    closing = order_place(
        order_request(live, symbol="INFY", order_type="MARKET", side="SELL", quantity=10),
        actor="test",
    )
    limit = order_place(
        order_request(live, symbol="INFY", order_type="LIMIT", price="1074.00"), actor="test"
    )

    assert opening.status == OrderStatus.REJECTED
    (violation,) = opening.violations
    assert violation.code == "price_stale"
    assert re.search(r"the last price 1074.35 is 9\ds old, stale beyond 30s", violation.message)
    assert closing.accepted  # an exit must go out
    assert limit.accepted  # its own price values it

    market_prices_update([("INFY", "NSE", Decimal("1074.40"))])  # fresh again
    again = order_place(
        order_request(live, symbol="INFY", order_type="MARKET", quantity=5), actor="test"
    )
    assert again.accepted


def test_health_counts_stale_marks_and_the_loss_rule_keeps_the_last_figures(live, feed_settings):

    PositionFactory(strategy=live, symbol="INFY", average_price=Decimal("100.00"))
    stale = PositionFactory(strategy=live, symbol="TCS", average_price=Decimal("100.00"))
    PositionFactory(strategy=live, symbol="SBIN")  # never marked: stale too
    PositionFactory(symbol="ITC")  # PAPER: its marks are its own business
    positions_mark([("INFY", "NSE", Decimal("101.00")), ("TCS", "NSE", Decimal("90.00"))])
    _age(stale, 40)

    health = marks_health()

    assert (health.stale, health.open_positions, health.degraded) == (2, 3, True)
    assert health.newest_age < 5
    # The stale mark's unrealized PnL is the last a fresh price gave: the loss rules keep it.
    assert day_pnl(live).unrealized == Decimal("10.00") + Decimal("-100.00")


def test_ticks_stopping_leave_marks_stale(market, ticker, live, feed_settings):

    feed_settings.OMS_MARK_STALE_SECONDS = 1
    position = PositionFactory(strategy=live, symbol="INFY")
    ticker.price(INFY, "1090.00")
    assert run_until(market, lambda: mark_of(position) == Decimal("1090.00"))
    assert marks_health().stale == 0

    ticker.price(INFY, None)  # the socket stays up, the ticks stop
    assert run_until(market, lambda: marks_health().stale == 1, timeout=5)
    refused = order_place(
        order_request(live, symbol="INFY", order_type="MARKET", quantity=1), actor="test"
    )
    assert [v.code for v in refused.violations] == ["price_stale"]


# --- paper strategies' own prices ------------------------------------------------------------


def test_a_paper_strategys_own_price_never_moves_a_live_position(market, ticker, live):
    paper = StrategyFactory(mode=StrategyMode.PAPER)
    live_position = PositionFactory(strategy=live, symbol="INFY", stop_loss=Decimal("50.00"))
    paper_position = PositionFactory(strategy=paper, symbol="INFY")

    market_tick([("INFY", "NSE", Decimal("40.00"))], strategy=paper)  # the paper's own price

    assert mark_of(paper_position) == Decimal("40.00")
    assert mark_of(live_position) is None and exits_of(live_position) == []

    ticker.price(INFY, "1090.00")
    assert run_until(market, lambda: mark_of(live_position) == Decimal("1090.00"))
    assert mark_of(paper_position) == Decimal("40.00")  # it sees its own price only


def test_the_time_of_a_price_is_the_time_of_the_price_the_strategy_sees(live):
    paper = StrategyFactory(mode=StrategyMode.PAPER)
    market_prices_update([("INFY", "NSE", Decimal("1074.35"))])
    MarketPrice.objects.filter(symbol="INFY").update(
        updated_at=timezone.now() - timedelta(minutes=5)
    )
    strategy_prices_update([("INFY", "NSE", Decimal("1070.00"))], strategy=paper)

    def seen(strategy):
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT oms_last_price(%s, 'INFY', 'NSE'), oms_last_price_at(%s, 'INFY', 'NSE')",
                [strategy.pk, strategy.pk],
            )
            return cursor.fetchone()

    market_price = MarketPrice.objects.get(symbol="INFY")
    own_price_at = timezone.now()
    assert seen(live) == (Decimal("1074.35"), market_price.updated_at)
    assert seen(StrategyFactory()) == (Decimal("1074.35"), market_price.updated_at)
    price, at = seen(paper)  # its own price, and when it posted it
    assert price == Decimal("1070.00") and abs(at - own_price_at) < timedelta(seconds=5)


def test_without_a_logged_in_account_the_command_waits_idle(settings):
    kite_account_create(access_token="")  # not logged in yet this morning
    out = StringIO()

    started = time.monotonic()
    call_command("market_feed", "--seconds", "0.5", stdout=out)

    assert 0.4 < time.monotonic() - started < 5
    assert "no Kite account has a session" in out.getvalue()


def test_on_a_holiday_added_by_staff_no_mark_is_stale(live, feed_settings):
    MarketHolidayFactory(date=date(2026, 1, 14))
    position = PositionFactory(strategy=live, symbol="INFY")
    positions_mark([("INFY", "NSE", Decimal("85.00"))])
    _age(position, 3600)

    assert marks_stale_before() is None
    assert marks_health().stale == 0
    assert validate_order(
        order_request(live, symbol="INFY", order_type="MARKET"), strategy=live
    ) == [  # refused for the holiday, not for the price
        Violation("market_closed", "market", "2026-01-14 is not an NSE trading day")
    ]
