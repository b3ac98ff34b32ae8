"""Zerodha Kite Connect behind the Broker interface, through the official ``kiteconnect`` client.

The only module that imports ``kiteconnect``. It translates in both directions: an Order into
Kite's order parameters, and Kite's replies (order entries, trades, positions, errors) into the
plain values of ``orders.brokers.base``. Kite takes no idempotency key, so every order carries
our unique ``broker_tag`` as its Kite tag: after a timeout the OMS looks the tag up instead of
sending again. Order calls spend a token from a bucket in PostgreSQL first, so Kite's limit of
10 orders a second per user holds across every process; without a token nothing is sent.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import requests
from django.conf import settings
from django.utils import timezone
from kiteconnect import KiteConnect, KiteTicker
from kiteconnect.exceptions import InputException, KiteException

from orders.brokers.base import (
    BrokerError,
    BrokerFill,
    BrokerOrderUpdate,
    BrokerPosition,
    BrokerRejected,
    BrokerTimeout,
    BrokerUnavailable,
    PlaceAck,
)
from orders.enums import OrderStatus, OrderType
from orders.money import PAISA
from risk.ratelimit import take_token

if TYPE_CHECKING:
    from orders.models import Order

logger = logging.getLogger("oms.brokers.kite")

IST = ZoneInfo("Asia/Kolkata")  # Kite's timestamps are IST wall-clock times without an offset
VARIETY = "regular"
REQUEST_TIMEOUT_SECONDS = 7
ORDER_RATE_KEY = "kite:orders"
ORDERS_PER_SECOND = 10  # Kite's limit per user; beyond it Kite answers HTTP 429
AUTOMATIC_MARKET_PROTECTION = -1  # mandatory for MARKET and SL-M orders since 1 Apr 2026
PROTECTED_TYPES = (OrderType.MARKET, OrderType.SL_M)
AVERAGE_PLACES = Decimal("0.000001")  # as the orders.average_price column holds

KITE_STATUSES: dict[str, OrderStatus] = {
    "PUT ORDER REQ RECEIVED": OrderStatus.SUBMITTED,
    "AMO REQ RECEIVED": OrderStatus.SUBMITTED,
    "VALIDATION PENDING": OrderStatus.SUBMITTED,
    "OPEN PENDING": OrderStatus.SUBMITTED,
    "OPEN": OrderStatus.OPEN,  # its fills decide PARTIALLY_FILLED
    "TRIGGER PENDING": OrderStatus.TRIGGER_PENDING,
    # A modification in flight: the order is still working at the exchange.
    "MODIFY VALIDATION PENDING": OrderStatus.OPEN,
    "MODIFY PENDING": OrderStatus.OPEN,
    "CANCEL PENDING": OrderStatus.CANCEL_PENDING,
    "COMPLETE": OrderStatus.FILLED,
    "CANCELLED": OrderStatus.CANCELLED,
    "REJECTED": OrderStatus.REJECTED,
}
MODIFYING = frozenset({"MODIFY VALIDATION PENDING", "MODIFY PENDING"})

# Kite error types that mean "refused, nothing was done". The client raises one exception class
# per known type and falls back to GeneralException for the others, so the class name is the
# type whenever the client knows it.
REFUSALS = frozenset({"InputException", "OrderException", "PermissionException"})
UNCERTAIN = frozenset({"NetworkException", "DataException"})  # Kite's backend did not answer


# --- Kite values to OMS values (pure) -----------------------------------------------------------


def oms_status(kite_status: str) -> OrderStatus:
    """The OMS status for a Kite status; an unknown one says nothing new (SUBMITTED is ignored)."""
    status = KITE_STATUSES.get(kite_status.upper())
    if status is None:
        logger.warning("unknown Kite order status %r: treated as in flight", kite_status)
        return OrderStatus.SUBMITTED
    return status


def kite_decimal(value: Any, places: Decimal) -> Decimal | None:
    """A JSON number as a Decimal rounded to ``places``.

    The client parses JSON numbers as floats; ``Decimal(str(x))`` keeps the digits Kite sent
    (2450.55, not 2450.5500000000001818989...) before any arithmetic touches them. A postback
    is parsed with parse_float=Decimal and passes through unchanged. NaN, Infinity and numbers
    too large to hold to ``places`` are not prices: None, like any other non-number.
    """
    if value is None or value == "":
        return None
    try:
        number = value if isinstance(value, Decimal) else Decimal(str(value))
        if not number.is_finite():
            raise InvalidOperation
        return number.quantize(places, rounding=ROUND_HALF_UP)
    except InvalidOperation:
        logger.warning("not a number from Kite: %r", value)
        return None


def kite_time(value: Any) -> datetime | None:
    """A Kite timestamp ("2026-04-01 09:15:02", or the client's naive datetime) in IST."""
    if not value:
        return None
    if not isinstance(value, datetime):
        try:
            value = datetime.fromisoformat(str(value))
        except ValueError:
            logger.warning("not a timestamp from Kite: %r", value)
            return None
    return value.replace(tzinfo=IST) if timezone.is_naive(value) else value


def _tag(entry: Mapping[str, Any]) -> str:
    if entry.get("tag"):
        return str(entry["tag"])
    tags = entry.get("tags") or ()
    return str(tags[0]) if tags else ""


def _has_tag(entry: Mapping[str, Any], tag: str) -> bool:
    return entry.get("tag") == tag or tag in (entry.get("tags") or ())


def order_update(
    entry: Mapping[str, Any], *, fills: Iterable[BrokerFill] = ()
) -> BrokerOrderUpdate:
    """One Kite order entry (order book, order history or postback) as a BrokerOrderUpdate.

    ``filled_quantity`` and ``average_price`` stay cumulative, as Kite reports them.
    """
    raw_status = str(entry.get("status") or "")
    filled = int(entry.get("filled_quantity") or 0)
    return BrokerOrderUpdate(
        broker_order_id=str(entry["order_id"]),
        tag=_tag(entry),
        status=oms_status(raw_status),
        filled_quantity=filled,
        # Kite sends 0 for an order with no fill.
        average_price=kite_decimal(entry.get("average_price"), AVERAGE_PLACES) if filled else None,
        message=str(entry.get("status_message") or ""),
        fills=tuple(fills),
        timestamp=kite_time(
            entry.get("exchange_update_timestamp")
            or entry.get("exchange_timestamp")
            or entry.get("order_timestamp")
        ),
        raw_status=raw_status,
        symbol=str(entry.get("tradingsymbol") or ""),
        exchange=str(entry.get("exchange") or ""),
        side=str(entry.get("transaction_type") or ""),
    )


def broker_position(entry: Mapping[str, Any]) -> BrokerPosition:
    return BrokerPosition(
        symbol=str(entry["tradingsymbol"]),
        exchange=str(entry["exchange"]),
        product=str(entry["product"]),
        quantity=int(entry["quantity"]),
        average_price=kite_decimal(entry.get("average_price"), AVERAGE_PLACES) or Decimal(0),
        last_price=kite_decimal(entry.get("last_price"), PAISA),
    )


def place_params(order: Order) -> dict[str, Any]:
    """Kite's place_order arguments for an order (price and trigger only when the type has them)."""
    params: dict[str, Any] = {
        "variety": VARIETY,
        "exchange": order.exchange,
        "tradingsymbol": order.symbol,
        "transaction_type": order.side,
        "quantity": order.quantity,
        "product": order.product,
        "order_type": order.order_type,
        "validity": order.validity,
        "tag": order.broker_tag,
    }
    params.update(_price_params(order.order_type, order.price, order.trigger_price))
    return params


def _price_params(
    order_type: str, price: Decimal | None, trigger_price: Decimal | None
) -> dict[str, Any]:
    params: dict[str, Any] = {}
    if price is not None:
        params["price"] = str(Decimal(price).quantize(PAISA))
    if trigger_price is not None:
        params["trigger_price"] = str(Decimal(trigger_price).quantize(PAISA))
    if order_type in PROTECTED_TYPES:
        params["market_protection"] = AUTOMATIC_MARKET_PROTECTION
    return params


REDACTED = "[redacted]"


def redacted(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every one of ``secrets`` (the access token, the API secret) blanked out."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    return text


def broker_error(error: Exception, *, placing: bool, secrets: Iterable[str] = ()) -> BrokerError:
    """The OMS's reading of a failed Kite call.

    ``placing``: the call was place_order, where an answer lost after sending leaves the order
    possibly at Kite; that is BrokerTimeout (resolved by tag, never by sending again). Elsewhere
    the same failure is BrokerUnavailable: the job asks again later. The message is kept on
    orders and logged, so ``secrets`` are blanked out of it: a requests error names the URL,
    and Kite's own messages may quote what was sent.
    """
    message = redacted(str(error) or type(error).__name__, secrets)
    if isinstance(error, requests.ConnectTimeout):
        # No connection was made, so nothing was sent: safe to try again.
        return BrokerUnavailable(f"Kite unreachable: {message}")
    if isinstance(error, requests.RequestException):
        if placing:
            return BrokerTimeout(f"no answer from Kite: {message}")
        return BrokerUnavailable(f"no answer from Kite: {message}")
    code = getattr(error, "code", None)
    kind = getattr(error, "error_type", None) or type(error).__name__
    if code == 429:
        return BrokerUnavailable(f"Kite rate limit (HTTP 429): {message}")
    if kind == "TokenException":
        return BrokerUnavailable(f"Kite session expired: log in again ({message})", retry_in=60.0)
    if kind in REFUSALS:
        return BrokerRejected(message)
    if kind not in UNCERTAIN and code == 403:
        return BrokerUnavailable(f"Kite refused access ({kind}): {message}", retry_in=60.0)
    if kind not in UNCERTAIN and code is not None and 400 <= code < 500:
        # An error type this client does not know (margin, holdings...), refused with a 4xx.
        return BrokerRejected(message)
    if placing:
        return BrokerTimeout(f"Kite did not confirm the order ({kind}): {message}")
    return BrokerUnavailable(f"Kite error ({kind}): {message}")


# --- the adapter --------------------------------------------------------------------------------


class KiteBroker:
    """Orders of LIVE strategies, at Zerodha through Kite Connect v3."""

    name = "kite"

    def __init__(
        self,
        *,
        api_key: str,
        access_token: str,
        session: Any = None,
        timeout: float = REQUEST_TIMEOUT_SECONDS,
        root: str | None = None,
    ):
        # debug stays off: the client's debug log prints the request headers, token included.
        self.kite = KiteConnect(
            api_key=api_key, access_token=access_token, timeout=timeout, root=root, debug=False
        )
        self._secrets = (access_token, settings.KITE_API_SECRET)
        if session is not None:
            # Anything with requests.Session's request(); tests serve recorded replies with it.
            self.kite.reqsession = session

    @classmethod
    def from_settings(cls) -> KiteBroker:
        missing = [
            name for name in ("KITE_API_KEY", "KITE_ACCESS_TOKEN") if not getattr(settings, name)
        ]
        if missing:
            raise BrokerUnavailable(
                f"Kite Connect is not configured: {' and '.join(missing)} not set "
                "(LIVE strategies need them; log in to Kite for a fresh access token)",
                retry_in=60.0,
            )
        return cls(
            api_key=settings.KITE_API_KEY,
            access_token=settings.KITE_ACCESS_TOKEN,
            root=settings.KITE_API_ROOT,
        )

    def _call(self, method, *args, placing: bool = False, **kwargs):
        try:
            return method(*args, **kwargs)
        except (KiteException, requests.RequestException) as error:
            translated = broker_error(error, placing=placing, secrets=self._secrets)
            logger.warning("Kite %s failed: %s", method.__name__, translated)
            # A traceback prints the cause too: dropped when its text holds a secret.
            clean = redacted(str(error), self._secrets) == str(error)
            raise translated from (error if clean else None)

    def _take_order_token(self) -> None:
        """Spend one of the user's order tokens, or raise without sending anything."""
        wait = take_token(
            ORDER_RATE_KEY, capacity=ORDERS_PER_SECOND, refill_per_second=ORDERS_PER_SECOND
        )
        if wait:
            raise BrokerUnavailable(
                f"Kite order rate ({ORDERS_PER_SECOND}/s) reached: next in {wait:.3f}s",
                retry_in=wait,
            )

    # --- the Broker interface ------------------------------------------------------------------

    def place(self, order: Order) -> PlaceAck:
        params = place_params(order)
        self._take_order_token()
        broker_order_id = self._call(self.kite.place_order, placing=True, **params)
        # Kite answers with the order id only; its status arrives by postback or poll.
        return PlaceAck(broker_order_id=str(broker_order_id))

    def modify(self, order, *, quantity, price, trigger_price, order_type):
        self._take_order_token()
        self._call(
            self.kite.modify_order,
            variety=VARIETY,
            order_id=order.broker_order_id,
            quantity=quantity,
            order_type=order_type,
            **_price_params(order_type, price, trigger_price),
        )
        return ()  # Kite's 200 only says "request accepted"; the result comes as a report

    def cancel(self, order):
        self._take_order_token()
        self._call(self.kite.cancel_order, variety=VARIETY, order_id=order.broker_order_id)
        return ()  # as for modify: the CANCELLED report follows

    def cancel_many(self, orders):
        """Kite cancels one order a request: every order goes through ``cancel`` (the OMS's
        one-by-one path, which applies the rate limit and reads a refusal's reason)."""
        return (), list(orders)

    # Kite's reports carry no individual fills: the OMS derives each fill from the cumulative
    # filled quantity and average price, for postbacks and polls alike, under one trade id per
    # cumulative quantity. Mixing Kite's own trade ids in would count the same execution twice.

    def find_by_tag(self, tag: str) -> BrokerOrderUpdate | None:
        """Today's latest Kite order carrying ``tag``; None if Kite has none."""
        entries = [e for e in self._call(self.kite.orders) if _has_tag(e, tag)]
        if not entries:
            return None
        return order_update(max(entries, key=_entry_time))

    def order_status(self, order: Order) -> BrokerOrderUpdate | None:
        if not order.broker_order_id:
            return self.find_by_tag(order.broker_tag)
        try:
            history = self._call(self.kite.order_history, order.broker_order_id)
        except BrokerRejected as error:
            if not isinstance(error.__cause__, InputException):
                raise
            logger.warning("Kite has no order %s: %s", order.broker_order_id, error)
            return None
        if not history:
            return None
        latest = order_update(history[-1])
        # During a modification Kite says MODIFY PENDING; the order works as it did before.
        return replace(latest, status=oms_status(_settled_status(history)))

    def orders(self) -> list[BrokerOrderUpdate]:
        """Today's order book, one request."""
        return [order_update(entry) for entry in self._call(self.kite.orders)]

    def positions(self) -> list[BrokerPosition]:
        """The account's net positions (Kite nets every strategy's orders together)."""
        return [broker_position(entry) for entry in self._call(self.kite.positions)["net"]]

    def ltp(self, instruments: Iterable[str]) -> dict[str, Decimal]:
        """Market data: see ``kite_ltp`` (the market feed's section at the end of this module)."""
        return kite_ltp(self, instruments)


def _entry_time(entry: Mapping[str, Any]) -> datetime:
    return kite_time(entry.get("order_timestamp")) or datetime.min.replace(tzinfo=IST)


def _settled_status(history: list[Mapping[str, Any]]) -> str:
    """The latest Kite status that is not a modification in flight."""
    for entry in reversed(history):
        status = str(entry.get("status") or "")
        if status.upper() not in MODIFYING:
            return status
    return str(history[-1].get("status") or "")


# --- market data: the ticker (KiteTicker) and ltp() polling ---------------------------------------
#
# The market feed (risk.market_feed) follows prices through Kite's WebSocket ticker, and polls
# ltp() while the socket is down. KiteTicker runs on twisted's reactor, which runs once per
# process: in a daemon thread here (``threaded=True``, no signal handlers), shared by every
# KiteFeed of the process. Its callbacks run in that thread and only buffer what arrived; the
# feed's own thread drains the buffers and does the database work, so the reactor never waits
# on PostgreSQL. Calls into the ticker go through reactor.callFromThread (twisted is not
# thread-safe).

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
        QUOTE_RATE_KEY, capacity=QUOTES_PER_SECOND, refill_per_second=QUOTES_PER_SECOND
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
