"""Strategy API keys: made here (the key shown once) and revoked, never edited."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.template.response import TemplateResponse

from omsproject.admin_tools import OmsModelAdmin
from omsproject.money_format import plural
from orders.api_keys import ApiKeyError, api_key_create, api_key_revoke
from orders.models import StrategyApiKey


class RevokeForm(forms.Form):
    reason = forms.CharField(
        max_length=1000,
        widget=forms.Textarea(attrs={"rows": 2, "cols": 70}),
        help_text="Required: why the keys are revoked (kept in the admin's change log).",
    )

    def clean_reason(self):
        reason = self.cleaned_data["reason"].strip()
        if not reason:
            raise forms.ValidationError("reason: required to revoke a key")
        return reason


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

    @admin.action(description="Revoke the selected keys…", permissions=["change"])
    def revoke_keys(self, request, queryset):
        """A confirmation page listing the live keys selected, with a required reason; its
        POST revokes them through api_key_revoke (each recorded in the change log)."""
        live = list(queryset.filter(revoked_at__isnull=True).select_related("strategy"))
        if not live:
            self.message_user(request, "None of the selected keys is live.", messages.WARNING)
            return None
        form = RevokeForm(request.POST if request.POST.get("confirmed") == "yes" else None)
        if form.is_bound and form.is_valid():
            revoked = 0
            for key in live:
                try:
                    api_key_revoke(
                        key,
                        actor=request.user.get_username(),
                        reason=form.cleaned_data["reason"],
                        user=request.user,
                    )
                except ApiKeyError as error:
                    self.message_user(request, str(error), messages.ERROR)
                    return None
                revoked += 1
            self.message_user(request, f"Revoked {plural(revoked, 'key')}.", messages.SUCCESS)
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": "Revoke API keys?",
            "opts": self.opts,
            "keys": live,
            "form": form,
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(
            request, "admin/orders/strategyapikey/revoke_confirmation.html", context
        )
