"""A stand-in for the HTTP session under the official Kite client, serving recorded replies.

The client calls ``session.request(method, url, data=..., params=..., headers=..., ...)`` and
reads ``status_code``, ``headers["content-type"]``, ``json()`` and ``content`` of the reply
(kiteconnect.connect.KiteConnect._request). Replies are Kite v3 JSON recorded in
``kite_responses/``; every request is kept, so a test can assert exactly what was sent.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

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
