"""The reliability suite: a real cluster (tests/reliability/cluster.py) and the figures it prints.

The cluster starts at the first test of this package and stops after its last one (and at
the end of the session in any case, failure or not). Each test commits its rows
(``transactional_db``) so that the cluster's processes see them; before the suite's flush
after each test, every due job is run, so no worker works on rows being truncated. Its Kite is
one fake Kite server for the session (``cluster.kite``), served by this process: each test
queues the replies it needs, they are forgotten after it, and a request Kite had no reply for
fails the test. A failing test's report carries the tail of every process's log. Each test
records its measured figures with ``figures(...)``; they are printed in a "reliability figures"
section at the end of the run, without ``-s``.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import requests
from requests.adapters import HTTPAdapter

from orders.tests.fake_kite import FakeKiteServer
from tests.reliability.cluster import Cluster, database_url

HERE = Path(__file__).resolve().parent
RECONNECTS = 5
FIGURES: dict[str, list[str]] = {}
_clusters: list[Cluster] = []


def _query_on(connection, django_db_blocker):
    """``query(sql, params)`` on the test process's connection, reconnecting if the database
    went away under it (the restart test does that: each pooled connection may be dead once)."""
    from django.db import InterfaceError, OperationalError

    def query(sql: str, params=None) -> list[tuple]:
        with django_db_blocker.unblock():
            for attempt in range(RECONNECTS + 1):
                try:
                    with connection.cursor() as cursor:
                        cursor.execute(sql, params)
                        return cursor.fetchall() if cursor.description else []
                except (OperationalError, InterfaceError):
                    if attempt == RECONNECTS or connection.in_atomic_block:
                        raise
                    connection.close()
        raise AssertionError("unreachable")

    return query


@pytest.fixture(scope="session")
def _cluster_factory(django_db_setup, django_db_blocker, tmp_path_factory):
    from django.db import connection

    query = _query_on(connection, django_db_blocker)
    kite = FakeKiteServer().start()

    def start() -> Cluster:
        log_dir = tmp_path_factory.mktemp("cluster")
        cluster = Cluster(database_url(connection.settings_dict), log_dir, query, kite)
        _clusters.append(cluster)
        try:
            cluster.start()
        except Exception:
            cluster.stop()
            raise RuntimeError(f"the cluster did not start:\n{cluster.tails()}") from None
        return cluster

    yield start
    for cluster in _clusters:
        cluster.stop()
    kite.stop()


@pytest.fixture
def cluster(_cluster_factory) -> Cluster:
    """The running cluster (started again if an earlier test of another package stopped it)."""
    if not _clusters or _clusters[-1].stopped:
        _cluster_factory()
        FIGURES.setdefault("cluster", []).append(
            f"started in {_clusters[-1].started_in:.1f}s: 2 gunicorn (1 worker x 6 threads) "
            "+ 2 procrastinate workers (concurrency 4)"
        )
    return _clusters[-1]


@pytest.fixture(autouse=True)
def _cluster_quiet(cluster, transactional_db):
    """Every process alive before and after each test; every due job run before the flush;
    Kite asked nothing it had no reply for, and its replies forgotten after the test."""
    assert not cluster.dead(), f"cluster processes died: {cluster.dead()}\n{cluster.tails()}"
    yield
    cluster.drain(timeout=60)
    unexpected = list(cluster.kite.unexpected)
    cluster.kite.reset()
    assert not cluster.dead(), f"cluster processes died: {cluster.dead()}\n{cluster.tails()}"
    assert not unexpected, f"requests Kite was not expected to get: {unexpected}"


@pytest.fixture
def figures(request):
    """``figures("text")``: one line of the test's measured figures, printed at the end."""
    lines = FIGURES.setdefault(request.node.name, [])

    def record(text: str) -> None:
        lines.append(text)
        print(text)

    return record


def client_session(key: str) -> requests.Session:
    """One keep-alive HTTP connection presenting a strategy's key; no retries, ever."""
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {key}"
    session.mount("http://", HTTPAdapter(pool_connections=1, pool_maxsize=1, max_retries=0))
    return session


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def wait_until(condition, *, timeout: float, interval: float = 0.1, message: str = ""):
    """Poll ``condition()`` until it returns something true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout}s: {message or condition}")
        time.sleep(interval)


# --- hooks ----------------------------------------------------------------------------------


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed and _clusters and HERE in Path(item.path).parents:
        report.sections.append(("cluster logs (last lines of each process)", _clusters[-1].tails()))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item, nextitem):
    yield
    # The cluster's workers would take other tests' jobs: stop it after this package's last.
    if _clusters and (nextitem is None or HERE not in Path(nextitem.path).parents):
        _clusters[-1].stop()


def pytest_terminal_summary(terminalreporter):
    if not FIGURES:
        return
    terminalreporter.section("reliability figures")
    for name, lines in FIGURES.items():
        terminalreporter.write_line(name)
        for line in lines:
            terminalreporter.write_line(f"    {line}")
