"""Suite-wide fixtures. The database is real PostgreSQL: the embedded server, or DATABASE_URL."""

import pytest


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
            queues=queues,
            wait=False,
            install_signal_handlers=False,
            listen_notify=False,
            delete_jobs="never",
        )

    return run
