"""Cursor pagination: stable pages while new rows arrive, and no COUNT(*) on big tables.

Every list answers ``{"next": url | null, "previous": url | null, "results": [...]}``;
``page_size`` (1 to 500, default 50) sets the page length. A ``cursor`` this API did not make
is a 400 naming it: DRF would put a forged position straight into the query's filter.
"""

from __future__ import annotations

from datetime import datetime

from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils import timezone
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import CursorPagination

INVALID_CURSOR = "not a cursor from this list's next or previous link; start again without one"


class NewestFirstPagination(CursorPagination):
    """Orders: newest first."""

    ordering = ("-created_at", "-id")
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500

    def paginate_queryset(self, queryset, request, view=None):
        # The column the cursor's position is compared with (the first of the ordering).
        self.position_field = queryset.model._meta.get_field(self.ordering[0].lstrip("-"))
        return super().paginate_queryset(queryset, request, view)

    def decode_cursor(self, request):
        """DRF's cursor, its position checked to be a value of the ordering column: an aware
        datetime for every list here (the ones this API writes carry their offset)."""
        try:
            cursor = super().decode_cursor(request)
        except NotFound:
            raise ValidationError({self.cursor_query_param: INVALID_CURSOR}) from None
        if cursor is None or cursor.position is None:
            return cursor
        try:
            position = self.position_field.to_python(cursor.position)
        except DjangoValidationError:
            position = None
        if position is None or (isinstance(position, datetime) and timezone.is_naive(position)):
            raise ValidationError({self.cursor_query_param: INVALID_CURSOR})
        return cursor


class ExecutedAtPagination(NewestFirstPagination):
    """Trades: the latest fill first."""

    ordering = ("-executed_at", "-id")


class OpenedAtPagination(NewestFirstPagination):
    """Positions: the latest opened first."""

    ordering = ("-opened_at", "-id")
