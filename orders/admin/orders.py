"""Orders: reviewed with their history and fills, cancelled through ``order_cancel``."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from omsproject.admin_tools import (
    LargeTableAdmin,
    ReadOnlyInline,
    average,
    csv_download,
    instrument_label,
    local_time,
    object_page_paths,
    price,
    quantity,
)
from omsproject.money_format import plural
from orders.admin.display import ShortChoicesFilter, compact_json, order_status_badge, side_badge
from orders.admin.refusals import (
    DayFilter,
    is_risk_refusal,
    risk_codes,
    short_reason,
    violations_list,
)
from orders.enums import EventSource
from orders.models import Order, OrderEvent, Trade
from orders.services import IllegalOrderState, OrderNotFound, order_cancel
from orders.state import CANCELLABLE

MAX_CANCEL = 500  # more than this at once is the kill switch's job


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
    ("variety", "variety"),
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
        "reason",
    )
    list_display_links = ("id", "created")
    list_filter = (
        ("status", ShortChoicesFilter),
        DayFilter,
        "strategy",
        ("product", ShortChoicesFilter),
        ("exchange", ShortChoicesFilter),
        ("side", ShortChoicesFilter),
        ("variety", ShortChoicesFilter),
    )
    list_select_related = ("strategy",)
    date_hierarchy = "created_at"
    change_list_template = "admin/orders/order/change_list.html"
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
                    ("variety", "iceberg_legs", "iceberg_quantity"),
                    ("basket", "parent"),
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
        return ["summary", "risk_refusal", *(f.name for f in Order._meta.fields)]

    def get_fieldsets(self, request, obj=None):
        """A pre-trade refusal is the risk checks' decision: shown as such, one line per
        violation, in place of "Decided by the broker" (no broker saw the order)."""
        fieldsets = super().get_fieldsets(request, obj)
        if obj is None or not is_risk_refusal(obj):
            return fieldsets
        refused = (
            "Refused by risk checks",
            {
                "fields": ("risk_refusal", "status"),
                "description": "The pre-trade checks refused this order before any broker saw "
                "it; each line is one limit or rule it broke (the check's words on hover).",
            },
        )
        return [
            refused if name == "Decided by the broker" else (name, opts) for name, opts in fieldsets
        ]

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
        return f"{quantity(order.filled_quantity)} / {quantity(order.quantity)}"

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
        return average(order.average_price)

    @admin.display(description="status")
    def status_label(self, order):
        return order_status_badge(order.status)

    @admin.display(description="reason")
    def reason(self, order):
        """Why it was refused or rejected: a pre-trade refusal names its checks (their words
        on hover), a broker's rejection gives the broker's message."""
        shown = risk_codes(order) if is_risk_refusal(order) else ""
        return short_reason(order.status_message, shown=shown)

    @admin.display(description="violations")
    def risk_refusal(self, order):
        return violations_list(order)

    @admin.display(description="order")
    def summary(self, order):
        filled = f"{quantity(order.filled_quantity)} of {quantity(order.quantity)} filled"
        if order.average_price is not None:
            filled = format_html("{} at {}", filled, average(order.average_price))
        return format_html(
            '<span class="oms-summary">{} {} <strong>{}</strong> {} · {} · {} · {} {}</span>',
            side_badge(order.side),
            quantity(order.quantity),
            order.symbol,
            order.exchange,
            f"{order.order_type} {order.product}",
            filled,
            order_status_badge(order.status),
            risk_codes(order) if is_risk_refusal(order) else order.status_message,
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
            f"Cancel requested for {plural(requested, 'order')}: cancelled at once if never sent, "
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
