"""Baskets and sliced parents: read-only, each with its orders (which live their own lives)."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import Count
from django.urls import reverse
from django.utils.html import format_html

from omsproject.admin_tools import ReadOnlyAdmin, ReadOnlyInline, instrument_label, local_time
from orders.admin.display import order_status_badge, side_badge
from orders.models import Basket, Order, OrderParent
from orders.varieties import parent_state


class LinkedOrderInline(ReadOnlyInline):
    """The orders of a basket or a parent, each linking to its own page."""

    model = Order
    fields = (
        "order_link",
        "client_order_id",
        "symbol",
        "side",
        "quantity",
        "filled_quantity",
        "average_price",
        "status",
        "variety",
    )
    readonly_fields = fields
    ordering = ("id",)
    show_change_link = True

    @admin.display(description="order")
    def order_link(self, order):
        url = reverse("admin:orders_order_change", args=[order.pk])
        return format_html('<a href="{}">#{}</a>', url, order.pk)


class BasketLegInline(LinkedOrderInline):
    fk_name = "basket"
    verbose_name_plural = "legs (each its own order)"


class ParentChildInline(LinkedOrderInline):
    fk_name = "parent"
    verbose_name_plural = "children (each its own broker order, within the freeze quantity)"


@admin.register(Basket)
class BasketAdmin(ReadOnlyAdmin):
    """Baskets: several orders placed in one request, checked all together."""

    list_display = ("id", "created", "strategy", "client_basket_id", "leg_count", "margin_required")
    list_display_links = ("id", "client_basket_id")
    list_select_related = ("strategy",)
    list_filter = ("strategy",)
    search_fields = ("client_basket_id",)
    inlines = (BasketLegInline,)
    fields = (
        ("strategy", "client_basket_id"),
        ("margin_required", "actor"),
        "created_at",
        "request_fingerprint",
    )

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(legs=Count("orders"))

    @admin.display(description="created", ordering="created_at")
    def created(self, basket):
        return local_time(basket.created_at)

    @admin.display(description="legs", ordering="legs")
    def leg_count(self, basket):
        return basket.legs


@admin.register(OrderParent)
class OrderParentAdmin(ReadOnlyAdmin):
    """Sliced orders: a quantity above the freeze quantity as child orders; the state shown is
    the children's (derived, never stored)."""

    list_display = (
        "id",
        "created",
        "strategy",
        "instrument",
        "side_label",
        "quantity",
        "freeze_quantity",
        "state",
    )
    list_display_links = ("id", "created")
    list_select_related = ("strategy",)
    list_filter = ("strategy",)
    search_fields = ("client_order_id", "symbol")
    inlines = (ParentChildInline,)
    fields = (
        ("strategy", "client_order_id"),
        ("symbol", "exchange", "product"),
        ("side", "quantity", "order_type", "validity"),
        ("price", "trigger_price", "freeze_quantity"),
        "state",
        ("created_at", "cancel_requested_at", "actor"),
    )
    readonly_fields = ("state",)

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("children")

    @admin.display(description="created", ordering="created_at")
    def created(self, parent):
        return local_time(parent.created_at)

    @admin.display(description="instrument")
    def instrument(self, parent):
        return instrument_label(parent)

    @admin.display(description="side")
    def side_label(self, parent):
        return side_badge(parent.side)

    @admin.display(description="state (from its children)")
    def state(self, parent):
        state = parent_state(parent.quantity, list(parent.children.all()))
        average = f" at {state.average_price}" if state.average_price is not None else ""
        return format_html(
            "{} {} of {}{}",
            order_status_badge(state.status),
            state.filled_quantity,
            parent.quantity,
            average,
        )
