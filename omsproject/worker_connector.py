"""The worker's database connector: a worker rides out a short database outage, and stops
(for its supervisor to start it again) after a long one.

procrastinate's worker stops when a query fails: a failed job fetch raises out of it, and a
failed heartbeat, listener or periodic deferrer stops it. A job whose outcome cannot be
recorded stays 'doing' while its worker lives on and beats, so it never counts as stalled and
no other job of the same order (same lock) may start. procrastinate's maintainers leave
retries to a ``PsycopgConnector`` subclass and a restart to the process supervisor
(procrastinate-org/procrastinate#1116); this module is the first half, ``bin/run`` and the
platform running the Procfile are the second:

- ``WorkerConnector`` tries a query again while the database cannot be reached (a lost
  connection, a server restarting), for up to ``OMS_WORKER_DB_OUTAGE_SECONDS``, and a job's
  outcome for twice that: by then the heartbeat has given up too and the worker is stopping, so
  an outcome is never lost under a worker that lives on. After that the error stands, the worker
  stops and the process exits; its supervisor starts it again, and the jobs it left in 'doing'
  are retried by ``orders.retry_stalled_jobs``.
- A query is tried again only when repeating it does no harm: when it never reached the
  database (no connection), or when the query may be repeated (reads, heartbeats, a job's
  outcome, a periodic defer). A job fetch whose answer was lost may have taken a job: before
  the worker's next fetch, the jobs in 'doing' under its id that it was never handed are put
  back in the queue (every job is idempotent).
- The LISTEN connection is opened again after an outage, for as long as it takes (the worker
  polls for jobs meanwhile).

``use_worker_connector`` (``PROCRASTINATE_ON_APP_READY``) installs it: the app keeps its
``DjangoConnector`` (jobs are deferred in the web requests' transactions), and
``manage.py procrastinate worker`` asks that connector for its worker connector.
omsproject/tests/test_worker_connector.py holds the contract with procrastinate's internals.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import psycopg
import psycopg_pool
from django.conf import settings
from procrastinate import PsycopgConnector, connector, exceptions, sql, utils
from procrastinate.contrib.django import django_connector
from procrastinate.contrib.django import utils as django_utils

logger = logging.getLogger("oms.jobs")

FIRST_PAUSE_SECONDS = 0.5
LONGEST_PAUSE_SECONDS = 5.0
CONNECTION_WAIT_SECONDS = 5.0  # the pool's wait for a connection, before trying again

# Queries whose repetition does no harm: reads, beats, a job's outcome (a second try after a
# committed first one finds the job no longer 'doing'), a periodic defer (unique per tick), the
# worker's own registration. A fetch is repeatable because of the orphan check below.
OUTCOMES = frozenset({"finish_job", "retry_job"})
REPEATABLE = OUTCOMES | {
    "fetch_job",
    "update_heartbeat",
    "register_worker",
    "unregister_worker",
    "prune_stalled_workers",
    "defer_periodic_job",
    "select_stalled_jobs_by_heartbeat",
    "select_stalled_jobs_by_started",
    "list_jobs_to_abort",
    "list_jobs",
    "get_job_status",
    "check_connection",
}
QUERY_NAMES = {text: name for name, text in sql.queries.items()}
DOING_UNDER_WORKER = (
    "SELECT id FROM procrastinate_jobs WHERE status = 'doing' AND worker_id = %(worker_id)s"
)


class WorkerConnector(PsycopgConnector):
    """A ``PsycopgConnector`` that tries a query again through a database outage."""

    def __init__(self, *, outage_seconds: float, **pool_arguments: Any) -> None:
        super().__init__(**{"timeout": CONNECTION_WAIT_SECONDS, **pool_arguments})
        self.outage_seconds = outage_seconds
        self._handed_out: dict[int, set[int]] = {}  # worker id -> the jobs it was handed
        self._fetch_in_doubt: set[int] = set()  # workers whose fetch's answer was lost

    async def execute_query_async(self, query: str, **arguments: Any) -> None:
        return await self._until_answered(super().execute_query_async, query, arguments)

    async def execute_query_one_async(self, query: str, **arguments: Any) -> dict[str, Any]:
        return await self._until_answered(super().execute_query_one_async, query, arguments)

    async def execute_query_all_async(self, query: str, **arguments: Any) -> list[dict[str, Any]]:
        return await self._until_answered(super().execute_query_all_async, query, arguments)

    async def listen_notify(
        self, on_notification: connector.Notify, channels: Iterable[str]
    ) -> None:
        channels = list(channels)
        pause = FIRST_PAUSE_SECONDS
        loop = asyncio.get_running_loop()
        while True:
            began = loop.time()
            try:
                await super().listen_notify(on_notification=on_notification, channels=channels)
            except exceptions.ConnectorException as error:
                if not isinstance(error.__cause__, psycopg.OperationalError):
                    raise
                if loop.time() - began > LONGEST_PAUSE_SECONDS:
                    pause = FIRST_PAUSE_SECONDS  # it had been listening: a new outage
                logger.warning(
                    "worker not listening for jobs (%s): trying again in %.1f s",
                    first_line(error.__cause__),
                    pause,
                )
                await asyncio.sleep(pause)
                pause = min(pause * 2, LONGEST_PAUSE_SECONDS)

    async def _until_answered(
        self, execute: Callable[..., Awaitable[Any]], query: str, arguments: dict[str, Any]
    ) -> Any:
        name = QUERY_NAMES.get(query)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.outage_seconds * (2 if name in OUTCOMES else 1)
        pause = FIRST_PAUSE_SECONDS
        tried = False
        while True:
            try:
                if name == "fetch_job" and arguments["worker_id"] in self._fetch_in_doubt:
                    await self._requeue_unseen(arguments["worker_id"])
                result = await execute(query, **arguments)
            except exceptions.ConnectorException as error:
                cause = error.__cause__
                if tried and name in OUTCOMES and isinstance(cause, psycopg.errors.RaiseException):
                    # The job is no longer 'doing': the try whose answer was lost did commit.
                    logger.warning("job %s outcome had been recorded", arguments.get("job_id"))
                    result = None
                    break
                if name == "fetch_job" and isinstance(cause, psycopg.OperationalError):
                    self._fetch_in_doubt.add(arguments["worker_id"])
                if not self._may_try_again(name, cause) or loop.time() + pause > deadline:
                    raise
                logger.warning(
                    "database query %s failed (%s): trying again in %.1f s",
                    name or "(other)",
                    first_line(cause),
                    pause,
                )
                tried = True
                await asyncio.sleep(pause)
                pause = min(pause * 2, LONGEST_PAUSE_SECONDS)
                continue
            break
        self._note_hand_over(name, arguments, result)
        return result

    @staticmethod
    def _may_try_again(name: str | None, cause: BaseException | None) -> bool:
        if isinstance(cause, psycopg_pool.PoolTimeout):
            return True  # no connection: the query never reached the database
        return isinstance(cause, psycopg.OperationalError) and name in REPEATABLE

    def _note_hand_over(self, name: str | None, arguments: dict[str, Any], result: Any) -> None:
        if name == "fetch_job" and result and result.get("id") is not None:
            self._handed_out.setdefault(arguments["worker_id"], set()).add(result["id"])
        elif name in OUTCOMES:
            for jobs in self._handed_out.values():
                jobs.discard(arguments["job_id"])
        elif name == "unregister_worker":
            self._handed_out.pop(arguments["worker_id"], None)

    async def _requeue_unseen(self, worker_id: int) -> None:
        """Put back in the queue the jobs in 'doing' under ``worker_id`` that it was never
        handed: a fetch that committed, whose answer was lost."""
        rows = await PsycopgConnector.execute_query_all_async(
            self, DOING_UNDER_WORKER, worker_id=worker_id
        )
        handed_out = self._handed_out.get(worker_id, set())
        for job_id in {row["id"] for row in rows} - handed_out:
            logger.warning("requeueing job %s: fetched, but its worker never got it", job_id)
            await PsycopgConnector.execute_query_async(
                self,
                sql.queries["retry_job"],
                job_id=job_id,
                retry_at=utils.utcnow(),
                new_priority=None,
                new_queue_name=None,
                new_lock=None,
            )
        self._fetch_in_doubt.discard(worker_id)


class OmsDjangoConnector(django_connector.DjangoConnector):
    """The app's connector: Django's connection for deferring, ``WorkerConnector`` for
    ``manage.py procrastinate worker``."""

    def get_worker_connector(self) -> WorkerConnector:
        return WorkerConnector(
            outage_seconds=settings.OMS_WORKER_DB_OUTAGE_SECONDS,
            kwargs=django_utils.connector_params(self.alias),
        )


def use_worker_connector(app) -> None:
    """PROCRASTINATE_ON_APP_READY: the app's workers run on ``WorkerConnector``."""
    if type(app.connector) is not django_connector.DjangoConnector:
        return  # a test or a script gave the app its own connector
    oms_connector = OmsDjangoConnector(alias=app.connector.alias)
    # What App.replace_connector does, for the app's lifetime.
    app.connector = oms_connector
    app.job_manager.connector = oms_connector


def first_line(error: BaseException | None) -> str:
    return (str(error).strip().splitlines() or [""])[0]
