"""Background jobs on procrastinate: every broker call and schedule of the order lifecycle.

An entry point, like the API: each task calls one service. Jobs are deferred (orders.jobs)
inside the transaction that wrote the intent (transactional outbox). Each is idempotent (it
looks at the order's state first) and holds a per-order lock, so a retried or duplicated job
can never act twice or race another job on the same order.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from procrastinate import RetryStrategy
from procrastinate.contrib.django import app

from orders import jobs
from orders.models import Order, Strategy
from orders.services import (
    order_cancel_at_broker,
    order_confirm_at_broker,
    order_modify_at_broker,
    order_resolve_unknown,
    order_submit,
    orders_cancel_at_broker,
    orders_expire,
    orders_poll,
)
from risk.monitors import market_tick

logger = logging.getLogger("oms.jobs")

BROKER_RETRY = RetryStrategy(max_attempts=8, wait=1, exponential_wait=2)
UNKNOWN_CHECKS = 6  # look the tag up this many times (2, 4, 8... seconds) before giving up


@app.task(name=jobs.SUBMIT, queue="orders", retry=BROKER_RETRY)
def submit_order(order_id: int) -> None:
    order_submit(order_id)


@app.task(name=jobs.CANCEL, queue="orders", retry=BROKER_RETRY)
def cancel_order(order_id: int) -> None:
    order_cancel_at_broker(order_id)


@app.task(name=jobs.CANCEL_MANY, queue="orders", retry=BROKER_RETRY)
def cancel_orders(order_ids: list[int]) -> None:
    """A kill switch's cancels, by the batch. It holds no per-order job lock (a job has one
    lock): each order is changed under its row lock and only while CANCEL_PENDING, so a job of
    the same order running meanwhile finds it done, as with the per-order job."""
    orders_cancel_at_broker(order_ids)


@app.task(name=jobs.MODIFY, queue="orders", retry=BROKER_RETRY)
def modify_order(order_id: int) -> None:
    order_modify_at_broker(order_id)


@app.task(name=jobs.CONFIRM, queue="orders", retry=BROKER_RETRY)
def confirm_order(order_id: int) -> None:
    """A postback said the order changed: ask the broker and apply what it answers."""
    order_confirm_at_broker(order_id)


@app.task(name=jobs.RESOLVE_UNKNOWN, queue="orders", retry=BROKER_RETRY)
def resolve_unknown_order(order_id: int, attempt: int = 1) -> None:
    settled = order_resolve_unknown(order_id, give_up=attempt >= UNKNOWN_CHECKS)
    if not settled:
        jobs.defer_resolve_unknown(Order.objects.get(pk=order_id), attempt + 1)


@app.task(name=jobs.APPLY_PRICES, queue="prices", retry=BROKER_RETRY)
def apply_prices(prices: list[list[str]], strategy_id: int | None = None) -> None:
    """A price tick: store it, let the paper exchange match, mark positions, check exits.
    With ``strategy_id``: a paper strategy's own prices, moving its own book only."""
    strategy = Strategy.objects.get(pk=strategy_id) if strategy_id else None
    market_tick(
        [(symbol, exchange, Decimal(price)) for symbol, exchange, price in prices],
        strategy=strategy,
    )


@app.periodic(cron="* * * * *")
@app.task(name="orders.poll_open_orders", queue="orders", queueing_lock="poll_open_orders")
def poll_open_orders(timestamp: int) -> None:
    """Ask the broker about working orders we have heard nothing of for a minute."""
    orders_poll(stale_after=timedelta(seconds=60))


@app.periodic(cron="* * * * *")
@app.task(name="orders.expire_day_orders", queue="orders", queueing_lock="expire_day_orders")
def expire_day_orders(timestamp: int) -> None:
    """After the close (15:30 IST), DAY orders still working have expired."""
    orders_expire()


@app.periodic(cron="* * * * *")
@app.task(name="orders.retry_stalled_jobs", queue="maintenance", pass_context=True)
async def retry_stalled_jobs(context, timestamp: int) -> None:
    """A worker that died (SIGKILL, lost machine) leaves jobs in 'doing': run them again.

    Dead means silent for OMS_WORKER_STALLED_SECONDS (the workers' stalled_worker_timeout).
    """
    stalled = await context.app.job_manager.get_stalled_jobs(
        seconds_since_heartbeat=settings.OMS_WORKER_STALLED_SECONDS
    )
    for job in stalled:
        logger.warning("retrying stalled job %s (%s)", job.id, job.task_name)
        await context.app.job_manager.retry_job(job)
