"""One order sent at once by 50 clients, over both web processes, is placed exactly once."""

from __future__ import annotations

import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from orders.enums import EventKind, OrderStatus
from orders.models import Order, OrderEvent
from orders.tests.api.conftest import make_caller, order_body
from tests.reliability.conftest import client_session, percentile

pytestmark = [pytest.mark.reliability, pytest.mark.django_db(transaction=True)]

CLIENTS = 50


def test_fifty_clients_sending_the_same_order_place_it_once(cluster, figures):
    caller = make_caller(name="Idempotent")
    body = order_body(client_order_id="same-order-1")
    urls = cluster.urls
    start = threading.Barrier(CLIENTS, timeout=60)

    def send(index: int):
        url = urls[index % len(urls)]
        with client_session(caller.plaintext) as session:
            # Open the keep-alive connection (and authenticate once) before the race.
            assert session.get(f"{url}/api/v1/strategy/", timeout=30).status_code == 200
            start.wait()
            began = time.monotonic()
            response = session.post(f"{url}/api/v1/orders/", json=body, timeout=60)
            return (
                url,
                response.status_code,
                response.json(),
                response.headers.get("Idempotent-Replayed"),
                time.monotonic() - began,
            )

    with ThreadPoolExecutor(CLIENTS) as pool:
        answers = list(pool.map(send, range(CLIENTS)))

    statuses = Counter(status for _, status, _, _, _ in answers)
    assert statuses == {201: 1, 200: CLIENTS - 1}, statuses
    assert len({answer["id"] for _, _, answer, _, _ in answers}) == 1
    for _, status, answer, replayed, _ in answers:
        assert answer["client_order_id"] == "same-order-1"
        assert replayed == ("true" if status == 200 else None)
    assert {url for url, *_ in answers} == set(urls)  # both web processes took part

    [order] = Order.objects.filter(strategy=caller.strategy)
    assert order.pk == answers[0][2]["id"]
    received = OrderEvent.objects.filter(
        order=order, kind=EventKind.TRANSITION, to_status=OrderStatus.PENDING
    )
    assert received.count() == 1
    submits = cluster.query(
        "SELECT count(*) FROM procrastinate_jobs "
        "WHERE task_name = 'orders.submit' AND (args->>'order_id')::bigint = %s",
        [order.pk],
    )[0][0]
    assert submits == 1

    latencies = [seconds * 1000 for *_, seconds in answers]
    figures(
        f"{CLIENTS} clients x 1 client_order_id over {len(urls)} web processes: "
        f"1 order row, statuses {dict(sorted(statuses.items()))}, "
        f"latency p50 {percentile(latencies, 50):.0f} ms, max {max(latencies):.0f} ms"
    )
