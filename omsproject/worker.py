"""The background worker (``manage.py procrastinate worker``), kept alive through database outages.

procrastinate's worker stops when its database goes away: a failed job fetch raises out of it,
and a failed heartbeat, listener or periodic deferrer stops it; the command then exits, and
the machine has no worker until someone starts one. And a job whose outcome cannot be recorded
stays 'doing' for good: its worker lives on, beating, so it never counts as stalled, and no
other job of the same order (same lock) may start. ``worker_keep_running`` (installed by
``PROCRASTINATE_ON_APP_READY``) fixes both:

- a job's outcome (finished, or to be retried) is recorded again while the database is
  unreachable, for up to ``RECORD_OUTCOME_SECONDS``;
- a worker that stops without being asked to (SIGTERM or SIGINT) is started anew in the same
  process once the database answers, after a pause that doubles up to 30 s; the jobs its
  predecessor left in 'doing' are handed back to the queue at once (that worker ran in this
  process and is gone, so nothing runs them any more; every job is idempotent). Other
  workers' orphans are left to the stalled-job retry (orders.retry_stalled_jobs).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

import psycopg
from django.conf import settings
from procrastinate import exceptions, utils
from procrastinate.worker import Worker

logger = logging.getLogger("oms.jobs")

FIRST_PAUSE_SECONDS = 1.0
LONGEST_PAUSE_SECONDS = 30.0
RECORD_OUTCOME_SECONDS = 300.0  # as long as the pool tries to reconnect (its reconnect_timeout)


def worker_keep_running(app) -> None:
    """PROCRASTINATE_ON_APP_READY: the app's workers record their jobs' outcomes through a
    database outage, and start again after one."""
    manager = app.job_manager
    manager.finish_job = _until_recorded(manager.finish_job)
    manager.retry_job = _until_recorded(manager.retry_job)
    run_once = app.run_worker_async

    async def run_worker_async(**options) -> None:
        if not options.get("wait", app.worker_defaults.get("wait", True)):
            await run_once(**options)  # a one-shot worker (tests, scripts) just stops
            return
        await _run_until_asked_to_stop(app, options)

    app.run_worker_async = run_worker_async


async def _run_until_asked_to_stop(app, options: dict) -> None:
    app.perform_import_paths()
    options = {**app.worker_defaults, **options}
    own_signals = options.pop("install_signal_handlers", True)
    stopping = asyncio.Event()
    worker: Worker | None = None

    def stop() -> None:
        stopping.set()
        if worker is not None:
            worker.stop()

    loop = asyncio.get_running_loop()
    if own_signals:
        for number in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(number, stop)
    pause = FIRST_PAUSE_SECONDS
    try:
        while True:
            worker = Worker(app=app, install_signal_handlers=False, **options)
            failure: Exception | None = None
            began = loop.time()
            try:
                await worker.run()
            except Exception as error:
                failure = error
            if stopping.is_set():
                if failure is not None:
                    raise failure
                return
            if loop.time() - began > 2 * LONGEST_PAUSE_SECONDS:
                pause = FIRST_PAUSE_SECONDS  # it had been running a while: a new failure
            logger.error(
                "the worker stopped by itself (%s): starting it again in %.0f s",
                failure or "a side task failed: see above",
                pause,
            )
            if await _wait(stopping, pause) or not await _database_answers(app, stopping):
                return
            await _requeue_orphans(app, worker.worker_id)
            pause = min(pause * 2, LONGEST_PAUSE_SECONDS)  # longer while it keeps failing
    finally:
        if own_signals:
            for number in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(number)


def _until_recorded(record):
    """``record`` (a job's outcome) tried again while the database cannot be reached.

    Only a lost connection is tried again: any other error (the job no longer 'doing', as when
    the first try did commit before its connection died) is final.
    """

    async def call(*args, **kwargs):
        loop = asyncio.get_running_loop()
        deadline = loop.time() + RECORD_OUTCOME_SECONDS
        pause = FIRST_PAUSE_SECONDS / 2
        while True:
            try:
                return await record(*args, **kwargs)
            except exceptions.ConnectorException as error:
                if not isinstance(error.__cause__, psycopg.OperationalError):
                    raise
                if loop.time() + pause > deadline:
                    raise
                logger.warning(
                    "job outcome not recorded (%s): trying again in %.1f s",
                    _first_line(error.__cause__),
                    pause,
                )
                await asyncio.sleep(pause)
                pause = min(pause * 2, LONGEST_PAUSE_SECONDS / 3)

    return call


def _first_line(error: BaseException | None) -> str:
    return (str(error).strip().splitlines() or [""])[0]


async def _wait(stopping: asyncio.Event, seconds: float) -> bool:
    """Sleep ``seconds`` unless asked to stop; returns whether it was."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stopping.wait(), timeout=seconds)
    return stopping.is_set()


async def _database_answers(app, stopping: asyncio.Event) -> bool:
    """Wait until the database answers (True), or until asked to stop (False)."""
    while not stopping.is_set():
        try:
            await app.job_manager.check_connection_async()
            return True
        except Exception as error:
            logger.warning("worker waiting for the database: %s", error)
            await _wait(stopping, FIRST_PAUSE_SECONDS)
    return False


async def _requeue_orphans(app, previous_worker_id: int | None) -> None:
    """Hand back the jobs left in 'doing' by this process's previous worker (and any job whose
    worker is known dead: stalled, or unregistered with the job still running)."""
    manager = app.job_manager
    orphans = {}
    if previous_worker_id is not None:  # its shutdown could not unregister it
        for job in await manager.list_jobs_async(status="doing", worker_id=previous_worker_id):
            orphans[job.id] = job
    stalled = await manager.get_stalled_jobs(
        seconds_since_heartbeat=settings.OMS_WORKER_STALLED_SECONDS
    )
    orphans.update({job.id: job for job in stalled})
    for job in orphans.values():
        logger.warning("requeueing job %s (%s): its worker is dead", job.id, job.task_name)
        try:
            await manager.retry_job_by_id_async(job_id=job.id, retry_at=utils.utcnow())
        except Exception as error:  # requeued meanwhile by another worker's stalled-job retry
            logger.warning("job %s not requeued: %s", job.id, error)
    if previous_worker_id is not None:
        with contextlib.suppress(Exception):
            await manager.unregister_worker(previous_worker_id)
