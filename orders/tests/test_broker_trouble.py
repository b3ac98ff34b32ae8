"""Broker trouble never strands an order, against a fake Kite HTTP server speaking Kite's JSON.

A Kite session that expires for minutes, a gateway that times out, a job that runs out of
retries: the jobs wait as Kite says (BrokerRetry), every failed attempt is an event on the
order, the sweep gives an order its job again or flags it for a person, a HALT sends again
the cancels Kite has not confirmed, and Kite's order rate holds in every second. The jobs run
in a real procrastinate worker (``run_jobs``), so these tests are transactional.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.utils import timezone
from procrastinate.contrib.django.models import ProcrastinateJob
from procrastinate.jobs import Job

from omsproject.testing.threads import run_together
from orders import jobs, tasks
from orders.brokers import (
    BrokerRateLimited,
    BrokerSessionExpired,
    BrokerUnavailable,
    KiteBroker,
)
from orders.enums import EventKind, OrderStatus, StrategyMode
from orders.models import BrokerAccount, Order, OrderEvent
from orders.selectors import InFlightHealth, orders_in_flight_health
from orders.services import order_cancel
from orders.services.sweep import orders_sweep
from orders.tests.conftest import KITE_USER_ID, kite_account_create
from orders.tests.factories import OrderFactory, StrategyFactory
from orders.tests.fake_kite import BROKER_ORDER_ID, TAG
from positions.models import IssueType, ReconciliationIssue, Severity
from positions.reconciliation import reconcile_positions
from risk import ratelimit
from risk.calendar import IST
from risk.kill_switch import kill_switch_set
from risk.models import KillSwitchState
from risk.selectors import kill_switch_state

PLACE = ("POST", "/orders/regular")
CANCEL = ("DELETE", f"/orders/regular/{BROKER_ORDER_ID}")
ORDER_BOOK = ("GET", "/orders")
POSITIONS = ("GET", "/portfolio/positions")
EMPTY_BOOK = {"status": "success", "data": []}
NO_POSITIONS = {"status": "success", "data": {"net": [], "day": []}}

jobs_run = pytest.mark.django_db(transaction=True)


def live_order(**fields) -> Order:
    fields.setdefault("broker_tag", TAG)
    return OrderFactory(strategy=StrategyFactory(mode=StrategyMode.LIVE), **fields)


def order_job(order: Order) -> ProcrastinateJob:
    """The order's latest per-order job."""
    return ProcrastinateJob.objects.filter(lock=jobs.order_lock(order.pk)).order_by("-id").first()


def time_passes() -> None:
    """Every job waiting for its retry is due now (the minutes Kite asked for went by)."""
    with connection.cursor() as cursor:
        cursor.execute("UPDATE procrastinate_jobs SET scheduled_at = now() WHERE status = 'todo'")


def notes(order: Order) -> list[str]:
    return list(
        OrderEvent.objects.filter(order=order, kind=EventKind.NOTE)
        .order_by("id")
        .values_list("reason", flat=True)
    )


def failures(order: Order) -> list[str]:
    return [note for note in notes(order) if note.startswith("broker call failed")]


# --- retries as Kite says (BrokerRetry) ---------------------------------------------------------


@jobs_run
def test_a_submission_waits_out_an_expired_session_and_never_runs_out_of_retries(
    kite_server, run_jobs
):
    kite_server.reply(*PLACE, "error_token", http_status=403)
    kite_server.reply(*ORDER_BOOK, "error_token", http_status=403)
    order = live_order()
    jobs.defer_submit(order)

    run_jobs()

    job = order_job(order)
    assert (job.status, job.attempts) == ("todo", 1)
    wait = (job.scheduled_at - timezone.now()).total_seconds()
    assert 50 < wait <= 60  # Kite's session: asked again in a minute, not in 3 seconds
    order.refresh_from_db()
    assert (order.status, order.broker_order_id) == (OrderStatus.SUBMITTED, None)
    assert failures(order) == [
        "broker call failed: Kite session expired: log in again (Incorrect `api_key` or "
        "`access_token`.), retry in 60.0s"
    ]

    # Nine minutes of an expired session, and more: the job never fails for good.
    with connection.cursor() as cursor:
        cursor.execute("UPDATE procrastinate_jobs SET attempts = 40 WHERE id = %s", [job.pk])
    time_passes()
    run_jobs()

    job = order_job(order)
    assert (job.status, job.attempts) == ("todo", 41)
    assert len(failures(order)) == 1  # the same failure again is not written twice

    # Logged in again: the submission resumes by tag (Kite has not seen it), then sends it.
    kite_server.reply(*ORDER_BOOK, EMPTY_BOOK, replace=True)
    kite_server.reply(*PLACE, "place_order", replace=True)
    time_passes()
    run_jobs()

    order.refresh_from_db()
    assert (order.status, order.broker_order_id) == (OrderStatus.OPEN, BROKER_ORDER_ID)
    assert order_job(order).status == "succeeded"
    sent = [(r.method, r.path) for r in kite_server.sent]
    assert sent[-2:] == [ORDER_BOOK, PLACE]  # looked up before it was sent


@jobs_run
def test_a_submission_waits_for_the_accounts_next_login_without_asking_kite(kite_server, run_jobs):
    account = BrokerAccount.objects.get(user_id=KITE_USER_ID)
    BrokerAccount.objects.filter(pk=account.pk).update(
        token_expires_at=timezone.now() - timedelta(minutes=1)
    )  # 06:00 IST went by: Kite's token is dead, nobody has logged in yet
    order = live_order()
    jobs.defer_submit(order)

    run_jobs()

    job = order_job(order)
    assert (job.status, job.attempts) == ("todo", 1)
    assert 50 < (job.scheduled_at - timezone.now()).total_seconds() <= 60
    assert kite_server.sent == []
    assert len(failures(order)) == 1

    # The morning login: the job sends the order at its next run.
    BrokerAccount.objects.filter(pk=account.pk).update(
        token_expires_at=timezone.now() + timedelta(hours=8)
    )
    kite_server.reply(*ORDER_BOOK, EMPTY_BOOK)
    kite_server.reply(*PLACE, "place_order")
    time_passes()
    run_jobs()

    order.refresh_from_db()
    assert (order.status, order.broker_order_id) == (OrderStatus.OPEN, BROKER_ORDER_ID)


def job_with(attempts: int) -> Job:
    return Job(
        id=1, queue="orders", lock=None, queueing_lock=None, task_name="t", attempts=attempts
    )


def test_retries_follow_the_brokers_retry_in():
    retry = tasks.BrokerRetry(max_attempts=8)
    expired = BrokerSessionExpired("Kite session expired", retry_in=60.0)
    limited = BrokerRateLimited("Kite order rate reached", retry_in=0.25)
    refused_access = BrokerUnavailable("Kite refused access", retry_in=60.0)
    gateway = BrokerUnavailable("Kite error (NetworkException)")

    # Without limit while the session is expired or the rate full: nothing was sent.
    assert retry.delay(expired, 0) == retry.delay(expired, 500) == 60.0
    assert retry.delay(limited, 500) == 0.25
    # Otherwise the broker's delay or the backoff, the longer, and a bounded number of times.
    assert retry.delay(refused_access, 0) == 60.0
    assert [retry.delay(gateway, n) for n in range(9)] == [3, 5, 9, 17, 33, 65, 120, 120, None]
    assert retry.delay(ValueError("bug"), 8) is None

    decision = retry.get_retry_decision(exception=expired, job=job_with(12))
    assert 59 < (decision.retry_at - timezone.now()).total_seconds() <= 60
    assert retry.get_retry_decision(exception=gateway, job=job_with(8)) is None


@jobs_run
def test_each_failed_attempt_is_an_event_and_the_sweep_resumes_a_cancel_out_of_retries(
    kite_server, run_jobs, monkeypatch
):
    monkeypatch.setattr(tasks.BROKER_RETRY, "max_attempts", 1)
    kite_server.reply(*CANCEL, "error_network", http_status=504)
    order = live_order(status=OrderStatus.OPEN, broker_order_id=BROKER_ORDER_ID)
    order_cancel(order.pk, actor="desk")

    run_jobs()
    time_passes()
    run_jobs()

    assert order_job(order).status == "failed"
    assert failures(order) == [
        "broker call failed: Kite error (NetworkException): Gateway timed out. Please try "
        "again., retry in 3.0s",
        "broker call failed: Kite error (NetworkException): Gateway timed out. Please try "
        "again.; no retry left (the sweep resumes it)",
    ]
    assert kite_server.count(*CANCEL) == 2
    order.refresh_from_db()
    assert order.status == OrderStatus.CANCEL_PENDING

    # Within the bound nothing happens; past it the sweep defers the cancel again.
    assert orders_sweep().resumed == {}
    report = orders_sweep(now=timezone.now() + timedelta(minutes=2))

    assert report.resumed == {order.pk: jobs.CANCEL}
    assert notes(order)[-1].startswith("no job at work on it for 1")
    assert notes(order)[-1].endswith(f"s: {jobs.CANCEL} deferred again")
    kite_server.reply(*CANCEL, "cancel_order", replace=True)
    run_jobs()
    assert kite_server.count(*CANCEL) == 3
    assert order_job(order).status == "succeeded"


# --- a HALT sends again the cancels Kite has not confirmed ----------------------------------------


@jobs_run
def test_a_halt_sends_again_a_cancel_whose_job_ran_out_of_retries(kite_server, run_jobs):
    strategy = StrategyFactory(mode=StrategyMode.LIVE)
    stranded = OrderFactory(
        strategy=strategy,
        broker_tag=TAG,
        status=OrderStatus.CANCEL_PENDING,
        broker_order_id=BROKER_ORDER_ID,
        cancel_requested_at=timezone.now() - timedelta(minutes=9),
    )  # its cancel job failed for good while the session was expired: no job is left
    working = OrderFactory(strategy=strategy, status=OrderStatus.OPEN, broker_order_id="2604019")
    kite_server.reply(*CANCEL, "cancel_order")
    kite_server.reply("DELETE", "/orders/regular/2604019", "cancel_order")

    kill_switch_set(KillSwitchState.HALTED, strategy=strategy, reason="drill", actor="rita")

    stranded.refresh_from_db()
    working.refresh_from_db()
    assert stranded.status == working.status == OrderStatus.CANCEL_PENDING
    assert notes(stranded) == [
        "cancel sent again, not yet confirmed by the broker: kill switch HALTED: drill"
    ]
    run_jobs()
    assert kite_server.count(*CANCEL) == 1
    assert kite_server.count("DELETE", "/orders/regular/2604019") == 1


# --- reconciliation flags a cancel Kite has not confirmed -------------------------------------


@jobs_run
def test_reconciliation_flags_a_cancel_kite_has_not_confirmed(kite_server, settings):
    order = live_order(
        status=OrderStatus.CANCEL_PENDING,
        broker_order_id=BROKER_ORDER_ID,
        filled_quantity=0,
        cancel_requested_at=timezone.now()
        - timedelta(seconds=settings.OMS_CANCEL_UNCONFIRMED_SECONDS + 60),
    )
    recent = live_order(
        status=OrderStatus.CANCEL_PENDING,
        broker_order_id="2604019",
        broker_tag="OTHERTAG",
        cancel_requested_at=timezone.now(),
    )
    # Kite still has our order working: the cancel never reached it.
    kite_server.reply(*ORDER_BOOK, "orders", status="OPEN", filled_quantity=0, average_price=0)
    kite_server.reply(*POSITIONS, NO_POSITIONS)
    kite_server.reply("GET", "/portfolio/holdings", {"status": "success", "data": []})

    reconcile_positions()

    issue = ReconciliationIssue.objects.get(issue_type=IssueType.CANCEL_UNCONFIRMED)
    assert (issue.order_id, issue.severity, issue.resolved) == (order.pk, Severity.CRITICAL, False)
    assert issue.details["broker"] == "OPEN"
    assert "not confirmed by the broker (broker: OPEN)" in issue.description
    assert not ReconciliationIssue.objects.filter(order=recent).exists()

    # Kite confirms it: the order settles and the issue is gone at the next run.
    kite_server.reply(*ORDER_BOOK, "orders", status="CANCELLED", filled_quantity=0, replace=True)
    reconcile_positions()

    order.refresh_from_db()
    issue.refresh_from_db()
    assert order.status == OrderStatus.CANCELLED
    assert issue.resolved


@jobs_run
def test_an_unconfirmed_cancel_is_flagged_even_while_kite_cannot_be_read(kite_server, settings):
    order = live_order(
        status=OrderStatus.CANCEL_PENDING,
        broker_order_id=BROKER_ORDER_ID,
        cancel_requested_at=timezone.now() - timedelta(minutes=9),
    )
    kite_server.reply(*ORDER_BOOK, "error_token", http_status=403)

    reconcile_positions()

    issue = ReconciliationIssue.objects.get(issue_type=IssueType.CANCEL_UNCONFIRMED)
    assert (issue.order_id, issue.severity) == (order.pk, Severity.CRITICAL)
    assert issue.details["broker"] == "not in its book"


# --- the sweep: every order in flight reaches a final state or a person -------------------------


@jobs_run
def test_the_sweep_resumes_a_submission_by_tag_never_resending(kite_server, run_jobs):
    # The submit job ran out of retries: SUBMITTED, no broker id, no job. Kite has it.
    order = live_order(status=OrderStatus.SUBMITTED)
    kite_server.reply(*ORDER_BOOK, "orders")

    report = orders_sweep(now=timezone.now() + timedelta(minutes=2))
    run_jobs()

    assert report.resumed == {order.pk: jobs.SUBMIT}
    order.refresh_from_db()
    assert (order.status, order.broker_order_id) == (OrderStatus.FILLED, BROKER_ORDER_ID)
    assert kite_server.count(*PLACE) == 0


@jobs_run
def test_the_sweep_gives_each_order_in_flight_the_job_that_settles_it(kite_server):
    unknown = live_order(status=OrderStatus.UNKNOWN)
    cancelling_in_doubt = live_order(status=OrderStatus.CANCEL_PENDING, broker_tag="T2")
    modifying = live_order(
        status=OrderStatus.OPEN,
        broker_order_id="2604019",
        broker_tag="T3",
        metadata={"pending_modification": {"quantity": 5}},
    )
    with_a_job = live_order(status=OrderStatus.UNKNOWN, broker_tag="T4")
    jobs.defer_resolve_unknown(with_a_job)
    settled = live_order(status=OrderStatus.OPEN, broker_order_id="2604020", broker_tag="T5")

    report = orders_sweep(now=timezone.now() + timedelta(minutes=2))

    assert report.resumed == {
        unknown.pk: jobs.RESOLVE_UNKNOWN,
        cancelling_in_doubt.pk: jobs.RESOLVE_UNKNOWN,
        modifying.pk: jobs.MODIFY,
    }
    for order, task in report.resumed.items():
        assert (
            ProcrastinateJob.objects.get(lock=jobs.order_lock(order), status="todo").task_name
            == task
        )
    assert ProcrastinateJob.objects.filter(lock=jobs.order_lock(with_a_job.pk)).count() == 1
    assert notes(settled) == []
    assert kite_server.sent == []  # the sweep itself asks Kite nothing


@jobs_run
def test_an_order_stuck_past_the_bound_needs_a_person_visible_in_the_admin(kite_server, settings):
    order = live_order(status=OrderStatus.SUBMITTED)
    jobs.defer_submit(order)  # a job waits (say, for Kite's session): it is not resumed
    later = timezone.now() + timedelta(seconds=settings.OMS_ORDER_STUCK_SECONDS + 1)

    first = orders_sweep(now=later)
    again = orders_sweep(now=later + timedelta(minutes=1))

    assert first.resumed == {} == again.resumed
    issue = ReconciliationIssue.objects.get(issue_type=IssueType.ORDER_STUCK)
    assert first.flagged == first.critical == [issue]
    assert again.flagged == []
    assert (issue.order_id, issue.severity, issue.occurrences) == (order.pk, Severity.CRITICAL, 2)
    assert issue.details["job_waiting"] is True
    assert f"(tag {TAG})" in issue.description
    [note] = notes(order)
    assert note.startswith("needs a person: in flight for 60")
    assert note.endswith(f"s (reconciliation issue #{issue.pk})")

    admin = Client()
    admin.force_login(User.objects.create_superuser("root", "root@example.com", "pw"))
    page = admin.get("/admin/positions/reconciliationissue/").content.decode()
    assert "Order stuck in flight: needs a person" in page

    # A person settles the order (or a late job does): the issue resolves itself.
    Order.objects.filter(pk=order.pk).update(status=OrderStatus.REJECTED)
    assert orders_sweep(now=later).settled == 1
    issue.refresh_from_db()
    assert issue.resolved and issue.resolution == "the order settled: REJECTED"


@jobs_run
def test_a_paper_order_stuck_is_a_warning():
    order = OrderFactory(status=OrderStatus.UNKNOWN)
    jobs.defer_resolve_unknown(order)

    report = orders_sweep(now=timezone.now() + timedelta(hours=1))

    assert [issue.severity for issue in report.flagged] == [Severity.WARNING]
    assert report.critical == []


def test_the_sweep_runs_every_minute_once_at_a_time():
    task = tasks.sweep_orders_in_flight
    assert task.queueing_lock == "orders_sweep"
    periodic = [p for p in tasks.app.periodic_registry.periodic_tasks.values() if p.task is task]
    assert [p.cron for p in periodic] == ["* * * * *"]


# --- Kite's order rate: never more than 10 in a second --------------------------------------------

T0 = datetime(2026, 4, 1, 9, 15, tzinfo=IST)


@pytest.mark.django_db(transaction=True)
def test_forty_cancels_at_once_send_ten_to_kite(kite_server, monkeypatch):
    monkeypatch.setattr(ratelimit, "bucket_clock", lambda: T0)  # one instant for all forty
    kite_server.reply(*CANCEL, "cancel_order")
    order = live_order(status=OrderStatus.CANCEL_PENDING, broker_order_id=BROKER_ORDER_ID)

    account = BrokerAccount.objects.get(user_id=KITE_USER_ID)

    outcomes = run_together([lambda: KiteBroker.for_account(account).cancel(order)] * 40)

    sent = [result for result, error in outcomes if error is None]
    limited = [error for _, error in outcomes if isinstance(error, BrokerRateLimited)]
    assert (len(sent), len(limited)) == (10, 30)
    assert kite_server.count(*CANCEL) == 10
    assert all(error.retry_in == pytest.approx(1.0) for error in limited)


@pytest.mark.django_db
def test_each_kite_user_has_its_own_order_window(kite_server, monkeypatch):
    monkeypatch.setattr(ratelimit, "bucket_clock", lambda: T0)
    kite_server.reply(*CANCEL, "cancel_order")
    order = live_order(status=OrderStatus.CANCEL_PENDING, broker_order_id=BROKER_ORDER_ID)
    first = KiteBroker.for_account(BrokerAccount.objects.get(user_id=KITE_USER_ID))
    second = KiteBroker.for_account(kite_account_create("ZX1234", access_token="token-2"))

    for _ in range(10):
        first.cancel(order)
    with pytest.raises(BrokerRateLimited):
        first.cancel(order)
    second.cancel(order)

    assert kite_server.count(*CANCEL) == 11


@jobs_run
def test_health_counts_orders_in_flight_unattended_and_stuck(settings):
    waiting = live_order(status=OrderStatus.SUBMITTED)
    jobs.defer_submit(waiting)
    live_order(status=OrderStatus.UNKNOWN, broker_tag="T2")  # its job is gone
    live_order(status=OrderStatus.OPEN, broker_order_id="2604019", broker_tag="T3")
    now = timezone.now()

    assert orders_in_flight_health(now=now) == InFlightHealth(in_flight=2, unattended=0, stuck=0)
    later = now + timedelta(seconds=settings.OMS_ORDER_RESUME_SECONDS + 1)
    assert orders_in_flight_health(now=later) == InFlightHealth(2, unattended=1, stuck=0)
    much_later = now + timedelta(seconds=settings.OMS_ORDER_STUCK_SECONDS + 1)
    assert orders_in_flight_health(now=much_later) == InFlightHealth(2, unattended=1, stuck=2)


@jobs_run
def test_a_halt_of_fifteen_orders_sends_ten_cancels_a_second_and_none_twice(
    kite_server, run_jobs, monkeypatch
):
    clock = [T0]
    monkeypatch.setattr(ratelimit, "bucket_clock", lambda: clock[-1])
    strategy = StrategyFactory(mode=StrategyMode.LIVE)
    orders = [
        OrderFactory(strategy=strategy, status=OrderStatus.OPEN, broker_order_id=f"26040100{n}")
        for n in range(15)
    ]
    for order in orders:
        kite_server.reply("DELETE", f"/orders/regular/{order.broker_order_id}", "cancel_order")

    kill_switch_set(KillSwitchState.HALTED, strategy=strategy, reason="drill", actor="rita")
    run_jobs()

    sent = [
        order
        for order in orders
        if kite_server.count("DELETE", f"/orders/regular/{order.broker_order_id}")
    ]
    assert sent == orders[:10]
    rest = ProcrastinateJob.objects.get(status="todo", task_name=jobs.CANCEL_MANY)
    assert rest.args == {"order_ids": [order.pk for order in orders[10:]]}
    assert 0 < (rest.scheduled_at - timezone.now()).total_seconds() <= 1

    clock.append(T0 + timedelta(seconds=1))
    time_passes()
    run_jobs()

    for order in orders:
        assert kite_server.count("DELETE", f"/orders/regular/{order.broker_order_id}") == 1


@jobs_run
def test_the_periodic_sweep_pulls_the_kill_switch_on_a_live_order_stuck(kite_server, settings):
    settings.OMS_ORDER_STUCK_SECONDS = 0  # every order in flight past the resume bound is stuck
    settings.OMS_ORDER_RESUME_SECONDS = 0
    order = live_order(status=OrderStatus.UNKNOWN)
    jobs.defer_resolve_unknown(order)

    tasks.sweep_orders_in_flight(timestamp=0)

    assert kill_switch_state(strategy=order.strategy) == KillSwitchState.HALTED
    issue = ReconciliationIssue.objects.get(issue_type=IssueType.ORDER_STUCK)
    assert issue.order_id == order.pk
