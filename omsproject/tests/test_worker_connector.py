"""The worker's connector (omsproject/worker_connector.py): which queries it tries again through
a database outage, the fetch whose answer was lost, and its contract with procrastinate.

The contract tests fail when procrastinate changes what the connector relies on; the message
names the installed version. The reliability suite (tests/reliability/test_database_restart.py)
proves the whole: a cluster's workers through a real database restart.
"""

from __future__ import annotations

import asyncio
import inspect
from concurrent.futures import ThreadPoolExecutor

import procrastinate
import psycopg
import psycopg_pool
import pytest
from procrastinate import exceptions, sql
from procrastinate.contrib.django import app as django_app
from procrastinate.contrib.django import apps as django_apps
from procrastinate.contrib.django import django_connector
from procrastinate.contrib.django.management.commands import procrastinate as worker_command

from omsproject import worker_connector
from omsproject.worker_connector import (
    OUTCOMES,
    REPEATABLE,
    OmsDjangoConnector,
    WorkerConnector,
)

VERSION = f"procrastinate {procrastinate.__version__}"


# --- the contract with procrastinate ------------------------------------------------------


def test_the_worker_command_runs_on_the_connector_the_apps_connector_gives():
    handle = inspect.getsource(worker_command.Command.handle)
    assert "isinstance(app.connector, django_connector.DjangoConnector)" in handle, VERSION
    assert "app.replace_connector(app.connector.get_worker_connector())" in handle, VERSION
    create_app = inspect.getsource(django_apps.create_app)
    assert "on_app_ready(app)" in create_app, VERSION


def test_an_app_holds_its_connector_in_two_places_as_replace_connector_sets():
    first, second = django_connector.DjangoConnector(), django_connector.DjangoConnector()
    app = procrastinate.App(connector=first)
    holders = [
        name
        for owner in (app, app.job_manager)
        for name, value in vars(owner).items()
        if value is first
    ]
    assert sorted(holders) == ["connector", "connector"], (VERSION, holders)
    with app.replace_connector(second):
        assert app.connector is second and app.job_manager.connector is second, VERSION


def test_the_django_app_runs_its_workers_on_the_worker_connector():
    assert type(django_app.connector) is OmsDjangoConnector
    assert django_app.job_manager.connector is django_app.connector
    assert isinstance(django_app.connector.get_worker_connector(), WorkerConnector)


def test_the_queries_it_classifies_are_procrastinates():
    assert not REPEATABLE - set(sql.queries), (VERSION, REPEATABLE - set(sql.queries))
    assert "%(worker_id)s" in sql.queries["fetch_job"], VERSION
    assert "%(job_id)s" in sql.queries["finish_job"], VERSION
    for placeholder in ("job_id", "retry_at", "new_priority", "new_queue_name", "new_lock"):
        assert f"%({placeholder})s" in sql.queries["retry_job"], (VERSION, placeholder)
    for name in ("execute_query_async", "execute_query_one_async", "execute_query_all_async"):
        parameters = inspect.signature(getattr(procrastinate.PsycopgConnector, name)).parameters
        assert list(parameters) == ["self", "query", "arguments"], (VERSION, name)
    listen = inspect.signature(procrastinate.PsycopgConnector.listen_notify).parameters
    assert list(listen) == ["self", "on_notification", "channels"], VERSION


# --- what it tries again ------------------------------------------------------------------


def lost(message="server closed the connection unexpectedly"):
    try:
        raise psycopg.OperationalError(message)
    except psycopg.OperationalError as cause:
        error = exceptions.ConnectorException()
        error.__cause__ = cause
        return error


def no_connection():
    error = exceptions.ConnectorException()
    error.__cause__ = psycopg_pool.PoolTimeout("couldn't get a connection after 5.00 sec")
    return error


def already_final():
    error = exceptions.ConnectorException()
    error.__cause__ = psycopg.errors.RaiseException('Job was not found or not in "doing" status')
    return error


class Script:
    """An ``execute`` that raises the given errors in turn, then answers ``answer``."""

    def __init__(self, *errors, answer=None):
        self.errors = list(errors)
        self.answer = answer
        self.calls = 0

    async def __call__(self, query, **arguments):
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return self.answer


@pytest.fixture
def connector(monkeypatch):
    monkeypatch.setattr(worker_connector, "FIRST_PAUSE_SECONDS", 0.01)
    monkeypatch.setattr(worker_connector, "LONGEST_PAUSE_SECONDS", 0.02)
    return WorkerConnector(outage_seconds=1.0, kwargs={})


def run_coroutine(coroutine):
    """asyncio.run in a thread of its own: the browser tests' Playwright keeps an event loop
    running in the main thread for the rest of the session."""
    with ThreadPoolExecutor(1) as thread:
        return thread.submit(asyncio.run, coroutine).result()


def run(connector, script, name, **arguments):
    return run_coroutine(connector._until_answered(script, sql.queries[name], arguments))


def test_a_heartbeat_is_sent_again_until_the_database_answers(connector):
    script = Script(lost(), lost("terminating connection due to administrator command"))
    run(connector, script, "update_heartbeat", worker_id=1)
    assert script.calls == 3


def test_a_jobs_outcome_is_recorded_again_and_a_lost_answer_of_a_commit_is_success(connector):
    script = Script(lost(), already_final())
    assert run(connector, script, "finish_job", job_id=7, status="succeeded") is None
    assert script.calls == 2
    assert "finish_job" in OUTCOMES and "retry_job" in OUTCOMES


def test_an_outcome_refused_at_the_first_try_is_an_error(connector):
    with pytest.raises(exceptions.ConnectorException):
        run(connector, Script(already_final()), "finish_job", job_id=7, status="succeeded")


def test_a_defer_is_sent_again_only_when_it_never_reached_the_database(connector):
    script = Script(no_connection(), answer=[{"id": 1}])
    assert run(connector, script, "defer_jobs", jobs=[]) == [{"id": 1}]
    # A lost answer may hide a committed defer: sending it again could make a second job.
    script = Script(lost(), answer=[{"id": 2}])
    with pytest.raises(exceptions.ConnectorException):
        run(connector, script, "defer_jobs", jobs=[])
    assert script.calls == 1


def test_the_worker_stops_after_the_outage_budget(connector):
    script = Script(*[lost() for _ in range(1000)])
    with pytest.raises(exceptions.ConnectorException):
        run(connector, script, "update_heartbeat", worker_id=1)
    assert 10 < script.calls < 1000


# --- a fetch whose answer was lost --------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_job_fetched_whose_answer_was_lost_is_put_back_and_fetched_again(monkeypatch):
    monkeypatch.setattr(worker_connector, "FIRST_PAUSE_SECONDS", 0.01)
    connector = OmsDjangoConnector().get_worker_connector()
    app = procrastinate.App(connector=connector)

    @app.task(name="tests.lost_answer", queue="lost-answer")
    def lost_answer() -> None:
        pass

    async def scenario():
        async with app.open_async():
            job_id = await lost_answer.defer_async()
            worker_id = await app.job_manager.register_worker()
            fetch = procrastinate.PsycopgConnector.execute_query_one_async
            answers = []

            async def commit_then_lose_the_answer(query, **arguments):
                answers.append(await fetch(connector, query, **arguments))
                if len(answers) == 1:
                    raise lost()
                return answers[-1]

            row = await connector._until_answered(
                commit_then_lose_the_answer,
                sql.queries["fetch_job"],
                {"queues": ["lost-answer"], "worker_id": worker_id},
            )
            doing = await connector.execute_query_all_async(
                worker_connector.DOING_UNDER_WORKER, worker_id=worker_id
            )
            await connector.execute_query_async(
                "DELETE FROM procrastinate_jobs WHERE id = %(job_id)s", job_id=job_id
            )
            await app.job_manager.unregister_worker(worker_id)
            return job_id, answers, row, doing

    job_id, answers, row, doing = run_coroutine(scenario())
    assert answers[0]["id"] == job_id  # taken by the first fetch, whose answer was lost
    assert row["id"] == job_id  # put back, then handed to the worker by the second
    assert doing == [{"id": job_id}]
