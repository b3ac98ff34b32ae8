"""Broker accounts: the Kite logins a desk trades through, and the morning "Connect Kite".

Secrets are write-only: the form takes a new API key or secret and never shows the stored one
(a blank field keeps it); the access token is never typed in, it comes from Kite's login
(orders.services.broker_accounts). Connecting needs ``orders.connect_brokeraccount`` (risk
officers); adding or changing an account's keys is for superusers.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html

from omsproject.admin_forms import ConstraintWordsForm
from omsproject.admin_tools import OmsModelAdmin
from orders.broker_sessions import IST, session_problem, session_state
from orders.models import BrokerAccount
from orders.services.broker_accounts import LoginRefused, login_start

SESSION_COLOURS = {
    "connected": "#1b7f3b",
    "expired": "#b42318",
    "never": "#b42318",
    "disabled": "#667085",
}
SESSION_LABELS = {
    "connected": "Connected",
    "expired": "Session expired",
    "never": "Not logged in",
    "disabled": "Disabled",
}


class BrokerAccountForm(ConstraintWordsForm):
    """The API key and secret are typed in, never shown: blank keeps the stored value."""

    api_key = forms.CharField(
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text="Kite Connect app's API key. Stored encrypted; leave blank to keep it.",
    )
    api_secret = forms.CharField(
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text="Kite Connect app's API secret. Stored encrypted; leave blank to keep it.",
    )

    class Meta:
        model = BrokerAccount
        fields = ("name", "user_id", "api_key", "api_secret", "is_active")

    def clean_user_id(self):
        user_id = (self.cleaned_data.get("user_id") or "").strip().upper()
        if not user_id.isalnum() or not 2 <= len(user_id) <= 32:
            raise forms.ValidationError(
                "Kite user id: 2 to 32 letters and digits, as Kite shows it (e.g. AB1234)"
            )
        return user_id

    def clean(self):
        data = super().clean()
        for field in ("api_key", "api_secret"):
            if data.get(field):
                continue
            if self.instance.pk:
                data[field] = getattr(self.instance, field)  # kept as stored
            else:
                self.add_error(field, "required for a new account")
        return data


@admin.register(BrokerAccount)
class BrokerAccountAdmin(OmsModelAdmin):
    form = BrokerAccountForm
    list_display = (
        "name",
        "user_id",
        "session",
        "expires",
        "connected_by",
        "live_strategies",
        "connect_link",
    )
    search_fields = ("name", "user_id")
    readonly_fields = ("session", "expires", "connected_at", "connected_by", "live_strategies")

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["name", "user_id", "api_key", "api_secret", "is_active"]
        if not self.has_change_permission(request, obj):
            # Read-only pages display every field's value: never the secrets'.
            return ["name", "user_id", "secrets", "is_active", *self.readonly_fields]
        return ["name", "user_id", "api_key", "api_secret", "is_active", *self.readonly_fields]

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and not self.has_change_permission(request, obj):
            return ("name", "user_id", "secrets", "is_active", *self.readonly_fields)
        return self.readonly_fields

    @admin.display(description="API key and secret")
    def secrets(self, obj):
        return "stored encrypted, never shown"

    def has_add_permission(self, request):
        return request.user.is_superuser

    def has_change_permission(self, request, obj=None):
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        return False  # strategies and their orders name it; disable it instead

    def get_list_display(self, request):
        if request.user.has_perm("orders.connect_brokeraccount"):
            return self.list_display
        return tuple(name for name in self.list_display if name != "connect_link")

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("strategies")

    @admin.display(description="Session")
    def session(self, obj):
        state = session_state(obj)
        return format_html(
            '<strong style="color:{}" title="{}">{}</strong>',
            SESSION_COLOURS[state],
            session_problem(obj) or "valid until the time shown",
            SESSION_LABELS[state],
        )

    @admin.display(description="Session until", ordering="token_expires_at")
    def expires(self, obj):
        if obj.token_expires_at is None:
            return "—"
        return obj.token_expires_at.astimezone(IST).strftime("%d %b %Y %H:%M IST")

    @admin.display(description="LIVE strategies")
    def live_strategies(self, obj):
        names = [s.name for s in obj.strategies.all() if s.is_live]
        return ", ".join(names) or "—"

    @admin.display(description="")
    def connect_link(self, obj):
        if not obj.is_active:
            return ""
        label = "Reconnect Kite" if session_state(obj) == "connected" else "Connect Kite"
        return format_html(
            '<a class="button" href="{}">{}</a>',
            reverse("admin:orders_brokeraccount_connect", args=[obj.pk]),
            label,
        )

    def get_urls(self):
        return [
            path(
                "<int:account_id>/connect/",
                self.admin_site.admin_view(self.connect_view),
                name="orders_brokeraccount_connect",
            ),
            *super().get_urls(),
        ]

    def connect_view(self, request, account_id: int):
        """Off to Kite's login page; Kite sends the browser back to orders.views.kite_login."""
        if not request.user.has_perm("orders.connect_brokeraccount"):
            raise PermissionDenied
        account = get_object_or_404(BrokerAccount, pk=account_id)
        try:
            url = login_start(account, actor=request.user.get_username())
        except LoginRefused as error:
            messages.error(request, str(error))
            return HttpResponseRedirect(reverse("admin:orders_brokeraccount_changelist"))
        return HttpResponseRedirect(url)

    def render_change_form(self, request, context, *args, obj=None, **kwargs):
        context["can_connect"] = bool(
            obj is not None
            and obj.is_active
            and request.user.has_perm("orders.connect_brokeraccount")
        )
        return super().render_change_form(request, context, *args, obj=obj, **kwargs)
