"""A HALT while 20 clients place orders over both web processes: no order is accepted after the
HALT commits. Proved twice: by the clock (no 201 for a request sent after the HALT returned)
and by PostgreSQL itself (every accepted order's transaction is older than the HALT's)."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection

from orders.enums import OrderStatus
from orders.tests.api.conftest import make_caller, order_body
from risk.kill_switch import kill_switch_set
from risk.models import KillSwitchEvent, KillSwitchState
from tests.reliability.conftest import client_session

pytestmark = [pytest.mark.reliability, pytest.mark.django_db(transaction=True)]

CLIENTS = 20
BEFORE, AFTER = 1.5, 1.5  # seconds of placing before the HALT, and after it returned

# Each order's first event ("order received") is written by the transaction that placed it;
# events are never updated, so its xmin is that transaction. age() compares transaction ids
# safely (an older transaction has a greater age).
PLACED_BEFORE_HALT = """
SELECT o.id, o.status, coalesce(o.metadata -> 'violations', '[]')::text,
       age(e.xmin) > age(k.xmin)
  FROM orders o
  JOIN order_events e ON e.order_id = o.id AND e.from_status = '' AND e.to_status = 'PENDING'
 CROSS JOIN kill_switch_events k
 WHERE o.strategy_id = %s AND k.id = %s
"""


def test_no_order_is_accepted_after_a_halt_commits(cluster, figures):
    caller = make_caller(name="Halted under load")
    urls = cluster.urls
    start = threading.Barrier(CLIENTS + 1, timeout=60)
    stop = threading.Event()

    def client(index: int):
        url = urls[index % len(urls)]
        answers = []
        with client_session(caller.plaintext) as session:
            assert session.get(f"{url}/api/v1/strategy/", timeout=30).status_code == 200
            start.wait()
            n = 0
            while not stop.is_set():
                body = order_body(client_order_id=f"halt-{index}-{n}")
                sent = time.monotonic()
                response = session.post(f"{url}/api/v1/orders/", json=body, timeout=60)
                answers.append((sent, time.monotonic(), response.status_code, response.json()))
                n += 1
        return answers

    def watch_for_the_halt() -> float:
        """When the HALT's row became visible to another session: its commit (within 5 ms)."""
        try:
            while not stop.is_set():
                if KillSwitchEvent.objects.filter(strategy=caller.strategy).exists():
                    return time.monotonic()
                time.sleep(0.005)
            raise AssertionError("the HALT never became visible")
        finally:
            connection.close()

    with ThreadPoolExecutor(CLIENTS + 1) as pool:
        futures = [pool.submit(client, index) for index in range(CLIENTS)]
        start.wait()
        time.sleep(BEFORE)
        watcher = pool.submit(watch_for_the_halt)
        halt_called = time.monotonic()
        event = kill_switch_set(
            KillSwitchState.HALTED,
            strategy=caller.strategy,
            reason="reliability suite: halt under load",
            actor="reliability suite",
        )
        halt_returned = time.monotonic()
        committed = watcher.result(timeout=60)
        time.sleep(AFTER)
        stop.set()
        answers = [answer for future in futures for answer in future.result(timeout=120)]

    statuses = Counter(status for _, _, status, _ in answers)
    assert set(statuses) <= {201, 423}, statuses
    # The HALT returns after cancelling the strategy's working orders; it committed before.
    assert halt_called < committed < halt_returned
    after = [a for a in answers if a[0] > committed]
    assert statuses[201] > 0 and len(after) >= CLIENTS
    for _, _, status, body in after:
        assert status == 423, body
        assert body["error"]["code"] == "kill_switch_engaged"
        assert body["error"]["kill_switch"] == "HALTED"
    # A request sent while the HALT was committing may still have been accepted (its answer
    # arriving after the commit). None sent after the commit was.
    accepted_late = [a for a in answers if a[2] == 201 and a[1] > committed]

    rows = [
        (order_id, status, json.loads(violations), before)
        for order_id, status, violations, before in cluster.query(
            PLACED_BEFORE_HALT, [caller.strategy.pk, event.pk]
        )
    ]
    assert len(rows) == len(answers)  # one order (and one "order received") per request
    placed_after = [row for row in rows if not row[3]]
    for _, status, violations, _ in placed_after:
        assert status == OrderStatus.REJECTED
        assert "kill_switch_halted" in {v["code"] for v in violations}
    for _, _, violations, _ in (row for row in rows if row[3]):
        assert not violations, violations  # placed before the HALT: accepted
    assert len(placed_after) == statuses[423]
    assert len(rows) - len(placed_after) == statuses[201]

    figures(
        f"{CLIENTS} clients placing over {len(urls)} web processes, HALT after {BEFORE}s: "
        f"committed in {(committed - halt_called) * 1000:.0f} ms, returned after "
        f"{(halt_returned - halt_called) * 1000:.0f} ms (cancelling the working orders)"
    )
    figures(
        f"{statuses[201]} accepted, every one in a transaction older than the HALT's "
        f"({len(accepted_late)} answered after its commit); {statuses[423]} refused 423 "
        f"HALTED, among them all {len(after)} requests sent after the commit"
    )
