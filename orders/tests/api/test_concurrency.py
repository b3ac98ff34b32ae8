"""Idempotency holds under real concurrency: the same order sent at once by many clients."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from orders.models import Order
from orders.tests.api.conftest import make_caller, order_body

CLIENTS = 8


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_same_order_sent_concurrently_is_placed_once(live_server):
    caller = make_caller(name="Concurrent")
    url = f"{live_server.url}/api/v1/orders/"
    headers = {"Authorization": f"Bearer {caller.plaintext}"}
    body = order_body(client_order_id="race-1")

    def send(_):
        response = requests.post(url, json=body, headers=headers, timeout=30)
        return response.status_code, response.json()["id"]

    with ThreadPoolExecutor(CLIENTS) as pool:
        answers = list(pool.map(send, range(CLIENTS)))

    statuses = sorted(status for status, _ in answers)
    assert statuses == [200] * (CLIENTS - 1) + [201]
    assert len({order_id for _, order_id in answers}) == 1
    assert Order.objects.filter(strategy=caller.strategy).count() == 1
