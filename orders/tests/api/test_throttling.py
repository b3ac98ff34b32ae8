"""Each key has its own request rate, counted in PostgreSQL for every process."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


@pytest.fixture
def three_a_minute(settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"strategy_key": "3/min"},
    }


def test_over_the_rate_is_a_429_with_retry_after(three_a_minute, caller, other):
    statuses = [caller.client.get("/api/v1/orders/").status_code for _ in range(4)]

    assert statuses == [200, 200, 200, 429]
    response = caller.client.get("/api/v1/orders/")
    assert response.status_code == 429
    assert 1 <= int(response["Retry-After"]) <= 60
    error = response.json()["error"]
    assert error["code"] == "throttled"
    assert error["retry_after"] == int(response["Retry-After"])
    # Another key has its own count.
    assert other.client.get("/api/v1/orders/").status_code == 200


def test_health_is_never_throttled(three_a_minute):
    from rest_framework.test import APIClient

    client = APIClient()
    assert {client.get("/api/v1/health/").status_code for _ in range(5)} == {200}
