"""Deferring the order lifecycle's background jobs, by task name (the tasks themselves live in
orders.tasks, the entry point that calls the services; this module sits below the services).

Every job is deferred inside the transaction that wrote its intent (a transactional outbox): if
the transaction rolls back, no job exists. Each per-order job holds the order's lock, so two
jobs never race on one order.
"""

from __future__ import annotations

from django.db import connection, transaction
from django.db.models import BooleanField
from django.db.models.expressions import RawSQL
from procrastinate.contrib.django import app
from procrastinate.exceptions import AlreadyEnqueued

SUBMIT = "orders.submit"
CANCEL = "orders.cancel"
CANCEL_MANY = "orders.cancel_many"
MODIFY = "orders.modify"
RESOLVE_UNKNOWN = "orders.resolve_unknown"
APPLY_PRICES = "orders.prices"
CONFIRM = "orders.confirm"
WEBHOOK = "orders.webhook_dispatch"
WEBHOOK_QUEUE = "webhooks"

CANCEL_JOB_ORDERS = 50  # orders in one job of defer_cancels
WAITING = ("todo", "doing")  # procrastinate's statuses of a job still to run or running


def _task(name: str, **options):
    return app.configure_task(name, allow_unknown=False, **options)


def order_lock(order_id: int) -> str:
    """The procrastinate lock every per-order job holds."""
    return f"order-{order_id}"


def submit_job_fields() -> tuple[str, str, int]:
    """(queue, task name, priority) of the submission job, for the statement that writes a new
    order and defers its submission through procrastinate's own SQL function."""
    job = _task(SUBMIT, lock="").job
    return job.queue, job.task_name, job.priority


def job_waiting() -> RawSQL:
    """An expression for a query of orders: whether one of the order's jobs is queued or
    running (a per-order job holds its lock; a batch cancel job lists it in its arguments).
    The sweep resumes only orders for which this is false."""
    return RawSQL(
        "EXISTS (SELECT 1 FROM procrastinate_jobs job WHERE job.status = ANY(%s) AND ("
        "job.lock = 'order-' || orders.id"
        " OR (job.task_name = %s AND job.args -> 'order_ids' @> to_jsonb(orders.id))))",
        [list(WAITING), CANCEL_MANY],
        output_field=BooleanField(),
    )


def defer_submit(order) -> None:
    """The submission job again, for an order SUBMITTED without a broker id: order_submit looks
    its tag up at the broker first and adopts what it finds (never a blind resend)."""
    _task(SUBMIT, lock=order_lock(order.pk)).defer(order_id=order.pk)


def defer_cancel(order) -> None:
    _task(CANCEL, lock=order_lock(order.pk)).defer(order_id=order.pk)


def defer_cancels(orders, *, schedule_in: float | None = None) -> None:
    """The cancel jobs of many orders, deferred in one statement: one job for each
    CANCEL_JOB_ORDERS orders (the workers share them), a lone order's the per-order job.
    ``schedule_in``: seconds before they may run (the rest of a batch the rate stopped)."""
    later = {} if schedule_in is None else {"schedule_in": {"seconds": schedule_in}}
    jobs = []
    for start in range(0, len(orders), CANCEL_JOB_ORDERS):
        group = orders[start : start + CANCEL_JOB_ORDERS]
        if len(group) == 1:
            deferrer = _task(CANCEL, lock=order_lock(group[0].pk), **later)
            jobs.append(deferrer.make_new_job(order_id=group[0].pk))
        else:
            deferrer = _task(CANCEL_MANY, **later)
            jobs.append(deferrer.make_new_job(order_ids=[o.pk for o in group]))
    if jobs:
        app.job_manager.batch_defer_jobs(jobs)


def defer_modify(order) -> None:
    _task(MODIFY, lock=order_lock(order.pk)).defer(order_id=order.pk)


def defer_resolve_unknown(order, attempt: int = 1) -> None:
    _task(RESOLVE_UNKNOWN, lock=order_lock(order.pk), schedule_in={"seconds": 2**attempt}).defer(
        order_id=order.pk, attempt=attempt
    )


def defer_confirm(order) -> bool:
    """Ask the broker for the truth about ``order`` (a postback said it changed). At most one
    such job waits per order (its queueing lock): a repeated postback defers nothing, and
    returns False. One that arrives while the job runs defers the next, which reads the
    broker again. In a savepoint, so a refusal leaves the caller's transaction usable."""
    try:
        with transaction.atomic():
            _task(
                CONFIRM, lock=order_lock(order.pk), queueing_lock=f"confirm-order-{order.pk}"
            ).defer(order_id=order.pk)
    except AlreadyEnqueued:
        return False
    return True


def defer_prices(prices: list[list[str]], *, strategy_id: int | None = None) -> None:
    _task(APPLY_PRICES).defer(prices=prices, strategy_id=strategy_id)


def webhook_lock(endpoint_id: int) -> str:
    """The lock and the queueing lock of an endpoint's dispatch job: one runs at a time, at
    most one waits. The strategy_events trigger defers it under the same name."""
    return f"webhook-{endpoint_id}"


def webhook_job_fields() -> tuple[str, str, int]:
    """(queue, task name, priority) of the dispatch job, for the trigger that defers it."""
    job = _task(WEBHOOK, lock="").job
    return job.queue, job.task_name, job.priority


def defer_webhook(endpoint_id: int, *, delay: float = 0.0, reschedule: bool = True) -> None:
    """The endpoint's dispatch job, to run in ``delay`` seconds. If one already waits (its
    queueing lock), that one is moved to run in ``delay`` seconds instead, unless not
    ``reschedule`` (then it runs when it would have). In a savepoint, so a waiting job leaves
    the caller's transaction usable."""
    lock = webhook_lock(endpoint_id)
    later = {"schedule_in": {"seconds": delay}} if delay > 0 else {}
    try:
        with transaction.atomic():
            _task(WEBHOOK, lock=lock, queueing_lock=lock, **later).defer(endpoint_id=endpoint_id)
    except AlreadyEnqueued:
        if reschedule:
            with connection.cursor() as cursor:
                cursor.execute(
                    "UPDATE procrastinate_jobs SET scheduled_at = now() + make_interval(secs => %s)"
                    " WHERE queueing_lock = %s AND status = 'todo'",
                    [delay, lock],
                )


def cancel_webhook(endpoint_id: int) -> None:
    """Drop the endpoint's waiting dispatch job (the endpoint is being removed)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE procrastinate_jobs SET status = 'cancelled'"
            " WHERE queueing_lock = %s AND status = 'todo'",
            [webhook_lock(endpoint_id)],
        )
