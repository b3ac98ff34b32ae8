"""A real webhook receiver for tests: an HTTP server on 127.0.0.1 in a thread.

It records every request (headers, raw body), verifies nothing itself (the tests do, with the
endpoint's secret), and answers as its ``answer`` says: a status code, or a callable taking the
request's number (1, 2...) and returning (status, headers, seconds to wait before answering).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def event_id(self) -> int:
        return int(self.headers["X-OMS-Event-Id"])

    @property
    def event(self) -> dict:
        return json.loads(self.body)


class WebhookReceiver:
    def __init__(self, answer=204):
        self.answer = answer
        self.received: list[Received] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver._lock:
                    receiver.received.append(Received(self.path, dict(self.headers), body))
                    number = len(receiver.received)
                status, headers, wait = receiver._answer(number)
                if wait:
                    threading.Event().wait(wait)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def _answer(self, number: int) -> tuple[int, dict, float]:
        if callable(self.answer):
            return self.answer(number)
        return self.answer, {}, 0.0

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/hook"

    def start(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def event_ids(self) -> list[int]:
        with self._lock:
            return [request.event_id for request in self.received]

    def deduped(self) -> list[Received]:
        """What a receiver that dedupes by X-OMS-Event-Id keeps, in arrival order."""
        seen, kept = set(), []
        with self._lock:
            for request in self.received:
                if request.event_id not in seen:
                    seen.add(request.event_id)
                    kept.append(request)
        return kept
