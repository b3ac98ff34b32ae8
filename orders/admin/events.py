"""The audit lists of the orders app: every order event (an order's history, across orders) and
every strategy event (what the feed and the webhooks delivered). Both read-only, built for
millions of rows (LargeTableAdmin), filtered by day, strategy, kind and who; risk officers
export the filtered rows to CSV (omsproject.admin_audit.CsvExportMixin).

Both are listed newest first, by (``created_at``, ``id``): the order of an index (orders
migration audit_indexes), which serves the whole list, a day range, and (with ``actor`` first)
one person's order events.
"""

from __future__ import annotations

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from omsproject.admin_audit import CsvExportMixin, DateRangeFilter, ExactValueFilter, titled
from omsproject.admin_tools import LargeTableAdmin, ReadOnlyAdmin, local_time
from orders.admin.display import ShortChoicesFilter, compact_json, order_status_badge
from orders.models import Order, OrderEvent, StrategyEvent

ORDER_EVENT_CSV = (
    ("id", "id"),
    ("created_at", "created_at"),
    ("order_id", "order_id"),
    ("strategy", "order__strategy__name"),
    ("client_order_id", "order__client_order_id"),
    ("symbol", "order__symbol"),
    ("kind", "kind"),
    ("from_status", "from_status"),
    ("to_status", "to_status"),
    ("source", "source"),
    ("actor", "actor"),
    ("reason", "reason"),
    ("details", "details"),
)

STRATEGY_EVENT_CSV = (
    ("id", "id"),
    ("seq", "seq"),
    ("created_at", "created_at"),
    ("strategy", "strategy__name"),
    ("kind", "kind"),
    ("order_id", "order_id"),
    ("client_order_id", "client_order_id"),
    ("payload", "payload"),
)


def _order_link(order_id: int | None):
    if order_id is None:
        return "—"
    url = reverse("admin:orders_order_change", args=[order_id])
    return format_html('<a href="{}">{}</a>', url, order_id)


class _OrderSearch:
    """Searching matches an order exactly: its number or its client order id, resolved to order
    ids first (one indexed query), so the list is read through the events' index on
    ``order_id`` rather than a join that no index serves."""

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        order_ids = list(
            Order.objects.filter(client_order_id=term).values_list("pk", flat=True)[:100]
        )
        if term.isascii() and term.isdigit() and int(term) < 2**63:
            order_ids.append(int(term))
        return queryset.filter(order_id__in=order_ids), False


@admin.register(OrderEvent)
class OrderEventAdmin(CsvExportMixin, _OrderSearch, ReadOnlyAdmin, LargeTableAdmin):
    """Every order's history in one list: status changes, fills, modifications, refusals."""

    list_display = (
        "id",
        "created",
        "order_link",
        "strategy",
        "symbol",
        "kind",
        "transition",
        "source",
        "actor",
        "reason",
    )
    list_display_links = ("id", "created")
    list_filter = (
        ("created_at", DateRangeFilter),
        ("order__strategy", admin.RelatedFieldListFilter),
        ("kind", ShortChoicesFilter),
        ("source", ShortChoicesFilter),
        ("to_status", titled(ShortChoicesFilter, "status reached")),
        ("actor", ExactValueFilter),
    )
    list_select_related = ("order__strategy",)
    sortable_by = ("created",)
    search_fields = ("order__client_order_id",)  # the search box; matching is _OrderSearch's
    search_help_text = "Exact match: order number, or client order id."
    csv_columns = ORDER_EVENT_CSV
    fields = (
        "created_at",
        "order",
        "kind",
        "from_status",
        "to_status",
        "source",
        "actor",
        "reason",
        "event_details",
    )
    readonly_fields = fields

    def get_ordering(self, request):
        return ["-created_at", "-id"]

    @admin.display(description="time", ordering="created_at")
    def created(self, event):
        return local_time(event.created_at)

    @admin.display(description="order")
    def order_link(self, event):
        return _order_link(event.order_id)

    @admin.display(description="strategy")
    def strategy(self, event):
        return event.order.strategy.name

    @admin.display(description="symbol")
    def symbol(self, event):
        return event.order.symbol

    @admin.display(description="status")
    def transition(self, event):
        if event.from_status == event.to_status or not event.from_status:
            return order_status_badge(event.to_status)
        return format_html(
            "{} → {}", order_status_badge(event.from_status), order_status_badge(event.to_status)
        )

    @admin.display(description="details")
    def event_details(self, event):
        return compact_json(event.details)


@admin.register(StrategyEvent)
class StrategyEventAdmin(CsvExportMixin, ReadOnlyAdmin, LargeTableAdmin):
    """What each strategy heard (its event feed and webhooks): read-only, newest first."""

    list_display = ("id", "seq", "created", "strategy", "kind", "order_link", "summary")
    list_display_links = ("id", "created")
    list_filter = (
        ("created_at", DateRangeFilter),
        "strategy",
        ("kind", ShortChoicesFilter),
    )
    list_select_related = ("strategy",)
    sortable_by = ("created",)
    search_fields = ("seq",)  # the search box; matching is get_search_results'
    search_help_text = "Exact match: the feed's seq (a strategy's cursor)."
    csv_columns = STRATEGY_EVENT_CSV
    fields = ("seq", "created_at", "strategy", "kind", "order", "client_order_id", "event")
    readonly_fields = fields

    def get_ordering(self, request):
        return ["-created_at", "-id"]

    @admin.display(description="time", ordering="created_at")
    def created(self, event):
        return local_time(event.created_at)

    @admin.display(description="order")
    def order_link(self, event):
        return _order_link(event.order_id)

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        if not (term.isascii() and term.isdigit() and int(term) < 2**63):
            return queryset.none(), False
        return queryset.filter(seq=int(term)), False

    @admin.display(description="payload")
    def summary(self, event):
        # Short enough for the list to fit 1440 px; the whole payload on hover and on its page.
        text = compact_json(event.payload)
        shown = text if len(text) <= 60 else text[:59] + "…"
        return format_html('<span title="{}">{}</span>', text, shown)

    @admin.display(description="payload")
    def event(self, event):
        return compact_json(event.payload)
