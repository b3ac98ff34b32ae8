"""Query filters of the orders and trades lists (django-filter), kept apart from the views."""

from __future__ import annotations

from datetime import UTC

import django_filters as filters
from django import forms
from django_filters.fields import IsoDateTimeField
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field

from orders.enums import Exchange, OrderSide, OrderStatus, Product
from orders.models import Order, Trade

MAX_ID = 2**63 - 1


class UpperCaseFilter(filters.CharFilter):
    """An exact match on an upper-case column (symbols), whatever the case asked."""

    def filter(self, qs, value):
        return super().filter(qs, value.upper() if value else value)


@extend_schema_field(OpenApiTypes.INT64)
class IdFilter(filters.NumberFilter):
    """A row id: a whole number in the database's range."""

    field_class = forms.IntegerField

    def __init__(self, *args, **kwargs):
        super().__init__(*args, min_value=1, max_value=MAX_ID, **kwargs)


class UtcDateTimeField(IsoDateTimeField):
    """An ISO 8601 instant, compared in UTC: PostgreSQL refuses offsets past ±15:59 that
    Python accepts, and an instant at the edge of the calendar has no UTC equivalent."""

    def to_python(self, value):
        moment = super().to_python(value)
        if moment is None:
            return None
        try:
            return moment.astimezone(UTC)
        except (OverflowError, ValueError):
            raise forms.ValidationError(f"{value}: out of range", code="invalid") from None


class InstantFilter(filters.IsoDateTimeFilter):
    field_class = UtcDateTimeField


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
