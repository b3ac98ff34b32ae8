"""Serializer fields every API of the OMS shares: money as decimal strings both ways.

Prices and amounts are shown with 2 decimals (the paisa); ``average_price`` (a weighted average
of fills, not on the paisa) with up to 6. An amount sent as a JSON number, float or integer, is
refused: a float cannot be trusted to hold "2450.10", and one rule for every number is one
a client cannot half-follow. So is a string that is not plain decimal notation ("1e3", "1_500").
"""

from __future__ import annotations

import json
import re
from decimal import Decimal, InvalidOperation

from rest_framework import serializers

from orders.domain import MAX_PRICE
from orders.money import PAISA

DECIMAL_STRING = re.compile(r"-?[0-9]+(\.[0-9]+)?")
EXAMPLE_AMOUNT = Decimal("2450.50")


class MoneyField(serializers.DecimalField):
    """An amount in rupees to the paisa, as a decimal string ("2450.50").

    Any JSON number (a float, an integer, true) or a string in another notation is refused,
    naming the value and showing it written as it should be: 'price 1500: must be a decimal
    string, e.g. "1500.00"'.
    """

    default_error_messages = {
        "not_a_string": '{name} {value}: must be a decimal string, e.g. "{example}"',
    }

    def __init__(self, **kwargs):
        kwargs.setdefault("max_digits", 14)
        kwargs.setdefault("decimal_places", 2)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if isinstance(data, str) and DECIMAL_STRING.fullmatch(data):
            return super().to_internal_value(data)
        if isinstance(data, Decimal):  # from Python callers; JSON never makes one here
            return super().to_internal_value(data)
        shown = json.dumps(data, default=str)
        shown = shown if len(shown) <= 40 else f"{shown[:37]}..."
        self.fail("not_a_string", name=self.field_name, value=shown, example=_example(data))


def _example(data) -> str:
    """The value as a decimal string on the paisa, when it is a sane amount; else a sample."""
    try:
        amount = Decimal(str(data).strip())
    except InvalidOperation:
        return str(EXAMPLE_AMOUNT)
    if isinstance(data, bool) or not amount.is_finite() or not 0 < amount <= MAX_PRICE:
        return str(EXAMPLE_AMOUNT)
    return str(amount.quantize(PAISA))


class AveragePriceField(serializers.DecimalField):
    """A weighted average price: at least 2 and at most 6 decimals ("2450.50", "100.333333")."""

    def __init__(self, **kwargs):
        kwargs.setdefault("max_digits", 20)
        kwargs.setdefault("decimal_places", 6)
        super().__init__(**kwargs)

    def to_representation(self, value):
        text = super().to_representation(value)
        if text is None or "." not in text:
            return text
        whole, fraction = text.split(".")
        return f"{whole}.{fraction.rstrip('0').ljust(2, '0')}"


class FieldsOnce:
    """Builds a serializer's fields once per class, not once per object.

    DRF builds and deep-copies every field for each serializer instance: for an order placed or
    shown, that was most of the API call's CPU. These serializers keep no per-request state in
    their fields (no hyperlinks, no context, never partial), so the fields of one context-free
    instance serve every later one; validation and output stay DRF's own code.
    """

    @property
    def fields(self):
        cls = type(self)
        fields = cls.__dict__.get("_fields_once")
        if fields is None:
            prototype = cls.__new__(cls)
            serializers.BaseSerializer.__init__(prototype)
            fields = cls._fields_once = serializers.Serializer.fields.func(prototype)
        return fields


class FieldsOnceSerializer(FieldsOnce, serializers.ModelSerializer):
    """A read-only model serializer with its fields built once (see FieldsOnce)."""
