"""The orders back office: orders with their history and fills, trades, strategies, API keys.

Nothing here writes an order, a strategy's status or mode, or a key itself: cancels go
through ``order_cancel``, status and mode through ``strategy_status_set`` and
``strategy_mode_set``, keys through ``orders.api_keys``; each leaves an admin log entry beside
the service's own record (order events, logs). The order and trade lists are built for
millions of rows (omsproject.admin_tools.LargeTableAdmin). Nobody deletes an order, an event
or a trade here, and every amount the broker or the fills decided is read-only.
"""

from __future__ import annotations

import json

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, F, OuterRef, Q, Subquery
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from omsproject.admin_tools import (
    LargeTableAdmin,
    OmsModelAdmin,
    ReadOnlyAdmin,
    ReadOnlyInline,
    badge,
    csv_download,
    inr,
    instrument_label,
    local_time,
    object_page_paths,
    pnl,
    price,
)
from orders.api_keys import api_key_create, api_key_revoke
from orders.enums import EventSource, OrderSide, OrderStatus, StrategyMode, StrategyStatus
from orders.models import Order, OrderEvent, Strategy, StrategyApiKey, Trade
from orders.services import (
    IllegalOrderState,
    OrderError,
    OrderNotFound,
    order_cancel,
    strategy_mode_refusal,
    strategy_mode_set,
    strategy_status_set,
)
from orders.state import CANCELLABLE
from risk.admin import limits_table
from risk.models import RiskLimit
from risk.selectors import kill_switch_own_state

STATUS_TONES = {
    OrderStatus.PENDING: "purple",
    OrderStatus.SUBMITTED: "purple",
    OrderStatus.UNKNOWN: "amber",
    OrderStatus.OPEN: "blue",
    OrderStatus.TRIGGER_PENDING: "blue",
    OrderStatus.PARTIALLY_FILLED: "teal",
    OrderStatus.CANCEL_PENDING: "amber",
    OrderStatus.FILLED: "green",
    OrderStatus.CANCELLED: "grey",
    OrderStatus.REJECTED: "red",
    OrderStatus.EXPIRED: "grey",
}
STRATEGY_TONES = {
    StrategyStatus.ACTIVE: "green",
    StrategyStatus.PAUSED: "amber",
    StrategyStatus.INACTIVE: "grey",
    StrategyStatus.ERROR: "red",
}
KILL_SWITCH_TONES = {"ACTIVE": "green", "REDUCING": "amber", "HALTED": "red"}
MAX_CANCEL = 500  # more than this at once is the kill switch's job


def order_status_badge(status: str):
    status = OrderStatus(status)
    return badge(status.replace("_", " ").capitalize(), STATUS_TONES[status], title=status.label)


def side_badge(side: str):
    return badge(side, "buy" if side == OrderSide.BUY else "sell")


class ShortChoicesFilter(admin.ChoicesFieldListFilter):
    """A choices filter listing the stored values ("PARTIALLY FILLED", as the columns show
    them) rather than the long labels, so the list keeps its width. No facet counts."""

    def choices(self, changelist):
        yield {
            "selected": self.lookup_val is None,
            "query_string": changelist.get_query_string(remove=[self.lookup_kwarg]),
            "display": "All",
        }
        for value, _label in self.field.flatchoices:
            yield {
                "selected": self.lookup_val is not None and str(value) in self.lookup_val,
                "query_string": changelist.get_query_string({self.lookup_kwarg: value}),
                "display": str(value).replace("_", " "),
            }


def compact_json(value) -> str:
    return json.dumps(value, sort_keys=True, default=str) if value else "—"


# --- orders ------------------------------------------------------------------------------------


class OrderEventInline(ReadOnlyInline):
    """The order's history, oldest first: read-only (the table refuses changes anyway)."""

    model = OrderEvent
    fields = ("created_at", "kind", "transition", "source", "actor", "reason", "event_details")
    readonly_fields = fields
    ordering = ("created_at", "id")
    verbose_name_plural = "history (order events, oldest first)"

    @admin.display(description="status")
    def transition(self, event):
        if event.from_status == event.to_status:
            return event.to_status
        return f"{event.from_status or '—'} → {event.to_status}"

    @admin.display(description="details")
    def event_details(self, event):
        return compact_json(event.details)


class TradeInline(ReadOnlyInline):
    """The order's fills with their charges, in execution order."""

    model = Trade
    fk_name = "order"
    fields = (
        "trade_id",
        "executed_at",
        "quantity",
        "price",
        *Trade.VALUE_FIELDS,
    )
    readonly_fields = fields
    ordering = ("executed_at", "id")
    verbose_name_plural = "trades (fills, with charges)"


class CancelForm(forms.Form):
    reason = forms.CharField(
        required=False,
        max_length=500,
        widget=forms.TextInput(
            attrs={"size": 60, "placeholder": "why (kept in each order's history)"}
        ),
        help_text="Optional; the order history records who cancelled, when and why.",
    )


ORDER_CSV = (
    ("id", "id"),
    ("created_at", "created_at"),
    ("strategy", "strategy__name"),
    ("client_order_id", "client_order_id"),
    ("broker_order_id", "broker_order_id"),
    ("symbol", "symbol"),
    ("exchange", "exchange"),
    ("segment", "segment"),
    ("product", "product"),
    ("side", "side"),
    ("order_type", "order_type"),
    ("validity", "validity"),
    ("quantity", "quantity"),
    ("filled_quantity", "filled_quantity"),
    ("price", "price"),
    ("trigger_price", "trigger_price"),
    ("average_price", "average_price"),
    ("status", "status"),
    ("status_message", "status_message"),
    ("tag", "tag"),
)


@admin.register(Order)
class OrderAdmin(LargeTableAdmin):
    """Orders: reviewed here, cancelled through ``order_cancel`` after a confirmation page.

    The detail page is read-only (everything on it was asked by a strategy or decided by the
    broker). Searching matches exactly (indexed): a symbol, a client or broker order id, our
    broker tag, or an order number.
    """

    list_display = (
        "id",
        "created",
        "strategy",
        "instrument",
        "side_label",
        "filled_of_quantity",
        "limit_price",
        "average",
        "status_label",
    )
    list_display_links = ("id", "created")
    list_filter = (
        ("status", ShortChoicesFilter),
        "strategy",
        ("product", ShortChoicesFilter),
        ("exchange", ShortChoicesFilter),
        ("side", ShortChoicesFilter),
    )
    list_select_related = ("strategy",)
    date_hierarchy = "created_at"
    sortable_by = ("id", "created")
    search_fields = ("symbol", "client_order_id", "broker_order_id", "broker_tag")
    search_help_text = (
        "Exact match: symbol (RELIANCE), client order id, broker order id, broker tag or order "
        "number."
    )
    actions = ("cancel_orders", "export_csv")
    inlines = (OrderEventInline, TradeInline)
    fieldsets = (
        (None, {"fields": ("summary",)}),
        (
            "Requested by the strategy",
            {
                "fields": (
                    ("strategy", "client_order_id", "tag"),
                    ("symbol", "exchange", "segment", "product"),
                    ("side", "quantity", "order_type", "validity"),
                    ("price", "trigger_price", "stop_loss", "take_profit"),
                    "request_fingerprint",
                )
            },
        ),
        (
            "Decided by the broker",
            {
                "fields": (
                    ("status", "status_message"),
                    ("broker_tag", "broker_order_id"),
                    ("filled_quantity", "average_price", "modification_count"),
                )
            },
        ),
        (
            "Timeline",
            {
                "fields": (
                    ("created_at", "submitted_at", "acknowledged_at"),
                    ("last_fill_at", "filled_at"),
                    ("cancel_requested_at", "cancelled_at", "rejected_at", "expired_at"),
                    "updated_at",
                )
            },
        ),
        ("Metadata", {"classes": ("collapse",), "fields": ("metadata",)}),
    )

    def get_readonly_fields(self, request, obj=None):
        return ["summary", *(f.name for f in Order._meta.fields)]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False  # read-only; acting on an order is cancelling it (has_cancel_permission)

    def has_delete_permission(self, request, obj=None):
        return False

    def has_cancel_permission(self, request, obj=None):
        return request.user.has_perm("orders.cancel_order")

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        match = (
            Q(symbol=term.upper())
            | Q(client_order_id=term)
            | Q(broker_order_id=term)
            | Q(broker_tag=term.upper())
        )
        if term.isascii() and term.isdigit() and int(term) < 2**63:
            match |= Q(pk=int(term))
        return queryset.filter(match), False

    # --- columns ---

    @admin.display(description="time", ordering="created_at")
    def created(self, order):
        return format_html(
            '<span title="{}">{}</span>',
            timezone.localtime(order.created_at).isoformat(sep=" ", timespec="seconds"),
            local_time(order.created_at),
        )

    @admin.display(description="instrument")
    def instrument(self, order):
        return instrument_label(order)

    @admin.display(description="side")
    def side_label(self, order):
        return side_badge(order.side)

    @admin.display(description="filled / qty")
    def filled_of_quantity(self, order):
        return f"{order.filled_quantity:,} / {order.quantity:,}"

    @admin.display(description="type / price")
    def limit_price(self, order):
        parts = [order.order_type]
        if order.price is not None:
            parts.append(price(order.price))
        if order.trigger_price is not None:
            parts.append(f"trigger {price(order.trigger_price)}")
        return " ".join(parts)

    @admin.display(description="avg price")
    def average(self, order):
        return price(order.average_price)

    @admin.display(description="status")
    def status_label(self, order):
        return order_status_badge(order.status)

    @admin.display(description="order")
    def summary(self, order):
        filled = f"{order.filled_quantity:,} of {order.quantity:,} filled"
        if order.average_price is not None:
            filled += f" at {price(order.average_price)}"
        return format_html(
            '<span class="oms-summary">{} {} <strong>{}</strong> {} · {} · {} · {} {}</span>',
            side_badge(order.side),
            f"{order.quantity:,}",
            order.symbol,
            order.exchange,
            f"{order.order_type} {order.product}",
            filled,
            order_status_badge(order.status),
            order.status_message,
        )

    # --- the detail page and its cancel button ---

    def get_urls(self):
        return [
            *object_page_paths(
                self.admin_site, "cancel/", self.cancel_view, name="orders_order_cancel"
            ),
            *super().get_urls(),
        ]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("strategy")

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        context["can_cancel"] = (
            obj is not None and obj.status in CANCELLABLE and self.has_cancel_permission(request)
        )
        return super().render_change_form(request, context, add, change, form_url, obj)

    def cancel_view(self, request, object_id):
        """One order's cancel: a confirmation page, then ``order_cancel`` on POST."""
        if not self.has_cancel_permission(request):
            raise PermissionDenied
        order = get_object_or_404(Order.objects.select_related("strategy"), pk=object_id)
        change_url = reverse("admin:orders_order_change", args=[order.pk])
        if order.status not in CANCELLABLE:
            self.message_user(
                request, f"Order {order.pk} is {order.status}: nothing to cancel.", messages.WARNING
            )
            return HttpResponseRedirect(change_url)
        form = CancelForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            self._cancel(request, [order.pk], form.cleaned_data["reason"])
            return HttpResponseRedirect(change_url)
        return self._cancel_confirmation(request, [order], form, skipped=0)

    # --- actions ---

    @admin.action(description="Cancel selected working orders…", permissions=["cancel"])
    def cancel_orders(self, request, queryset):
        working = queryset.filter(status__in=sorted(CANCELLABLE))
        ids = list(working.values_list("pk", flat=True)[: MAX_CANCEL + 1])
        if len(ids) > MAX_CANCEL:
            self.message_user(
                request,
                f"More than {MAX_CANCEL} working orders selected: narrow the filters, or set "
                "the kill switch to HALTED, which cancels every working order of its scope.",
                messages.ERROR,
            )
            return None
        if not ids:
            self.message_user(
                request,
                "None of the selected orders is working: nothing to cancel.",
                messages.WARNING,
            )
            return None
        form = CancelForm(request.POST if request.POST.get("confirmed") == "yes" else None)
        if form.is_bound and form.is_valid():
            self._cancel(request, ids, form.cleaned_data["reason"])
            return None
        selected = queryset.order_by()[: MAX_CANCEL * 10].count()
        orders = list(working.select_related("strategy").order_by("-created_at", "-id"))
        return self._cancel_confirmation(
            request, orders, form, skipped=selected - len(orders), action="cancel_orders"
        )

    def _cancel_confirmation(self, request, orders, form, *, skipped: int, action: str = ""):
        context = {
            **self.admin_site.each_context(request),
            "title": "Cancel orders?" if len(orders) > 1 else f"Cancel order {orders[0].pk}?",
            "opts": self.opts,
            "orders": orders,
            "skipped": skipped,
            "form": form,
            "action": action,
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/orders/order/cancel_confirmation.html", context)

    def _cancel(self, request, order_ids, reason: str) -> None:
        actor = request.user.get_username()
        reason = reason.strip() or f"cancelled in the admin by {actor}"
        requested, finished = 0, []
        for order_id in order_ids:
            try:
                order = order_cancel(order_id, actor=actor, source=EventSource.ADMIN, reason=reason)
            except (IllegalOrderState, OrderNotFound):
                finished.append(str(order_id))  # it finished between the page and the click
                continue
            requested += 1
            self.log_change(request, order, f"Cancel requested ({order.status}): {reason}")
        self.message_user(
            request,
            f"Cancel requested for {requested} order(s): cancelled at once if never sent, "
            "otherwise CANCEL_PENDING until the broker answers.",
            messages.SUCCESS,
        )
        if finished:
            self.message_user(
                request,
                f"Left alone, no longer working: {', '.join(finished)}.",
                messages.WARNING,
            )

    @admin.action(description="Export selected orders to CSV", permissions=["view"])
    def export_csv(self, request, queryset):
        header = [name for name, _ in ORDER_CSV]
        rows = queryset.values_list(*(field for _, field in ORDER_CSV)).iterator(chunk_size=2000)
        return csv_download(f"orders-{timezone.localdate():%Y%m%d}.csv", header, rows)


# --- trades ------------------------------------------------------------------------------------

TRADE_CSV = (
    "id",
    "trade_id",
    "executed_at",
    "order_id",
    "strategy__name",
    "symbol",
    "exchange",
    "product",
    "side",
    "quantity",
    "price",
    *Trade.VALUE_FIELDS,
)


@admin.register(Trade)
class TradeAdmin(ReadOnlyAdmin, LargeTableAdmin):
    """Fills with their charges: read-only (the table refuses changes), exported as CSV."""

    list_display = (
        "trade_id",
        "executed",
        "strategy",
        "order_link",
        "instrument",
        "side_label",
        "quantity",
        "fill_price",
        "value",
        "charges",
        "net",
    )
    list_filter = ("strategy", "side", "product", "exchange")
    list_select_related = ("strategy",)
    date_hierarchy = "executed_at"
    sortable_by = ("executed",)
    search_fields = ("trade_id",)
    search_help_text = "Exact match: the broker's trade id, or an order number."
    actions = ("export_csv",)
    fields = (
        ("trade_id", "executed_at"),
        ("order", "strategy"),
        ("symbol", "exchange", "product", "side"),
        ("quantity", "price", "gross_value"),
        ("brokerage", "stt", "exchange_charges"),
        ("sebi_charges", "stamp_duty", "gst"),
        ("total_charges", "charges_percentage", "net_value"),
        "created_at",
    )
    readonly_fields = [f for line in fields for f in (line if isinstance(line, tuple) else (line,))]

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        match = Q(trade_id=term)
        if term.isascii() and term.isdigit() and int(term) < 2**63:
            match |= Q(order_id=int(term))
        return queryset.filter(match), False

    @admin.display(description="time", ordering="executed_at")
    def executed(self, trade):
        return local_time(trade.executed_at)

    @admin.display(description="order")
    def order_link(self, trade):
        url = reverse("admin:orders_order_change", args=[trade.order_id])
        return format_html('<a href="{}">#{}</a>', url, trade.order_id)

    @admin.display(description="instrument")
    def instrument(self, trade):
        return instrument_label(trade)

    @admin.display(description="side")
    def side_label(self, trade):
        return side_badge(trade.side)

    @admin.display(description="price")
    def fill_price(self, trade):
        return price(trade.price)

    @admin.display(description="value")
    def value(self, trade):
        return inr(trade.gross_value)

    @admin.display(description="charges")
    def charges(self, trade):
        return inr(trade.total_charges)

    @admin.display(description="net cash")
    def net(self, trade):
        return inr(trade.net_value)

    @admin.display(description="charges % of value")
    def charges_percentage(self, trade):
        return f"{trade.charges_percentage}%"

    @admin.action(description="Export selected trades to CSV", permissions=["view"])
    def export_csv(self, request, queryset):
        rows = queryset.values_list(*TRADE_CSV).iterator(chunk_size=2000)
        header = [name.replace("strategy__name", "strategy") for name in TRADE_CSV]
        return csv_download(f"trades-{timezone.localdate():%Y%m%d}.csv", header, rows)


# --- strategies ----------------------------------------------------------------------------------


class StrategyForm(forms.ModelForm):
    class Meta:
        model = Strategy
        fields = ("name", "description", "status", "mode", "config")

    def clean_mode(self):
        mode = self.cleaned_data["mode"]
        if self.instance.pk:
            refusal = strategy_mode_refusal(self.instance, mode)
            if refusal:
                raise forms.ValidationError(refusal)
        return mode


class RiskLimitInline(admin.StackedInline):
    """The strategy's own limits (the strictest of these, the global row and its config hold)."""

    model = RiskLimit
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
class StrategyAdmin(OmsModelAdmin):
    """Strategies. Status and mode change through their services (a mode change only when the
    strategy is flat); performance counters and PnL come from fills and are read-only."""

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
    list_filter = ("status", "mode")
    search_fields = ("name",)
    inlines = (RiskLimitInline, StrategyApiKeyInline)
    fieldsets = (
        (None, {"fields": ("name", "description")}),
        (
            "Trading",
            {
                "fields": (("status", "mode"), "kill_switch"),
                "description": "A mode change (PAPER ⇄ LIVE) is refused while the strategy has "
                "working orders or open positions.",
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
        "limits_in_force",
        "total_trades",
        "winning_trades",
        "losing_trades",
        "win_rate_display",
        "total_pnl_display",
        "api_keys",
        "created_at",
        "updated_at",
    )

    def has_delete_permission(self, request, obj=None):
        return False

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
        actor = request.user.get_username()
        plain = [name for name in form.changed_data if name not in ("status", "mode")]
        if plain:
            obj.save(update_fields=[*plain, "updated_at"])
        try:
            if "status" in form.changed_data:
                strategy_status_set(obj, StrategyStatus(obj.status), actor=actor)
            if "mode" in form.changed_data:
                strategy_mode_set(obj, obj.mode, actor=actor)
        except OrderError as error:  # it stopped being flat between the check and the save
            self.message_user(request, error.message, messages.ERROR)


# --- API keys --------------------------------------------------------------------------------


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
