"""API test fixtures: strategies with real API keys, and clients that present them.

The suite's conftest loads the sample instrument master and lets paper strategies trade at
any hour, so orders placed here meet the pre-trade checks of a normal trading day.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from rest_framework.test import APIClient

from orders.api_keys import api_key_create
from orders.enums import StrategyMode
from orders.models import Strategy, StrategyApiKey
from orders.tests.factories import StrategyFactory


@dataclass
class Caller:
    """A strategy, one of its keys, and a client that sends that key."""

    strategy: Strategy
    key: StrategyApiKey
    plaintext: str
    client: APIClient


def make_caller(**strategy_fields) -> Caller:
    strategy = StrategyFactory(**strategy_fields)
    key, plaintext = api_key_create(strategy=strategy, name="test runner", actor="test")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    return Caller(strategy, key, plaintext, client)


@pytest.fixture
def caller(db) -> Caller:
    return make_caller(name="Strategy A")


@pytest.fixture
def other(db) -> Caller:
    """A second strategy: it must never see or touch the first one's rows."""
    return make_caller(name="Strategy B")


@pytest.fixture
def live_caller(db) -> Caller:
    return make_caller(name="Live strategy", mode=StrategyMode.LIVE)


@pytest.fixture
def api(caller) -> APIClient:
    return caller.client


def order_body(**overrides) -> dict:
    """A valid LIMIT buy, as a strategy would send it."""
    body = {
        "client_order_id": "c-0001",
        "symbol": "RELIANCE",
        "exchange": "NSE",
        "side": "BUY",
        "quantity": 10,
        "order_type": "LIMIT",
        "price": "2450.50",
        "product": "MIS",
        "validity": "DAY",
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not ...}
