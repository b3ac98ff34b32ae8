"""Posting one webhook delivery: timeouts, no redirects, no private networks (SSRF).

Before any request the URL's host is resolved and every address it resolves to is checked:
loopback, private (10/8, 172.16/12, 192.168/16, fc00::/7...), link-local (169.254/16, the
cloud metadata service included), multicast, reserved and unspecified addresses are refused,
and so is plain ``http``, unless ``allow_private`` (OMS_WEBHOOK_ALLOW_PRIVATE: development and
tests). A redirect is never followed: a 3xx answer is a failed delivery.

Limit: the host is resolved here and again by ``requests`` when it connects; a DNS server
answering differently within that instant (DNS rebinding) is not caught.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests

USER_AGENT = "oms-webhooks/1"


class WebhookUrlRefused(ValueError):
    """A URL the OMS will not post to; the message names the rule."""


@dataclass(frozen=True)
class PostOutcome:
    status_code: int | None  # None: no answer (refused, timeout, connection error)
    latency_ms: int
    error: str = ""

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def _address_refusal(address: str) -> str | None:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    for flag in ("loopback", "link_local", "private", "multicast", "reserved", "unspecified"):
        if getattr(ip, f"is_{flag}"):
            return f"{ip} is a {flag.replace('_', '-')} address"
    return None


def url_check(url: str, *, allow_private: bool, resolve=socket.getaddrinfo) -> None:
    """Raise WebhookUrlRefused unless ``url`` may be posted to (see the module's rules)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise WebhookUrlRefused(f"url {url!r}: the scheme must be https")
    if not parts.hostname:
        raise WebhookUrlRefused(f"url {url!r}: no host")
    if parts.username or parts.password:
        raise WebhookUrlRefused(f"url {url!r}: no credentials in the URL (the signature is them)")
    if allow_private:
        return
    if parts.scheme != "https":
        raise WebhookUrlRefused(f"url {url!r}: the scheme must be https")
    try:
        port = parts.port or 443
        addresses = {info[4][0] for info in resolve(parts.hostname, port, type=socket.SOCK_STREAM)}
    except (OSError, ValueError) as error:
        raise WebhookUrlRefused(
            f"url {url!r}: host {parts.hostname} does not resolve ({error})"
        ) from None
    for address in sorted(addresses):
        refusal = _address_refusal(address)
        if refusal:
            raise WebhookUrlRefused(
                f"url {url!r}: {parts.hostname} resolves to {refusal}, refused "
                "(private networks need OMS_WEBHOOK_ALLOW_PRIVATE)"
            )


def webhook_post(
    url: str,
    body: bytes,
    headers: dict[str, str],
    *,
    allow_private: bool,
    connect_timeout: float,
    read_timeout: float,
) -> PostOutcome:
    """POST ``body`` to ``url`` once; never raises for what the receiver or the network does."""
    started = time.monotonic()

    def elapsed() -> int:
        return round((time.monotonic() - started) * 1000)

    try:
        url_check(url, allow_private=allow_private)
        response = requests.post(
            url,
            data=body,
            headers={**headers, "User-Agent": USER_AGENT},
            timeout=(connect_timeout, read_timeout),
            allow_redirects=False,
        )
        response.close()
    except WebhookUrlRefused as error:
        return PostOutcome(None, elapsed(), f"refused: {error}")
    except requests.Timeout as error:
        return PostOutcome(None, elapsed(), f"timeout: {type(error).__name__}")
    except requests.RequestException as error:
        return PostOutcome(None, elapsed(), f"{type(error).__name__}: {error}"[:500])
    if response.is_redirect or 300 <= response.status_code < 400:
        where = response.headers.get("Location", "")
        return PostOutcome(
            response.status_code, elapsed(), f"redirect to {where[:200]!r} not followed"
        )
    error = "" if 200 <= response.status_code < 300 else f"HTTP {response.status_code}"
    return PostOutcome(response.status_code, elapsed(), error)
