"""Webhooks end to end: events written by the database's triggers, dispatch jobs deferred in
the same transaction and run by real procrastinate workers, posted to a real HTTP receiver."""

from __future__ import annotations

import logging
import time

import psycopg
import pytest
from django.core import mail
from django.core.management import call_command
from django.db import connection, transaction
from rest_framework.test import APIClient

from omsproject.testing.threads import run_together
from orders import jobs
from orders.api_keys import api_key_create
from orders.models import WebhookDelivery, WebhookEndpoint
from orders.models_webhooks import WebhookState
from orders.selectors import WebhooksHealth, webhooks_health
from orders.services.webhooks import webhook_endpoint_create, webhooks_sweep
from orders.tests.factories import OrderEventFactory, OrderFactory, StrategyFactory
from orders.tests.webhook_receiver import WebhookReceiver
from orders.webhook_signing import verify

pytestmark = pytest.mark.django_db(transaction=True)

MOVES = ["SUBMITTED", "OPEN", "PARTIALLY_FILLED", "FILLED"]


@pytest.fixture(autouse=True)
def webhook_settings(settings):
    settings.OMS_WEBHOOK_ALLOW_PRIVATE = True  # the receiver listens on 127.0.0.1
    settings.OMS_WEBHOOK_RETRY_FIRST_SECONDS = 0.05
    settings.OMS_WEBHOOK_RETRY_LONGEST_SECONDS = 0.2
    settings.OMS_WEBHOOK_READ_TIMEOUT = 2.0
    settings.OMS_RISK_EMAILS = ["risk@example.com"]
    return settings


@pytest.fixture
def receiver():
    server = WebhookReceiver().start()
    yield server
    server.stop()


@pytest.fixture
def strategy():
    return StrategyFactory()


def order_moves(strategy, client_order_id: str, moves=MOVES) -> None:
    """An order and its status changes, each committed on its own: one event each."""
    order = OrderFactory(strategy=strategy, client_order_id=client_order_id)
    previous = "PENDING"
    for status in moves:
        OrderEventFactory(order=order, from_status=previous, to_status=status)
        previous = status


def strategy_seqs(strategy, *, timeout: float = 10.0) -> list[int]:
    """The strategy's event ids, once all are sequenced (a transaction still running anywhere
    in the cluster, another test database's included, holds the sequencer back a moment)."""
    deadline = time.monotonic() + timeout
    while True:
        with connection.cursor() as cursor:
            cursor.execute("SELECT oms_events_sequence()")
            cursor.execute(
                "SELECT seq FROM strategy_events WHERE strategy_id = %s ORDER BY seq NULLS LAST",
                [strategy.pk],
            )
            seqs = [row[0] for row in cursor.fetchall()]
        if None not in seqs:
            return seqs
        assert time.monotonic() < deadline, "events left without a seq"
        time.sleep(0.02)


def drain(run_jobs, until, *, timeout: float = 15.0) -> None:
    """Run the webhook jobs due, again and again (retries are scheduled a little later),
    until ``until()`` holds."""
    deadline = time.monotonic() + timeout
    while not until():
        assert time.monotonic() < deadline, "the webhook jobs did not get there in time"
        run_jobs(["webhooks"])
        time.sleep(0.02)


def waiting_jobs(endpoint) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM procrastinate_jobs WHERE queueing_lock = %s AND status = 'todo'",
            [jobs.webhook_lock(endpoint.pk)],
        )
        return cursor.fetchone()[0]


def assert_signed(request, secret: str) -> None:
    headers = request.headers
    assert headers["X-OMS-Signature"].startswith("v1=")
    assert verify(secret, headers["X-OMS-Timestamp"], request.body, headers["X-OMS-Signature"])
    assert not verify(
        "whsec_other", headers["X-OMS-Timestamp"], request.body, headers["X-OMS-Signature"]
    )
    assert request.event["id"] == request.event_id


def test_signed_deliveries_in_order_per_order(receiver, strategy, run_jobs):
    endpoint, secret = webhook_endpoint_create(strategy=strategy, url=receiver.url, actor="t")
    _, status_secret = webhook_endpoint_create(
        strategy=strategy, url=receiver.url + "/status", kinds=["strategy.status"], actor="t"
    )
    order_moves(strategy, "alpha")
    order_moves(strategy, "beta", MOVES[:2])
    order_moves(strategy, "alpha-2", MOVES[:1])
    seqs = strategy_seqs(strategy)
    assert len(seqs) == 7

    drain(run_jobs, lambda: len(receiver.received) >= 7)

    assert receiver.event_ids() == seqs  # every event once, in the feed's order
    for request in receiver.received:
        assert request.path == "/hook"  # the strategy.status endpoint heard nothing
        assert_signed(request, secret)
    by_order: dict[str, list[str]] = {}
    for request in receiver.received:
        event = request.event
        assert event["kind"] == "order.status"
        by_order.setdefault(event["client_order_id"], []).append(event["data"]["to_status"])
    assert by_order == {"alpha": MOVES, "beta": MOVES[:2], "alpha-2": MOVES[:1]}
    endpoint.refresh_from_db()
    assert endpoint.delivered_seq == seqs[-1]
    log = WebhookDelivery.objects.filter(endpoint=endpoint).order_by("event_seq")
    assert [(d.event_seq, d.attempt, d.status_code) for d in log] == [(s, 1, 204) for s in seqs]
    assert all(d.latency_ms >= 0 and d.next_try_at is None for d in log)

    # A strategy.status event goes to the endpoint that asked for it, not as an order event.
    strategy.status = "PAUSED"
    strategy.save(update_fields=["status"])
    drain(run_jobs, lambda: len(receiver.received) >= 9)
    by_path = {request.path: request for request in receiver.received[7:]}
    assert by_path["/hook/status"].event["kind"] == "strategy.status"
    assert_signed(by_path["/hook/status"], status_secret)


def test_the_body_is_the_feeds_event(receiver, strategy, run_jobs):
    webhook_endpoint_create(strategy=strategy, url=receiver.url, actor="t")
    _, key = api_key_create(strategy=strategy, name="feed", actor="t")
    order_moves(strategy, "kappa", MOVES[:2])
    drain(run_jobs, lambda: len(receiver.received) >= 2)

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    feed = client.get("/api/v1/events/?after=0").json()["events"]

    assert [request.event for request in receiver.received] == feed


def test_a_failing_receiver_gets_every_event_in_order_once_it_recovers(strategy, run_jobs):
    healthy = {"up": False}

    def answer(number):
        return (200 if healthy["up"] else 503), {}, 0.0

    receiver = WebhookReceiver(answer).start()
    try:
        endpoint, _ = webhook_endpoint_create(strategy=strategy, url=receiver.url, actor="t")
        order_moves(strategy, "gamma")
        seqs = strategy_seqs(strategy)
        drain(run_jobs, lambda: len(receiver.received) >= 3)  # failed, tried again, again
        health = webhooks_health()
        assert (health.failing, health.undelivered) == (1, len(seqs))
        healthy["up"] = True
        drain(run_jobs, lambda: len(receiver.deduped()) >= len(seqs))
    finally:
        receiver.stop()

    # The first event was tried until it got through; then each of the others once, in order.
    tried = receiver.event_ids()
    failures = len(tried) - len(seqs)
    assert failures >= 3
    assert tried == [seqs[0]] * (failures + 1) + seqs[1:]
    failed = list(
        WebhookDelivery.objects.filter(endpoint=endpoint, status_code=503).order_by("attempt")
    )
    assert [(d.event_seq, d.attempt) for d in failed] == [
        (seqs[0], n) for n in range(1, failures + 1)
    ]
    assert all(d.error == "HTTP 503" and d.next_try_at > d.created_at for d in failed)
    assert WebhookDelivery.objects.get(event_seq=seqs[0], status_code=200).attempt == failures + 1
    endpoint.refresh_from_db()
    assert endpoint.delivered_seq == seqs[-1]
    assert endpoint.failing_since is None and endpoint.state == WebhookState.ACTIVE


def test_a_slow_receiver_may_see_an_event_twice_and_dedupes_it(settings, strategy, run_jobs):
    """At least once: an answer later than the read timeout is a failure, tried again, though
    the receiver had it. Deduped by X-OMS-Event-Id, the receiver has each event once, in order."""
    settings.OMS_WEBHOOK_READ_TIMEOUT = 0.3

    def answer(number):
        return 200, {}, (1.0 if number == 2 else 0.0)

    receiver = WebhookReceiver(answer).start()
    try:
        webhook_endpoint_create(strategy=strategy, url=receiver.url, actor="t")
        order_moves(strategy, "delta", MOVES[:3])
        seqs = strategy_seqs(strategy)
        drain(run_jobs, lambda: receiver.event_ids()[-1:] == seqs[-1:])
    finally:
        receiver.stop()

    assert receiver.event_ids() == [seqs[0], seqs[1], seqs[1], seqs[2]]
    assert [r.event_id for r in receiver.deduped()] == seqs
    timeout = WebhookDelivery.objects.get(event_seq=seqs[1], attempt=1)
    assert timeout.status_code is None and timeout.error.startswith("timeout")


def test_failing_long_pauses_the_endpoint_and_resuming_continues_where_it_stopped(
    settings, strategy, run_jobs, caplog
):
    settings.OMS_WEBHOOK_PAUSE_AFTER_SECONDS = 0
    healthy = {"up": False}

    def answer(number):
        return (200 if healthy["up"] else 500), {}, 0.0

    receiver = WebhookReceiver(answer).start()
    try:
        endpoint, secret = webhook_endpoint_create(strategy=strategy, url=receiver.url, actor="t")
        order_moves(strategy, "eps", MOVES[:2])
        with caplog.at_level(logging.INFO, logger="oms"):
            drain(run_jobs, lambda: WebhookEndpoint.objects.get(pk=endpoint.pk).state == "PAUSED")
        endpoint.refresh_from_db()
        assert endpoint.delivered_seq == 0 and endpoint.paused_reason
        assert waiting_jobs(endpoint) == 0  # nothing retries a paused endpoint
        [notice] = mail.outbox
        assert notice.to == ["risk@example.com"] and "paused" in notice.subject
        assert f"webhook resume {endpoint.pk}" in notice.body
        assert any("paused" in r.getMessage() for r in caplog.records)
        assert secret not in notice.body + caplog.text
        assert webhooks_health().paused == 1 and not webhooks_health().ok

        # Events keep coming while it is paused: the trigger defers nothing for it.
        order_moves(strategy, "zeta", MOVES[:1])
        assert waiting_jobs(endpoint) == 0
        seqs = strategy_seqs(strategy)

        healthy["up"] = True
        call_command("webhook", "resume", str(endpoint.pk))
        drain(run_jobs, lambda: receiver.event_ids()[-1:] == seqs[-1:])
    finally:
        receiver.stop()

    # Before the pause, the first event failed; after the resume, every event once, in order.
    tried = receiver.event_ids()
    assert set(tried[: -len(seqs)]) == {seqs[0]}
    assert tried[-len(seqs) :] == seqs
    endpoint.refresh_from_db()
    assert endpoint.state == WebhookState.ACTIVE and endpoint.delivered_seq == seqs[-1]
    assert webhooks_health() == WebhooksHealth(
        endpoints=1, paused=0, failing=0, failing_since=None, undelivered=0
    )


def test_a_redirect_is_not_followed(strategy, run_jobs):
    target = WebhookReceiver().start()
    redirecting = WebhookReceiver(lambda n: (302, {"Location": target.url}, 0.0)).start()
    try:
        endpoint, _ = webhook_endpoint_create(strategy=strategy, url=redirecting.url, actor="t")
        order_moves(strategy, "eta", MOVES[:1])
        drain(run_jobs, lambda: WebhookDelivery.objects.filter(endpoint=endpoint).exists())
    finally:
        redirecting.stop()
        target.stop()
    assert target.received == []
    attempt = WebhookDelivery.objects.get(endpoint=endpoint, attempt=1)
    assert attempt.status_code == 302 and "not followed" in attempt.error
    endpoint.refresh_from_db()
    assert endpoint.delivered_seq == 0 and endpoint.failing_since is not None


def test_the_job_is_deferred_in_the_events_transaction(receiver, strategy):
    endpoint, _ = webhook_endpoint_create(strategy=strategy, url=receiver.url, actor="t")
    order = OrderFactory(strategy=strategy)

    with pytest.raises(RuntimeError), transaction.atomic():
        OrderEventFactory(order=order, from_status="PENDING", to_status="SUBMITTED")
        assert waiting_jobs(endpoint) == 1  # written by the event's insert, in its transaction
        raise RuntimeError("the order's write fails")
    assert waiting_jobs(endpoint) == 0  # rolled back with it: no job
    assert strategy_seqs(strategy) == []

    with transaction.atomic():
        for status in MOVES:
            OrderEventFactory(order=order, from_status="PENDING", to_status=status)
    assert waiting_jobs(endpoint) == 1  # four events, one job waiting (its queueing lock)


def test_concurrent_event_writers_share_one_waiting_job(receiver, strategy, run_jobs):
    endpoint, _ = webhook_endpoint_create(strategy=strategy, url=receiver.url, actor="t")
    orders = [OrderFactory(strategy=strategy) for _ in range(6)]

    def write(order):
        def run():
            with transaction.atomic():
                OrderEventFactory(order=order, from_status="PENDING", to_status="SUBMITTED")

        return run

    outcomes = run_together([write(order) for order in orders])
    assert [error for _, error in outcomes] == [None] * 6  # no queueing-lock clash
    assert waiting_jobs(endpoint) == 1
    seqs = strategy_seqs(strategy)
    drain(run_jobs, lambda: len(receiver.received) >= 6)
    assert receiver.event_ids() == seqs


def test_a_removed_endpoint_has_no_job_left(receiver, strategy):
    endpoint, _ = webhook_endpoint_create(strategy=strategy, url=receiver.url, actor="t")
    order_moves(strategy, "theta", MOVES[:1])
    assert waiting_jobs(endpoint) == 1
    call_command("webhook", "remove", str(endpoint.pk))
    assert waiting_jobs(endpoint) == 0
    assert not WebhookEndpoint.objects.filter(pk=endpoint.pk).exists()


class OpenTransaction:
    """A transaction on a connection of its own, kept open until ``end()``."""

    def __init__(self, *statements: tuple[str, list]):
        self.connection = psycopg.connect(connection.connection.info.dsn, autocommit=False)
        for sql, params in statements:
            self.connection.execute(sql, params)

    def end(self) -> None:
        self.connection.commit()
        self.connection.close()


def test_an_event_held_back_by_an_older_transaction_is_delivered_once_that_one_ends(
    receiver, strategy, run_jobs
):
    """The sequencer leaves an event committed after a transaction that is still running;
    the job finds it unsequenced and looks again shortly, rather than waiting for another
    event that may never come."""
    webhook_endpoint_create(strategy=strategy, url=receiver.url, actor="t")
    older = OpenTransaction(("SELECT pg_current_xact_id()", []))  # a writer, still running
    try:
        order_moves(strategy, "iota", MOVES[:1])
        run_jobs(["webhooks"])
        assert receiver.received == []
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM procrastinate_jobs WHERE task_name = %s AND status = 'todo'",
                [jobs.WEBHOOK],
            )
            assert cursor.fetchone()[0] == 1  # it looks again soon
    finally:
        older.end()
    seqs = strategy_seqs(strategy)
    drain(run_jobs, lambda: len(receiver.received) >= 1)
    assert receiver.event_ids() == seqs


def test_a_waiting_job_does_not_start_before_the_event_it_was_kept_for_is_committed(
    receiver, strategy, run_jobs
):
    """An event whose endpoint already has a job waiting defers none (the queueing lock) but
    holds that job until it commits: a worker cannot start it early and miss the event."""
    endpoint, _ = webhook_endpoint_create(strategy=strategy, url=receiver.url, actor="t")
    order = OrderFactory(strategy=strategy)
    jobs.defer_webhook(endpoint.pk)  # waiting, due now
    writing = OpenTransaction(
        (
            "INSERT INTO order_events (order_id, kind, from_status, to_status, source, reason,"
            " actor, details, created_at) VALUES (%s, 'TRANSITION', 'PENDING', 'SUBMITTED',"
            " 'SYSTEM', '', '', '{}', now())",
            [order.pk],
        )
    )
    try:
        run_jobs(["webhooks"])
        assert waiting_jobs(endpoint) == 1  # skipped: held by the open transaction
        assert receiver.received == []
    finally:
        writing.end()
    seqs = strategy_seqs(strategy)
    drain(run_jobs, lambda: len(receiver.received) >= 1)
    assert receiver.event_ids() == seqs


def test_only_the_kinds_asked_for_defer_a_job(receiver, strategy):
    endpoint, _ = webhook_endpoint_create(
        strategy=strategy, url=receiver.url, kinds=["order.fill"], actor="t"
    )
    order_moves(strategy, "lambda", MOVES[:2])  # order.status events
    assert waiting_jobs(endpoint) == 0


def test_the_sweep_gives_a_job_to_an_endpoint_left_behind(receiver, strategy, run_jobs):
    endpoint, _ = webhook_endpoint_create(strategy=strategy, url=receiver.url, actor="t")
    order_moves(strategy, "mu", MOVES[:2])
    jobs.cancel_webhook(endpoint.pk)  # as if its job were lost
    assert waiting_jobs(endpoint) == 0

    assert webhooks_sweep() == 1
    assert webhooks_sweep() == 0  # one waits already
    seqs = strategy_seqs(strategy)
    drain(run_jobs, lambda: len(receiver.received) >= 2)
    assert receiver.event_ids() == seqs
    assert webhooks_sweep() == 0  # nothing left to deliver
