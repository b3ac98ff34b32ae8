"""Kite's WebSocket ticker as the tests see it: a real WebSocket server on 127.0.0.1 (autobahn
on twisted, which kiteconnect brings) speaking Kite's ticker protocol, so that the SDK's
KiteTicker connects, subscribes and parses exactly as it would against wss://ws.kite.trade.

- Text messages from the client: {"a": "subscribe" | "unsubscribe", "v": [tokens]} and
  {"a": "mode", "v": ["ltp", [tokens]]}; the server keeps what is subscribed, and in which mode.
- Ticks are BINARY messages: a 2-byte packet count, then per packet a 2-byte length and the
  packet; an ltp packet is 8 bytes, the instrument_token and the last price in paise, both
  big-endian unsigned 32-bit integers (KiteTicker._parse_binary reads them).
- Order updates are TEXT messages {"type": "order", "data": {...the order entry...}}.

While ``prices`` holds a price for a subscribed token, the server sends it every
``interval`` seconds (and at once on subscription), as the exchange would as trades happen.
``drop()`` closes every socket and stops listening (the client's reconnects fail) until
``resume()`` listens again on the same port.

The server runs on twisted's global reactor, in the daemon thread the ticker uses too
(``reactor_running`` starts it when nothing has yet).
"""

from __future__ import annotations

import json
import struct
import threading
import time
from decimal import Decimal

from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol
from twisted.internet import reactor, task
from twisted.internet.threads import blockingCallFromThread


def reactor_running() -> None:
    """Start twisted's reactor in a daemon thread, once per process (it cannot restart)."""
    if reactor.running:
        return
    thread = threading.Thread(
        target=reactor.run, kwargs={"installSignalHandlers": False}, daemon=True
    )
    thread.start()
    for _ in range(200):
        if reactor.running:
            return
        time.sleep(0.01)
    raise RuntimeError("twisted's reactor did not start")


def ltp_packets(prices: dict[int, Decimal]) -> bytes:
    """Kite's binary message of ltp packets: {instrument_token: price in rupees}."""
    message = struct.pack(">H", len(prices))
    for token, price in prices.items():
        paise = int((Decimal(price) * 100).to_integral_value())
        message += struct.pack(">H", 8) + struct.pack(">II", token, paise)
    return message


class FakeKiteTicker:
    """Kite's ticker on 127.0.0.1; ``root`` is the URL to give KiteTicker (KITE_TICKER_ROOT)."""

    def __init__(self, *, interval: float = 0.1):
        self.interval = interval
        self.prices: dict[int, Decimal] = {}
        self.subscribed: dict[int, str] = {}  # token -> mode, of the latest socket
        self.connections = 0
        self.query: list[dict] = []  # each connection's query string (api_key, access_token)
        self._clients: set = set()
        self._port = None
        self._number = 0
        self._lock = threading.Lock()
        server = self

        class Protocol(WebSocketServerProtocol):
            def onConnect(self, request):
                server.query.append({key: values[-1] for key, values in request.params.items()})

            def onOpen(self):
                server._clients.add(self)
                with server._lock:
                    server.connections += 1
                    server.subscribed = {}

            def onMessage(self, payload, is_binary):
                if is_binary:
                    return
                message = json.loads(payload)
                action, value = message.get("a"), message.get("v")
                with server._lock:
                    if action == "subscribe":
                        for token in value:
                            server.subscribed.setdefault(token, "quote")
                    elif action == "unsubscribe":
                        for token in value:
                            server.subscribed.pop(token, None)
                    elif action == "mode":
                        mode, tokens = value
                        for token in tokens:
                            server.subscribed[token] = mode
                server._send_prices()

            def onClose(self, was_clean, code, reason):
                server._clients.discard(self)

        self._factory = WebSocketServerFactory()
        self._factory.protocol = Protocol
        self._loop = task.LoopingCall(self._send_prices)

    @property
    def root(self) -> str:
        return f"ws://127.0.0.1:{self._number}"

    def start(self) -> FakeKiteTicker:
        reactor_running()
        blockingCallFromThread(reactor, self._listen)
        # start() answers a Deferred that fires when the loop stops: not waited for.
        blockingCallFromThread(reactor, lambda: self._loop.start(self.interval, now=False) and None)
        return self

    def stop(self) -> None:
        def _stop():
            if self._loop.running:
                self._loop.stop()
            self._close_all()
            return self._port.stopListening() if self._port is not None else None

        blockingCallFromThread(reactor, _stop)

    def drop(self) -> None:
        """The socket drops and the server is unreachable until ``resume``."""

        def _drop():
            self._close_all()
            port, self._port = self._port, None
            return port.stopListening()

        blockingCallFromThread(reactor, _drop)

    def resume(self) -> None:
        blockingCallFromThread(reactor, self._listen)

    def price(self, token: int, last_price: str | Decimal | None) -> None:
        """From now on the exchange trades ``token`` at ``last_price`` (None: no more ticks)."""
        with self._lock:
            if last_price is None:
                self.prices.pop(token, None)
            else:
                self.prices[token] = Decimal(last_price)

    def send_order_update(self, entry: dict) -> None:
        payload = json.dumps({"type": "order", "data": entry}).encode()
        reactor.callFromThread(self._broadcast, payload, False)

    def wait_for(self, condition, timeout: float = 10.0) -> bool:
        """Wait until ``condition()`` is true (a test's poll of what the client did)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return True
            time.sleep(0.05)
        return False

    # --- in the reactor's thread ----------------------------------------------------------------

    def _listen(self) -> None:
        self._port = reactor.listenTCP(self._number, self._factory, interface="127.0.0.1")
        self._number = self._port.getHost().port

    def _close_all(self) -> None:
        for client in list(self._clients):
            client.dropConnection(abort=True)
        self._clients.clear()

    def _send_prices(self) -> None:
        with self._lock:
            ticks = {t: p for t, p in self.prices.items() if self.subscribed.get(t) == "ltp"}
        if ticks:
            self._broadcast(ltp_packets(ticks), True)

    def _broadcast(self, payload: bytes, is_binary: bool) -> None:
        for client in list(self._clients):
            client.sendMessage(payload, isBinary=is_binary)
