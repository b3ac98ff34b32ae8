"""Webhooks' pure parts and outbound rules: the signature, the backoff, the SSRF refusals."""

from __future__ import annotations

import random
import socket
import time
from pathlib import Path

import pytest

from orders.services.webhooks import WebhookError, webhook_endpoint_create
from orders.tests.factories import StrategyFactory
from orders.tests.webhook_receiver import WebhookReceiver
from orders.webhook_http import WebhookUrlRefused, url_check, webhook_post
from orders.webhook_signing import backoff_seconds, sign, signed_headers, verify

SECRET = "whsec_test"
BODY = b'{"id":7,"kind":"order.fill"}'


def test_the_signature_is_the_hmac_of_timestamp_dot_body():
    # Computed independently: printf '1700000000.{"id":7,"kind":"order.fill"}' |
    #   openssl dgst -sha256 -hmac whsec_test
    import hashlib
    import hmac

    expected = hmac.new(b"whsec_test", b"1700000000." + BODY, hashlib.sha256).hexdigest()
    assert sign(SECRET, 1700000000, BODY) == f"v1={expected}"
    headers = signed_headers(SECRET, 7, BODY, timestamp=1700000000)
    assert headers["X-OMS-Event-Id"] == "7"
    assert headers["X-OMS-Timestamp"] == "1700000000"
    assert headers["X-OMS-Signature"] == f"v1={expected}"


def test_verify_refuses_a_changed_body_another_secret_or_an_old_timestamp():
    signature = sign(SECRET, 1700000000, BODY)
    assert verify(SECRET, "1700000000", BODY, signature, now=1700000010)
    assert not verify(SECRET, "1700000000", BODY + b" ", signature, now=1700000010)
    assert not verify("whsec_other", "1700000000", BODY, signature, now=1700000010)
    assert not verify(SECRET, "1700000001", BODY, signature, now=1700000010)
    assert not verify(SECRET, "1700000000", BODY, signature, now=1700000000 + 301)
    assert verify(SECRET, "1700000000", BODY, signature, tolerance=None, now=0)
    assert not verify(SECRET, "soon", BODY, signature)
    assert not verify(SECRET, "1700000000", BODY, "", now=1700000000)


def test_backoff_doubles_up_to_the_longest_wait_with_jitter():
    rng = random.Random(1)
    for attempt, ceiling in [(1, 1.0), (2, 2.0), (3, 4.0), (5, 16.0), (12, 600.0), (40, 600.0)]:
        delays = [backoff_seconds(attempt, rng=rng) for _ in range(200)]
        assert all(ceiling / 2 <= delay <= ceiling for delay in delays)
        assert len(set(delays)) > 150  # jittered, not in step


@pytest.mark.parametrize(
    "url",
    [
        "https://10.1.2.3/hook",
        "https://127.0.0.1/hook",
        "https://169.254.169.254/latest/meta-data/",
        "https://[::1]/hook",
        "https://192.168.0.10:8443/hook",
        "https://localhost/hook",  # a name that resolves to a loopback address
        "https://224.0.0.1/hook",
        "https://0.0.0.0/hook",
    ],
)
def test_private_loopback_link_local_and_multicast_hosts_are_refused(url):
    with pytest.raises(WebhookUrlRefused, match="refused"):
        url_check(url, allow_private=False)
    url_check(url, allow_private=True)  # the setting allows them (development, tests)


def test_a_hostname_is_judged_by_every_address_it_resolves_to():
    def resolves_to(*addresses):
        def resolve(host, port, type=0):
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a in addresses]

        return resolve

    url_check(
        "https://hooks.example.com/x", allow_private=False, resolve=resolves_to("93.184.215.14")
    )
    with pytest.raises(WebhookUrlRefused, match=r"10\.0\.0\.5 is a private address"):
        url_check(
            "https://hooks.example.com/x",
            allow_private=False,
            resolve=resolves_to("93.184.215.14", "10.0.0.5"),
        )


def test_plain_http_and_other_schemes_are_refused():
    with pytest.raises(WebhookUrlRefused, match="must be https"):
        url_check("http://93.184.215.14/hook", allow_private=False)
    with pytest.raises(WebhookUrlRefused, match="must be https"):
        url_check("ftp://93.184.215.14/hook", allow_private=True)
    with pytest.raises(WebhookUrlRefused, match="credentials"):
        url_check("https://user:pw@93.184.215.14/hook", allow_private=True)


def test_a_refused_url_is_never_requested():
    receiver = WebhookReceiver().start()
    try:
        outcome = webhook_post(
            receiver.url,
            BODY,
            signed_headers(SECRET, 7, BODY, timestamp=1),
            allow_private=False,
            connect_timeout=1,
            read_timeout=1,
        )
    finally:
        receiver.stop()
    assert not outcome.delivered and outcome.status_code is None
    assert outcome.error.startswith("refused:") and "must be https" in outcome.error
    assert receiver.received == []


@pytest.mark.django_db
def test_an_endpoint_on_a_private_network_is_refused_when_not_allowed(settings):
    settings.OMS_WEBHOOK_ALLOW_PRIVATE = False
    strategy = StrategyFactory()
    with pytest.raises(WebhookError, match=r"169\.254\.169\.254 is a link-local address"):
        webhook_endpoint_create(strategy=strategy, url="https://169.254.169.254/hook", actor="t")
    with pytest.raises(WebhookError, match=r"kinds order\.filled: unknown"):
        webhook_endpoint_create(
            strategy=strategy, url="https://93.184.215.14/hook", kinds=["order.filled"], actor="t"
        )


def test_the_readmes_verification_snippet_accepts_a_signed_delivery_and_nothing_else():
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme[readme.index("## Webhooks") :]
    start = section.index("```python") + len("```python")
    snippet = section[start : section.index("```", start)]
    namespace: dict = {}
    exec(compile(snippet, "README.md", "exec"), namespace)  # noqa: S102 - our own README
    verified = namespace["oms_webhook_verified"]

    now = int(time.time())
    headers = signed_headers(SECRET, 7, BODY, timestamp=now)
    assert verified(SECRET, headers, BODY)
    assert not verified(SECRET, headers, BODY.replace(b"7", b"8"))
    assert not verified("whsec_other", headers, BODY)
    old = signed_headers(SECRET, 7, BODY, timestamp=now - 301)
    assert not verified(SECRET, old, BODY)
