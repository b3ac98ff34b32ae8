"""Suite-wide fixtures. The database is real PostgreSQL: the embedded server, or DATABASE_URL."""

from pathlib import Path

import pytest

SAMPLE_INSTRUMENTS = Path(__file__).parent / "risk" / "fixtures" / "instruments_sample.csv"


@pytest.fixture(autouse=True)
def _reference_data(request, settings):
    """What every test may assume, as on a desk's machine after set-up: the sample instrument
    master is loaded, and paper strategies may trade at any hour (tests of market hours set
    OMS_PAPER_MARKET_HOURS back to "enforce")."""
    settings.OMS_PAPER_MARKET_HOURS = "ignore"
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
