"""The OpenAPI schema is served and documented, and the live API keeps its promises.

Schemathesis reads /api/schema/ from a running server and fuzzes every operation with a real
strategy key: no answer may be a 5xx, and every answer must match the schema (status codes,
content types, headers and bodies). Bounded and derandomized, so CI sees the same run.
"""

from __future__ import annotations

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from orders.enums import OrderStatus
from orders.models import Order
from orders.tests.api.conftest import make_caller
from orders.tests.factories import OrderFactory, TradeFactory
from positions.tests.factories import PositionFactory

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
# CI runs a fixed, bounded sample; OMS_FUZZ_EXAMPLES=500 explores further (and at random).
EXAMPLES_PER_OPERATION = int(os.environ.get("OMS_FUZZ_EXAMPLES", "25"))
DERANDOMIZE = "OMS_FUZZ_EXAMPLES" not in os.environ


@pytest.mark.django_db
def test_the_schema_and_its_documentation_are_served(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert {
        "/api/v1/orders/",
        "/api/v1/orders/{id}/",
        "/api/v1/orders/{id}/cancel/",
        "/api/v1/positions/",
        "/api/v1/trades/",
        "/api/v1/strategy/",
        "/api/v1/events/",
        "/api/v1/prices/",
        "/api/v1/health/",
    } <= set(paths)
    place = paths["/api/v1/orders/"]["post"]
    assert place["requestBody"]["content"]["application/json"]["examples"]
    assert {"200", "201", "400", "401", "409", "422", "423", "429"} <= set(place["responses"])
    schemes = schema.json()["components"]["securitySchemes"]
    assert schemes["strategyKey"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "oms_<prefix>_<secret>",
        "description": schemes["strategyKey"]["description"],
    }
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    assert b"swagger" in docs.content.lower()


@pytest.fixture
def fuzzed_strategy():
    """A paper strategy with a few rows for the fuzzer to find (ids 1.. are tried first)."""
    caller = make_caller(name="Fuzzed")
    strategy = caller.strategy
    order = OrderFactory(strategy=strategy, status=OrderStatus.OPEN)
    Order.objects.filter(pk=order.pk).update(broker_order_id="FUZZ-1")
    TradeFactory(order=order, quantity=2)
    PositionFactory(strategy=strategy, symbol="RELIANCE")
    OrderFactory(strategy=strategy)
    return caller


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_live_api_conforms_to_its_schema(live_server, fuzzed_strategy, request):
    # The feed's long polls: bounded as documented, but brief (pytest-django's settings).
    request.getfixturevalue("settings").OMS_EVENTS_MAX_WAIT = 0.05
    schema = schemathesis.openapi.from_url(f"{live_server.url}/api/schema/?format=json")
    headers = {"Authorization": f"Bearer {fuzzed_strategy.plaintext}"}
    failures: list[str] = []
    exercised = []

    for result in schema.get_all_operations():
        operation = result.ok()
        exercised.append(operation.label)
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=EXAMPLES_PER_OPERATION,
                deadline=None,
                derandomize=DERANDOMIZE,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            def fuzz(case):
                case.call_and_validate(base_url=live_server.url, headers=headers, checks=CHECKS)

            try:
                fuzz()
            except Unsatisfiable:
                pass  # nothing to get wrong (no parameters nor body): no negative case exists
            except Exception as error:  # collected, reported all together
                failures.append(f"{operation.label} [{mode}]: {error}")

    assert len(exercised) >= 11, exercised
    assert not failures, "\n\n".join(failures)
