"""The Kite sandbox: a small stateful HTTP server speaking Kite Connect v3's JSON, for demos
and manual tries without Zerodha. It is NOT Kite: its prices are a random walk, its fills are
its own, its accounts are configured on the command line (``manage.py kite_sandbox``).

What it serves, on the routes and with the parameter names of the official ``kiteconnect``
client (point the client, or KITE_API_ROOT, at ``KiteSandbox.root``):

- the login flow: ``GET /connect/login?v=3&api_key=...`` shows a page whose "Log in" button
  redirects to the redirect URL with a one-time ``request_token`` (plus ``redirect_params``);
  ``POST /session/token`` exchanges it, checksum checked, for an access token;
- orders (place, modify, cancel, order book, history, trades), positions, holdings (none),
  funds, order and basket margins, a virtual contract note, last prices, the instruments CSV;
- Kite's errors (``{"status": "error", "error_type": ...}``) with Kite's HTTP statuses: 403
  TokenException for a wrong token or checksum, 400 InputException for a bad field, 429
  NetworkException "Too many requests" past 10 order requests a second per user;
- postbacks: with a postback URL, every order that completes, is cancelled, rejected or
  modified is POSTed there (Kite's postback JSON and checksum) from a background thread.

The state lives in omsproject.kite_sandbox_exchange. Stdlib only; no Django, no database.
"""

from __future__ import annotations

import csv
import html
import io
import json
import logging
import queue
import re
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlencode, urlsplit

from omsproject.kite_sandbox_exchange import SandboxExchange
from omsproject.kite_sandbox_records import (
    Account,
    Instrument,
    KiteError,
    input_error,
    postback_checksum,
)

logger = logging.getLogger("oms.kite_sandbox")

DEFAULT_ACCOUNT = "DEMO01:sandbox_key:sandbox_secret"
DEFAULT_REDIRECT_URL = "http://127.0.0.1:8000/broker/kite/login/"  # orders.urls: kite-login
POSTBACK_TIMEOUT_SECONDS = 5
HTML = "text/html; charset=utf-8"
SANDBOX_APP_ID = 1  # postbacks carry the app's id
INSTRUMENT_COLUMNS = (
    "instrument_token",
    "exchange_token",
    "tradingsymbol",
    "name",
    "last_price",
    "expiry",
    "strike",
    "tick_size",
    "lot_size",
    "instrument_type",
    "segment",
    "exchange",
)


def wire(value: Any) -> Any:
    """Decimals as JSON numbers, as Kite sends prices (2450.5, 0)."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {key: wire(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [wire(item) for item in value]
    return value


def login_page(account: Account, *, redirect_params: str) -> str:
    """The sandbox's stand-in for Kite's login page: one button, no password."""
    user_id = html.escape(account.user_id)
    return f"""<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Kite sandbox — log in</title></head>
<body style="font-family: sans-serif; max-width: 28rem; margin: 4rem auto">
<h1>Kite sandbox — log in</h1>
<p>A sandbox for demos, <strong>not Zerodha Kite</strong>: no real orders, no real money.</p>
<p>Log in as <strong id="user-id">{user_id}</strong> ({html.escape(account.user_name)}).</p>
<form method="post" action="/connect/login">
<input type="hidden" name="api_key" value="{html.escape(account.api_key)}">
<input type="hidden" name="redirect_params" value="{html.escape(redirect_params)}">
<button type="submit">Log in</button>
</form>
</body>
</html>
"""


def login_redirect(redirect_url: str, *, request_token: str, redirect_params: str) -> str:
    """Where Kite sends the browser after a login: the app's redirect URL with the request
    token, the login's outcome, and the app's own ``redirect_params`` decoded as parameters."""
    query = [
        ("request_token", request_token),
        ("action", "login"),
        ("type", "login"),
        ("status", "success"),
        *parse_qsl(redirect_params, keep_blank_values=True),
    ]
    separator = "&" if urlsplit(redirect_url).query else "?"
    return f"{redirect_url}{separator}{urlencode(query)}"


def instruments_csv(instruments: Iterable[Instrument]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(INSTRUMENT_COLUMNS)
    for i in instruments:
        writer.writerow(
            [
                i.token,
                i.exchange_token,
                i.symbol,
                i.name,
                0,
                i.expiry,
                i.strike,
                i.tick_size,
                i.lot_size,
                i.instrument_type,
                i.segment,
                i.exchange,
            ]
        )
    return out.getvalue()


class PostbackSender:
    """Kite's postbacks, sent from one background thread in the order they happened."""

    def __init__(self, url: str, *, timeout: float = POSTBACK_TIMEOUT_SECONDS):
        self.url = url
        self.timeout = timeout
        self.sent: list[tuple[int | None, dict[str, Any]]] = []  # (HTTP status, payload)
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="kite-sandbox-postbacks")
        self._thread.daemon = True

    def start(self) -> PostbackSender:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=self.timeout + 1)

    def enqueue(self, account: Account, entry: Mapping[str, Any]) -> None:
        payload = {
            "user_id": account.user_id,
            "unfilled_quantity": entry["pending_quantity"],
            "app_id": SANDBOX_APP_ID,
            "checksum": postback_checksum(
                entry["order_id"], entry["order_timestamp"], account.api_secret
            ),
            **{key: value for key, value in entry.items() if key != "tags"},
        }
        self._queue.put(wire(payload))

    def drain(self) -> None:
        """Wait until every queued postback was sent (tests)."""
        self._queue.join()

    def _run(self) -> None:
        while (payload := self._queue.get()) is not None:
            try:
                self.sent.append((self._post(payload), payload))
            finally:
                self._queue.task_done()

    def _post(self, payload: dict[str, Any]) -> int | None:
        """POST one postback; its HTTP status (None: no answer). Not sent again: the OMS polls."""
        request = urllib.request.Request(  # noqa: S310 - the URL is the operator's own
            self.url,
            data=json.dumps(payload).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as answer:  # noqa: S310
                return answer.status
        except urllib.error.HTTPError as error:
            logger.warning("postback for %s answered %s", payload["order_id"], error.code)
            return error.code
        except (OSError, ValueError) as error:
            logger.warning("postback for %s not delivered: %s", payload["order_id"], error)
            return None


@dataclass(frozen=True)
class Answer:
    status: int
    content_type: str
    body: bytes
    location: str | None = None  # a redirect's target


Route = tuple[str, re.Pattern[str], str, bool]  # method, path, handler name, needs a session


def _route(method: str, pattern: str, name: str, *, session: bool = True) -> Route:
    return method, re.compile(f"^{pattern}$"), name, session


ROUTES: tuple[Route, ...] = (
    _route("GET", "/connect/login", "login_show", session=False),
    _route("POST", "/connect/login", "login_submit", session=False),
    _route("POST", "/session/token", "session_create", session=False),
    _route("DELETE", "/session/token", "session_end"),
    _route("GET", "/user/profile", "profile"),
    _route("GET", "/user/margins", "funds"),
    _route("GET", "/user/margins/(?P<segment>equity|commodity)", "funds"),
    _route("POST", "/orders/(?P<variety>[a-z]+)", "order_place"),
    _route("PUT", "/orders/(?P<variety>[a-z]+)/(?P<order_id>[0-9]+)", "order_modify"),
    _route("DELETE", "/orders/(?P<variety>[a-z]+)/(?P<order_id>[0-9]+)", "order_cancel"),
    _route("GET", "/orders", "order_book"),
    _route("GET", "/orders/(?P<order_id>[0-9]+)", "order_history"),
    _route("GET", "/orders/(?P<order_id>[0-9]+)/trades", "order_trades"),
    _route("GET", "/trades", "trade_book"),
    _route("GET", "/portfolio/positions", "positions"),
    _route("GET", "/portfolio/holdings", "holdings"),
    _route("POST", "/margins/orders", "margins_orders"),
    _route("POST", "/margins/basket", "margins_basket"),
    _route("POST", "/charges/orders", "contract_note"),
    _route("GET", "/quote/ltp", "last_prices"),
    _route("GET", "/instruments", "instruments"),
    _route("GET", "/instruments/(?P<exchange>[A-Z]+)", "instruments"),
    _route("GET", "/gtt/triggers", "gtt_list"),
    _route("POST", "/gtt/triggers", "gtt_place"),
    _route("GET", "/gtt/triggers/(?P<trigger_id>[0-9]+)", "gtt_get"),
    _route("PUT", "/gtt/triggers/(?P<trigger_id>[0-9]+)", "gtt_modify"),
    _route("DELETE", "/gtt/triggers/(?P<trigger_id>[0-9]+)", "gtt_delete"),
)


def success(data: Any) -> Answer:
    body = json.dumps({"status": "success", "data": wire(data)}).encode()
    return Answer(200, "application/json", body)


def failure(error: KiteError) -> Answer:
    body = {"status": "error", "message": error.message, "data": None}
    body["error_type"] = error.error_type
    return Answer(error.http_status, "application/json", json.dumps(body).encode())


class Request:
    """One request as the API methods read it."""

    def __init__(self, method: str, target: str, headers: Mapping[str, str], body: bytes):
        url = urlsplit(target)
        self.method = method
        self.path = url.path.rstrip("/") or "/"
        self.query = parse_qs(url.query, keep_blank_values=True)
        self.headers = headers
        self.json: Any = None
        self.form: dict[str, str] = {}
        if "json" in (headers.get("Content-Type") or ""):
            try:
                self.json = json.loads(body or b"null")
            except ValueError:
                raise input_error("body: not JSON") from None
        elif body:
            self.form = {key: values[-1] for key, values in parse_qs(body.decode()).items()}

    def field(self, name: str) -> str:
        """A form field, else a query parameter (DELETE sends its parameters in the URL)."""
        if name in self.form:
            return self.form[name]
        return (self.query.get(name) or [""])[-1]


class SandboxApi:
    """Kite's routes over a SandboxExchange: each method answers one route."""

    def __init__(self, exchange: SandboxExchange, *, redirect_url: str):
        self.exchange = exchange
        self.redirect_url = redirect_url

    def answer(self, request: Request) -> Answer:
        try:
            for method, pattern, name, needs_session in ROUTES:
                matched = pattern.match(request.path)
                if matched and method == request.method:
                    account = None
                    if needs_session:
                        account = self.exchange.authenticate(request.headers.get("Authorization"))
                    return getattr(self, name)(request, account, **matched.groupdict())
            raise KiteError(404, "GeneralException", f"Route not found: {request.path}")
        except KiteError as error:
            return failure(error)

    # --- login ---------------------------------------------------------------------------------

    def login_show(self, request: Request, account: None) -> Answer:
        try:
            account = self.exchange.account(request.field("api_key"))
        except KiteError:
            page = "<!doctype html><title>Kite sandbox</title><p>Invalid <code>api_key</code>."
            return Answer(400, HTML, page.encode())
        page = login_page(account, redirect_params=request.field("redirect_params"))
        return Answer(200, HTML, page.encode())

    def login_submit(self, request: Request, account: None) -> Answer:
        token = self.exchange.request_token_issue(request.field("api_key"))
        location = login_redirect(
            self.redirect_url,
            request_token=token,
            redirect_params=request.field("redirect_params"),
        )
        return Answer(302, HTML, b"", location=location)

    def session_create(self, request: Request, account: None) -> Answer:
        return success(
            self.exchange.session_create(
                api_key=request.field("api_key"),
                request_token=request.field("request_token"),
                checksum=request.field("checksum"),
            )
        )

    def session_end(self, request: Request, account: Account) -> Answer:
        token = request.field("access_token")
        return success(self.exchange.session_end(account.api_key, token))

    def profile(self, request: Request, account: Account) -> Answer:
        return success(self.exchange.profile(account))

    # --- orders --------------------------------------------------------------------------------

    def order_place(self, request: Request, account: Account, variety: str) -> Answer:
        order_id = self.exchange.order_place(account, variety, request.form)
        return success({"order_id": order_id})

    def order_modify(self, request: Request, account: Account, variety: str, order_id: str):
        order_id = self.exchange.order_modify(account, variety, order_id, request.form)
        return success({"order_id": order_id})

    def order_cancel(self, request: Request, account: Account, variety: str, order_id: str):
        return success({"order_id": self.exchange.order_cancel(account, variety, order_id)})

    def order_book(self, request: Request, account: Account) -> Answer:
        return success(self.exchange.order_book(account))

    def order_history(self, request: Request, account: Account, order_id: str) -> Answer:
        return success(self.exchange.order_history(account, order_id))

    def order_trades(self, request: Request, account: Account, order_id: str) -> Answer:
        return success(self.exchange.order_trades(account, order_id))

    def trade_book(self, request: Request, account: Account) -> Answer:
        return success(self.exchange.trade_book(account))

    # --- portfolio, funds, margins, charges ----------------------------------------------------

    def positions(self, request: Request, account: Account) -> Answer:
        return success(self.exchange.position_book(account))

    def holdings(self, request: Request, account: Account) -> Answer:
        return success([])  # the sandbox starts every day without delivery holdings

    def funds(self, request: Request, account: Account, segment: str | None = None) -> Answer:
        funds = self.exchange.funds(account)
        return success(funds[segment] if segment else funds)

    def margins_orders(self, request: Request, account: Account) -> Answer:
        return success(self.exchange.margins_for(_legs(request)))

    def margins_basket(self, request: Request, account: Account) -> Answer:
        return success(self.exchange.basket_margins(_legs(request)))

    def contract_note(self, request: Request, account: Account) -> Answer:
        return success(self.exchange.contract_note(_legs(request)))

    # --- market data ---------------------------------------------------------------------------

    def last_prices(self, request: Request, account: Account) -> Answer:
        prices = {}
        for key in request.query.get("i", []):
            if key in self.exchange.instruments:  # Kite leaves unknown instruments out
                token = self.exchange.instruments[key].token
                prices[key] = {
                    "instrument_token": token,
                    "last_price": self.exchange.last_price(key),
                }
        return success(prices)

    def instruments(self, request: Request, account: Account, exchange: str | None = None):
        listed = [
            i
            for i in self.exchange.instruments.values()
            if exchange is None or i.exchange == exchange
        ]
        return Answer(200, "text/csv", instruments_csv(listed).encode())

    # --- GTTs (omsproject.kite_sandbox_gtt) ------------------------------------------------------

    def gtt_list(self, request: Request, account: Account) -> Answer:
        return success(self.exchange.gtt_list(account))

    def gtt_get(self, request: Request, account: Account, trigger_id: str) -> Answer:
        return success(self.exchange.gtt_get(account, trigger_id))

    def gtt_place(self, request: Request, account: Account) -> Answer:
        return success({"trigger_id": self.exchange.gtt_place(account, request.form)})

    def gtt_modify(self, request: Request, account: Account, trigger_id: str) -> Answer:
        return success({"trigger_id": self.exchange.gtt_modify(account, trigger_id, request.form)})

    def gtt_delete(self, request: Request, account: Account, trigger_id: str) -> Answer:
        return success({"trigger_id": self.exchange.gtt_delete(account, trigger_id)})


def _legs(request: Request) -> list[Mapping[str, Any]]:
    if not isinstance(request.json, list) or not all(isinstance(o, dict) for o in request.json):
        raise input_error("body: a JSON list of orders is expected")
    return request.json


class SandboxHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # a burst of orders arriving together is queued, not refused


class KiteSandbox:
    """The sandbox's HTTP server on ``host:port`` (0: a free port), its price walk (one step
    every ``walk_seconds``; None: prices move only through ``exchange.price_set``) and its
    postback thread (with a ``postback_url``)."""

    def __init__(
        self,
        *,
        accounts: Iterable[Account],
        instruments: Iterable[Instrument],
        prices: Mapping[str, Decimal] | None = None,
        redirect_url: str = DEFAULT_REDIRECT_URL,
        postback_url: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        walk_seconds: float | None = 1.0,
        seed: int | None = None,
        clock: Callable[[], float] | None = None,
    ):
        self.postbacks = PostbackSender(postback_url) if postback_url else None
        options = {"clock": clock} if clock else {}
        self.exchange = SandboxExchange(
            accounts=accounts,
            instruments=instruments,
            prices=prices,
            postback=self.postbacks.enqueue if self.postbacks else None,
            seed=seed,
            **options,
        )
        self.api = SandboxApi(self.exchange, redirect_url=redirect_url)
        self.walk_seconds = walk_seconds
        self._stopping = threading.Event()
        self._server = SandboxHTTPServer((host, port), _handler(self.api))
        self._threads = [threading.Thread(target=self._server.serve_forever, daemon=True)]
        if walk_seconds:
            self._threads.append(threading.Thread(target=self._walk, daemon=True))

    @property
    def root(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def login_url(self, api_key: str) -> str:
        return f"{self.root}/connect/login?v=3&api_key={api_key}"

    def start(self) -> KiteSandbox:
        if self.postbacks:
            self.postbacks.start()
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        if self.postbacks:
            self.postbacks.stop()

    def wait(self) -> None:
        """Block until ``stop`` (a command serving until Ctrl-C)."""
        self._stopping.wait()

    def _walk(self) -> None:
        while not self._stopping.wait(self.walk_seconds):
            self.exchange.walk()


def _handler(api: SandboxApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "KiteSandbox/1"

        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            try:
                request = Request(self.command, self.path, self.headers, body)
                answer = api.answer(request)
            except KiteError as error:
                answer = failure(error)
            except Exception as error:  # the sandbox answers as Kite would, and logs
                logger.exception("kite sandbox: %s %s failed", self.command, self.path)
                answer = failure(KiteError(500, "GeneralException", f"sandbox error: {error}"))
            self.send_response(answer.status)
            self.send_header("Content-Type", answer.content_type)
            if answer.location:
                self.send_header("Location", answer.location)
            self.send_header("Content-Length", str(len(answer.body)))
            self.end_headers()
            self.wfile.write(answer.body)

        do_GET = do_POST = do_PUT = do_DELETE = _answer

        def log_message(self, format, *args) -> None:
            logger.debug("kite sandbox: " + format, *args)

    return Handler
