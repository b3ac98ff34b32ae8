"""Fixtures of the orders tests: Kite Connect served by a fake Kite HTTP server."""

import pytest

from orders.tests.fake_kite import FakeKiteServer

KITE_API_KEY = "kite-key"
KITE_ACCESS_TOKEN = "kite-access-token-0123456789"
KITE_API_SECRET = "kite-api-secret"


@pytest.fixture
def kite_server(settings):
    """A fake Kite on 127.0.0.1 with the settings of a LIVE desk pointed at it: the adapter
    (KiteBroker.from_settings) talks HTTP to it, in the test and in the jobs run_jobs runs."""
    server = FakeKiteServer().start()
    settings.KITE_API_ROOT = server.root
    settings.KITE_API_KEY = KITE_API_KEY
    settings.KITE_ACCESS_TOKEN = KITE_ACCESS_TOKEN
    settings.KITE_API_SECRET = KITE_API_SECRET
    yield server
    server.stop()
    assert not server.unexpected, f"requests Kite was not expected to get: {server.unexpected}"
