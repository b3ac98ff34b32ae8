"""The audit lists' shared pieces: a day-range filter ("Today", from-to), an exact-value filter
for huge tables, and the change list's "Export CSV" button.

``CsvExportMixin`` gives a ModelAdmin the page ``<list>/export.csv`` and a button beside the
list's other tools. The export holds every row the list's filters, search and ordering select
(all of them, not the page shown), read through a server-side cursor ``CSV_CHUNK_ROWS`` rows at
a time and streamed by ``csv_download``, so an export of millions of rows never sits in memory.
It needs the list's view permission and ``risk.export_audit`` (risk officers: risk/roles.py).

To give a list the button: put ``CsvExportMixin`` first among its bases, and name its columns in
``csv_columns`` (without them: every column of the table). ``list_day_filter = "<field>"`` puts
a day-range filter on that field first among the list's filters.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from datetime import date, datetime, time, timedelta

from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import ERROR_FLAG, PAGE_VAR, ChangeList
from django.core.exceptions import PermissionDenied
from django.db import models
from django.http import HttpResponseRedirect
from django.urls import path, reverse
from django.utils import timezone

from omsproject.admin_tools import csv_download

EXPORT_PERMISSION = "risk.export_audit"
CSV_CHUNK_ROWS = 2000  # rows fetched per round trip of the export's server-side cursor

# (header, field path for values_list) or (header, field path, value -> text)
CsvColumn = tuple[str, str] | tuple[str, str, Callable]


# --- filters -------------------------------------------------------------------------------------


class DateRangeFilter(admin.FieldListFilter):
    """Rows of a range of days by a date or time field: Today, Yesterday, Past 7 days, This
    month, or any from-to typed in (both days included, India's calendar).

    The query string says ``<field>__since=2026-12-01&<field>__until=2026-12-02``; the filter is
    ``field >= 00:00 of since AND field < 00:00 of the day after until``, a range on the column
    itself that its index serves (never a cast of the column to a date).
    """

    template = "admin/oms_date_range_filter.html"

    def __init__(self, field, request, params, model, model_admin, field_path):
        self.since_param = f"{field_path}__since"
        self.until_param = f"{field_path}__until"
        super().__init__(field, request, params, model, model_admin, field_path)
        self.title = "day"
        self.since = self._day(self.since_param)
        self.until = self._day(self.until_param)
        if self.since and self.until and self.since > self.until:
            raise IncorrectLookupParameters(
                f"{self.since_param} {self.since}: must not be after {self.until_param} "
                f"{self.until}"
            )
        self.other_params: list[tuple[str, str]] = []

    def _day(self, name: str) -> date | None:
        values = self.used_parameters.get(name) or [""]
        text = values[-1].strip()
        if not text:
            return None
        try:
            return date.fromisoformat(text)
        except ValueError as error:
            raise IncorrectLookupParameters(
                f"{name} {text!r}: must be a day as YYYY-MM-DD"
            ) from error

    def expected_parameters(self):
        return [self.since_param, self.until_param]

    def _bound(self, day: date):
        if isinstance(self.field, models.DateTimeField):
            return timezone.make_aware(datetime.combine(day, time.min))
        return day

    def queryset(self, request, queryset):
        if self.since:
            queryset = queryset.filter(**{f"{self.field_path}__gte": self._bound(self.since)})
        if self.until:
            day_after = self.until + timedelta(days=1)
            queryset = queryset.filter(**{f"{self.field_path}__lt": self._bound(day_after)})
        return queryset

    def presets(self) -> list[tuple[str, date | None, date | None]]:
        today = timezone.localdate()
        return [
            ("Any date", None, None),
            ("Today", today, today),
            ("Yesterday", today - timedelta(days=1), today - timedelta(days=1)),
            ("Past 7 days", today - timedelta(days=6), today),
            ("This month", today.replace(day=1), today),
        ]

    def choices(self, changelist):
        # What the from-to form carries along: every other filter of the list (not the page).
        self.other_params = [
            (name, value)
            for name, value in changelist.params.items()
            if name not in self.expected_parameters()
        ]
        for label, since, until in self.presets():
            query = {self.since_param: since, self.until_param: until}
            yield {
                "selected": (self.since, self.until) == (since, until),
                "query_string": changelist.get_query_string(
                    {name: day.isoformat() for name, day in query.items() if day},
                    remove=[name for name, day in query.items() if not day],
                ),
                "display": label,
            }


class ExactValueFilter(admin.FieldListFilter):
    """A text box for one exact value of a column (a person's name on a table of millions of
    rows, where listing every distinct value would scan the table)."""

    template = "admin/oms_exact_value_filter.html"

    def __init__(self, field, request, params, model, model_admin, field_path):
        self.parameter = f"{field_path}__exact"
        super().__init__(field, request, params, model, model_admin, field_path)
        self.value = (self.used_parameters.get(self.parameter) or [""])[-1].strip()
        self.other_params: list[tuple[str, str]] = []

    def expected_parameters(self):
        return [self.parameter]

    def queryset(self, request, queryset):
        if not self.value:
            return queryset
        return queryset.filter(**{self.parameter: self.value})

    def choices(self, changelist):
        self.other_params = [
            (name, value) for name, value in changelist.params.items() if name != self.parameter
        ]
        yield {
            "selected": not self.value,
            "query_string": changelist.get_query_string(remove=[self.parameter]),
            "display": "Anyone",
        }


def titled(filter_class: type[admin.FieldListFilter], title: str) -> type:
    """``filter_class`` under a title of our words ("By action", not "By action flag")."""

    class Titled(filter_class):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.title = title

    Titled.__name__ = Titled.__qualname__ = f"{filter_class.__name__}As{title.title()}"
    return Titled


# --- the export ----------------------------------------------------------------------------------


class _ExportChangeList(ChangeList):
    """The list's filters, search and ordering, without its page: the export reads every row
    itself (no count, no page query)."""

    def get_results(self, request):
        self.result_count = self.full_result_count = None
        self.result_list = []
        self.can_show_all = self.multi_page = False
        self.paginator = None


def table_columns(model) -> list[CsvColumn]:
    """Every column of a table, as stored: a foreign key as its id, followed by the row's name
    when it has one (a strategy's)."""
    columns: list[CsvColumn] = []
    for field in model._meta.concrete_fields:
        columns.append((field.attname, field.attname))
        if field.is_relation and any(f.name == "name" for f in field.related_model._meta.fields):
            columns.append((field.name, f"{field.name}__name"))
    return columns


def _cell(value):
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True, default=str)
    return value


class CsvExportMixin:
    """A change list's "Export CSV" button: every row its filters select, streamed."""

    csv_columns: Iterable[CsvColumn] = ()
    export_permission = EXPORT_PERMISSION
    # A date or time field: the list's first filter is then a DateRangeFilter on it.
    list_day_filter: str | None = None

    def get_list_filter(self, request):
        filters = super().get_list_filter(request)
        if self.list_day_filter:
            return ((self.list_day_filter, DateRangeFilter), *filters)
        return filters

    def has_export_permission(self, request) -> bool:
        return self.has_view_permission(request) and request.user.has_perm(self.export_permission)

    def get_csv_columns(self, request) -> list[CsvColumn]:
        return list(self.csv_columns) or table_columns(self.model)

    def _export_url_name(self) -> str:
        return f"{self.opts.app_label}_{self.opts.model_name}_export"

    def get_urls(self):
        export = path(
            "export.csv",
            self.admin_site.admin_view(self.export_view),
            name=self._export_url_name(),
        )
        return [export, *super().get_urls()]

    def get_changelist(self, request, **kwargs):
        match = request.resolver_match
        if match is not None and match.url_name == self._export_url_name():
            return _ExportChangeList
        return super().get_changelist(request, **kwargs)

    def changelist_view(self, request, extra_context=None):
        extra_context = dict(extra_context or {})
        if self.has_export_permission(request):
            query = request.GET.copy()
            for name in (PAGE_VAR, ERROR_FLAG):
                query.pop(name, None)
            url = reverse(f"admin:{self._export_url_name()}")
            extra_context["csv_export_url"] = f"{url}?{query.urlencode()}" if query else url
        return super().changelist_view(request, extra_context)

    def export_view(self, request):
        """The CSV of every row the list's query string selects, in the list's order."""
        if not self.has_export_permission(request):
            raise PermissionDenied
        try:
            changelist = self.get_changelist_instance(request)
        except IncorrectLookupParameters as error:
            self.message_user(request, f"Nothing exported: {error}", messages.ERROR)
            list_url = reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_changelist")
            return HttpResponseRedirect(f"{list_url}?{ERROR_FLAG}=1")
        columns = self.get_csv_columns(request)
        converters = [column[2] if len(column) > 2 else _cell for column in columns]
        rows = changelist.queryset.values_list(*(column[1] for column in columns))
        filename = (
            f"{self.opts.verbose_name_plural.replace(' ', '-')}-{timezone.localdate():%Y%m%d}"
        )
        return csv_download(
            f"{filename}.csv",
            [column[0] for column in columns],
            (
                [convert(value) for convert, value in zip(converters, row, strict=True)]
                for row in rows.iterator(chunk_size=CSV_CHUNK_ROWS)
            ),
        )
