"""``OMSClient``: the strategy API over HTTP, with retries that are safe.

What is retried, and why it is safe:

- reads (GET) and placement: on connection errors, timeouts, 5xx and 429. A placement carries
  its ``client_order_id`` (generated when none is given, and the same on every attempt), so
  the OMS places it once: a retry of a placement that did land answers the original order
  (``Order.replayed``), or its original refusal;
- modify, cancel, pause and resume: only when the OMS cannot have acted — a 429 (refused before
  anything), a 503 (the database was unavailable; the API asks for the same request again), or
  a connection that was never made.

A 429's ``Retry-After`` is honoured when it is at most ``max_retry_after`` seconds; a longer
wait raises ``Throttled`` at once (a strategy decides what to do with a minute). Other waits
back off exponentially from ``backoff`` with full jitter, capped at ``max_backoff``. Every
request has (connect, read) timeouts; nothing loops without bound.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import requests
import urllib3.exceptions

from oms_client.errors import (
    APIError,
    ServerError,
    Throttled,
    TransportError,
    error_for,
    retry_after_of,
)
from oms_client.models import Basket, Event, Order, Strategy, Trade

__version__ = "0.1.0"
REPLAY_HEADER = "Idempotent-Replayed"
FEED_MAX_WAIT = 30  # the API's bound on ``wait``


@dataclass(frozen=True)
class EventPage:
    """One answer of the feed: events after the cursor, and the cursor to send next."""

    events: list[Event]
    next_after: int


class OMSClient:
    """A strategy's client. ``base_url`` is the server's root (``http://127.0.0.1:8000``) or
    its API root (``.../api/v1``); ``api_key`` the strategy's key (``oms_<prefix>_<secret>``)."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float = 10.0,
        connect_timeout: float = 3.05,
        retries: int = 3,
        backoff: float = 0.2,
        max_backoff: float = 5.0,
        max_retry_after: float = 30.0,
        client_order_id_prefix: str = "oms-",
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ):
        root = base_url.rstrip("/")
        self.api_root = root if root.endswith("/api/v1") else f"{root}/api/v1"
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.retries = max(int(retries), 0)
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.max_retry_after = max_retry_after
        self.client_order_id_prefix = client_order_id_prefix
        self.session = session or requests.Session()
        self.session.headers["Authorization"] = f"Bearer {api_key}"
        self.session.headers["User-Agent"] = f"oms-client/{__version__}"
        self.sleep = sleep

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> OMSClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- orders ------------------------------------------------------------------------------

    def new_client_order_id(self) -> str:
        """A fresh id for a placement: the prefix and 32 hex digits (the API allows 64)."""
        return f"{self.client_order_id_prefix}{uuid.uuid4().hex}"

    def place(
        self,
        symbol: str,
        side: str,
        quantity: int,
        *,
        order_type: str | None = None,
        price: Decimal | str | int | None = None,
        trigger_price: Decimal | str | int | None = None,
        product: str = "MIS",
        exchange: str = "NSE",
        validity: str = "DAY",
        stop_loss: Decimal | str | int | None = None,
        take_profit: Decimal | str | int | None = None,
        tag: str = "",
        client_order_id: str | None = None,
        variety: str = "regular",
        iceberg_legs: int | None = None,
        iceberg_quantity: int | None = None,
    ) -> Order:
        """Place an order; its ``client_order_id`` is generated when none is given and kept
        across retries, so it is placed once. ``order_type`` defaults to LIMIT with a price,
        MARKET without. ``variety``: regular, amo (outside market hours, for the next
        session) or iceberg (with ``iceberg_legs`` and ``iceberg_quantity``). Raises
        ``RiskRefused`` (422, with ``violations`` and ``order_id``), ``KillSwitchEngaged``
        (423), ``Conflict`` (the id was used for another order), ``InvalidRequest``,
        ``Throttled``..."""
        body = self.order_body(
            symbol,
            side,
            quantity,
            order_type=order_type,
            price=price,
            trigger_price=trigger_price,
            product=product,
            exchange=exchange,
            validity=validity,
            stop_loss=stop_loss,
            take_profit=take_profit,
            tag=tag,
            client_order_id=client_order_id,
            variety=variety,
            iceberg_legs=iceberg_legs,
            iceberg_quantity=iceberg_quantity,
        )
        response = self._request("POST", "/orders/", json=body, safe=True)
        return Order.from_json(
            self._json(response), replayed=response.headers.get(REPLAY_HEADER) == "true"
        )

    def order_body(
        self,
        symbol: str,
        side: str,
        quantity: int,
        *,
        order_type: str | None = None,
        price: Decimal | str | int | None = None,
        trigger_price: Decimal | str | int | None = None,
        product: str = "MIS",
        exchange: str = "NSE",
        validity: str = "DAY",
        stop_loss: Decimal | str | int | None = None,
        take_profit: Decimal | str | int | None = None,
        tag: str = "",
        client_order_id: str | None = None,
        variety: str = "regular",
        iceberg_legs: int | None = None,
        iceberg_quantity: int | None = None,
    ) -> dict[str, Any]:
        """One order's JSON (what ``place`` sends; a leg of ``place_basket``), with its
        ``client_order_id`` (generated when none is given)."""
        body: dict[str, Any] = {
            "client_order_id": client_order_id or self.new_client_order_id(),
            "symbol": symbol,
            "exchange": exchange,
            "side": side,
            "quantity": quantity,
            "order_type": order_type or ("LIMIT" if price is not None else "MARKET"),
            "product": product,
            "validity": validity,
            "tag": tag,
        }
        for name, value in (
            ("price", price),
            ("trigger_price", trigger_price),
            ("stop_loss", stop_loss),
            ("take_profit", take_profit),
        ):
            if value is not None:
                body[name] = money_out(name, value)
        if variety != "regular":
            body["variety"] = variety
        if iceberg_legs is not None:
            body["iceberg_legs"] = iceberg_legs
        if iceberg_quantity is not None:
            body["iceberg_quantity"] = iceberg_quantity
        return body

    def place_basket(
        self, legs: list[dict[str, Any]], *, client_basket_id: str | None = None
    ) -> Basket:
        """Place several orders at once, all or nothing: each leg is ``order_body(...)``'s
        arguments as a dict (``{"symbol": "RELIANCE", "side": "BUY", "quantity": 10, "price":
        "2450.50"}``) or its result. Idempotent on ``client_basket_id`` (generated when none is
        given, kept across retries; each leg's ``client_order_id`` likewise). A refused leg
        raises ``RiskRefused`` (422, code ``basket_refused``: ``leg`` in ``body["error"]``, and
        ``fields`` as ``legs.<i>.<field>``): nothing was placed."""
        bodies = [leg if "client_order_id" in leg else self.order_body(**leg) for leg in legs]
        body = {
            "client_basket_id": client_basket_id or self.new_client_order_id(),
            "legs": bodies,
        }
        response = self._request("POST", "/baskets/", json=body, safe=True)
        return Basket.from_json(
            self._json(response), replayed=response.headers.get(REPLAY_HEADER) == "true"
        )

    def basket(self, basket_id: int) -> Basket:
        """A basket with its legs as they are now."""
        return Basket.from_json(self._get(f"/baskets/{basket_id}/"))

    def modify(
        self,
        order_id: int,
        *,
        quantity: int | None = None,
        price: Decimal | str | int | None = None,
        trigger_price: Decimal | str | int | None = None,
        order_type: str | None = None,
    ) -> Order:
        """Change a working order; what is left out keeps its value. The change is sent to the
        broker by a job: the answer has it under ``pending_modification``."""
        body: dict[str, Any] = {}
        if quantity is not None:
            body["quantity"] = quantity
        if order_type is not None:
            body["order_type"] = order_type
        for name, value in (("price", price), ("trigger_price", trigger_price)):
            if value is not None:
                body[name] = money_out(name, value)
        if not body:
            raise ValueError(
                "modify: give at least one of quantity, price, trigger_price, order_type"
            )
        response = self._request("PATCH", f"/orders/{int(order_id)}/", json=body)
        return Order.from_json(self._json(response))

    def cancel(self, order_id: int, reason: str = "") -> Order:
        """Cancel an order: cancelled at once if the broker never saw it, else the cancel is
        sent (``cancel_requested_at``). ``Conflict`` when it can no longer be cancelled."""
        body = {"reason": reason} if reason else {}
        response = self._request("POST", f"/orders/{int(order_id)}/cancel/", json=body)
        return Order.from_json(self._json(response))

    def order(self, order_id: int) -> Order:
        """One order with its history (oldest event first) and its trades."""
        return Order.from_json(self._get(f"/orders/{int(order_id)}/"))

    def orders(self, *, page_size: int = 100, **filters: Any) -> Iterator[Order]:
        """The strategy's orders, newest first, page after page. Filters as the API's:
        ``status`` (a value or a list), ``symbol``, ``exchange``, ``side``, ``product``,
        ``client_order_id``, ``tag``, ``created_after``, ``created_before``."""
        for row in self._pages("/orders/", {"page_size": page_size, **filters}):
            yield Order.from_json(row)

    def trades(self, *, page_size: int = 100, **filters: Any) -> Iterator[Trade]:
        """The strategy's fills with their charges; filters ``order``, ``symbol``... as the
        API's."""
        for row in self._pages("/trades/", {"page_size": page_size, **filters}):
            yield Trade.from_json(row)

    # --- the strategy ------------------------------------------------------------------------

    def strategy(self) -> Strategy:
        """The calling strategy: status, mode, kill switch, limits in force, today's figures."""
        return Strategy.from_json(self._get("/strategy/"))

    def pause(self, reason: str) -> Strategy:
        """Pause this strategy (no new orders) with a reason, recorded as an event; returns
        the strategy as it is now."""
        return self._steer("PAUSED", reason)

    def resume(self, reason: str) -> Strategy:
        """Lift a pause this strategy made itself (never one staff made, nor a kill switch:
        ``Conflict`` or ``PermissionDenied``)."""
        return self._steer("ACTIVE", reason)

    def _steer(self, status: str, reason: str) -> Strategy:
        if not reason or not reason.strip():
            raise ValueError("reason: required (it is recorded with the status change)")
        response = self._request("PATCH", "/strategy/", json={"status": status, "reason": reason})
        return Strategy.from_json(self._json(response))

    # --- the event feed ----------------------------------------------------------------------

    def poll_events(self, after: int = 0, *, wait: float = 0, page_size: int = 100) -> EventPage:
        """One call of the feed: events with an id above ``after``; with ``wait`` (0 to 30 s)
        the server holds the request until something new commits or the wait ends."""
        wait = min(max(float(wait), 0.0), FEED_MAX_WAIT)
        response = self._request(
            "GET",
            "/events/",
            params={"after": int(after), "wait": f"{wait:g}", "page_size": page_size},
            safe=True,
            read_timeout=self.timeout + wait,
        )
        body = self._json(response)
        events = [Event.from_json(row) for row in body.get("events", [])]
        next_after = int(body.get("next_after", events[-1].id if events else after))
        return EventPage(events, max(next_after, int(after)))

    def events(
        self,
        after: int = 0,
        wait: float = 25,
        *,
        page_size: int = 100,
        idle_timeout: float | None = None,
    ) -> EventFeed:
        """The strategy's events after ``after``, in id order, for as long as you iterate.

        Long-polls (``wait`` s per request). The iterator's ``after`` is the id of the last
        event it yielded: keep it (with the strategy's state) and pass it to a new client after
        a restart to resume exactly there. ``idle_timeout`` ends the iteration after that many
        seconds without a new event (None: never)."""
        return EventFeed(self, after, wait, page_size, idle_timeout)

    # --- plumbing ----------------------------------------------------------------------------

    def _get(self, path: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        return self._json(self._request("GET", path, params=params, safe=True))

    def _pages(self, path: str, params: dict[str, Any]) -> Iterator[dict[str, Any]]:
        url: str | None = self.api_root + path
        query: dict[str, Any] | None = {k: v for k, v in params.items() if v is not None}
        while url:
            body = self._json(self._request("GET", url, params=query, safe=True))
            yield from body.get("results", [])
            url, query = body.get("next"), None  # ``next`` carries the query and the cursor

    def _request(
        self,
        method: str,
        path: str,
        *,
        json: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
        safe: bool = False,
        read_timeout: float | None = None,
    ) -> requests.Response:
        """Send, retrying what is safe to retry (see the module's docstring); an error status
        is raised as its typed error."""
        url = path if path.startswith(("http://", "https://")) else self.api_root + path
        timeout = (self.connect_timeout, read_timeout or self.timeout)
        attempt = 0
        while True:
            try:
                response = self.session.request(
                    method, url, json=json, params=params, timeout=timeout, allow_redirects=False
                )
            except requests.RequestException as error:
                if attempt < self.retries and (safe or never_sent(error)):
                    self.sleep(self._backoff(attempt))
                    attempt += 1
                    continue
                raise TransportError(f"{method} {url}: {error}") from error
            if response.status_code < 400:
                return response
            failure = error_for(response.status_code, self._error_body(response), response.headers)
            wait = self._retry_wait(failure, attempt, safe)
            if wait is None:
                raise failure
            self.sleep(wait)
            attempt += 1

    def _retry_wait(self, failure: APIError, attempt: int, safe: bool) -> float | None:
        """Seconds to wait before sending again, or None to raise ``failure``."""
        if attempt >= self.retries:
            return None
        if isinstance(failure, Throttled):
            if failure.retry_after is None:
                return self._backoff(attempt)
            return failure.retry_after if failure.retry_after <= self.max_retry_after else None
        if isinstance(failure, ServerError) and (safe or failure.status == 503):
            hinted = retry_after_of(failure.headers, failure.body)
            if hinted is not None and hinted > self.max_retry_after:
                return None
            return hinted if hinted is not None else self._backoff(attempt)
        return None

    def _backoff(self, attempt: int) -> float:
        return random.uniform(0, min(self.max_backoff, self.backoff * 2**attempt))

    @staticmethod
    def _json(response: requests.Response) -> dict[str, Any]:
        return response.json(parse_float=Decimal)

    @staticmethod
    def _error_body(response: requests.Response) -> dict[str, Any] | None:
        try:
            body = response.json(parse_float=Decimal)
        except ValueError:
            return None
        return body if isinstance(body, dict) else None


class EventFeed:
    """Iterator over the event feed that resumes from the last event it yielded (``after``)."""

    def __init__(
        self,
        client: OMSClient,
        after: int,
        wait: float,
        page_size: int,
        idle_timeout: float | None,
    ):
        self.client = client
        self.after = int(after)
        self.wait = wait
        self.page_size = page_size
        self.idle_timeout = idle_timeout
        self._buffer: list[Event] = []
        self._last_event_at = time.monotonic()

    def __iter__(self) -> EventFeed:
        return self

    def __next__(self) -> Event:
        while not self._buffer:
            wait = self.wait
            if self.idle_timeout is not None:
                left = self.idle_timeout - (time.monotonic() - self._last_event_at)
                if left <= 0:
                    raise StopIteration
                wait = min(wait, max(left, 0.0))
            page = self.client.poll_events(self.after, wait=wait, page_size=self.page_size)
            self._buffer = [event for event in page.events if event.id > self.after]
        event = self._buffer.pop(0)
        self.after = event.id
        self._last_event_at = time.monotonic()
        return event


def money_out(name: str, value: Decimal | str | int) -> str:
    """A price as the API wants it: a decimal string. A float is refused (not money)."""
    if isinstance(value, float | bool):
        raise TypeError(f"{name}: must be a Decimal or a decimal string, not {value!r}")
    try:
        amount = Decimal(str(value).strip())
    except ArithmeticError:
        raise ValueError(f"{name}: {value!r} is not a decimal number") from None
    if not amount.is_finite():
        raise ValueError(f"{name}: must be finite")
    return format(amount, "f")


def never_sent(error: requests.RequestException) -> bool:
    """Whether the request cannot have reached the server (no connection was made), so even a
    non-idempotent request may be sent again."""
    if isinstance(error, requests.ConnectTimeout):
        return True
    if isinstance(error, requests.ConnectionError):
        cause = error.args[0] if error.args else None
        reason = getattr(cause, "reason", cause)
        return isinstance(reason, urllib3.exceptions.NewConnectionError)
    return False
