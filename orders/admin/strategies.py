"""Strategies: status and mode through their services, limits and keys alongside."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, F, OuterRef, Subquery
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html

from omsproject.admin_forms import (
    CONFIRM_FLAG,
    REASON_FIELD,
    ConfirmedChangeAdmin,
    ConstraintWordsForm,
    change_reason,
)
from omsproject.admin_tools import OmsModelAdmin, ReadOnlyInline, badge, object_page_paths, pnl
from omsproject.templatetags.oms_admin import KILL_SWITCH_TONES, STRATEGY_TONES
from orders.admin.display import day_start
from orders.enums import OrderStatus, StrategyMode, StrategyStatus
from orders.models import BrokerAccount, Order, Strategy, StrategyApiKey
from orders.services import (
    OrderError,
    strategy_account_refusal,
    strategy_mode_refusal,
    strategy_mode_set,
    strategy_settings_set,
    strategy_status_set,
)
from orders.services.strategies import SETTINGS_FIELDS
from risk.admin import RiskLimitForm, limits_table, save_limit_form
from risk.models import RiskLimit
from risk.selectors import kill_switch_own_state


class StrategyForm(ConstraintWordsForm):
    class Meta:
        model = Strategy
        fields = (
            "name",
            "description",
            "status",
            "mode",
            "broker_account",
            "protection_mode",
            "config",
        )

    def clean_broker_account(self):
        account = self.cleaned_data["broker_account"]
        if self.instance.pk:
            refusal = strategy_account_refusal(
                self.instance, account_id=account.pk if account else None
            )
            if refusal:
                raise forms.ValidationError(refusal)
        return account

    def clean(self):
        data = super().clean()
        live = data.get("mode") == StrategyMode.LIVE
        if live and "broker_account" not in self.errors and not data.get("broker_account"):
            accounts = BrokerAccount.objects.filter(is_active=True).count()
            if accounts != 1:  # with exactly one, the database picks it
                self.add_error(
                    "broker_account",
                    "a LIVE strategy trades through a Kite account: choose one"
                    if accounts
                    else "a LIVE strategy needs a Kite account: add one first (Broker accounts)",
                )
        return data

    def clean_mode(self):
        mode = self.cleaned_data["mode"]
        if self.instance.pk:
            refusal = strategy_mode_refusal(self.instance, mode=mode)
            if refusal:
                raise forms.ValidationError(refusal)
        return mode


class RiskLimitInline(admin.StackedInline):
    """The strategy's own limits (the strictest of these, the global row and its config hold)."""

    model = RiskLimit
    form = RiskLimitForm
    max_num = 1
    extra = 0
    can_delete = False
    verbose_name_plural = "risk limits of this strategy (blank: no limit at this level)"
    fields = (
        ("max_order_quantity", "max_order_value", "max_position_quantity"),
        ("max_strategy_exposure", "max_open_orders", "price_band_percent"),
        ("orders_per_second", "daily_loss_limit", "drawdown_limit"),
        ("rejection_burst", "rejection_window_seconds", "halt_on_critical_issue"),
    )


class StrategyApiKeyInline(ReadOnlyInline):
    model = StrategyApiKey
    fields = ("prefix", "name", "created_at", "created_by", "last_used_at", "revoked_at")
    readonly_fields = fields
    show_change_link = True
    verbose_name_plural = "API keys (made and revoked in Strategy API keys)"


@admin.register(Strategy)
class StrategyAdmin(ConfirmedChangeAdmin, OmsModelAdmin):
    """Strategies. Status and mode change through their services (a mode change only when the
    strategy is flat); performance counters and PnL come from fills and are read-only. Every
    change of a saved strategy or its limits is confirmed on a page listing old → new values,
    with a required reason, and recorded in the admin's change log."""

    form = StrategyForm
    list_display = (
        "name",
        "status_label",
        "mode_label",
        "kill_switch",
        "working_orders",
        "total_trades",
        "win_rate_display",
        "total_pnl_display",
    )
    list_filter = ("status", "mode", "protection_mode")
    search_fields = ("name",)
    inlines = (RiskLimitInline, StrategyApiKeyInline)
    fieldsets = (
        (None, {"fields": ("name", "description")}),
        (
            "Trading",
            {
                "fields": (
                    ("status", "mode"),
                    "last_status_change",
                    "broker_account",
                    "protection_mode",
                    ("kill_switch", "rejected_today"),
                ),
                "description": "A mode change (PAPER ⇄ LIVE) is refused while the strategy has "
                "working orders or open positions. A pause set here is staff's: the strategy "
                "can lift only a pause it made itself (PATCH /api/v1/strategy/).",
            },
        ),
        (
            "Configuration (JSON; config.limits may only tighten the limits)",
            {"fields": ("config",)},
        ),
        ("Risk limits in force", {"fields": ("limits_in_force",)}),
        (
            "Performance (from fills)",
            {
                "fields": (
                    ("total_trades", "winning_trades", "losing_trades"),
                    ("win_rate_display", "total_pnl_display"),
                )
            },
        ),
        ("Keys", {"fields": ("api_keys",)}),
        (None, {"fields": (("created_at", "updated_at"),)}),
    )
    readonly_fields = (
        "kill_switch",
        "rejected_today",
        "limits_in_force",
        "total_trades",
        "winning_trades",
        "losing_trades",
        "win_rate_display",
        "total_pnl_display",
        "api_keys",
        "last_status_change",
        "created_at",
        "updated_at",
    )

    def has_delete_permission(self, request, obj=None):
        return False

    def get_fieldsets(self, request, obj=None):
        """Those who may change a strategy get Pause… / Resume… beside its status."""
        fieldsets = super().get_fieldsets(request, obj)
        if obj is None or not self.has_change_permission(request, obj):
            return fieldsets
        return [
            (name, {**opts, "fields": ("status_actions", *opts["fields"])})
            if name == "Trading"
            else (name, opts)
            for name, opts in fieldsets
        ]

    def get_readonly_fields(self, request, obj=None):
        return (*super().get_readonly_fields(request, obj), "status_actions")

    @admin.display(description="pause / resume")
    def status_actions(self, strategy):
        target = "ACTIVE" if strategy.status == StrategyStatus.PAUSED else "PAUSED"
        url = reverse("admin:orders_strategy_status", args=[strategy.pk]) + f"?to={target}"
        label = "Resume…" if target == "ACTIVE" else "Pause…"
        return format_html('<a class="button" href="{}" id="status-{}">{}</a>', url, target, label)

    def get_urls(self):
        return [
            *object_page_paths(
                self.admin_site, "status/", self.status_view, name="orders_strategy_status"
            ),
            *super().get_urls(),
        ]

    def status_view(self, request, object_id):
        """Pause or resume (``?to=PAUSED|ACTIVE``) from the strategy's page: a confirmation
        with the old → new status and a required reason, then strategy_status_set."""
        strategy = get_object_or_404(Strategy, pk=object_id)
        if not self.has_change_permission(request, strategy):
            raise PermissionDenied
        target = request.GET.get("to", "")
        if target not in (StrategyStatus.PAUSED, StrategyStatus.ACTIVE):
            raise Http404(f"to {target!r}: must be PAUSED or ACTIVE")
        change_url = reverse("admin:orders_strategy_change", args=[strategy.pk])
        reason = change_reason(request)
        if request.method == "POST" and reason:
            try:
                strategy_status_set(
                    strategy,
                    status=StrategyStatus(target),
                    actor=request.user.get_username(),
                    reason=reason,
                    user=request.user,
                )
            except OrderError as error:
                self.message_user(request, error.message, messages.ERROR)
            else:
                self.message_user(request, f"{strategy.name} is {target}.", messages.SUCCESS)
            return HttpResponseRedirect(change_url)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"{'Pause' if target == 'PAUSED' else 'Resume'} {strategy.name}?",
            "object": strategy,
            "lines": [("status", strategy.status, target)],
            "kept": [],
            "reason": reason,
            "reason_error": "reason: required for this change" if request.method == "POST" else "",
            "confirm_flag": CONFIRM_FLAG,
            "reason_field": REASON_FIELD,
        }
        return TemplateResponse(request, "admin/oms_confirm_change.html", context)

    def get_queryset(self, request):
        working = (
            Order.objects.filter(strategy=OuterRef("pk"), status__in=sorted(OrderStatus.active()))
            .order_by()
            .values("strategy")
            .annotate(n=Count("id"))
            .values("n")
        )
        return (
            super()
            .get_queryset(request)
            .annotate(
                own_switch=kill_switch_own_state(F("pk")),
                working=Subquery(working),
            )
        )

    @admin.display(description="status", ordering="status")
    def status_label(self, strategy):
        return badge(strategy.get_status_display(), STRATEGY_TONES[StrategyStatus(strategy.status)])

    @admin.display(description="mode", ordering="mode")
    def mode_label(self, strategy):
        return badge(strategy.mode, "red" if strategy.mode == StrategyMode.LIVE else "grey")

    @admin.display(description="limits in force")
    def limits_in_force(self, strategy):
        return limits_table(strategy if strategy.pk else None)

    @admin.display(description="own kill switch")
    def kill_switch(self, strategy):
        state = getattr(strategy, "own_switch", None) or "ACTIVE"
        return badge(state, KILL_SWITCH_TONES[state])

    @admin.display(description="working orders")
    def working_orders(self, strategy):
        return getattr(strategy, "working", None) or 0

    @admin.display(description="win rate", ordering="winning_trades")
    def win_rate_display(self, strategy):
        return f"{strategy.win_rate}%"

    @admin.display(description="total PnL", ordering="total_pnl")
    def total_pnl_display(self, strategy):
        return pnl(strategy.total_pnl)

    @admin.display(description="last status change")
    def last_status_change(self, strategy):
        if not strategy.status_actor:
            return "—"
        held = (
            f"paused by {strategy.get_paused_by_display().lower()} · " if strategy.paused_by else ""
        )
        return f"{held}{strategy.status_reason or 'no reason given'} ({strategy.status_actor})"

    @admin.display(description="rejected orders")
    def rejected_today(self, strategy):
        """Today's rejected orders of the strategy, linked to that list (two clicks from the
        strategy list to the refusals)."""
        if not strategy.pk:
            return "—"
        count = Order.objects.filter(
            strategy=strategy, status=OrderStatus.REJECTED, created_at__gte=day_start()
        ).count()
        url = (
            reverse("admin:orders_order_changelist")
            + f"?strategy__id__exact={strategy.pk}&status__exact={OrderStatus.REJECTED}&day=today"
        )
        return format_html('<a href="{}" id="rejected-today">Rejected today: {}</a>', url, count)

    @admin.display(description="API keys")
    def api_keys(self, strategy):
        if not strategy.pk:
            return "—"
        add = reverse("admin:orders_strategyapikey_add") + f"?strategy={strategy.pk}"
        listing = (
            reverse("admin:orders_strategyapikey_changelist")
            + f"?strategy__id__exact={strategy.pk}"
        )
        return format_html('<a href="{}">Add a key</a> · <a href="{}">all keys</a>', add, listing)

    def save_model(self, request, obj, form, change):
        if not change:
            super().save_model(request, obj, form, change)
            return
        user, reason = request.user, change_reason(request)
        actor = user.get_username()
        settings = {name: form.cleaned_data[name] for name in form.changed_data}
        settings = {name: value for name, value in settings.items() if name in SETTINGS_FIELDS}
        try:
            if settings:
                strategy_settings_set(obj, values=settings, user=user, reason=reason)
            if "status" in form.changed_data:
                strategy_status_set(
                    obj, status=StrategyStatus(obj.status), actor=actor, reason=reason, user=user
                )
            if "mode" in form.changed_data:
                strategy_mode_set(obj, mode=obj.mode, actor=actor, reason=reason, user=user)
        except OrderError as error:  # it stopped being flat between the check and the save
            self.message_user(request, error.message, messages.ERROR)

    def save_formset(self, request, form, formset, change):
        if formset.model is not RiskLimit:
            super().save_formset(request, form, formset, change)
            return
        # A new strategy's limits are set with it (no confirmation page for an addition).
        reason = change_reason(request) if change else "set when the strategy was added"
        # What Django's change message reads (construct_change_message).
        formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
        for limit_form in formset.forms:
            if not limit_form.has_changed():
                continue
            new = limit_form.instance.pk is None
            row = save_limit_form(request, limit_form, strategy=form.instance, reason=reason)
            if row is not None and new:
                formset.new_objects.append(row)
            elif row is not None:
                formset.changed_objects.append((row, limit_form.changed_data))
