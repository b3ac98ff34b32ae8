"""Strategy API keys: made here (the key shown once) and revoked, never edited."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.template.response import TemplateResponse

from omsproject.admin_tools import OmsModelAdmin
from orders.api_keys import api_key_create, api_key_revoke
from orders.models import StrategyApiKey


class StrategyApiKeyAddForm(forms.ModelForm):
    class Meta:
        model = StrategyApiKey
        fields = ("strategy", "name")

    def clean(self):
        data = super().clean()
        strategy, name = data.get("strategy"), (data.get("name") or "").strip()
        if (
            strategy
            and name
            and StrategyApiKey.objects.filter(
                strategy=strategy, name=name, revoked_at__isnull=True
            ).exists()
        ):
            self.add_error("name", f"{strategy} already has a live key named {name!r}")
        return data


@admin.register(StrategyApiKey)
class StrategyApiKeyAdmin(OmsModelAdmin):
    """Keys are made here (shown once, on the page after "Save") and revoked, never edited."""

    list_display = ("prefix", "name", "strategy", "created_at", "last_used_at", "revoked_at")
    list_filter = ("strategy", ("revoked_at", admin.EmptyFieldListFilter))
    list_select_related = ("strategy",)
    search_fields = ("prefix", "name", "strategy__name")
    actions = ["revoke_keys"]
    fields = (
        "strategy",
        "name",
        "prefix",
        "created_at",
        "created_by",
        "last_used_at",
        "revoked_at",
        "revoked_by",
    )

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = StrategyApiKeyAddForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request, obj=None):
        return ("strategy", "name") if obj is None else self.fields

    def get_readonly_fields(self, request, obj=None):
        return () if obj is None else self.fields

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        if change:
            return
        key, plaintext = api_key_create(
            strategy=obj.strategy, name=obj.name, actor=request.user.get_username()
        )
        obj.pk = key.pk
        request._api_key_plaintext = plaintext

    def response_add(self, request, obj, post_url_continue=None):
        # Rendered, not redirected: the key never travels in a message cookie or the session.
        key = StrategyApiKey.objects.select_related("strategy").get(pk=obj.pk)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "key": key,
            "plaintext": request._api_key_plaintext,
            "title": f"API key {key.prefix}",
        }
        return TemplateResponse(request, "admin/orders/strategyapikey/created.html", context)

    @admin.action(description="Revoke the selected keys", permissions=["change"])
    def revoke_keys(self, request, queryset):
        live = list(queryset.filter(revoked_at__isnull=True))
        for key in live:
            api_key_revoke(key, actor=request.user.get_username())
            self.log_change(request, key, "Revoked")
        self.message_user(request, f"Revoked {len(live)} key(s).", messages.SUCCESS)
