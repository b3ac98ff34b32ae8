"""Cursor pagination: stable pages while new rows arrive, and no COUNT(*) on big tables.

Every list answers ``{"next": url | null, "previous": url | null, "results": [...]}``;
``page_size`` (1 to 500, default 50) sets the page length.
"""

from rest_framework.pagination import CursorPagination


class NewestFirstPagination(CursorPagination):
    """Orders: newest first."""

    ordering = ("-created_at", "-id")
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500


class ExecutedAtPagination(NewestFirstPagination):
    """Trades: the latest fill first."""

    ordering = ("-executed_at", "-id")


class OpenedAtPagination(NewestFirstPagination):
    """Positions: the latest opened first."""

    ordering = ("-opened_at", "-id")
