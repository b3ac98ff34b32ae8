"""Webhooks: endpoints (the secret shown once, on the page after "Save"; never again) and
their delivery log (read-only, with "retry now"). Every change goes through
orders.services.webhooks."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.template.response import TemplateResponse

from omsproject.admin_forms import ConstraintWordsForm
from omsproject.admin_tools import OmsModelAdmin
from omsproject.money_format import plural
from orders.enums import StrategyEventKind
from orders.models import WebhookDelivery, WebhookEndpoint
from orders.services.webhooks import (
    WebhookError,
    webhook_endpoint_create,
    webhook_endpoint_pause,
    webhook_endpoint_resume,
    webhook_endpoint_update,
    webhook_kinds_clean,
    webhook_retry_now,
    webhook_url_clean,
)

STATE_FIELDS = (
    "state",
    "delivered_seq",
    "failing_since",
    "paused_at",
    "paused_reason",
    "created_at",
    "created_by",
    "updated_at",
)


class WebhookEndpointForm(ConstraintWordsForm):
    url = forms.URLField(max_length=2000, assume_scheme="https")
    kinds = forms.MultipleChoiceField(
        choices=StrategyEventKind.choices,
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text="None ticked: every kind.",
    )

    class Meta:
        model = WebhookEndpoint
        fields = ("strategy", "url", "kinds")

    def clean_url(self):
        try:
            return webhook_url_clean(self.cleaned_data["url"])
        except WebhookError as error:
            raise forms.ValidationError(str(error)) from None

    def clean_kinds(self):
        try:
            return webhook_kinds_clean(self.cleaned_data["kinds"])
        except WebhookError as error:
            raise forms.ValidationError(str(error)) from None


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(OmsModelAdmin):
    """Endpoints are made here (the secret shown once), their URL and kinds changed, paused and
    resumed by the actions; the secret is never a field of any page."""

    form = WebhookEndpointForm
    list_display = (
        "id",
        "strategy",
        "url",
        "kinds_shown",
        "state",
        "delivered_seq",
        "failing_since",
        "created_at",
    )
    list_filter = ("state", "strategy")
    list_select_related = ("strategy",)
    search_fields = ("url", "strategy__name")
    actions = ["pause_endpoints", "resume_endpoints", "retry_endpoints_now"]

    @admin.display(description="kinds")
    def kinds_shown(self, endpoint: WebhookEndpoint) -> str:
        return ", ".join(endpoint.kinds) or "all"

    def get_fields(self, request, obj=None):
        return (
            ("strategy", "url", "kinds")
            if obj is None
            else ("strategy", "url", "kinds", *STATE_FIELDS)
        )

    def get_readonly_fields(self, request, obj=None):
        return () if obj is None else ("strategy", *STATE_FIELDS)

    def has_delete_permission(self, request, obj=None):
        return False  # `manage.py webhook remove`: the delivery log goes with it

    def save_model(self, request, obj, form, change):
        actor = request.user.get_username()
        if change:
            webhook_endpoint_update(obj, url=obj.url, kinds=obj.kinds, actor=actor)
            return
        endpoint, secret = webhook_endpoint_create(
            strategy=obj.strategy, url=obj.url, kinds=obj.kinds, actor=actor
        )
        obj.pk = endpoint.pk
        request._webhook_secret = secret

    def response_add(self, request, obj, post_url_continue=None):
        # Rendered, not redirected: the secret never travels in a message cookie or the session.
        endpoint = WebhookEndpoint.objects.select_related("strategy").get(pk=obj.pk)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "endpoint": endpoint,
            "secret": request._webhook_secret,
            "title": f"Webhook endpoint #{endpoint.pk}",
        }
        return TemplateResponse(request, "admin/orders/webhookendpoint/created.html", context)

    @admin.action(description="Pause the selected endpoints", permissions=["change"])
    def pause_endpoints(self, request, queryset):
        actor = request.user.get_username()
        paused = [e for e in queryset if webhook_endpoint_pause(e, reason="paused", actor=actor)]
        for endpoint in paused:
            self.log_change(request, endpoint, "Paused")
        self.message_user(request, f"Paused {plural(len(paused), 'endpoint')}.", messages.SUCCESS)

    @admin.action(
        description="Resume the selected endpoints (from their last delivered event)",
        permissions=["change"],
    )
    def resume_endpoints(self, request, queryset):
        actor = request.user.get_username()
        resumed = [e for e in queryset if webhook_endpoint_resume(e, actor=actor)]
        for endpoint in resumed:
            self.log_change(request, endpoint, "Resumed")
        self.message_user(request, f"Resumed {plural(len(resumed), 'endpoint')}.", messages.SUCCESS)

    @admin.action(description="Retry now", permissions=["change"])
    def retry_endpoints_now(self, request, queryset):
        retried = [e for e in queryset if webhook_retry_now(e)]
        self.message_user(
            request,
            f"Delivery of {plural(len(retried), 'active endpoint')} runs now.",
            messages.SUCCESS,
        )


class DeliveryOutcomeFilter(admin.SimpleListFilter):
    title = "outcome"
    parameter_name = "outcome"

    def lookups(self, request, model_admin):
        return (("delivered", "Delivered (2xx)"), ("failed", "Failed"))

    def queryset(self, request, queryset):
        if self.value() == "delivered":
            return queryset.filter(status_code__gte=200, status_code__lt=300)
        if self.value() == "failed":
            return queryset.exclude(status_code__gte=200, status_code__lt=300)
        return queryset


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(OmsModelAdmin):
    """Every attempt, read-only: status code, latency, error, when it is tried next."""

    list_display = (
        "created_at",
        "endpoint",
        "event_seq",
        "kind",
        "client_order_id",
        "attempt",
        "status_code",
        "latency_ms",
        "next_try_at",
        "error",
    )
    list_filter = (DeliveryOutcomeFilter, "kind", "endpoint__strategy", "endpoint")
    list_select_related = ("endpoint",)
    search_fields = ("client_order_id", "=event_seq")
    actions = ["retry_now"]
    fields = list_display

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_retry_permission(self, request) -> bool:
        return request.user.has_perm("orders.change_webhookendpoint")

    @admin.action(
        description="Retry now (the endpoints of the selected deliveries)", permissions=["retry"]
    )
    def retry_now(self, request, queryset):
        endpoints = WebhookEndpoint.objects.filter(pk__in=queryset.values("endpoint_id").distinct())
        retried = [e for e in endpoints if webhook_retry_now(e)]
        self.message_user(
            request,
            f"Delivery of {plural(len(retried), 'active endpoint')} runs now.",
            messages.SUCCESS,
        )
