"""The dashboard's system health and /api/v1/health/: every card turns amber or red for its own
failure. The review found every card green with the worker down and an order stuck PENDING."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from rest_framework.test import APIClient

from orders.enums import OrderStatus
from orders.models import Order
from orders.services import order_place
from orders.tests.factories import StrategyFactory
from positions.models import ReconciliationRun, Severity
from positions.reconciliation import reconcile_positions
from positions.tests.factories import ReconciliationIssueFactory
from risk.calendar import IST
from risk.health import (
    CRITICAL,
    OK,
    WARNING,
    background_read,
    jobs_check,
    reconciliation_check,
)
from risk.tests.factories import order_request

pytestmark = pytest.mark.django_db

# A Tuesday in the session, and the same day after the close (no holiday: 2026-12-01).
IN_SESSION = datetime(2026, 12, 1, 11, 0, tzinfo=IST)
AFTER_CLOSE = datetime(2026, 12, 1, 18, 0, tzinfo=IST)


def sql(statement: str, params=()) -> list:
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.fetchall() if cursor.description else []


def worker_beating() -> None:
    sql("INSERT INTO procrastinate_workers (last_heartbeat) VALUES (now())")


def job(status: str, *, task: str = "orders.submit") -> int:
    """A job moved to ``status`` the way a worker moves it (procrastinate's triggers record
    each step as an event)."""
    (job_id,) = sql(
        "INSERT INTO procrastinate_jobs (queue_name, task_name, args, status) "
        "VALUES ('orders', %s, '{}', 'todo') RETURNING id",
        [task],
    )[0]
    for step in {"todo": [], "doing": ["doing"], "failed": ["doing", "failed"]}[status]:
        sql("UPDATE procrastinate_jobs SET status = %s WHERE id = %s", [step, job_id])
    return job_id


def events_backdated(job_id: int, minutes: int) -> None:
    sql(
        "UPDATE procrastinate_events SET at = now() - make_interval(mins => %s) WHERE job_id = %s",
        [minutes, job_id],
    )


def cards(page) -> dict[str, str]:
    return {check.name: check.state for check in page.context["health"].checks}


def test_worker_down_and_an_order_stuck_pending_turn_the_cards_red(as_risk_officer):
    strategy = StrategyFactory()
    result = order_place(order_request(strategy), actor="algo")  # its submit job waits
    Order.objects.filter(pk=result.order_id).update(
        created_at=timezone.now() - timedelta(minutes=5)
    )
    events_backdated(sql("SELECT id FROM procrastinate_jobs")[0][0], minutes=5)

    page = as_risk_officer.get("/admin/")

    states = cards(page)
    assert states["worker"] == CRITICAL
    assert states["orders"] == CRITICAL
    assert states["jobs"] == CRITICAL  # the submit job waits 5 min for a worker
    html = page.content.decode()
    assert 'class="health health--critical" data-check="worker"' in html
    assert 'class="health health--critical" data-check="orders"' in html
    assert "1 PENDING for over 60 s (not sent)" in html
    assert "1 waiting to start for over 120 s" in html
    assert "?status__exact=todo" in html  # where to look
    assert Order.objects.get(pk=result.order_id).status == OrderStatus.PENDING

    api = APIClient().get("/api/v1/health/").json()
    assert api["status"] == "degraded" and api["worker"] == "down"
    assert {c["name"]: c["state"] for c in api["checks"]} == states  # the same checks


def test_jobs_card_failed_is_amber_stalled_and_waiting_are_red():
    assert jobs_check(background_read()).state == OK
    job("failed")
    failed = jobs_check(background_read())
    assert (failed.state, failed.details["failed"]) == (WARNING, 1)
    assert "1 failed in the last 24 h" in failed.summary

    running = job("doing")
    assert jobs_check(background_read()).state == WARNING  # just started: not stalled
    events_backdated(running, minutes=10)
    stalled = jobs_check(background_read())
    assert (stalled.state, stalled.details["stalled"]) == (CRITICAL, 1)
    assert "1 running for over 300 s (stalled)" in stalled.summary


def test_an_old_failure_is_no_longer_news():
    events_backdated(job("failed"), minutes=25 * 60)
    assert jobs_check(background_read()).state == OK


def test_reconciliation_card_when_never_run_overdue_or_with_open_issues(as_risk_officer):
    worker_beating()
    never = reconciliation_check(background_read(IN_SESSION), IN_SESSION)
    assert (never.state, never.summary) == (
        WARNING,
        "not run yet (every 5 min while the market is open); no open issue",
    )
    after_close = reconciliation_check(background_read(AFTER_CLOSE), AFTER_CLOSE)
    assert after_close.state == WARNING

    ReconciliationRun.objects.create(
        started_at=IN_SESSION - timedelta(minutes=3, seconds=2),
        finished_at=IN_SESSION - timedelta(minutes=3),
        positions_compared=4,
        differences=0,
    )
    fresh = reconciliation_check(background_read(IN_SESSION), IN_SESSION)
    assert fresh.state == OK
    assert fresh.summary == (
        "last run 10:57 IST (3 min ago, took 2.0 s, 0 differences); no open issue"
    )
    later = IN_SESSION + timedelta(minutes=12)  # 15 min since the run; due every 5
    overdue = reconciliation_check(background_read(later), later)
    assert overdue.state == CRITICAL and "overdue (due every 5 min" in overdue.summary

    ReconciliationIssueFactory(severity=Severity.WARNING)
    assert reconciliation_check(background_read(IN_SESSION), IN_SESSION).state == WARNING
    ReconciliationIssueFactory(severity=Severity.CRITICAL)
    critical = reconciliation_check(background_read(IN_SESSION), IN_SESSION)
    assert critical.state == CRITICAL
    assert critical.details["open_issues"] == {"CRITICAL": 1, "WARNING": 1, "INFO": 0}
    assert "open issues: 1 CRITICAL, 1 WARNING" in critical.summary

    page = as_risk_officer.get("/admin/").content.decode()
    assert 'class="health health--critical" data-check="reconciliation"' in page
    assert "?severity__exact=CRITICAL" in page


def test_a_reconciliation_run_is_recorded_and_a_dry_run_is_not():
    StrategyFactory()
    reconcile_positions(dry_run=True)
    assert not ReconciliationRun.objects.exists()

    report = reconcile_positions()

    run = ReconciliationRun.objects.get()
    assert run.strategy is None and run.finished_at >= run.started_at
    assert (run.positions_compared, run.differences) == (
        report.positions_compared,
        len(report.findings),
    )
    assert reconciliation_check(background_read()).details["last_run_at"] == run.finished_at


def test_with_a_worker_and_nothing_waiting_the_background_cards_are_green(as_viewer):
    worker_beating()
    ReconciliationRun.objects.create(started_at=timezone.now(), finished_at=timezone.now())

    states = cards(as_viewer.get("/admin/"))

    assert (states["worker"], states["orders"], states["jobs"]) == (OK, OK, OK)
    assert states["reconciliation"] == OK


def test_the_database_refuses_a_run_that_finishes_before_it_starts():
    refused = pytest.raises(IntegrityError, match="reconciliation_run_finishes_after_start")
    with refused, transaction.atomic():
        ReconciliationRun.objects.create(
            started_at=timezone.now(), finished_at=timezone.now() - timedelta(seconds=1)
        )


def test_the_jobs_links_are_shown_to_those_who_may_read_the_jobs(as_operator, as_viewer):
    events_backdated(job("todo"), minutes=5)

    assert "?status__exact=todo" in as_operator.get("/admin/").content.decode()
    viewer_page = as_viewer.get("/admin/")
    assert cards(viewer_page)["jobs"] == CRITICAL  # the card, without links they cannot open
    assert "?status__exact=todo" not in viewer_page.content.decode()
    assert as_operator.get("/admin/procrastinate/procrastinatejob/").status_code == 200
