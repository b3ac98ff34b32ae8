"""Market data from Kite: the WebSocket ticker (KiteTicker) and ltp() polling, for the market
feed (risk.market_feed). With orders.brokers.kite, the only modules that import ``kiteconnect``.

The market feed follows prices through Kite's WebSocket ticker, and polls ltp() while the
socket is down. KiteTicker runs on twisted's reactor, which runs once per process: in a daemon
thread here (``threaded=True``, no signal handlers), shared by every KiteFeed of the process.
Its callbacks run in that thread and only buffer what arrived; the feed's own thread drains the
buffers and does the database work, so the reactor never waits on PostgreSQL. Calls into the
ticker go through reactor.callFromThread (twisted is not thread-safe).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.utils import timezone
from kiteconnect import KiteTicker

from orders.brokers.base import BrokerUnavailable
from orders.brokers.kite import KiteBroker
from orders.brokers.kite_json import kite_decimal
from orders.money import PAISA
from risk.ratelimit import take_token

logger = logging.getLogger("oms.brokers.kite.feed")

LTP_BATCH = 1000  # instruments one ltp() request may name (Kite's limit)
QUOTE_RATE_KEY = "kite:quotes"
QUOTES_PER_SECOND = 1  # Kite's limit per user for the quote endpoints, ltp() included


def kite_ltp(broker: KiteBroker, instruments: Iterable[str]) -> dict[str, Decimal]:
    """Last prices of up to LTP_BATCH instruments ("NSE:INFY"), in one request: {name: price}.

    A token of the user's quote rate (1/s, in PostgreSQL, shared by every process) is spent
    first; without one nothing is sent (BrokerUnavailable with ``retry_in``). Instruments Kite
    does not know are absent from the answer."""
    names = list(instruments)
    if len(names) > LTP_BATCH:
        raise ValueError(f"instruments: {len(names)} named, at most {LTP_BATCH} a request")
    if not names:
        return {}
    wait = take_token(
        f"{QUOTE_RATE_KEY}:{broker.user_id}",  # Kite counts each user's quotes
        capacity=QUOTES_PER_SECOND,
        refill_per_second=QUOTES_PER_SECOND,
    )
    if wait:
        raise BrokerUnavailable(
            f"Kite quote rate ({QUOTES_PER_SECOND}/s) reached: next in {wait:.3f}s", retry_in=wait
        )
    answer = broker._call(broker.kite.ltp, names)
    prices = {}
    for name, entry in (answer or {}).items():
        price = kite_decimal(entry.get("last_price"), PAISA)
        if price is not None and price > 0:
            prices[name] = price
    return prices


@dataclass(frozen=True)
class FeedTick:
    """The last price of an instrument from the ticker, and when it arrived (an ltp packet
    carries no exchange time; the SDK's exchange_timestamp of other modes is in the machine's
    local time, not Kite's, so it is not used)."""

    instrument_token: int
    last_price: Decimal
    at: datetime


def _reactor():
    # twisted's global reactor, the one KiteTicker uses (imported where it is used: importing
    # it installs the default reactor, which only the feed needs).
    from twisted.internet import reactor

    return reactor


class KiteFeed:
    """Kite's WebSocket ticker for the market feed: connect, follow instrument tokens in ltp
    mode, and buffer what arrives — the latest tick per instrument (``ticks_drain``) and order
    updates (``order_updates_drain``) — for the feed's thread to apply. ``connected`` says
    whether the socket is open now; KiteTicker reconnects by itself after a drop (and the feed
    polls ltp() meanwhile). Thread-safe."""

    RECONNECT_MAX_DELAY = 5  # seconds; KiteTicker's smallest allowed

    def __init__(self, *, api_key: str, access_token: str, root: str):
        self.ticker = KiteTicker(
            api_key,
            access_token,
            root=root,
            reconnect=True,
            reconnect_max_tries=300,  # KiteTicker's largest: about 25 minutes at 5 s
            reconnect_max_delay=self.RECONNECT_MAX_DELAY,
        )
        self.ticker.on_open = self._on_open
        self.ticker.on_close = self._on_close
        self.ticker.on_error = self._on_error
        self.ticker.on_ticks = self._on_ticks
        self.ticker.on_order_update = self._on_order_update
        self._lock = threading.Lock()
        self._open = threading.Event()
        self._tokens: set[int] = set()  # what the feed wants followed
        self._sent: set[int] = set()  # what the open socket was asked for
        self._ticks: dict[int, FeedTick] = {}
        self._order_updates: list[dict] = []
        self.connections = 0  # sockets opened so far (a reconnect adds one)

    @classmethod
    def for_broker(cls, broker: KiteBroker, *, root: str | None = None) -> KiteFeed:
        """The ticker of the broker's Kite user (its API key and access token)."""
        return cls(
            api_key=broker.kite.api_key,
            access_token=broker.kite.access_token,
            root=root or settings.KITE_TICKER_ROOT,
        )

    @property
    def connected(self) -> bool:
        return self._open.is_set()

    def connect(self) -> None:
        """Open the socket (in the reactor's thread, started here if it is not running)."""
        reactor = _reactor()
        if reactor.running:
            reactor.callFromThread(self.ticker.connect, threaded=True)
        else:
            self.ticker.connect(threaded=True)

    def close(self) -> None:
        """Close the socket for good (no reconnection)."""
        self._open.clear()
        _reactor().callFromThread(self.ticker.close)

    def follow(self, tokens: Iterable[int]) -> None:
        """Follow exactly ``tokens`` from now on: new ones subscribed in ltp mode, dropped ones
        unsubscribed (sent at once when the socket is open, else when it opens)."""
        with self._lock:
            self._tokens = set(tokens)
        if self.connected:
            _reactor().callFromThread(self._sync)

    def ticks_drain(self) -> list[FeedTick]:
        """The latest tick of each instrument since the last drain."""
        with self._lock:
            ticks, self._ticks = list(self._ticks.values()), {}
        return ticks

    def order_updates_drain(self) -> list[dict]:
        """Order updates (Kite's order entries, as postbacks carry them) since the last drain."""
        with self._lock:
            updates, self._order_updates = self._order_updates, []
        return updates

    # --- in the reactor's thread ----------------------------------------------------------------

    def _sync(self) -> None:
        if not self.ticker.is_connected():
            return
        with self._lock:
            wanted = set(self._tokens)
        added, dropped = sorted(wanted - self._sent), sorted(self._sent - wanted)
        if dropped:
            self.ticker.unsubscribe(dropped)
        if added:
            self.ticker.subscribe(added)
            self.ticker.set_mode(self.ticker.MODE_LTP, added)
        self._sent = wanted

    def _on_open(self, ws) -> None:
        # A new socket has no subscription: everything wanted is asked for again.
        self._sent = set()
        self.connections += 1
        self._open.set()
        self._sync()
        logger.info("Kite ticker connected (%s instruments)", len(self._sent))

    def _on_close(self, ws, code, reason) -> None:
        self._open.clear()
        logger.warning("Kite ticker closed (%s %s)", code, reason)

    def _on_error(self, ws, code, reason) -> None:
        if not self.ticker.is_connected():
            self._open.clear()
        logger.warning("Kite ticker error (%s %s)", code, reason)

    def _on_ticks(self, ws, ticks: list[dict]) -> None:
        received = timezone.now()
        latest = {}
        for tick in ticks:
            price = kite_decimal(tick.get("last_price"), PAISA)
            if price is None or price <= 0:
                continue
            token = int(tick["instrument_token"])
            latest[token] = FeedTick(token, price, received)
        with self._lock:
            self._ticks.update(latest)

    def _on_order_update(self, ws, data: dict) -> None:
        with self._lock:
            self._order_updates.append(data)
