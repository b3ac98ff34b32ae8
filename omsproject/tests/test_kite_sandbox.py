"""The Kite sandbox, driven the way the OMS drives Kite: with the official ``kiteconnect`` client
(the SDK builds the requests and parses the replies exactly as against api.kite.trade), and
through the OMS's own Kite adapter (orders.brokers.kite.KiteBroker)."""

from __future__ import annotations

import hashlib
import json
import socket
import subprocess
import sys
import threading
import time
from decimal import ROUND_HALF_UP, Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.core.management import CommandError, call_command
from kiteconnect import KiteConnect
from kiteconnect.exceptions import InputException, NetworkException, TokenException

from omsproject.kite_sandbox import KiteSandbox
from omsproject.kite_sandbox_records import Account, instruments_read
from omsproject.testing.threads import run_together
from orders.brokers.base import BrokerUnavailable
from orders.brokers.kite import KiteBroker
from orders.brokers.postback import checksum_valid, figures_errors
from orders.enums import OrderStatus

ROOT = Path(__file__).resolve().parents[2]
INSTRUMENTS = instruments_read(ROOT / "risk" / "fixtures" / "instruments_sample.csv")
API_KEY, API_SECRET = "sandbox_key", "sandbox_secret"
REDIRECT = "http://oms.test/kite/login/"
PAISA = Decimal("0.01")


class Clock:
    """The sandbox's monotonic clock, moved by the test (the rate limit's second)."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return Clock()


def sandbox_start(clock, **options) -> KiteSandbox:
    options.setdefault(
        "accounts",
        [Account("DEMO01", API_KEY, API_SECRET), Account("DEMO02", "other_key", "other_secret")],
    )
    return KiteSandbox(
        instruments=INSTRUMENTS,
        prices={"NSE:INFY": Decimal("1600.00"), "NSE:RELIANCE": Decimal("2450.00")},
        redirect_url=REDIRECT,
        walk_seconds=None,  # prices move only when a test moves them
        clock=clock,
        **options,
    ).start()


@pytest.fixture
def sandbox(clock):
    server = sandbox_start(clock)
    yield server
    server.stop()


def request_token(sandbox: KiteSandbox, api_key: str = API_KEY) -> str:
    """The login page's button: the redirect carries a fresh request token."""
    answer = requests.post(
        f"{sandbox.root}/connect/login",
        data={"api_key": api_key, "redirect_params": ""},
        allow_redirects=False,
        timeout=5,
    )
    return parse_qs(urlsplit(answer.headers["Location"]).query)["request_token"][0]


def log_in(sandbox: KiteSandbox, api_key: str = API_KEY, api_secret: str = API_SECRET):
    """The whole login: the request token, then the session (the official client's checksum)."""
    kite = KiteConnect(api_key, root=sandbox.root)
    session = kite.generate_session(request_token(sandbox, api_key), api_secret=api_secret)
    return kite, session


@pytest.fixture
def kite(sandbox):
    return log_in(sandbox)[0]


def buy(kite, quantity=5, symbol="INFY", **changes):
    params = {
        "variety": "regular",
        "exchange": "NSE",
        "tradingsymbol": symbol,
        "transaction_type": "BUY",
        "quantity": quantity,
        "product": "MIS",
        "order_type": "MARKET",
        "market_protection": -1,
    }
    params.update(changes)
    return kite.place_order(**params)


def statuses(kite, order_id) -> list[str]:
    return [entry["status"] for entry in kite.order_history(order_id)]


# --- login -------------------------------------------------------------------------------------


def test_the_login_page_names_the_demo_user_and_its_button_redirects_with_a_request_token(
    sandbox,
):
    page = requests.get(
        f"{sandbox.login_url(API_KEY)}&redirect_params=strategy%3Dalpha%26next%3D%2Fadmin%2F",
        timeout=5,
    )
    assert page.status_code == 200
    assert "<title>Kite sandbox — log in</title>" in page.text
    assert '<strong id="user-id">DEMO01</strong>' in page.text
    assert "not Zerodha Kite" in page.text

    answer = requests.post(
        f"{sandbox.root}/connect/login",
        data={"api_key": API_KEY, "redirect_params": "strategy=alpha&next=/admin/"},
        allow_redirects=False,
        timeout=5,
    )
    assert answer.status_code == 302
    location = urlsplit(answer.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT
    query = parse_qs(location.query)
    assert len(query.pop("request_token")[0]) >= 20
    assert query == {
        "action": ["login"],
        "type": ["login"],
        "status": ["success"],
        "strategy": ["alpha"],
        "next": ["/admin/"],
    }


def test_the_login_page_refuses_an_unknown_api_key(sandbox):
    page = requests.get(sandbox.login_url("nobody"), timeout=5)
    assert page.status_code == 400
    assert "Invalid" in page.text


def test_a_request_token_opens_one_session_and_only_once(sandbox):
    kite, session = log_in(sandbox)
    assert session["user_id"] == "DEMO01"
    assert session["api_key"] == API_KEY
    assert session["access_token"] and session["public_token"]
    assert kite.profile()["user_id"] == "DEMO01"
    assert kite.orders() == []

    token = request_token(sandbox)
    KiteConnect(API_KEY, root=sandbox.root).generate_session(token, api_secret=API_SECRET)
    with pytest.raises(TokenException) as reused:
        KiteConnect(API_KEY, root=sandbox.root).generate_session(token, api_secret=API_SECRET)
    assert reused.value.code == 403


def test_a_wrong_checksum_is_refused_with_kites_token_error(sandbox):
    token = request_token(sandbox)
    with pytest.raises(TokenException) as refused:
        KiteConnect(API_KEY, root=sandbox.root).generate_session(token, api_secret="wrong")
    assert refused.value.code == 403
    assert "checksum" in str(refused.value)

    raw = requests.post(
        f"{sandbox.root}/session/token",
        data={"api_key": API_KEY, "request_token": token, "checksum": "0" * 64},
        timeout=5,
    )
    assert raw.status_code == 403
    assert raw.json() == {
        "status": "error",
        "message": "Invalid `checksum`.",
        "data": None,
        "error_type": "TokenException",
    }


def test_tokens_belong_to_their_account(sandbox, kite):
    with pytest.raises(TokenException):
        KiteConnect("other_key", access_token=kite.access_token, root=sandbox.root).orders()
    with pytest.raises(TokenException):
        KiteConnect(API_KEY, access_token="made-up", root=sandbox.root).positions()
    other, _ = log_in(sandbox, "other_key", "other_secret")
    buy(kite)
    assert other.orders() == []  # one account's book is not another's
    kite.invalidate_access_token()
    with pytest.raises(TokenException):
        kite.orders()


# --- orders ------------------------------------------------------------------------------------


def test_a_market_order_completes_at_once_with_a_trade_and_a_position(kite):
    order_id = buy(kite, quantity=5, tag="OMSDEMO1")

    assert statuses(kite, order_id) == [
        "PUT ORDER REQ RECEIVED",
        "VALIDATION PENDING",
        "OPEN PENDING",
        "OPEN",
        "COMPLETE",
    ]
    (order,) = kite.orders()
    assert order["order_id"] == order_id
    assert order["status"] == "COMPLETE"
    assert (order["filled_quantity"], order["pending_quantity"]) == (5, 0)
    assert order["average_price"] == 1600.0
    assert (order["tag"], order["tags"]) == ("OMSDEMO1", ["OMSDEMO1"])
    assert order["market_protection"] == -1
    (trade,) = kite.order_trades(order_id)
    assert (trade["quantity"], trade["average_price"], trade["order_id"]) == (5, 1600.0, order_id)
    assert kite.trades() == [trade]

    (position,) = kite.positions()["net"]
    assert (position["tradingsymbol"], position["product"]) == ("INFY", "MIS")
    assert (position["quantity"], position["average_price"]) == (5, 1600.0)
    assert position["value"] == -8000.0
    assert kite.positions()["day"] == kite.positions()["net"]


def test_a_limit_order_rests_until_the_price_walks_through_it(sandbox, kite):
    order_id = buy(kite, quantity=10, order_type="LIMIT", price=1595.5, market_protection=None)
    assert statuses(kite, order_id)[-1] == "OPEN"
    assert kite.positions()["net"] == []

    sandbox.exchange.price_set("NSE:INFY", "1597.00")  # not yet
    assert statuses(kite, order_id)[-1] == "OPEN"
    sandbox.exchange.price_set("NSE:INFY", "1595.00")  # through the limit

    assert statuses(kite, order_id)[-2:] == ["OPEN", "COMPLETE"]
    (trade,) = kite.order_trades(order_id)
    assert trade["average_price"] == 1595.0  # the limit or better
    (position,) = kite.positions()["net"]
    assert position["quantity"] == 10
    sandbox.exchange.price_set("NSE:INFY", "1605.00")
    (position,) = kite.positions()["net"]
    assert (position["last_price"], position["pnl"]) == (1605.0, 100.0)


def test_a_stop_loss_sell_waits_for_its_trigger_then_fills(sandbox, kite):
    buy(kite, quantity=4)
    order_id = buy(
        kite,
        quantity=4,
        transaction_type="SELL",
        order_type="SL",
        price=1580,
        trigger_price=1590,
        market_protection=None,
    )
    assert statuses(kite, order_id)[-1] == "TRIGGER PENDING"
    sandbox.exchange.price_set("NSE:INFY", "1591.00")
    assert statuses(kite, order_id)[-1] == "TRIGGER PENDING"
    sandbox.exchange.price_set("NSE:INFY", "1585.00")

    assert statuses(kite, order_id)[-3:] == ["TRIGGER PENDING", "OPEN", "COMPLETE"]
    (position,) = kite.positions()["net"]
    assert position["quantity"] == 0
    assert position["realised"] == pytest.approx(-60.0)  # bought at 1600, sold at 1585


def test_modify_then_cancel_an_open_order(sandbox, kite):
    order_id = buy(kite, quantity=10, order_type="LIMIT", price=1500, market_protection=None)

    assert kite.modify_order("regular", order_id, quantity=20, price=1510) == order_id
    history = kite.order_history(order_id)
    assert [e["status"] for e in history[-3:]] == [
        "MODIFY VALIDATION PENDING",
        "MODIFY PENDING",
        "OPEN",
    ]
    assert (history[-1]["quantity"], history[-1]["price"], history[-1]["modified"]) == (
        20,
        1510.0,
        True,
    )

    assert kite.cancel_order("regular", order_id) == order_id
    history = kite.order_history(order_id)
    assert [e["status"] for e in history[-2:]] == ["CANCEL PENDING", "CANCELLED"]
    assert (history[-1]["cancelled_quantity"], history[-1]["pending_quantity"]) == (20, 0)
    sandbox.exchange.price_set("NSE:INFY", "1400.00")
    assert statuses(kite, order_id)[-1] == "CANCELLED"  # a cancelled order never fills

    with pytest.raises(InputException) as refused:
        kite.cancel_order("regular", order_id)
    assert refused.value.code == 400
    with pytest.raises(InputException):
        kite.modify_order("regular", order_id, price=1520)
    with pytest.raises(InputException, match="order_id"):
        kite.order_history("999")


def test_an_amo_waits_for_the_next_session_and_an_ioc_limit_never_rests(sandbox, kite):
    amo = buy(kite, variety="amo", order_type="LIMIT", price=1700, market_protection=None)
    assert statuses(kite, amo) == ["AMO REQ RECEIVED"]
    sandbox.exchange.price_set("NSE:INFY", "1650.00")
    assert statuses(kite, amo) == ["AMO REQ RECEIVED"]  # no session: it does not fill
    assert kite.cancel_order("amo", amo) == amo
    assert statuses(kite, amo)[-1] == "CANCELLED"

    ioc = buy(kite, order_type="LIMIT", price=1600, validity="IOC", market_protection=None)
    history = kite.order_history(ioc)
    assert history[-1]["status"] == "CANCELLED"
    assert history[-1]["cancelled_quantity"] == 5
    assert kite.positions()["net"] == []
    with pytest.raises(InputException, match="variety iceberg"):
        buy(kite, variety="iceberg")


def test_bad_fields_are_refused_naming_the_field(kite):
    with pytest.raises(InputException, match="quantity 0: must be from 1 to"):
        buy(kite, quantity=0)
    with pytest.raises(InputException, match="tick size"):
        buy(kite, order_type="LIMIT", price=1600.03, market_protection=None)
    with pytest.raises(InputException, match="price: a LIMIT order needs a price"):
        buy(kite, order_type="LIMIT", market_protection=None)
    with pytest.raises(InputException, match="NSE:NOSUCH"):
        buy(kite, symbol="NOSUCH")
    with pytest.raises(InputException, match="tag"):
        buy(kite, tag="not a tag!")
    with pytest.raises(InputException, match="market_protection: mandatory for MARKET"):
        buy(kite, market_protection=None)
    with pytest.raises(InputException, match="market_protection 150"):
        buy(kite, market_protection=150)
    with pytest.raises(InputException, match="quantity 1e12: must be a whole number"):
        buy(kite, quantity="1e12")
    with pytest.raises(InputException, match=r"price 1E\+400: must be a number from 0"):
        buy(kite, order_type="LIMIT", price="1E+400", market_protection=None)
    with pytest.raises(InputException, match="lot size 65"):
        buy(kite, symbol="NIFTY26DECFUT", exchange="NFO", quantity=10)
    assert kite.orders() == []


def test_an_order_beyond_the_funds_is_rejected_after_its_order_id(clock):
    poor = Account("POOR01", "poor_key", "poor_secret", cash=Decimal(1000))
    server = sandbox_start(clock, accounts=[poor])
    try:
        kite, _ = log_in(server, "poor_key", "poor_secret")
        order_id = buy(kite, quantity=10, product="CNC")  # 16,000 of delivery
        assert statuses(kite, order_id)[-1] == "REJECTED"
        (order,) = kite.orders()
        assert order["status_message"].startswith("RMS:Margin Exceeds,Required:16000.00")
        assert kite.positions()["net"] == []
        short = buy(kite, quantity=1, product="CNC", transaction_type="SELL")
        assert "Short sell" in kite.order_history(short)[-1]["status_message"]
    finally:
        server.stop()


def test_past_ten_order_requests_a_second_kite_answers_429(clock, kite):
    placed = [buy(kite, quantity=1) for _ in range(10)]
    with pytest.raises(NetworkException) as limited:
        buy(kite, quantity=1)
    assert limited.value.code == 429
    assert str(limited.value) == "Too many requests"
    with pytest.raises(NetworkException):
        kite.cancel_order("regular", placed[0])  # modify and cancel count too
    assert len(kite.orders()) == 10  # reads are not order requests

    clock.now += 1.0
    assert buy(kite, quantity=1)


def test_the_rate_limit_holds_for_requests_arriving_together(sandbox, kite):
    clients = [
        KiteConnect(API_KEY, access_token=kite.access_token, root=sandbox.root) for _ in range(14)
    ]

    outcomes = run_together([lambda client=client: buy(client, quantity=1) for client in clients])

    placed = [result for result, error in outcomes if error is None]
    limited = [error for _, error in outcomes if error is not None]
    assert len(placed) == len(set(placed)) == 10
    assert len(limited) == 4
    assert all(isinstance(error, NetworkException) for error in limited), limited
    assert {error.code for error in limited} == {429}
    assert sorted(o["order_id"] for o in kite.orders()) == sorted(placed)


# --- funds, margins, charges, market data ------------------------------------------------------


def test_funds_margins_and_charges_in_kites_shapes(sandbox, kite):
    equity = kite.margins("equity")
    assert equity["available"]["cash"] == 1_000_000
    assert equity["net"] == 1_000_000
    buy(kite, quantity=10, symbol="RELIANCE")  # MIS: 20% of 24,500 blocked
    assert kite.margins()["equity"]["utilised"]["debits"] == 4900.0
    assert kite.margins()["equity"]["net"] == 1_000_000 - 4900
    assert kite.holdings() == []

    leg = {
        "exchange": "NSE",
        "tradingsymbol": "RELIANCE",
        "transaction_type": "BUY",
        "variety": "regular",
        "product": "MIS",
        "order_type": "LIMIT",
        "quantity": 10,
        "price": 2450,
    }
    (margin,) = kite.order_margins([leg])
    assert (margin["type"], margin["total"], margin["leverage"]) == ("equity", 4900.0, 5)
    delivery = {**leg, "product": "CNC", "quantity": 100, "price": 1500}
    basket = kite.basket_order_margins([leg, delivery])
    assert basket["initial"]["total"] == basket["final"]["total"] == 4900 + 150_000
    assert len(basket["orders"]) == 2

    mis, cnc = kite.get_virtual_contract_note(
        [
            {**leg, "order_id": "1", "average_price": 2450},
            {**delivery, "order_id": "2", "average_price": 1500},
        ]
    )

    def paise(charges, name):
        value = charges[name]["total"] if name == "gst" else charges[name]
        return Decimal(str(value)).quantize(PAISA, rounding=ROUND_HALF_UP)

    names = ("brokerage", "transaction_tax", "exchange_turnover_charge", "stamp_duty", "gst")
    # charges.md's worked examples, component by component once rounded to the paisa
    assert [paise(mis["charges"], n) for n in names] == [
        Decimal(v) for v in ("7.35", "0", "0.75", "0.74", "1.46")
    ]
    assert [paise(cnc["charges"], n) for n in names] == [
        Decimal(v) for v in ("0", "150", "4.61", "22.50", "0.86")
    ]
    assert (mis["price"], mis["quantity"], mis["charges"]["transaction_tax_type"]) == (
        2450,
        10,
        "stt",
    )


def test_last_prices_and_the_instruments_dump(sandbox, kite):
    # INFY moves by 0.10: a price between ticks lands on the nearest one
    assert sandbox.exchange.price_set("NSE:INFY", "1612.34") == Decimal("1612.30")
    assert kite.ltp("NSE:INFY", "NSE:NOSUCH") == {
        "NSE:INFY": {"instrument_token": 408065, "last_price": 1612.3}
    }
    instruments = kite.instruments()
    assert len(instruments) == len(INSTRUMENTS)
    nfo = kite.instruments("NFO")
    future = next(i for i in nfo if i["tradingsymbol"] == "NIFTY26DECFUT")
    assert (future["lot_size"], future["instrument_type"], str(future["expiry"])) == (
        65,
        "FUT",
        "2026-12-29",
    )


def test_the_price_walk_moves_each_price_at_most_a_tenth_of_a_percent_on_its_tick(sandbox):
    exchange = sandbox.exchange
    start = dict(exchange.prices)
    for _ in range(200):
        before = dict(exchange.prices)
        exchange.walk()
        for key, price in exchange.prices.items():
            tick = exchange.instruments[key].tick_size
            assert price % tick == 0
            assert abs(price - before[key]) <= before[key] * Decimal("0.001") + tick / 2
    assert sum(exchange.prices[key] != price for key, price in start.items()) > len(start) / 2


def test_a_resting_order_fills_when_the_walk_reaches_it(sandbox, kite):
    below = Decimal("1599.00")  # INFY starts at 1600.00
    order_id = buy(kite, order_type="LIMIT", price=below, market_protection=None)
    assert statuses(kite, order_id)[-1] == "OPEN"

    for _ in range(10_000):
        sandbox.exchange.walk()
        if sandbox.exchange.orders[order_id].status == "COMPLETE":
            break

    assert statuses(kite, order_id)[-2:] == ["OPEN", "COMPLETE"]
    (trade,) = kite.order_trades(order_id)
    assert Decimal(str(trade["average_price"])) <= below


def test_the_walk_thread_moves_prices_every_step():
    accounts = [Account("DEMO01", API_KEY, API_SECRET)]
    walking = KiteSandbox(accounts=accounts, instruments=INSTRUMENTS, walk_seconds=0.01).start()
    try:
        start = dict(walking.exchange.prices)
        for _ in range(500):
            if walking.exchange.prices != start:
                break
            time.sleep(0.01)
        assert walking.exchange.prices != start
    finally:
        walking.stop()


# --- postbacks ---------------------------------------------------------------------------------


class PostbackReceiver:
    def __init__(self):
        self.bodies: list[dict] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers["Content-Length"])
                receiver.bodies.append(json.loads(self.rfile.read(length), parse_float=Decimal))
                self.send_response(200)
                self.end_headers()

            def log_message(self, format, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/broker/kite/postback/"


def test_postbacks_carry_kites_checksum_for_complete_update_and_cancelled(clock):
    receiver = PostbackReceiver()
    server = sandbox_start(clock, postback_url=receiver.url)
    try:
        kite, _ = log_in(server)
        filled = buy(kite, quantity=3, tag="OMSPB1")
        resting = buy(kite, order_type="LIMIT", price=1500, market_protection=None)
        kite.modify_order("regular", resting, price=1505)
        kite.cancel_order("regular", resting)
        server.postbacks.drain()
    finally:
        server.stop()
        receiver.server.shutdown()

    assert [(b["order_id"], b["status"]) for b in receiver.bodies] == [
        (filled, "COMPLETE"),
        (resting, "OPEN"),  # the modification: an update
        (resting, "CANCELLED"),
    ]
    complete = receiver.bodies[0]
    expected = hashlib.sha256(
        f"{filled}{complete['order_timestamp']}{API_SECRET}".encode()
    ).hexdigest()
    assert complete["checksum"] == expected
    assert (complete["user_id"], complete["unfilled_quantity"], complete["tag"]) == (
        "DEMO01",
        0,
        "OMSPB1",
    )
    # What the OMS's postback endpoint checks, passed.
    assert all(checksum_valid(body, API_SECRET) for body in receiver.bodies)
    assert all(figures_errors(body) == {} for body in receiver.bodies)
    assert all(status == 200 for status, _ in server.postbacks.sent)


def test_a_postback_nobody_receives_is_logged_and_the_sandbox_goes_on(clock):
    # A socket bound but never listening holds its port for the whole test (a closed server's
    # port can be taken by the next server another test starts), and refuses connections.
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{closed.getsockname()[1]}/broker/kite/postback/"
    server = sandbox_start(clock, postback_url=url)
    try:
        kite, _ = log_in(server)
        order_id = buy(kite)
        server.postbacks.drain()
        assert [(status, body["order_id"]) for status, body in server.postbacks.sent] == [
            (None, order_id)
        ]
        assert statuses(kite, buy(kite))[-1] == "COMPLETE"
    finally:
        server.stop()
        closed.close()


# --- the OMS's Kite adapter against the sandbox ------------------------------------------------


def test_the_oms_kite_adapter_reads_the_sandbox(sandbox, kite):
    order_id = buy(kite, quantity=7, tag="OMSKITE0000000000001")
    broker = KiteBroker(api_key=API_KEY, access_token=kite.access_token, root=sandbox.root)

    update = broker.order_status(SimpleNamespace(broker_order_id=order_id, broker_tag=""))
    assert (update.status, update.filled_quantity, update.average_price) == (
        OrderStatus.FILLED,
        7,
        Decimal("1600"),
    )
    assert broker.find_by_tag("OMSKITE0000000000001").broker_order_id == order_id
    (position,) = broker.positions()
    assert (position.symbol, position.quantity, position.average_price) == (
        "INFY",
        7,
        Decimal("1600"),
    )
    stale = KiteBroker(api_key=API_KEY, access_token="expired", root=sandbox.root)
    with pytest.raises(BrokerUnavailable, match="session expired"):
        stale.orders()


# --- the command -------------------------------------------------------------------------------


def test_the_command_serves_the_sandbox_until_stopped():
    process = subprocess.Popen(
        [sys.executable, "manage.py", "kite_sandbox", "--port", "0", "--account", "ZZ9999:k:s"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        first = next(line for line in process.stdout if line.startswith("Kite sandbox"))
        assert first.startswith("Kite sandbox (NOT Zerodha Kite) at http://127.0.0.1:")
        root = first.rsplit(" ", 1)[1].strip()
        page = requests.get(f"{root}/connect/login?v=3&api_key=k", timeout=5)
        assert page.status_code == 200
        assert "ZZ9999" in page.text
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--account", "DEMO01:only_key"], "USERID:API_KEY:API_SECRET"),
        (["--cash", "lots"], "--cash lots"),
        (["--instruments", "/no/such.csv"], "--instruments /no/such.csv"),
        (["--prices", "/no/such.json"], "--prices /no/such.json"),
    ],
)
def test_the_command_refuses_bad_options_naming_them(arguments, message):
    with pytest.raises(CommandError, match=message):
        call_command("kite_sandbox", "--port", "0", *arguments)
