"""orders.retry_stalled_jobs with a real worker: a job a dead worker left in 'doing' is run
again; one whose queueing lock a newer waiting job holds is ended instead (the newer one does
its work), and the jobs after it are still retried."""

from __future__ import annotations

import pytest
from django.db import connection
from procrastinate.contrib.django.models import ProcrastinateJob

from orders import jobs
from orders.tasks import retry_stalled_jobs

pytestmark = pytest.mark.django_db(transaction=True)


def job(task: str, *, queueing_lock: str | None, status: str, worker: int | None) -> int:
    """A job row as procrastinate keeps it (``worker``: the one running it)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO procrastinate_jobs (queue_name, task_name, queueing_lock, args, status, "
            "worker_id) VALUES ('orders', %s, %s, '{\"order_id\": 1}', %s, %s) RETURNING id",
            [task, queueing_lock, status, worker],
        )
        return cursor.fetchone()[0]


def test_a_stalled_job_behind_a_newer_one_of_its_lock_is_ended_and_the_others_retried(run_jobs):
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO procrastinate_workers (last_heartbeat) "
            "VALUES (now() - interval '1 hour') RETURNING id"
        )
        dead = cursor.fetchone()[0]
    shadowed = job(jobs.CONFIRM, queueing_lock="confirm-order-1", status="doing", worker=dead)
    waiting = job(jobs.CONFIRM, queueing_lock="confirm-order-1", status="todo", worker=None)
    alone = job(jobs.SUBMIT, queueing_lock=None, status="doing", worker=dead)
    retry_stalled_jobs.defer(timestamp=0)

    run_jobs(["maintenance"])

    status = dict(ProcrastinateJob.objects.values_list("id", "status"))
    assert status[shadowed] == "failed"  # the newer confirmation does its work
    assert status[waiting] == "todo"
    assert status[alone] == "todo"  # retried: it will run again
