"""Kite Connect as the tests see it: recorded Kite v3 replies, served over HTTP by a fake Kite
server (FakeKiteServer, the adapter's root URL pointed at it) or handed to the client in place
of its HTTP session (FakeKiteSession).

FakeKiteServer is a real HTTP server on 127.0.0.1: the official client builds its URLs,
headers and form bodies and parses the replies exactly as it would against api.kite.trade.

FakeKiteSession: the client calls
``session.request(method, url, data=..., params=..., headers=..., ...)`` and reads
``status_code``, ``headers["content-type"]``, ``json()`` and ``content`` of the reply
(kiteconnect.connect.KiteConnect._request). Replies are Kite v3 JSON recorded in
``kite_responses/``; every request is kept, so a test can assert exactly what was sent.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

RESPONSES = Path(__file__).parent / "kite_responses"

TAG = "OMSKITE0000000000001"  # the tag of our order in the recorded order book
BROKER_ORDER_ID = "260401000123456"


def recorded(name: str) -> dict[str, Any]:
    """A recorded reply (or postback) as Kite sent it."""
    return json.loads((RESPONSES / f"{name}.json").read_text())


class FakeResponse:
    def __init__(self, body: dict[str, Any], status_code: int = 200):
        self.status_code = status_code
        self.headers = {"content-type": "application/json"}
        self.content = json.dumps(body).encode()
        self.text = self.content.decode()

    def json(self) -> Any:
        return json.loads(self.content)  # floats, exactly as requests would give them


@dataclass
class SentRequest:
    method: str
    path: str
    data: dict[str, Any] | None
    params: dict[str, Any] | None
    headers: dict[str, str] = field(default_factory=dict)
    json: Any = None  # a JSON body (the margin and contract note calls send one)


class FakeKiteSession:
    """Answers each (method, path) with its queued replies; the last one is repeated."""

    def __init__(self):
        self.routes: dict[tuple[str, str], list] = {}
        self.sent: list[SentRequest] = []

    def reply(self, method: str, path: str, name: str, status_code: int = 200) -> FakeKiteSession:
        self.routes.setdefault((method, path), []).append(FakeResponse(recorded(name), status_code))
        return self

    def raise_(self, method: str, path: str, error: Exception) -> FakeKiteSession:
        self.routes.setdefault((method, path), []).append(error)
        return self

    def request(self, method: str, url: str, **kwargs) -> FakeResponse:
        path = urlsplit(url).path
        self.sent.append(
            SentRequest(
                method,
                path,
                kwargs.get("data"),
                kwargs.get("params"),
                kwargs.get("headers") or {},
            )
        )
        queue = self.routes.get((method, path))
        if not queue:
            raise AssertionError(f"no recorded reply for {method} {path}")
        answer = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(answer, Exception):
            raise answer
        return answer

    def count(self, method: str, path: str) -> int:
        return sum(1 for r in self.sent if (r.method, r.path) == (method, path))


class FakeKiteServer:
    """Kite's REST API on 127.0.0.1 (a ThreadingHTTPServer on a free port): answers each
    (method, path) with its queued recorded replies, the last one repeated, and keeps every
    request (method, path, form or query fields, headers). ``root`` is the URL to give the
    client (KITE_API_ROOT). A request with no reply queued is answered 500 and listed in
    ``unexpected``."""

    def __init__(self):
        self.routes: dict[tuple[str, str], list[tuple[int, dict]]] = {}
        self.sent: list[SentRequest] = []
        self.unexpected: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                url = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode() if length else ""
                form = parse_qs(raw) if raw else None
                json_body = raw and "json" in (self.headers.get("Content-Type") or "")
                status, body = server._next(
                    SentRequest(
                        self.command,
                        url.path,
                        form and {k: v[-1] for k, v in form.items()},
                        {k: v[-1] for k, v in parse_qs(url.query).items()} or None,
                        dict(self.headers.items()),
                        json=json.loads(raw) if json_body else None,
                    )
                )
                # A str body is a CSV dump (GET /instruments); anything else is Kite's JSON.
                csv_body = isinstance(body, str)
                content = body.encode() if csv_body else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/csv" if csv_body else "application/json")
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            do_GET = do_POST = do_PUT = do_DELETE = _answer

            def log_message(self, format, *args) -> None:  # quiet: the tests read ``sent``
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def root(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeKiteServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def reply(
        self,
        method: str,
        path: str,
        name: str | dict,
        http_status: int = 200,
        *,
        replace: bool = False,
        **changes,
    ):
        """Queue the recorded reply ``name`` (or this body); ``changes`` replace fields of its
        last entry (of an order history: the latest state of the order). ``replace``: drop the
        replies still queued for (method, path) first, so this one answers from now on (the
        broker's truth has moved on, whether or not the earlier answer was asked for)."""
        body = recorded(name) if isinstance(name, str) else name
        if changes:
            data = body["data"]
            entry = data[-1] if isinstance(data, list) else data
            entry.update(changes)
        with self._lock:
            if replace:
                self.routes.pop((method, path), None)
            self.routes.setdefault((method, path), []).append((http_status, body))
        return self

    def reply_csv(self, method: str, path: str, name: str, http_status: int = 200):
        """Queue the recorded CSV ``kite_responses/<name>.csv`` (Kite's instruments dump)."""
        text = (RESPONSES / f"{name}.csv").read_text()
        with self._lock:
            self.routes.setdefault((method, path), []).append((http_status, text))
        return self

    def reset(self) -> None:
        """Forget every queued reply and every request (a server shared by several tests)."""
        with self._lock:
            self.routes.clear()
            self.sent.clear()
            self.unexpected.clear()

    def _next(self, request: SentRequest) -> tuple[int, dict]:
        with self._lock:
            self.sent.append(request)
            queue = self.routes.get((request.method, request.path))
            if not queue:
                self.unexpected.append((request.method, request.path))
                return 500, {"status": "error", "message": "no reply", "error_type": "Test"}
            return queue.pop(0) if len(queue) > 1 else queue[0]

    def count(self, method: str, path: str) -> int:
        with self._lock:
            return sum(1 for r in self.sent if (r.method, r.path) == (method, path))
