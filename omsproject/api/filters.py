"""Query filters every API list shares (django-filter): ids, symbols, instants."""

from __future__ import annotations

from datetime import UTC

import django_filters as filters
from django import forms
from django_filters.fields import IsoDateTimeField
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field

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
