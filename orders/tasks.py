"""Background jobs on procrastinate: every broker call and schedule of the order lifecycle.

An entry point, like the API: each task calls one service. Jobs are deferred (orders.jobs)
inside the transaction that wrote the intent (transactional outbox). Each is idempotent (it
looks at the order's state first) and holds a per-order lock, so a retried or duplicated job
can never act twice or race another job on the same order.

A broker call that fails is retried as the broker says (BrokerRetry) and each failure is an
event on its orders (order_job_failed); what still falls through, the sweep picks up every
minute (orders_sweep): no order stays in flight unseen.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from procrastinate import BaseRetryStrategy, RetryDecision
from procrastinate.contrib.django import app
from procrastinate.exceptions import UniqueViolation
from procrastinate.jobs import Status

from orders import jobs
from orders.brokers import BrokerError, BrokerRateLimited, BrokerSessionExpired, BrokerUnavailable
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
from orders.services.sweep import order_job_failed, orders_sweep
from orders.services.webhooks import webhook_dispatch, webhooks_sweep
from risk.kill_switch import kill_switch_on_critical_issue
from risk.monitors import market_tick

logger = logging.getLogger("oms.jobs")


class BrokerRetry(BaseRetryStrategy):
    """When a failed job runs again: as the broker says, never into an expired session.

    - BrokerSessionExpired (no Kite session: the token expired, none is configured): again
      after its ``retry_in`` (60 s), for as long as it lasts — a person logs in again, and the
      sweep flags the order meanwhile (OMS_ORDER_STUCK_SECONDS);
    - BrokerRateLimited (our order window, or Kite's HTTP 429): after its ``retry_in``, the
      time until a slot is free, however often it takes: nothing was sent, a slot always comes;
    - any other BrokerUnavailable (network down, Kite's 5xx, 403): after its ``retry_in`` or
      the backoff, whichever is longer, ``max_attempts`` times;
    - anything else: the backoff (1 + 2, 4, 8... seconds, at most ``longest_wait``),
      ``max_attempts`` times.
    Then the job fails, and the sweep takes the order from there (OMS_ORDER_RESUME_SECONDS).
    procrastinate counts every run in ``job.attempts``, waits for a session included.
    """

    def __init__(self, *, max_attempts: int = 8, longest_wait: float = 120.0):
        self.max_attempts = max_attempts
        self.longest_wait = longest_wait

    def delay(self, error: BaseException, attempts: int) -> float | None:
        """Seconds until the next run after ``attempts`` earlier runs and this one failed
        with ``error``; None: no more."""
        if isinstance(error, BrokerSessionExpired | BrokerRateLimited):
            return error.retry_in
        if attempts >= self.max_attempts:
            return None
        backoff = min(1 + 2 ** (attempts + 1), self.longest_wait)
        if isinstance(error, BrokerUnavailable):
            return max(error.retry_in, backoff)
        return backoff

    def get_retry_decision(self, *, exception: BaseException, job) -> RetryDecision | None:
        delay = self.delay(exception, job.attempts)
        if delay is None:
            return None
        return RetryDecision(retry_in={"seconds": delay})


BROKER_RETRY = BrokerRetry()
UNKNOWN_CHECKS = 6  # look the tag up this many times (2, 4, 8... seconds) before giving up


def _at_broker(context, order_ids: list[int], call, *args) -> None:
    """Run a job's service; a broker failure is recorded on its orders (what failed, when it
    is tried again), then raised for procrastinate to retry as BROKER_RETRY says."""
    try:
        call(*args)
    except BrokerError as error:
        job = context.job
        try:
            order_job_failed(
                order_ids,
                job=job.task_name,
                error=error,
                attempt=job.attempts + 1,
                retry_in=BROKER_RETRY.delay(error, job.attempts),
            )
        except Exception:  # the failure is retried all the same; its record is a nicety
            logger.exception("could not record the failure of job %s", job.id)
        raise


@app.task(name=jobs.SUBMIT, queue="orders", retry=BROKER_RETRY, pass_context=True)
def submit_order(context, order_id: int) -> None:
    _at_broker(context, [order_id], order_submit, order_id)


@app.task(name=jobs.CANCEL, queue="orders", retry=BROKER_RETRY, pass_context=True)
def cancel_order(context, order_id: int) -> None:
    _at_broker(context, [order_id], order_cancel_at_broker, order_id)


@app.task(name=jobs.CANCEL_MANY, queue="orders", retry=BROKER_RETRY, pass_context=True)
def cancel_orders(context, order_ids: list[int]) -> None:
    """A kill switch's cancels, by the batch. It holds no per-order job lock (a job has one
    lock): each order is changed under its row lock and only while CANCEL_PENDING, so a job of
    the same order running meanwhile finds it done, as with the per-order job."""
    _at_broker(context, order_ids, orders_cancel_at_broker, order_ids)


@app.task(name=jobs.MODIFY, queue="orders", retry=BROKER_RETRY, pass_context=True)
def modify_order(context, order_id: int) -> None:
    _at_broker(context, [order_id], order_modify_at_broker, order_id)


@app.task(name=jobs.CONFIRM, queue="orders", retry=BROKER_RETRY)
def confirm_order(order_id: int) -> None:
    """A postback said the order changed: ask the broker and apply what it answers."""
    order_confirm_at_broker(order_id)


@app.task(name=jobs.RESOLVE_UNKNOWN, queue="orders", retry=BROKER_RETRY, pass_context=True)
def resolve_unknown_order(context, order_id: int, attempt: int = 1) -> None:
    _at_broker(context, [order_id], _resolve_unknown, order_id, attempt)


def _resolve_unknown(order_id: int, attempt: int) -> None:
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


@app.task(name=jobs.WEBHOOK, queue=jobs.WEBHOOK_QUEUE)
def dispatch_webhook(endpoint_id: int) -> None:
    """Post an endpoint's undelivered events in order (webhook_dispatch). Deferred by the
    strategy_events trigger with the endpoint's lock and queueing lock (orders.jobs.webhook_lock).

    No procrastinate retry: a failed delivery defers the job again itself, after a backoff with
    jitter. procrastinate's retry puts the failed job back to 'todo', which PostgreSQL refuses
    (the queueing lock's unique index) when a newer event has already deferred the next job.
    """
    report = webhook_dispatch(endpoint_id)
    if report.paused:
        logger.error("webhook %s paused: it kept failing", endpoint_id)


@app.periodic(cron="* * * * *")
@app.task(name="orders.webhooks_sweep", queue=jobs.WEBHOOK_QUEUE, queueing_lock="webhooks_sweep")
def sweep_webhooks(timestamp: int) -> None:
    """Endpoints with undelivered events and no job waiting get one (a net under the trigger)."""
    webhooks_sweep()


@app.periodic(cron="* * * * *")
@app.task(name="orders.poll_open_orders", queue="orders", queueing_lock="poll_open_orders")
def poll_open_orders(timestamp: int) -> None:
    """Ask the broker about working orders we have heard nothing of for a minute."""
    orders_poll(stale_after=timedelta(seconds=60))


@app.periodic(cron="* * * * *")
@app.task(name="orders.sweep", queue="orders", queueing_lock="orders_sweep")
def sweep_orders_in_flight(timestamp: int) -> None:
    """Orders in flight that no job settles get their job again, or a person (orders_sweep);
    a new CRITICAL "needs a person" issue calls the kill switch's rule, as reconciliation's do."""
    report = orders_sweep()
    for issue in report.critical:
        kill_switch_on_critical_issue(issue)


@app.periodic(cron="* * * * *")
@app.task(name="orders.expire_day_orders", queue="orders", queueing_lock="expire_day_orders")
def expire_day_orders(timestamp: int) -> None:
    """After the close (15:30 IST), DAY orders still working have expired."""
    orders_expire()


@app.periodic(cron="* * * * *")
@app.task(name="orders.retry_stalled_jobs", queue="maintenance", pass_context=True)
async def retry_stalled_jobs(context, timestamp: int) -> None:
    """A worker that died (SIGKILL, lost machine) leaves jobs in 'doing': run them again.

    Dead means silent for OMS_WORKER_STALLED_SECONDS (the workers' stalled_worker_timeout). A
    stalled job whose queueing lock a newer job holds is ended instead (the newer one does the
    work); before, the retry's unique violation ended every retry of the minute.
    """
    stalled = await context.app.job_manager.get_stalled_jobs(
        seconds_since_heartbeat=settings.OMS_WORKER_STALLED_SECONDS
    )
    for job in stalled:
        logger.warning("retrying stalled job %s (%s)", job.id, job.task_name)
        try:
            await context.app.job_manager.retry_job(job)
        except UniqueViolation:
            # A newer job of the same queueing lock waits already (a confirmation, a webhook
            # dispatch): it does this one's work, as every job reads the state it acts on.
            # Ended as failed, so the newer one runs and the next stalled job is retried too.
            logger.warning("stalled job %s ended: a newer one of its kind waits", job.id)
            await context.app.job_manager.finish_job(job, status=Status.FAILED, delete_job=False)
