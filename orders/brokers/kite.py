"""Zerodha Kite Connect behind the Broker interface, through the official ``kiteconnect`` client.

With orders.brokers.kite_feed (market data), the only module that imports ``kiteconnect``;
Kite's JSON values are read in orders.brokers.kite_json. It translates in both directions: an
Order into Kite's order parameters, and Kite's replies (order entries, trades, positions,
errors) into the plain values of ``orders.brokers.base``. Kite takes no idempotency key, so
every order carries our unique ``broker_tag`` as its Kite tag: after a timeout the OMS looks
the tag up instead of sending again. Order calls take a slot of the user's sliding window in
PostgreSQL first, so Kite's limits (10 order requests in any second, 400 in any minute, per
user) hold across every process; without a slot nothing is sent.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import requests
from django.conf import settings
from kiteconnect import KiteConnect
from kiteconnect.exceptions import InputException, KiteException

from orders.broker_sessions import session_problem
from orders.brokers.base import (
    BrokerError,
    BrokerFill,
    BrokerGtt,
    BrokerHolding,
    BrokerOrderUpdate,
    BrokerPosition,
    BrokerRateLimited,
    BrokerRejected,
    BrokerSessionExpired,
    BrokerTimeout,
    BrokerUnavailable,
    GttRequest,
    PlaceAck,
)
from orders.brokers.funds import (
    AvailableFunds,
    BasketMargin,
    ContractNoteCharges,
    ContractNoteLeg,
    OrderMargin,
)
from orders.brokers.kite_json import (
    IST,
    VARIETY,
    _money,
    available_funds,
    contract_note_entry,
    contract_note_params,
    gtt_from_json,
    gtt_params,
    instrument_row,
    kite_decimal,
    kite_time,
    margin_params,
    order_margin,
)
from orders.enums import OrderStatus, OrderType
from orders.money import PAISA
from risk.ratelimit import take_slot

if TYPE_CHECKING:
    from orders.models import BrokerAccount, Order

logger = logging.getLogger("oms.brokers.kite")

REQUEST_TIMEOUT_SECONDS = 7
ORDER_RATE_KEY = "kite:orders"  # and the Kite user id: Kite counts each user's orders
SESSION_RETRY_SECONDS = 60.0  # a job waiting for the morning login asks again after this
ORDERS_PER_SECOND = 10  # Kite's limit per user; beyond it Kite answers HTTP 429
ORDERS_PER_MINUTE = 400  # and its limit a minute
# (requests, seconds): in no window of that many seconds are more requests sent. Placements,
# modifications and cancellations all count.
ORDER_RATE_LIMITS = ((ORDERS_PER_SECOND, 1), (ORDERS_PER_MINUTE, 60))
AUTOMATIC_MARKET_PROTECTION = -1  # mandatory for MARKET and SL-M orders since 1 Apr 2026
PROTECTED_TYPES = (OrderType.MARKET, OrderType.SL_M)
AVERAGE_PLACES = Decimal("0.000001")  # as the orders.average_price column holds

# Every order status Kite documents (Kite Connect v3 "Orders": order statuses; postbacks and
# the ticker's order updates), and the two its order histories show for a refused
# modification or cancellation. SUBMITTED in a report moves no status (the order is at the
# broker, nothing new about its state): a status that only says "working as before, terms
# or fills changed" maps to it. A status not listed here is never guessed at: order_update
# flags it (status_unknown) and the OMS raises an alert (orders.services.broker_reports).
KITE_STATUSES: dict[str, OrderStatus] = {
    # Placed, not yet working at the exchange.
    "PUT ORDER REQ RECEIVED": OrderStatus.SUBMITTED,
    "PUT ORDER REQUEST RECEIVED": OrderStatus.SUBMITTED,  # the docs' spelling of the same
    "AMO REQ RECEIVED": OrderStatus.SUBMITTED,
    "VALIDATION PENDING": OrderStatus.SUBMITTED,
    "OPEN PENDING": OrderStatus.SUBMITTED,
    "OPEN": OrderStatus.OPEN,  # its fills decide PARTIALLY_FILLED
    "TRIGGER PENDING": OrderStatus.TRIGGER_PENDING,
    # A modification in flight, done, or refused: the order works as it did (OPEN or
    # TRIGGER PENDING, the status before); the report's terms tell which modification holds.
    "MODIFY VALIDATION PENDING": OrderStatus.SUBMITTED,
    "MODIFY PENDING": OrderStatus.SUBMITTED,
    "MODIFIED": OrderStatus.SUBMITTED,
    "NOT MODIFIED": OrderStatus.SUBMITTED,
    # Postbacks and the ticker: a partial fill or a modification (no postback on placement).
    "UPDATE": OrderStatus.SUBMITTED,
    "CANCEL PENDING": OrderStatus.CANCEL_PENDING,
    "NOT CANCELLED": OrderStatus.SUBMITTED,  # the cancel was refused: still working
    "COMPLETE": OrderStatus.FILLED,
    "CANCELLED": OrderStatus.CANCELLED,
    "REJECTED": OrderStatus.REJECTED,
}
MODIFYING = frozenset({"MODIFY VALIDATION PENDING", "MODIFY PENDING"})  # terms not settled
NOT_MODIFIED = "NOT MODIFIED"  # its entry shows the terms Kite refused to change to
# Statuses that say nothing of where the order stands: the history's latest other one does.
KEEPS_STATUS = frozenset(
    {"MODIFY VALIDATION PENDING", "MODIFY PENDING", "MODIFIED", "NOT MODIFIED", "UPDATE"}
)
# Kite's own tags: a MARKET or SL-M order it protected ("mktp", "mktp:2.00"); never ours.
MARKET_PROTECTION_TAG = "mktp"

# Kite error types that mean "refused, nothing was done". The client raises one exception class
# per known type and falls back to GeneralException for the others, so the class name is the
# type whenever the client knows it.
REFUSALS = frozenset({"InputException", "OrderException", "PermissionException"})
UNCERTAIN = frozenset({"NetworkException", "DataException"})  # Kite's backend did not answer


# --- Kite values to OMS values (pure) -----------------------------------------------------------


def oms_status(kite_status: str) -> OrderStatus | None:
    """The OMS status for a Kite status; None for one Kite does not document (never guessed)."""
    return KITE_STATUSES.get(kite_status.strip().upper())


def _kite_tag(tag: str) -> bool:
    return tag == MARKET_PROTECTION_TAG or tag.startswith(f"{MARKET_PROTECTION_TAG}:")


def _tags(entry: Mapping[str, Any]) -> list[str]:
    tags = [entry.get("tag"), *(entry.get("tags") or ())]
    return [str(tag) for tag in tags if tag]


def _tag(entry: Mapping[str, Any]) -> str:
    """Our tag of a Kite order: the first that is not one Kite adds itself (``mktp``)."""
    return next((tag for tag in _tags(entry) if not _kite_tag(tag)), "")


def _has_tag(entry: Mapping[str, Any], tag: str) -> bool:
    return tag in _tags(entry)


def _market_protected(entry: Mapping[str, Any]) -> bool:
    return any(_kite_tag(tag) for tag in _tags(entry))


def _price_or_none(value: Any) -> Decimal | None:
    price = kite_decimal(value, PAISA)
    return price if price else None  # Kite sends 0 for a price the order has not


def order_update(
    entry: Mapping[str, Any], *, fills: Iterable[BrokerFill] = (), fills_complete: bool = False
) -> BrokerOrderUpdate:
    """One Kite order entry (order book, order history, postback or ticker order update) as a
    BrokerOrderUpdate.

    ``filled_quantity`` and ``average_price`` stay cumulative, as Kite reports them. The
    order's terms (quantity, price, trigger, type) are Kite's; a MARKET (SL-M) order Kite
    protected shows as LIMIT (SL) tagged ``mktp``: ``market_protected`` says so, and our own
    tag is the other one. A status Kite does not document is flagged, not guessed at.
    """
    raw_status = str(entry.get("status") or "")
    status = oms_status(raw_status)
    if status is None:
        logger.warning(
            "unknown Kite order status %r of order %s: its status is not moved",
            raw_status,
            entry.get("order_id"),
        )
    filled = int(entry.get("filled_quantity") or 0)
    quantity = entry.get("quantity")
    return BrokerOrderUpdate(
        broker_order_id=str(entry["order_id"]),
        tag=_tag(entry),
        status=OrderStatus.SUBMITTED if status is None else status,
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
        fills_complete=fills_complete,
        quantity=None if quantity is None else int(quantity),
        price=_price_or_none(entry.get("price")),
        trigger_price=_price_or_none(entry.get("trigger_price")),
        order_type=str(entry.get("order_type") or ""),
        market_protected=_market_protected(entry),
        modifying=raw_status.strip().upper() in MODIFYING,
        modification_refused=raw_status.strip().upper() == NOT_MODIFIED,
        status_unknown=status is None,
    )


def ticker_order_update(payload: Mapping[str, Any]) -> BrokerOrderUpdate:
    """A KiteTicker ``on_order_update`` message (the ``data`` of a ``type: order`` message:
    the postback's fields, without a checksum) as a BrokerOrderUpdate. Pure: the caller hands
    it to orders.services.order_update_notified, which treats it as a postback (a
    notification that defers the confirm job). ValueError names what is missing."""
    if not isinstance(payload, Mapping):
        raise ValueError(f"order update: a JSON object is expected, not {type(payload).__name__}")
    if not payload.get("order_id"):
        raise ValueError("order_id: missing from the order update")
    return order_update(payload)


def trade_fill(entry: Mapping[str, Any]) -> BrokerFill:
    """One of Kite's trades of an order as a fill: its exact price, its quantity, its time.

    Kite's trade id is the exchange's trade number, unique within an exchange segment and a
    day only, and our trades table's trade ids are unique for ever: the fill's id is Kite's
    order id (which carries the date) and trade id together, ``<order_id>:<trade_id>``.
    """
    price = kite_decimal(entry.get("average_price"), PAISA)
    executed_at = kite_time(entry.get("fill_timestamp") or entry.get("exchange_timestamp"))
    if price is None or executed_at is None:
        raise ValueError(f"Kite trade {entry.get('trade_id')}: no price or time: {dict(entry)}")
    return BrokerFill(
        trade_id=f"{entry['order_id']}:{entry['trade_id']}",
        quantity=int(entry["quantity"]),
        price=price,
        executed_at=executed_at,
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
        "variety": order.variety or VARIETY,
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
    if order.iceberg_legs:
        params["iceberg_legs"] = order.iceberg_legs
        params["iceberg_quantity"] = order.iceberg_quantity
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
        return BrokerRateLimited(f"Kite rate limit (HTTP 429): {message}", retry_in=1.0)
    if kind == "TokenException":
        return BrokerSessionExpired(
            f"Kite session expired: log in again ({message})", retry_in=60.0
        )
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


# --- accounts and the morning login -------------------------------------------------------------


def order_rate_key(user_id: str) -> str:
    """The order window of one Kite user's requests (placements, modifications, cancels)."""
    return f"{ORDER_RATE_KEY}:{user_id}"


def login_url(api_key: str, *, state: str) -> str:
    """Kite's login page for ``api_key``; Kite hands ``state`` back to our redirect view as a
    query parameter (``redirect_params``), with the request token."""
    query = urlencode({"v": 3, "api_key": api_key, "redirect_params": urlencode({"state": state})})
    return f"{settings.KITE_LOGIN_URL}?{query}"


@dataclass(frozen=True)
class KiteSession:
    user_id: str
    access_token: str
    login_time: datetime | None


def session_create(*, api_key: str, api_secret: str, request_token: str) -> KiteSession:
    """Exchange the login's ``request_token`` for the day's access token (Kite's
    ``generate_session``: the request carries SHA-256(api_key + request_token + api_secret)).
    BrokerRejected when Kite refuses the token (used, expired, another app's)."""
    kite = KiteConnect(
        api_key=api_key, timeout=REQUEST_TIMEOUT_SECONDS, root=settings.KITE_API_ROOT, debug=False
    )
    try:
        data = kite.generate_session(request_token, api_secret=api_secret)
    except (KiteException, requests.RequestException) as error:
        translated = broker_error(error, placing=False, secrets=(api_secret, request_token))
        if getattr(error, "error_type", "") == "TokenException" or getattr(error, "code", 0) == 403:
            translated = BrokerRejected(str(translated))
        logger.warning("Kite login failed: %s", translated)
        raise translated from None
    return KiteSession(
        user_id=str(data.get("user_id") or ""),
        access_token=str(data["access_token"]),
        login_time=kite_time(data.get("login_time")),
    )


# --- the adapter --------------------------------------------------------------------------------


class KiteBroker:
    """Orders of LIVE strategies, at Zerodha through Kite Connect v3."""

    name = "kite"
    confirms_modifications = True  # a modify's 200 says "accepted"; the order's report tells

    def __init__(
        self,
        *,
        api_key: str,
        access_token: str,
        api_secret: str = "",
        user_id: str = "",
        session: Any = None,
        timeout: float = REQUEST_TIMEOUT_SECONDS,
        root: str | None = None,
    ):
        # debug stays off: the client's debug log prints the request headers, token included.
        self.kite = KiteConnect(
            api_key=api_key, access_token=access_token, timeout=timeout, root=root, debug=False
        )
        self.user_id = user_id
        self._secrets = (access_token, api_secret)
        if session is not None:
            # Anything with requests.Session's request(); tests serve recorded replies with it.
            self.kite.reqsession = session

    @classmethod
    def for_account(cls, account: BrokerAccount, *, now: datetime | None = None) -> KiteBroker:
        """The adapter for one Kite account, or BrokerSessionExpired (nothing sent) when the
        account has no session today: staff log in from the admin ("Connect Kite"); the jobs
        waiting for it ask again every SESSION_RETRY_SECONDS, without limit."""
        problem = session_problem(account, now=now)
        if problem:
            raise BrokerSessionExpired(problem, retry_in=SESSION_RETRY_SECONDS)
        return cls(
            api_key=account.api_key,
            access_token=account.access_token,
            api_secret=account.api_secret,
            user_id=account.user_id,
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
        """Take one of the Kite user's order slots (a sliding window in PostgreSQL shared by
        every process: at most 10 in any second, 400 in any minute), or raise
        BrokerRateLimited, with the wait until one is free, without sending anything."""
        wait = take_slot(order_rate_key(self.user_id), limits=ORDER_RATE_LIMITS)
        if wait:
            raise BrokerRateLimited(
                f"Kite order rate ({ORDERS_PER_SECOND}/s, {ORDERS_PER_MINUTE}/min) reached: "
                f"next in {wait:.3f}s",
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
            variety=order.variety or VARIETY,
            order_id=order.broker_order_id,
            quantity=quantity,
            order_type=order_type,
            **_price_params(order_type, price, trigger_price),
        )
        return ()  # Kite's 200 only says "request accepted"; the result comes as a report

    def cancel(self, order):
        self._take_order_token()
        self._call(
            self.kite.cancel_order,
            variety=order.variety or VARIETY,
            order_id=order.broker_order_id,
        )
        return ()  # as for modify: the CANCELLED report follows

    def cancel_many(self, orders):
        """Kite cancels one order a request: every order goes through ``cancel`` (the OMS's
        one-by-one path, which applies the rate limit and reads a refusal's reason)."""
        return (), list(orders)

    # Fills of confirmations and polls (order_status) are Kite's own trades of the order, with
    # their exact prices and trade ids: several executions reported together in one
    # cumulative update would otherwise be booked as one, at a rounded average. The order
    # book (orders(), find_by_tag) and postbacks carry cumulative figures only; an order
    # booked from those first is not counted twice (the trades already covered are skipped,
    # orders.services.broker_reports). When the trades cannot be read, the cumulative
    # figures stand in, as before.

    def find_by_tag(self, tag: str) -> BrokerOrderUpdate | None:
        """Today's latest Kite order carrying ``tag``; None if Kite has none."""
        entries = [e for e in self._call(self.kite.orders) if _has_tag(e, tag)]
        if not entries:
            return None
        return order_update(max(entries, key=_entry_time))

    def order_status(self, order: Order) -> BrokerOrderUpdate | None:
        """The order as Kite holds it now: its history's latest entry, with the status it
        works under (a modification in flight leaves it as it was) and, once anything is
        filled, every trade of the order (order_trades)."""
        if not order.broker_order_id:
            update = self.find_by_tag(order.broker_tag)
        else:
            update = self._history_update(order.broker_order_id)
        if update is None or not update.filled_quantity:
            return update
        try:
            fills = self.order_trades(update.broker_order_id)
        except (BrokerError, KeyError, TypeError, ValueError) as error:
            logger.warning(
                "Kite trades of order %s unreadable, its cumulative figures stand in: %s",
                update.broker_order_id,
                error,
            )
            return update
        return replace(update, fills=tuple(fills), fills_complete=True)

    def _history_update(self, broker_order_id: str) -> BrokerOrderUpdate | None:
        try:
            history = self._call(self.kite.order_history, broker_order_id)
        except BrokerRejected as error:
            if not isinstance(error.__cause__, InputException):
                raise
            logger.warning("Kite has no order %s: %s", broker_order_id, error)
            return None
        if not history:
            return None
        latest = order_update(history[-1])
        settled = oms_status(_settled_status(history))
        if settled is None:  # the latest entry's own status is unknown: flagged already
            return latest
        return replace(latest, status=settled)

    def order_trades(self, broker_order_id: str) -> list[BrokerFill]:
        """Every execution of the order (GET /orders/{order_id}/trades), oldest first."""
        fills = [trade_fill(entry) for entry in self._call(self.kite.order_trades, broker_order_id)]
        return sorted(fills, key=lambda fill: (fill.executed_at, _trade_number(fill.trade_id)))

    def orders(self) -> list[BrokerOrderUpdate]:
        """Today's order book, one request."""
        return [order_update(entry) for entry in self._call(self.kite.orders)]

    def positions(self) -> list[BrokerPosition]:
        """The account's net positions (Kite nets every strategy's orders together)."""
        return [broker_position(entry) for entry in self._call(self.kite.positions)["net"]]

    # --- money before and after the trade: margins, funds, contract notes, instruments -------
    # (the values are orders.brokers.funds'; Kite's JSON is read by the functions at the end)

    def margin_account_key(self) -> str:
        """The key of this session's account for the margin cache: one per Kite user."""
        return f"kite:{self.user_id or self.kite.api_key}"

    def order_margins(self, orders: list[Order]) -> list[OrderMargin]:
        """What Kite would block for each order on its own, given the account's positions
        (POST /margins/orders), in the orders' sequence."""
        entries = self._call(self.kite.order_margins, [margin_params(o) for o in orders])
        return [order_margin(entry) for entry in entries]

    def basket_margins(self, orders: list[Order]) -> BasketMargin:
        """The margin of several legs together, hedges offsetting (POST /margins/basket)."""
        answer = self._call(
            self.kite.basket_order_margins,
            [margin_params(o) for o in orders],
            consider_positions=True,
        )
        return BasketMargin(
            initial=_money(answer["initial"].get("total")),
            final=_money(answer["final"].get("total")),
            orders=tuple(order_margin(entry) for entry in answer.get("orders") or ()),
        )

    def available_funds(self, segment: str) -> AvailableFunds:
        """The account's funds in ``segment`` (equity or commodity), from GET /user/margins."""
        answer = self._call(self.kite.margins)
        if segment not in answer:
            raise BrokerUnavailable(f"Kite's margins name no segment {segment!r}")
        return available_funds(segment, answer[segment])

    def contract_note_charges(self, legs: list[ContractNoteLeg]) -> list[ContractNoteCharges]:
        """Kite's charges for executed orders, unrounded (POST /charges/orders, the virtual
        contract note), in the legs' sequence."""
        if not legs:
            return []
        entries = self._call(
            self.kite.get_virtual_contract_note, [contract_note_params(leg) for leg in legs]
        )
        return [contract_note_entry(entry) for entry in entries]

    def instrument_rows(self) -> list[dict[str, str]]:
        """Today's instrument master (GET /instruments, Kite's CSV dump of every exchange), one
        dict of strings per instrument with the dump's columns, as the CSV loader reads them."""
        return [instrument_row(entry) for entry in self._call(self.kite.instruments)]

    def holdings(self) -> list[BrokerHolding]:
        """The account's delivery holdings (GET /portfolio/holdings): CNC shares from earlier
        days, settled (``quantity``) and not yet settled (``t1_quantity``)."""
        return [broker_holding(entry) for entry in self._call(self.kite.holdings)]

    # --- GTTs: a position's protection held at Kite (positions.protection) -------------------

    def place_gtt(self, request: GttRequest) -> str:
        """Place a GTT (POST /gtt/triggers); its trigger id."""
        answer = self._call(self.kite.place_gtt, placing=True, **gtt_params(request))
        return str(answer["trigger_id"])

    def modify_gtt(self, trigger_id: str, request: GttRequest) -> None:
        """Change a GTT's triggers and legs (PUT /gtt/triggers/{id})."""
        self._call(self.kite.modify_gtt, trigger_id, **gtt_params(request))

    def delete_gtt(self, trigger_id: str) -> None:
        """Delete a GTT (DELETE /gtt/triggers/{id})."""
        self._call(self.kite.delete_gtt, trigger_id)

    def gtts(self) -> list[BrokerGtt]:
        """The account's GTTs (GET /gtt/triggers), whatever their status."""
        return [gtt_from_json(entry) for entry in self._call(self.kite.get_gtts)]


def _entry_time(entry: Mapping[str, Any]) -> datetime:
    return kite_time(entry.get("order_timestamp")) or datetime.min.replace(tzinfo=IST)


def _settled_status(history: list[Mapping[str, Any]]) -> str:
    """The latest Kite status that says where the order stands (not a modification's)."""
    for entry in reversed(history):
        status = str(entry.get("status") or "")
        if status.strip().upper() not in KEEPS_STATUS:
            return status
    return str(history[-1].get("status") or "")


def _trade_number(trade_id: str) -> tuple[int, str]:
    """Orders trades of one second by their number: the exchange numbers them in sequence."""
    number = trade_id.rpartition(":")[2]
    return (int(number), "") if number.isdigit() else (0, number)


def broker_holding(entry: Mapping[str, Any]) -> BrokerHolding:
    """One entry of Kite's holdings. Its ``pnl`` and ``day_change`` are Kite's own figures
    against the close: never ours to compare, so not read."""
    return BrokerHolding(
        symbol=str(entry["tradingsymbol"]),
        exchange=str(entry["exchange"]),
        product=str(entry.get("product") or "CNC"),
        quantity=int(entry.get("quantity") or 0),
        t1_quantity=int(entry.get("t1_quantity") or 0),
        average_price=kite_decimal(entry.get("average_price"), AVERAGE_PLACES) or None,
        last_price=kite_decimal(entry.get("last_price"), PAISA),
    )
