"""Webhook endpoints in the admin and through `manage.py webhook`: the secret shown once, on
the page after "Save" or the command's last line, and never on any other page or in a log."""

from __future__ import annotations

import logging
import re
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from orders import jobs
from orders.models import WebhookDelivery, WebhookEndpoint
from orders.services.webhooks import webhook_endpoint_create
from orders.tests.factories import StrategyFactory
from tests.admin.conftest import logged_in, person

PUBLIC_URL = "https://93.184.215.14/hooks/oms"  # an address literal: no DNS in tests


@pytest.fixture
def strategy(db):
    return StrategyFactory(name="Momentum")


def shown_secret(page: str) -> str:
    match = re.search(r'id="webhook-secret"[^>]*>([^<]+)</code>', page)
    assert match, "the page shows no secret"
    return match.group(1)


def pages_of(client, endpoint) -> str:
    urls = [
        "/admin/orders/webhookendpoint/",
        f"/admin/orders/webhookendpoint/{endpoint.pk}/change/",
        f"/admin/orders/webhookendpoint/{endpoint.pk}/history/",
        "/admin/orders/webhookdelivery/",
        "/admin/orders/webhookdelivery/?outcome=failed",
    ]
    delivery = WebhookDelivery.objects.filter(endpoint=endpoint).first()
    if delivery:
        urls.append(f"/admin/orders/webhookdelivery/{delivery.pk}/change/")
    pages = []
    for url in urls:
        response = client.get(url)
        assert response.status_code == 200, url
        pages.append(response.content.decode())
    return "\n".join(pages)


def test_a_risk_officer_adds_an_endpoint_and_sees_its_secret_once(risk_officer, strategy, caplog):
    client = logged_in(risk_officer)
    with caplog.at_level(logging.DEBUG):
        response = client.post(
            "/admin/orders/webhookendpoint/add/",
            {"strategy": strategy.pk, "url": PUBLIC_URL, "kinds": ["order.fill", "order.status"]},
        )
    assert response.status_code == 200
    secret = shown_secret(response.content.decode())
    endpoint = WebhookEndpoint.objects.get()
    assert secret == endpoint.secret and secret.startswith("whsec_")
    assert (endpoint.url, endpoint.kinds) == (PUBLIC_URL, ["order.fill", "order.status"])
    assert endpoint.created_by == "rita"
    with connection.cursor() as cursor:
        cursor.execute("SELECT secret FROM webhook_endpoints")
        assert secret not in cursor.fetchone()[0]  # encrypted at rest

    WebhookDelivery.objects.create(
        endpoint=endpoint, event_seq=1, kind="order.fill", attempt=1, latency_ms=5, error="HTTP 500"
    )
    assert secret not in pages_of(client, endpoint)
    assert secret not in caplog.text


def test_the_change_page_edits_url_and_kinds_never_the_secret(risk_officer, strategy):
    endpoint, secret = webhook_endpoint_create(strategy=strategy, url=PUBLIC_URL, actor="t")
    client = logged_in(risk_officer)

    response = client.post(
        f"/admin/orders/webhookendpoint/{endpoint.pk}/change/",
        {"url": "https://93.184.215.15/other", "kinds": ["kill_switch"]},
    )

    assert response.status_code == 302
    endpoint.refresh_from_db()
    assert (endpoint.url, endpoint.kinds, endpoint.secret) == (
        "https://93.184.215.15/other",
        ["kill_switch"],
        secret,
    )
    assert endpoint.strategy == strategy  # read-only once made


def test_the_admin_refuses_a_private_url(risk_officer, strategy, settings):
    settings.OMS_WEBHOOK_ALLOW_PRIVATE = False
    response = logged_in(risk_officer).post(
        "/admin/orders/webhookendpoint/add/",
        {"strategy": strategy.pk, "url": "https://169.254.169.254/latest/"},
    )
    assert response.status_code == 200
    assert "link-local address" in response.content.decode()
    assert not WebhookEndpoint.objects.exists()


def test_pause_resume_and_retry_now_actions(risk_officer, strategy):
    endpoint, _ = webhook_endpoint_create(strategy=strategy, url=PUBLIC_URL, actor="t")
    client = logged_in(risk_officer)

    def act(action, model="webhookendpoint", pk=endpoint.pk):
        return client.post(
            f"/admin/orders/{model}/", {"action": action, "_selected_action": [pk]}, follow=True
        )

    act("pause_endpoints")
    endpoint.refresh_from_db()
    assert endpoint.state == "PAUSED" and "rita" in endpoint.paused_reason

    act("resume_endpoints")
    endpoint.refresh_from_db()
    assert endpoint.state == "ACTIVE"

    # A job waiting for its backoff is moved to now by "retry now" on its delivery log.
    jobs.defer_webhook(endpoint.pk, delay=3600)
    delivery = WebhookDelivery.objects.create(
        endpoint=endpoint, event_seq=1, kind="order.fill", attempt=1, latency_ms=5
    )
    response = act("retry_now", model="webhookdelivery", pk=delivery.pk)
    assert "runs now" in response.content.decode()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*), bool_and(scheduled_at <= now()) FROM procrastinate_jobs"
            " WHERE queueing_lock = %s AND status = 'todo'",
            [jobs.webhook_lock(endpoint.pk)],
        )
        assert cursor.fetchone() == (1, True)


def test_viewers_read_the_log_and_change_nothing(roles, strategy):
    endpoint, secret = webhook_endpoint_create(strategy=strategy, url=PUBLIC_URL, actor="t")
    viewer = logged_in(person("vic", "Viewer"))
    assert secret not in pages_of(viewer, endpoint)
    assert viewer.get("/admin/orders/webhookendpoint/add/").status_code == 403
    viewer.post(
        "/admin/orders/webhookendpoint/",
        {"action": "pause_endpoints", "_selected_action": [endpoint.pk]},
    )
    endpoint.refresh_from_db()
    assert endpoint.state == "ACTIVE"
    assert viewer.get(f"/admin/orders/webhookendpoint/{endpoint.pk}/delete/").status_code == 403


def test_the_delivery_log_is_one_page_of_few_queries(
    risk_officer, strategy, django_assert_max_num_queries
):
    endpoints = [
        webhook_endpoint_create(strategy=strategy, url=PUBLIC_URL, actor="t")[0] for _ in range(3)
    ]
    WebhookDelivery.objects.bulk_create(
        WebhookDelivery(endpoint=e, event_seq=n, kind="order.fill", attempt=1, latency_ms=1)
        for e in endpoints
        for n in range(20)
    )
    client = logged_in(risk_officer)
    with django_assert_max_num_queries(12):
        assert client.get("/admin/orders/webhookdelivery/").status_code == 200


# --- manage.py webhook -------------------------------------------------------------------------


def run(*args) -> str:
    out = StringIO()
    call_command("webhook", *args, stdout=out)
    return out.getvalue()


def test_the_command_adds_lists_pauses_resumes_and_removes(strategy, caplog):
    with caplog.at_level(logging.DEBUG):
        output = run("add", "Momentum", PUBLIC_URL, "--kinds", "order.fill,kill_switch")
    secret = output.strip().splitlines()[-1]
    endpoint = WebhookEndpoint.objects.get()
    assert secret == endpoint.secret
    assert endpoint.kinds == ["kill_switch", "order.fill"]
    assert endpoint.created_by.startswith("manage.py webhook")
    assert secret not in caplog.text

    listing = run("list")
    assert PUBLIC_URL in listing and secret not in listing

    assert "Paused" in run("pause", str(endpoint.pk), "--reason", "maintenance")
    endpoint.refresh_from_db()
    assert endpoint.state == "PAUSED" and "maintenance" in endpoint.paused_reason
    with pytest.raises(CommandError, match="already paused"):
        run("pause", str(endpoint.pk))
    assert "continues after event 0" in run("resume", str(endpoint.pk))
    assert "Removed" in run("remove", str(endpoint.pk))
    assert not WebhookEndpoint.objects.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("add", "Nobody", PUBLIC_URL), "no strategy has that name"),
        (("add", "Momentum", "ftp://example.com/x"), "must be https"),
        (("add", "Momentum", PUBLIC_URL, "--kinds", "order.filled"), "order.filled: unknown"),
        (("resume", "999"), "no endpoint has that id"),
    ],
)
def test_command_errors_are_one_line(strategy, args, message):
    with pytest.raises(CommandError, match=message) as error:
        run(*args)
    assert "\n" not in str(error.value)
