"""Background jobs on procrastinate: every broker call and schedule of the order lifecycle.

Jobs are deferred inside the transaction that wrote the intent (transactional outbox). Each
is idempotent (it looks at the order's state first) and holds a per-order lock, so a retried
or duplicated job can never act twice or race another job on the same order.
"""

from __future__ import annotations

import functools
import logging
from datetime import timedelta
from decimal import Decimal

from procrastinate import RetryStrategy
from procrastinate.contrib.django import app

logger = logging.getLogger("oms.jobs")

BROKER_RETRY = RetryStrategy(max_attempts=8, wait=1, exponential_wait=2)
CANCEL_JOB_ORDERS = 50  # orders in one job of defer_cancels
UNKNOWN_CHECKS = 6  # look the tag up this many times (2, 4, 8... seconds) before giving up


def _lock(order) -> str:
    return f"order-{order.pk}"


def defer_submit(order) -> None:
    submit_order.configure(lock=_lock(order)).defer(order_id=order.pk)


@functools.cache  # the same for every order: not rebuilt on each placement
def defer_submit_sql(order_id: str) -> tuple[str, dict]:
    """``defer_submit`` as an SQL expression, for the statement that writes the order itself
    (order_place): the same job row, deferred through procrastinate's own SQL function.
    ``order_id``: an SQL expression for the order's id."""
    job = submit_order.configure(lock="").job
    expression = (
        "procrastinate_defer_jobs_v1(ARRAY[ROW("
        "%(job_queue)s, %(job_task)s, %(job_priority)s, "
        f"'order-' || {order_id}, NULL, jsonb_build_object('order_id', {order_id}), NULL"
        ")::procrastinate_job_to_defer_v1])"
    )
    return expression, {
        "job_queue": job.queue,
        "job_task": job.task_name,
        "job_priority": job.priority,
    }


def defer_cancel(order) -> None:
    cancel_order.configure(lock=_lock(order)).defer(order_id=order.pk)


def defer_cancels(orders) -> None:
    """The cancel jobs of many orders, deferred in one statement: one job for each
    CANCEL_JOB_ORDERS orders (the workers share them), a lone order's the per-order job."""
    jobs = []
    for start in range(0, len(orders), CANCEL_JOB_ORDERS):
        group = orders[start : start + CANCEL_JOB_ORDERS]
        if len(group) == 1:
            jobs.append(
                cancel_order.configure(lock=_lock(group[0])).make_new_job(order_id=group[0].pk)
            )
        else:
            jobs.append(cancel_orders.configure().make_new_job(order_ids=[o.pk for o in group]))
    if jobs:
        app.job_manager.batch_defer_jobs(jobs)


def defer_modify(order) -> None:
    modify_order.configure(lock=_lock(order)).defer(order_id=order.pk)


def defer_resolve_unknown(order, attempt: int = 1) -> None:
    resolve_unknown_order.configure(lock=_lock(order), schedule_in={"seconds": 2**attempt}).defer(
        order_id=order.pk, attempt=attempt
    )


@app.task(name="orders.submit", queue="orders", retry=BROKER_RETRY)
def submit_order(order_id: int) -> None:
    from orders.services import order_submit

    order_submit(order_id)


@app.task(name="orders.cancel", queue="orders", retry=BROKER_RETRY)
def cancel_order(order_id: int) -> None:
    from orders.services import order_cancel_at_broker

    order_cancel_at_broker(order_id)


@app.task(name="orders.cancel_many", queue="orders", retry=BROKER_RETRY)
def cancel_orders(order_ids: list[int]) -> None:
    """A kill switch's cancels, by the batch. It holds no per-order job lock (a job has one
    lock): each order is changed under its row lock and only while CANCEL_PENDING, so a job of
    the same order running meanwhile finds it done, as with the per-order job."""
    from orders.services import orders_cancel_at_broker

    orders_cancel_at_broker(order_ids)


@app.task(name="orders.modify", queue="orders", retry=BROKER_RETRY)
def modify_order(order_id: int) -> None:
    from orders.services import order_modify_at_broker

    order_modify_at_broker(order_id)


@app.task(name="orders.resolve_unknown", queue="orders", retry=BROKER_RETRY)
def resolve_unknown_order(order_id: int, attempt: int = 1) -> None:
    from orders.models import Order
    from orders.services import order_resolve_unknown

    settled = order_resolve_unknown(order_id, give_up=attempt >= UNKNOWN_CHECKS)
    if not settled:
        defer_resolve_unknown(Order.objects.get(pk=order_id), attempt + 1)


@app.task(name="orders.prices", queue="prices", retry=BROKER_RETRY)
def apply_prices(prices: list[list[str]], strategy_id: int | None = None) -> None:
    """A price tick: store it, let the paper exchange match, mark positions, check exits
    (of one strategy when the tick is that strategy's own feed)."""
    from orders.models import Strategy
    from orders.services import market_tick

    strategy = Strategy.objects.get(pk=strategy_id) if strategy_id else None
    market_tick(
        [(symbol, exchange, Decimal(price)) for symbol, exchange, price in prices],
        strategy=strategy,
    )


@app.periodic(cron="* * * * *")
@app.task(name="orders.poll_open_orders", queue="orders", queueing_lock="poll_open_orders")
def poll_open_orders(timestamp: int) -> None:
    """Ask the broker about working orders we have heard nothing of for a minute."""
    from orders.services import orders_poll

    orders_poll(stale_after=timedelta(seconds=60))


@app.periodic(cron="* * * * *")
@app.task(name="orders.expire_day_orders", queue="orders", queueing_lock="expire_day_orders")
def expire_day_orders(timestamp: int) -> None:
    """After the close (15:30 IST), DAY orders still working have expired."""
    from orders.services import orders_expire

    orders_expire()


@app.periodic(cron="* * * * *")
@app.task(name="orders.retry_stalled_jobs", queue="maintenance", pass_context=True)
async def retry_stalled_jobs(context, timestamp: int) -> None:
    """A worker that died (SIGKILL, lost machine) leaves jobs in 'doing': run them again.

    Dead means silent for OMS_WORKER_STALLED_SECONDS (the workers' stalled_worker_timeout).
    """
    from django.conf import settings

    stalled = await context.app.job_manager.get_stalled_jobs(
        seconds_since_heartbeat=settings.OMS_WORKER_STALLED_SECONDS
    )
    for job in stalled:
        logger.warning("retrying stalled job %s (%s)", job.id, job.task_name)
        await context.app.job_manager.retry_job(job)
