"""The market feed: Kite's live prices mark LIVE positions and drive their exits, the loss
limit and the kill switch's automatic rules (``manage.py market_feed``).

A reaction, beside risk.monitors: every batch of prices goes through the same path as any
shared price (risk.monitors.market_data_apply: market_tick, then the rules). What it follows,
re-read every OMS_MARKET_FEED_REFRESH_SECONDS: the instruments of LIVE strategies' open
positions and working orders, every working stop order, and the watch list
(OMS_MARKET_FEED_WATCH) — positions.selectors.instruments_to_follow. Prices arrive through
Kite's WebSocket ticker (orders.brokers.kite_feed.KiteFeed, ltp mode); while the socket is down the
feed polls ltp() every OMS_MARKET_FEED_POLL_SECONDS within Kite's quote rate (1/s per user),
until the ticker has reconnected. Every OMS_MARKET_FEED_FLUSH_SECONDS the latest price of each
instrument is written, one batch. Order updates the socket carries are treated as postbacks
(a confirm job deferred). A PAPER strategy's own posted prices are never touched: the shared
feed moves only the books that see the shared price (positions.services.positions_mark).

One feed per Kite user: ``feed_run`` takes the user's KiteBroker, so several accounts are
several calls (threads or processes).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.db import DatabaseError, close_old_connections

from orders.broker_sessions import session_problem
from orders.brokers.base import BrokerError
from orders.brokers.kite import KiteBroker, ticker_order_update
from orders.brokers.kite_feed import LTP_BATCH, KiteFeed, kite_ltp
from orders.models import BrokerAccount
from orders.services import order_update_notified
from positions.selectors import instruments_to_follow
from risk.monitors import market_data_apply

logger = logging.getLogger("oms.market_feed")


def order_update_received(entry: dict) -> None:
    """An order update from the ticker: like a postback, a confirm job is deferred (the
    broker's order history decides; nothing of the update itself is applied). An update the
    SDK cannot have meant (no order id) is logged and dropped."""
    try:
        update = ticker_order_update(entry)
    except ValueError as error:
        logger.warning("ticker order update unreadable: %s", error)
        return
    order_update_notified(update, channel="ticker")


def feed_broker(now=None) -> KiteBroker | None:
    """The Kite client the market feed uses: market data is the same whichever account asks,
    so one connection serves the desk — OMS_MARKET_FEED_ACCOUNT's (a Kite user id) when set,
    else the first account by name with today's session. None when no account has one."""
    accounts = BrokerAccount.objects.filter(is_active=True).order_by("name")
    if settings.OMS_MARKET_FEED_ACCOUNT:
        accounts = accounts.filter(user_id=settings.OMS_MARKET_FEED_ACCOUNT)
    for account in accounts:
        if not session_problem(account, now=now):
            return KiteBroker.for_account(account, now=now)
    return None


@dataclass
class FeedReport:
    """What a run of the feed did (logged at the end; read by the tests)."""

    batches: int = 0  # batches of prices written
    prices: int = 0  # prices written, over every batch
    ticked: int = 0  # prices that came from the socket
    polled: int = 0  # prices that came from ltp() polling
    polls: int = 0  # ltp() requests answered
    order_updates: int = 0
    connections: int = 0  # sockets opened (1 + reconnections)


class MarketFeed:
    """One Kite user's feed: its state between steps (``feed_run`` loops over ``step``)."""

    def __init__(
        self,
        broker: KiteBroker,
        feed: KiteFeed,
        *,
        watch: Iterable[str] = (),
        on_order_update: Callable[[dict], None] = order_update_received,
    ):
        self.broker = broker
        self.feed = feed
        self.watch = list(watch)
        self.on_order_update = on_order_update
        self.followed: dict[int, tuple[str, str]] = {}
        self.report = FeedReport()
        self._next_refresh = self._next_poll = self._next_rules = 0.0

    def refresh(self) -> None:
        """Read which instruments matter now, and follow exactly those."""
        self.followed = instruments_to_follow(watch=self.watch)
        self.feed.follow(self.followed)

    def poll(self) -> dict[tuple[str, str], Decimal]:
        """The followed instruments' last prices through ltp() (the socket is down)."""
        by_name = {
            f"{exchange}:{symbol}": (symbol, exchange)
            for symbol, exchange in self.followed.values()
        }
        names = sorted(by_name)
        prices = {}
        for start in range(0, len(names), LTP_BATCH):
            for name, price in kite_ltp(self.broker, names[start : start + LTP_BATCH]).items():
                if name in by_name:
                    prices[by_name[name]] = price
            self.report.polls += 1
        return prices

    def step(self, now: float) -> None:
        """One pass: refresh what is followed when due, take the socket's ticks (or poll when
        it is down and a poll is due), apply the batch, hand order updates on."""
        if now >= self._next_refresh:
            self.refresh()
            self._next_refresh = now + settings.OMS_MARKET_FEED_REFRESH_SECONDS
        prices: dict[tuple[str, str], Decimal] = {}
        for tick in self.feed.ticks_drain():
            instrument = self.followed.get(tick.instrument_token)
            if instrument is not None:
                prices[instrument] = tick.last_price
        self.report.ticked += len(prices)
        if not self.feed.connected and self.followed and now >= self._next_poll:
            self._next_poll = now + settings.OMS_MARKET_FEED_POLL_SECONDS
            try:
                polled = self.poll()
            except BrokerError as error:
                # The quote rate or Kite itself: wait as long as told, then poll again.
                logger.warning("ltp() poll failed: %s", error)
                self._next_poll = now + max(
                    settings.OMS_MARKET_FEED_POLL_SECONDS, getattr(error, "retry_in", 0) or 0
                )
            else:
                self.report.polled += len(polled)
                prices.update(polled)
        if prices:
            rules = now >= self._next_rules
            market_data_apply(
                [(symbol, exchange, price) for (symbol, exchange), price in prices.items()],
                rules=rules,
            )
            if rules:
                self._next_rules = now + settings.OMS_MARKET_FEED_RULES_SECONDS
            self.report.batches += 1
            self.report.prices += len(prices)
        for entry in self.feed.order_updates_drain():
            self.on_order_update(entry)
            self.report.order_updates += 1
        self.report.connections = self.feed.connections


def feed_run(
    broker: KiteBroker,
    *,
    seconds: float | None = None,
    stop: threading.Event | None = None,
    feed: KiteFeed | None = None,
    watch: Iterable[str] | None = None,
    on_order_update: Callable[[dict], None] = order_update_received,
) -> FeedReport:
    """Run the market feed of ``broker``'s Kite user until ``stop`` is set or ``seconds`` have
    passed (None: until stopped). ``feed``: the ticker (default: the broker's, at
    KITE_TICKER_ROOT); ``watch``: "EXCHANGE:SYMBOL" names followed whatever the book holds
    (default OMS_MARKET_FEED_WATCH). A database error skips the pass (logged): the socket
    stays up and the next pass tries again. Returns what it did."""
    stop = stop or threading.Event()
    feed = feed or KiteFeed.for_broker(broker)
    market = MarketFeed(
        broker,
        feed,
        watch=settings.OMS_MARKET_FEED_WATCH if watch is None else watch,
        on_order_update=on_order_update,
    )
    deadline = None if seconds is None else time.monotonic() + seconds
    feed.connect()
    logger.info("market feed started")
    try:
        while not stop.is_set() and (deadline is None or time.monotonic() < deadline):
            try:
                market.step(time.monotonic())
            except DatabaseError:
                logger.exception("market feed: a pass failed on the database; next pass")
                close_old_connections()
            stop.wait(settings.OMS_MARKET_FEED_FLUSH_SECONDS)
    finally:
        feed.close()
    logger.info("market feed stopped: %s", market.report)
    return market.report
