"""Query filters of the orders and trades lists (django-filter), kept apart from the views."""

from __future__ import annotations

import django_filters as filters

from omsproject.api.filters import IdFilter, InstantFilter, UpperCaseFilter
from orders.enums import Exchange, OrderSide, OrderStatus, Product
from orders.models import Order, Trade


class OrderFilter(filters.FilterSet):
    status = filters.MultipleChoiceFilter(
        choices=OrderStatus.choices, help_text="One or more statuses (repeat the parameter)."
    )
    symbol = UpperCaseFilter(field_name="symbol")
    exchange = filters.ChoiceFilter(choices=Exchange.choices)
    side = filters.ChoiceFilter(choices=OrderSide.choices)
    product = filters.ChoiceFilter(choices=Product.choices)
    client_order_id = filters.CharFilter(max_length=64)
    tag = filters.CharFilter(max_length=64)
    created_after = InstantFilter(
        field_name="created_at", lookup_expr="gte", help_text="Created at or after (ISO 8601)."
    )
    created_before = InstantFilter(
        field_name="created_at", lookup_expr="lt", help_text="Created before (ISO 8601)."
    )
    strategy = IdFilter(field_name="strategy_id", help_text="Staff: one strategy's orders.")

    class Meta:
        model = Order
        fields = ()


class TradeFilter(filters.FilterSet):
    order = IdFilter(field_name="order_id", help_text="The fills of one order.")
    symbol = UpperCaseFilter(field_name="symbol")
    exchange = filters.ChoiceFilter(choices=Exchange.choices)
    side = filters.ChoiceFilter(choices=OrderSide.choices)
    product = filters.ChoiceFilter(choices=Product.choices)
    executed_after = InstantFilter(
        field_name="executed_at", lookup_expr="gte", help_text="Executed at or after (ISO 8601)."
    )
    executed_before = InstantFilter(
        field_name="executed_at", lookup_expr="lt", help_text="Executed before (ISO 8601)."
    )
    strategy = IdFilter(field_name="strategy_id", help_text="Staff: one strategy's trades.")

    class Meta:
        model = Trade
        fields = ()
