"""The Python client (clients/python) against the live test server: real HTTP, real rows.

The package is imported from the repository (its folder on ``sys.path``), exactly the code
``pip install ./clients/python`` installs; it depends on ``requests`` alone.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

CLIENT_ROOT = Path(__file__).resolve().parents[2] / "clients" / "python"
if str(CLIENT_ROOT) not in sys.path:
    sys.path.insert(0, str(CLIENT_ROOT))

from oms_client import OMSClient  # noqa: E402

from orders.tests.api.conftest import Caller, make_caller  # noqa: E402


@dataclass
class Sleeps:
    """The client's sleep: records each wait, then really waits (the server's clock moves)."""

    waits: list[float] = field(default_factory=list)

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        time.sleep(seconds)


@pytest.fixture
def caller(transactional_db) -> Caller:
    return make_caller(name="Client strategy")


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def oms(live_server, caller, sleeps) -> OMSClient:
    with OMSClient(live_server.url, caller.plaintext, timeout=20, sleep=sleeps) as client:
        yield client
