"""Suite-wide fixtures. The database is real PostgreSQL: the embedded server, or DATABASE_URL."""

from pathlib import Path

import pytest

SAMPLE_INSTRUMENTS = Path(__file__).parent / "risk" / "fixtures" / "instruments_sample.csv"


@pytest.fixture(autouse=True)
def _reference_data(request, settings):
    """What every test may assume, as on a desk's machine after set-up: the sample instrument
    master is loaded, and paper strategies may trade at any hour (tests of market hours set
    OMS_PAPER_MARKET_HOURS back to "enforce"). LIVE orders go to the fake Kite without the
    pre-trade margin check (orders/tests/test_margins.py turns it on and serves the margins)."""
    settings.OMS_PAPER_MARKET_HOURS = "ignore"
    settings.OMS_MARGIN_CHECK_ENABLED = False
    marker = request.node.get_closest_marker("django_db")
    if marker is None:
        return
    from risk.instruments import instruments_load

    with SAMPLE_INSTRUMENTS.open(newline="") as lines:
        instruments_load(lines)
    if marker.kwargs.get("transaction"):
        # Jobs live in tables a test's flush leaves alone: start from none, leave none behind
        # for another test's worker (their orders are gone after the flush).
        _delete_jobs()
        request.addfinalizer(_delete_jobs)


@pytest.fixture(autouse=True)
def _shipped_limits(request):
    """The global limits row that migration risk/0007 ships refuses big orders: most tests
    place orders of any size, so it is removed for them. A test marked ``safe_defaults`` gets
    it exactly as the migration left the database (restored if a flush removed it)."""
    if request.node.get_closest_marker("django_db") is None:
        return
    from risk.models import RiskLimit

    shipped = request.config.stash.get(SHIPPED_LIMITS, None)
    RiskLimit.objects.filter(strategy__isnull=True).delete()
    if request.node.get_closest_marker("safe_defaults") and shipped is not None:
        RiskLimit.objects.create(**shipped)


SHIPPED_LIMITS = pytest.StashKey[dict | None]()


@pytest.fixture
def shipped_limits(request) -> dict | None:
    """The global risk_limits row as the migrations left the fresh test database (None: no
    row), read before any test ran."""
    return request.config.stash[SHIPPED_LIMITS]


@pytest.fixture(scope="session", autouse=True)
def _flush_may_truncate_history():
    """Between transactional tests Django flushes every table with one TRUNCATE, which the
    append-only tables' BEFORE TRUNCATE triggers refuse: the flush, and only the flush, runs
    with those triggers ignored (pgtrigger's ignore, local to the flush's transaction)."""
    from django.test import TransactionTestCase

    from omsproject.pg import history_truncate_allowed

    flush = TransactionTestCase._fixture_teardown

    def _fixture_teardown(self):
        with history_truncate_allowed():
            flush(self)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(TransactionTestCase, "_fixture_teardown", _fixture_teardown)
        yield


@pytest.fixture(scope="session")
def django_db_setup(request, django_db_setup, django_db_blocker):
    """pytest-django's, then: note the global limits the migrations shipped, and at the end
    leave no session on the test database before it is dropped.

    Django hands connections back to its psycopg pool, and a worker run by a test may leave
    its own pool's connection behind: either would make the drop fail ("being accessed by
    other users") and leave the database on the server.
    """
    from risk.models import RiskLimit

    with django_db_blocker.unblock():
        request.config.stash[SHIPPED_LIMITS] = (
            RiskLimit.objects.filter(strategy__isnull=True)
            .values(*(f.attname for f in RiskLimit._meta.concrete_fields if f.name != "id"))
            .first()
        )
    yield
    from django.db import connection

    with django_db_blocker.unblock():
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        connection.close()
        if connection.settings_dict["OPTIONS"].get("pool"):
            connection.close_pool()


def _delete_jobs() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM procrastinate_periodic_defers")
        cursor.execute("DELETE FROM procrastinate_jobs")


def _worker_app():
    from procrastinate.contrib.django import app

    return app.with_connector(app.connector.get_worker_connector())


@pytest.fixture
def run_jobs():
    """Run every job that is due with a real procrastinate worker, then return.

    Jobs are read from PostgreSQL by the worker's own connection, so only committed jobs are
    seen: use it in ``django_db(transaction=True)`` tests.
    """

    def run(queues: list[str] | None = None) -> None:
        _worker_app().run_worker(
            # The periodic risk monitor and reconciliation run on the wall clock (an MIS
            # square-off at 15:20 IST...): tests run them by calling them, not through here.
            queues=queues or ["orders", "prices"],
            wait=False,
            install_signal_handlers=False,
            listen_notify=False,
            delete_jobs="never",
        )

    return run


def pytest_collection_modifyitems(config, items):
    """The browser tests run last: Playwright's sync API keeps an event loop running in the main
    thread from its first test to the end of the session, and a test after it that runs a real
    procrastinate worker in that thread (run_jobs: asyncio.run) could not."""
    items.sort(key=lambda item: item.get_closest_marker("browser") is not None)
