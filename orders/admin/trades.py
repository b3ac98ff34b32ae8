"""Trades (fills with their charges): read-only, exported as CSV."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from omsproject.admin_tools import (
    LargeTableAdmin,
    ReadOnlyAdmin,
    csv_download,
    inr,
    instrument_label,
    local_time,
    price,
)
from orders.admin.display import side_badge
from orders.models import Trade

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
