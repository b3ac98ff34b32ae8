"""Webhooks: a strategy's endpoints (made, changed, paused, resumed, removed) and the delivery
of its events to them.

Delivery is at least once and in feed order (so in order per order): an endpoint's dispatch
job (orders.tasks.dispatch_webhook; one runs at a time, at most one waits) sequences the
events (oms_events_sequence), then posts every event after ``delivered_seq``, one at a time,
and moves ``delivered_seq`` past each one the receiver answers with a 2xx. A job is deferred
by the strategy_events trigger in the transaction that writes the event, so a rolled-back
event defers nothing and a committed one always has a job. A failure is logged
(WebhookDelivery) and the job deferred again after a backoff with jitter; an endpoint failing
for longer than OMS_WEBHOOK_PAUSE_AFTER_SECONDS is paused and staff are told. Resuming it
continues from ``delivered_seq``. No transaction is open while a request is in flight.

A receiver may see an event twice (a worker dying between the 2xx and the cursor's update):
it dedupes by ``X-OMS-Event-Id``.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core.mail import send_mail
from django.db import connection, transaction
from django.db.models import Max
from django.utils import timezone

from orders import jobs
from orders.event_feed import events_after, events_sequence
from orders.models import Strategy, StrategyEvent, WebhookDelivery, WebhookEndpoint
from orders.models_webhooks import EVENT_KINDS, WebhookState
from orders.webhook_http import PostOutcome, WebhookUrlRefused, url_check, webhook_post
from orders.webhook_signing import backoff_seconds, signed_headers

logger = logging.getLogger("oms.webhooks")

SECRET_PREFIX = "whsec_"  # noqa: S105 - a label, not a secret
EVENTS_PER_READ = 100
RESEQUENCE_SECONDS = 0.2  # committed events still without a seq: look again this soon


class WebhookError(ValueError):
    """A webhook request that cannot be done; the message names the field and the rule."""


@dataclass(frozen=True)
class DispatchReport:
    delivered: int = 0
    failed: bool = False
    paused: bool = False


# --- endpoints ---------------------------------------------------------------------------------


def webhook_url_clean(url: str) -> str:
    """``url`` stripped, or WebhookError naming the rule it breaks (scheme, SSRF...)."""
    url = (url or "").strip()
    if not url:
        raise WebhookError("url '': required")
    try:
        url_check(url, allow_private=settings.OMS_WEBHOOK_ALLOW_PRIVATE)
    except WebhookUrlRefused as error:
        raise WebhookError(str(error)) from None
    return url


def webhook_kinds_clean(kinds) -> list[str]:
    """The kinds, sorted and unique, or WebhookError naming an unknown one."""
    kinds = sorted({kind.strip() for kind in kinds or [] if kind and kind.strip()})
    unknown = [kind for kind in kinds if kind not in EVENT_KINDS]
    if unknown:
        raise WebhookError(
            f"kinds {', '.join(unknown)}: unknown; choose among {', '.join(EVENT_KINDS)}"
        )
    return kinds


def _last_seq(strategy_id: int) -> int:
    events_sequence()
    last = StrategyEvent.objects.filter(strategy_id=strategy_id).aggregate(last=Max("seq"))
    return last["last"] or 0


def webhook_endpoint_create(
    *, strategy: Strategy, url: str, kinds=(), actor: str
) -> tuple[WebhookEndpoint, str]:
    """A new ACTIVE endpoint of ``strategy``; returns it and its secret (shown once: it is
    stored encrypted and never displayed again). It receives the events after the last one
    the strategy has now; earlier ones are in the feed."""
    url, kinds = webhook_url_clean(url), webhook_kinds_clean(kinds)
    secret = SECRET_PREFIX + secrets.token_urlsafe(32)
    with transaction.atomic():
        endpoint = WebhookEndpoint.objects.create(
            strategy=strategy,
            url=url,
            kinds=kinds,
            secret=secret,
            delivered_seq=_last_seq(strategy.pk),
            created_by=actor,
        )
    logger.info("webhook %s of %s created by %s: %s", endpoint.pk, strategy, actor, url)
    return endpoint, secret


def webhook_endpoint_update(
    endpoint: WebhookEndpoint, *, url: str | None = None, kinds=None, actor: str
) -> WebhookEndpoint:
    """Change where an endpoint posts and which kinds; its place in the feed stays."""
    with transaction.atomic():
        endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
        if url is not None:
            endpoint.url = webhook_url_clean(url)
        if kinds is not None:
            endpoint.kinds = webhook_kinds_clean(kinds)
        endpoint.save(update_fields=["url", "kinds", "updated_at"])
    logger.info("webhook %s changed by %s: %s %s", endpoint.pk, actor, endpoint.url, endpoint.kinds)
    return endpoint


def webhook_endpoint_pause(endpoint: WebhookEndpoint, *, reason: str, actor: str) -> bool:
    """Stop posting to the endpoint (events keep accumulating in the feed); False if it was
    already paused. A dispatch job running finishes the post in flight, then stops."""
    with transaction.atomic():
        changed = WebhookEndpoint.objects.filter(pk=endpoint.pk, state=WebhookState.ACTIVE).update(
            state=WebhookState.PAUSED,
            paused_at=timezone.now(),
            paused_reason=f"{reason} ({actor})",
        )
    if changed:
        logger.warning("webhook %s paused by %s: %s", endpoint.pk, actor, reason)
    return bool(changed)


def webhook_endpoint_resume(endpoint: WebhookEndpoint, *, actor: str) -> bool:
    """Post again, from the event after ``delivered_seq``; False if it was already active."""
    with transaction.atomic():
        changed = WebhookEndpoint.objects.filter(pk=endpoint.pk, state=WebhookState.PAUSED).update(
            state=WebhookState.ACTIVE, paused_at=None, paused_reason="", failing_since=None
        )
        if changed:
            jobs.defer_webhook(endpoint.pk)
    if changed:
        logger.warning("webhook %s resumed by %s", endpoint.pk, actor)
    return bool(changed)


def webhook_endpoint_remove(endpoint: WebhookEndpoint, *, actor: str) -> None:
    """Delete the endpoint, its delivery log and its waiting job."""
    with transaction.atomic():
        jobs.cancel_webhook(endpoint.pk)
        WebhookDelivery.objects.filter(endpoint_id=endpoint.pk).delete()
        WebhookEndpoint.objects.filter(pk=endpoint.pk).delete()
    logger.warning("webhook %s (%s) removed by %s", endpoint.pk, endpoint.url, actor)


def webhook_retry_now(endpoint: WebhookEndpoint) -> bool:
    """Run the endpoint's dispatch job now instead of after its backoff; False if paused."""
    if not WebhookEndpoint.objects.filter(pk=endpoint.pk, state=WebhookState.ACTIVE).exists():
        return False
    with transaction.atomic():
        jobs.defer_webhook(endpoint.pk)
    return True


def webhooks_sweep() -> int:
    """Defer the job of every active endpoint that has events after its ``delivered_seq``
    and none waiting (the trigger defers them; this is the net under it). Returns how many."""
    events_sequence()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT endpoint.id FROM webhook_endpoints endpoint"
            " WHERE endpoint.state = 'ACTIVE' AND EXISTS (SELECT 1 FROM strategy_events event"
            "   WHERE event.strategy_id = endpoint.strategy_id"
            "   AND event.seq > endpoint.delivered_seq)"
            " AND NOT EXISTS (SELECT 1 FROM procrastinate_jobs job"
            "   WHERE job.queueing_lock = 'webhook-' || endpoint.id AND job.status = 'todo')"
        )
        endpoint_ids = [row[0] for row in cursor.fetchall()]
    for endpoint_id in endpoint_ids:
        with transaction.atomic():
            jobs.defer_webhook(endpoint_id, reschedule=False)
    return len(endpoint_ids)


# --- delivery ----------------------------------------------------------------------------------


def webhook_body(event: StrategyEvent) -> bytes:
    """The JSON posted for ``event``: the same document as one event of the feed
    (GET /api/v1/events/, orders.api.serializers.StrategyEventSerializer), times included."""
    created_at = timezone.localtime(event.created_at).isoformat()
    document = {
        "id": event.seq,
        "kind": event.kind,
        "order_id": event.order_id,
        "client_order_id": event.client_order_id,
        "created_at": created_at[:-6] + "Z" if created_at.endswith("+00:00") else created_at,
        "data": event.payload,
    }
    return json.dumps(document, separators=(",", ":")).encode()


def _unsequenced(strategy_id: int) -> bool:
    return StrategyEvent.objects.filter(strategy_id=strategy_id, seq__isnull=True).exists()


def _advance(endpoint: WebhookEndpoint, seq: int) -> bool:
    """Move the endpoint's cursor to ``seq`` (never back); False if it is no longer active
    (paused or removed meanwhile): the job stops."""
    moved = WebhookEndpoint.objects.filter(pk=endpoint.pk, state=WebhookState.ACTIVE).update(
        delivered_seq=seq, failing_since=None
    )
    endpoint.delivered_seq = seq
    return bool(moved)


def webhook_dispatch(endpoint_id: int) -> DispatchReport:
    """Post the endpoint's undelivered events in order, until none is left or one fails.

    Runs as the endpoint's dispatch job (one at a time: its lock). A failure is logged with
    when it is tried again, and the job deferred for then; failing for longer than
    OMS_WEBHOOK_PAUSE_AFTER_SECONDS pauses the endpoint instead, and staff are told.
    """
    endpoint = WebhookEndpoint.objects.filter(pk=endpoint_id).first()
    if endpoint is None or not endpoint.is_active:
        return DispatchReport()
    delivered = 0
    # Sequenced again before each read: events committed while this job posts are drained by
    # it, not left to the next job (which waits for this one's lock, found by polling).
    while True:
        events_sequence()
        events = events_after(
            strategy_id=endpoint.strategy_id, after=endpoint.delivered_seq, limit=EVENTS_PER_READ
        )
        if not events:
            break
        for event in events:
            if not endpoint.wants(event.kind):
                if not _advance(endpoint, event.seq):
                    return DispatchReport(delivered)
                continue
            attempt = _attempt(endpoint, event)
            outcome = _post(endpoint, event, attempt)
            if not outcome.delivered:
                paused = _failed(endpoint, event, attempt, outcome)
                return DispatchReport(delivered, failed=True, paused=paused)
            delivered += 1
            if not _advance(endpoint, event.seq):
                return DispatchReport(delivered)
    if _unsequenced(endpoint.strategy_id):
        # Committed behind a transaction still open: sequenced once that one ends.
        with transaction.atomic():
            jobs.defer_webhook(endpoint.pk, delay=RESEQUENCE_SECONDS, reschedule=False)
    return DispatchReport(delivered)


def _attempt(endpoint: WebhookEndpoint, event: StrategyEvent) -> int:
    return WebhookDelivery.objects.filter(endpoint=endpoint, event_seq=event.seq).count() + 1


def _post(endpoint: WebhookEndpoint, event: StrategyEvent, attempt: int) -> PostOutcome:
    """One POST; a 2xx is logged here, a failure by _failed."""
    body = webhook_body(event)
    outcome = webhook_post(
        endpoint.url,
        body,
        signed_headers(endpoint.secret, event.seq, body, timestamp=int(time.time())),
        allow_private=settings.OMS_WEBHOOK_ALLOW_PRIVATE,
        connect_timeout=settings.OMS_WEBHOOK_CONNECT_TIMEOUT,
        read_timeout=settings.OMS_WEBHOOK_READ_TIMEOUT,
    )
    if outcome.delivered:
        WebhookDelivery.objects.create(
            endpoint=endpoint,
            event_seq=event.seq,
            kind=event.kind,
            client_order_id=event.client_order_id or "",
            attempt=attempt,
            status_code=outcome.status_code,
            latency_ms=outcome.latency_ms,
        )
    return outcome


def _failed(
    endpoint: WebhookEndpoint, event: StrategyEvent, attempt: int, outcome: PostOutcome
) -> bool:
    """Log a failed attempt; defer the next one after the backoff, or pause the endpoint if
    it has been failing too long. True: paused."""
    now = timezone.now()
    failing_since = endpoint.failing_since or now
    give_up = now - failing_since >= timedelta(seconds=settings.OMS_WEBHOOK_PAUSE_AFTER_SECONDS)
    delay = backoff_seconds(
        attempt,
        first=settings.OMS_WEBHOOK_RETRY_FIRST_SECONDS,
        longest=settings.OMS_WEBHOOK_RETRY_LONGEST_SECONDS,
    )
    with transaction.atomic():
        WebhookDelivery.objects.create(
            endpoint=endpoint,
            event_seq=event.seq,
            kind=event.kind,
            client_order_id=event.client_order_id or "",
            attempt=attempt,
            status_code=outcome.status_code,
            latency_ms=outcome.latency_ms,
            error=outcome.error,
            next_try_at=None if give_up else now + timedelta(seconds=delay),
        )
        still_active = WebhookEndpoint.objects.filter(
            pk=endpoint.pk, state=WebhookState.ACTIVE
        ).update(failing_since=failing_since)
        if still_active and not give_up:
            jobs.defer_webhook(endpoint.pk, delay=delay)
    logger.warning(
        "webhook %s: event %s attempt %s failed (%s)%s",
        endpoint.pk,
        event.seq,
        attempt,
        outcome.error,
        "" if give_up else f", next try in {delay:.1f}s",
    )
    if still_active and give_up:
        reason = (
            f"failing since {timezone.localtime(failing_since):%Y-%m-%d %H:%M:%S} "
            f"(event {event.seq}, attempt {attempt}: {outcome.error})"
        )
        if webhook_endpoint_pause(endpoint, reason=reason, actor="webhook dispatcher"):
            _notify_paused(endpoint, reason)
            return True
    return False


def _notify_paused(endpoint: WebhookEndpoint, reason: str) -> None:
    subject = f"[OMS] webhook #{endpoint.pk} of {endpoint.strategy} paused: it keeps failing"
    body = (
        f"Endpoint: #{endpoint.pk} {endpoint.url}\nStrategy: {endpoint.strategy}\n"
        f"Why: {reason}\nLast event delivered: {endpoint.delivered_seq}\n\n"
        "Nothing is lost: the events stay in the feed. Once the receiver is fixed, resume it "
        "(admin → Webhook endpoints → Resume, or `manage.py webhook resume "
        f"{endpoint.pk}`): delivery continues from event {endpoint.delivered_seq + 1}."
    )
    logger.error("notification: %s", subject)
    if settings.OMS_RISK_EMAILS:
        send_mail(subject, body, None, settings.OMS_RISK_EMAILS, fail_silently=True)
