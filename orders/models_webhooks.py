"""Webhooks' tables: a strategy's endpoints and the log of every delivery attempt.

Imported by orders.models (the app's models module) and importing nothing of it: the strategy
is named by its label. The services are orders.services.webhooks.
"""

from __future__ import annotations

from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Q

from omsproject.crypto import EncryptedTextField
from omsproject.pg import updated_at_trigger
from orders.enums import StrategyEventKind

# The kinds of strategy events an endpoint may subscribe to: all of them.
EVENT_KINDS = tuple(StrategyEventKind.values)


class WebhookState(models.TextChoices):
    ACTIVE = "ACTIVE", "Active"
    PAUSED = "PAUSED", "Paused"


class WebhookEndpoint(models.Model):
    """A URL a strategy's events are posted to, signed with the endpoint's secret.

    ``delivered_seq`` is the last event (feed cursor) the receiver acknowledged with a 2xx:
    delivery resumes after it, in order, after a crash, a retry or a pause. ``kinds`` empty:
    every kind. The secret is encrypted at rest and shown once, when the endpoint is made.
    """

    strategy = models.ForeignKey(
        "orders.Strategy", on_delete=models.PROTECT, related_name="webhook_endpoints"
    )
    url = models.URLField(max_length=2000)
    secret = EncryptedTextField(editable=False)
    kinds = ArrayField(
        models.CharField(max_length=32),
        default=list,
        blank=True,
        help_text="Event kinds to post; empty: all (" + ", ".join(EVENT_KINDS) + ").",
    )
    state = models.CharField(
        max_length=6, choices=WebhookState.choices, default=WebhookState.ACTIVE
    )
    delivered_seq = models.BigIntegerField(
        default=0, help_text="The last event id delivered (2xx); delivery resumes after it."
    )
    failing_since = models.DateTimeField(
        null=True, blank=True, help_text="First failure since the last delivery."
    )
    paused_at = models.DateTimeField(null=True, blank=True)
    paused_reason = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.CharField(max_length=150, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "webhook_endpoints"
        ordering = ["strategy_id", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(state__in=WebhookState.values), name="webhook_state_valid"
            ),
            models.CheckConstraint(
                condition=Q(kinds__contained_by=list(EVENT_KINDS)), name="webhook_kinds_known"
            ),
            models.CheckConstraint(
                condition=Q(url__startswith="https://") | Q(url__startswith="http://"),
                name="webhook_url_http",
            ),
            models.CheckConstraint(condition=Q(delivered_seq__gte=0), name="webhook_seq_positive"),
        ]
        triggers = [updated_at_trigger()]

    def __str__(self) -> str:
        return f"#{self.pk} {self.url}"

    @property
    def is_active(self) -> bool:
        return self.state == WebhookState.ACTIVE

    def wants(self, kind: str) -> bool:
        return not self.kinds or kind in self.kinds


class WebhookDelivery(models.Model):
    """One attempt to post one event to one endpoint: what came back, how fast, what next."""

    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries"
    )
    event_seq = models.BigIntegerField(help_text="The event's id (X-OMS-Event-Id).")
    kind = models.CharField(max_length=32)
    client_order_id = models.CharField(max_length=100, blank=True)
    attempt = models.PositiveIntegerField(help_text="1 for the first try of this event.")
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    latency_ms = models.PositiveIntegerField()
    error = models.TextField(blank=True)
    next_try_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "webhook_deliveries"
        verbose_name_plural = "webhook deliveries"
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(attempt__gte=1), name="webhook_attempt_positive")
        ]
        indexes = [
            models.Index(
                fields=["endpoint", "event_seq", "attempt"], name="webhook_delivery_event_idx"
            ),
            models.Index(fields=["-created_at"], name="webhook_delivery_created_idx"),
        ]

    def __str__(self) -> str:
        return f"event {self.event_seq} → endpoint {self.endpoint_id} (try {self.attempt})"

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300
