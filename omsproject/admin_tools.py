"""Pieces every OMS ModelAdmin shares: lists that stay fast on millions of rows, read-only
screens, an object's own pages, CSV downloads, status badges and rupee amounts.

A change list of a huge table costs, whatever its size: one capped COUNT (at most
``LargeTablePaginator.max_count`` rows are counted), the page itself through an index in the
list's order, and a date drill-down drawn from the calendar rather than from a
``SELECT DISTINCT`` over the table (Django's ``date_hierarchy`` runs one per level).
"""

from __future__ import annotations

import calendar
import csv
from collections.abc import Iterable
from datetime import date
from decimal import Decimal

from django.contrib import admin
from django.core.exceptions import FieldDoesNotExist
from django.core.paginator import Paginator
from django.db import connection
from django.db.models import Min
from django.http import Http404, StreamingHttpResponse
from django.urls import path
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.html import format_html
from django.utils.text import capfirst

from omsproject import money_format

# --- counting ----------------------------------------------------------------------------------


def table_row_estimate(model) -> int | None:
    """PostgreSQL's own row estimate of a model's table (kept by ANALYZE and autovacuum).

    None when the table has never been analysed (PostgreSQL reports -1).
    """
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass",
            [model._meta.db_table],
        )
        row = cursor.fetchone()
    return row[0] if row and row[0] >= 0 else None


class LargeTablePaginator(Paginator):
    """Counts at most ``max_count`` rows, so a page of a table of millions costs what it does on
    a small one. Beyond the cap the list shows its first ``max_count`` rows' pages; older rows
    are reached by filtering (the date drill-down). Unfiltered, the size shown is PostgreSQL's
    estimate (``pg_class.reltuples``), one catalog lookup.
    """

    max_count = 10_000

    @cached_property
    def count(self) -> int:
        counted = self.object_list.order_by()[: self.max_count + 1].count()
        self.is_capped = counted > self.max_count
        return min(counted, self.max_count)

    is_capped = False

    @cached_property
    def estimate(self) -> int | None:
        """About how many rows the whole table holds (None when filtered or not analysed)."""
        if self.object_list.query.where:
            return None
        return table_row_estimate(self.object_list.model)

    @cached_property
    def total_label(self) -> str:
        """What the list says it holds: "1,234", "10,000+", "10,000+ of about 10,00,000"
        (grouped the Indian way, as every figure of the admin)."""
        count = self.count  # counting decides is_capped
        if not self.is_capped:
            return money_format.quantity(count)
        cap = money_format.quantity(self.max_count)
        estimate = self.estimate
        if estimate and estimate > self.max_count:
            return f"{cap}+ of about {money_format.quantity(estimate)}"
        return f"{cap}+"


# --- the date drill-down -------------------------------------------------------------------------


def calendar_drilldown(request, field: str, *, first: date | None, today: date) -> dict:
    """Year → month → day links for ``date_hierarchy`` = ``field``, drawn from the calendar.

    Django's own drill-down asks the database which years, months and days hold rows (a
    ``SELECT DISTINCT`` over the filtered table: seconds on millions of rows). These links are
    the calendar's, from ``first`` (the oldest row) to ``today``; a day without rows is simply
    an empty page. The filtering itself stays Django's: a ``>= start AND < end`` range that
    uses the index on ``field``. Returns the context of ``admin/date_hierarchy.html``.
    """
    keys = {part: f"{field}__{part}" for part in ("year", "month", "day")}
    try:
        year, month, day = (
            int(request.GET[keys[part]]) if keys[part] in request.GET else None
            for part in ("year", "month", "day")
        )
        date(year or 1, month or 1, day or 1)  # a day of the calendar (not 2025-13 nor 02-31)
    except ValueError:  # the list shows every date; Django's own filter refuses the query
        year = month = day = None

    def link(**parts) -> str:
        query = request.GET.copy()
        for key in (*keys.values(), "p"):
            query.pop(key, None)
        for part, value in parts.items():
            query[keys[part]] = str(value)
        return "?" + query.urlencode() if query else "?"

    if year and month and day:
        back = {
            "link": link(year=year, month=month),
            "title": f"{calendar.month_name[month]} {year}",
        }
        choices = [{"title": date(year, month, day).strftime("%d %B %Y")}]
    elif year and month:
        back = {"link": link(year=year), "title": str(year)}
        last = calendar.monthrange(year, month)[1]
        if (year, month) == (today.year, today.month):
            last = today.day
        choices = [
            {
                "link": link(year=year, month=month, day=d),
                "title": f"{d} {calendar.month_abbr[month]}",
            }
            for d in range(1, last + 1)
        ]
    elif year:
        back = {"link": link(), "title": "All dates"}
        last = today.month if year == today.year else 12
        start = first.month if first and year == first.year else 1
        choices = [
            {"link": link(year=year, month=m), "title": f"{calendar.month_name[m]} {year}"}
            for m in range(start, last + 1)
        ]
    else:
        back = None
        choices = [
            {"link": link(year=y), "title": str(y)}
            for y in range((first or today).year, today.year + 1)
        ]
    return {"show": True, "back": back, "choices": choices}


# --- model fields shown as figures --------------------------------------------------------------

PNL_FIELDS = frozenset({"realized_pnl", "unrealized_pnl", "total_pnl", "gross_pnl", "net_pnl"})


def field_format(field):
    """How a read-only model field reads (a function of its value), or None for the default.

    Two-decimal decimals are rupees (PnL coloured by sign), four-decimal ones prices at their
    tick, six-decimal prices averages; quantities and counts of orders and trades are
    grouped. Percentages, rates and other counts keep Django's own rendering.
    """
    name = field.name
    kind = field.get_internal_type()
    if kind == "DecimalField":
        if {"percent", "rate", "second", "seconds", "tokens"} & set(name.split("_")):
            return None  # a percentage or a rate, not rupees ("strategy" holds "rate")
        if field.decimal_places == 2:
            return pnl if name in PNL_FIELDS else inr
        if field.decimal_places == 4 and (
            "price" in name or name in ("stop_loss", "take_profit", "strike", "tick_size")
        ):
            return price
        if field.decimal_places == 6:
            return average if "price" in name else exact_inr
        return None
    counted = ("quantity" in name, name == "lot_size", name.endswith(("_trades", "_orders")))
    if kind.endswith("IntegerField") and any(counted):
        return quantity
    return None


class FieldFigure:
    """A read-only model field shown through ``field_format``: Django calls it with the row
    (``readonly_fields`` and ``list_display`` accept callables); label, CSS class and sorting
    stay the field's."""

    def __init__(self, field, show):
        self.field_name = field.name
        self.__name__ = field.name  # the column's CSS class: field-<name>
        self.short_description = field.verbose_name
        self.admin_order_field = field.name
        self.show = show

    def __call__(self, row):
        return self.show(getattr(row, self.field_name))

    def __repr__(self) -> str:
        return f"<FieldFigure {self.field_name}>"


_figures: dict = {}


def field_figure(model, name):
    """The FieldFigure of ``model``'s field ``name`` (one per field, so ``in`` finds it), or
    ``name`` itself when the field keeps Django's rendering."""
    if not isinstance(name, str):
        return name
    key = (model, name)
    if key not in _figures:
        try:
            field = model._meta.get_field(name)
        except FieldDoesNotExist:
            field = None
        show = field_format(field) if field is not None and field.concrete else None
        _figures[key] = FieldFigure(field, show) if show else name
    return _figures[key]


def _figured(model, fields, readonly):
    """``fields`` (a fieldset's, nested in tuples) with each read-only figure replaced."""
    shown = []
    for name in fields:
        if isinstance(name, (list, tuple)):
            shown.append(tuple(_figured(model, name, readonly)))
        elif name in readonly:
            shown.append(field_figure(model, name))
        else:
            shown.append(name)
    return shown


class FiguresMixin:
    """Read-only amounts, prices, averages and quantities written by ``money_format`` on the
    detail page, in inlines and in list columns naming a model field (rather than Django's
    ``389050000.00`` and ``3890.5000``). Editable fields keep their inputs.

    A subclass's own ``get_readonly_fields`` is wrapped (``__init_subclass__``), so an admin
    that computes its read-only fields gets the figures without knowing of them.
    """

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        own = cls.__dict__.get("get_readonly_fields")
        if own is None or getattr(own, "figured", False):
            return

        def get_readonly_fields(self, request, obj=None):
            return [field_figure(self.model, name) for name in own(self, request, obj)]

        get_readonly_fields.figured = True
        get_readonly_fields.__doc__ = own.__doc__
        cls.get_readonly_fields = get_readonly_fields

    def get_readonly_fields(self, request, obj=None):
        return [
            field_figure(self.model, name) for name in super().get_readonly_fields(request, obj)
        ]

    get_readonly_fields.figured = True

    def get_fieldsets(self, request, obj=None):
        readonly = {
            getattr(name, "field_name", name) for name in self.get_readonly_fields(request, obj)
        }
        return [
            (title, {**options, "fields": _figured(self.model, options["fields"], readonly)})
            for title, options in super().get_fieldsets(request, obj)
        ]

    def get_list_display(self, request):
        names = list(super().get_list_display(request))
        links = self.list_display_links or names[:1]
        editable = self.list_editable or ()
        return [
            name if name in links or name in editable else field_figure(self.model, name)
            for name in names
        ]


class OmsModelAdmin(FiguresMixin, admin.ModelAdmin):
    """The OMS admins' base: a list is titled by what it lists ("Orders"), not "Select order
    to change"."""

    def changelist_view(self, request, extra_context=None):
        extra_context = {"title": capfirst(self.opts.verbose_name_plural), **(extra_context or {})}
        return super().changelist_view(request, extra_context)


class LargeTableAdmin(OmsModelAdmin):
    """A ModelAdmin for tables of millions of rows (orders, trades, snapshots, instruments).

    Capped counts, no facet counts, no full-table count, a calendar drill-down. Subclasses
    keep ``list_select_related`` and sort only by indexed columns (``sortable_by``).
    """

    paginator = LargeTablePaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    list_per_page = 100
    list_max_show_all = 100  # "Show all" would be a page of the whole table
    change_list_template = "admin/large_table_change_list.html"

    def changelist_view(self, request, extra_context=None):
        extra_context = dict(extra_context or {})
        if self.date_hierarchy:
            first = None
            if f"{self.date_hierarchy}__year" not in request.GET:
                # The table's oldest row, found at the end of the index on the field.
                oldest = self.model._default_manager.aggregate(first=Min(self.date_hierarchy))
                first = oldest["first"] and timezone.localdate(oldest["first"])
            extra_context["calendar"] = calendar_drilldown(
                request, self.date_hierarchy, first=first, today=timezone.localdate()
            )
        return super().changelist_view(request, extra_context)


class ReadOnlyAdmin(OmsModelAdmin):
    """Rows written only by services, commands and jobs: viewed here, never added, changed or
    deleted."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ReadOnlyInline(FiguresMixin, admin.TabularInline):
    """Rows shown beside their parent (history, fills, keys): never added, changed or deleted
    from the parent's page."""

    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


def object_page_paths(admin_site, route: str, view, *, name: str) -> list:
    """URL patterns of a page of one object: ``<id>/<route>`` to ``view(request, object_id)``.

    The id is an integer (``<int:...>``); any other id is a 404 here, rather than falling to
    Django's catch-all ``<path:object_id>/``, which would redirect "abc/cancel/" to a change
    page for an object of that id.
    """
    return [
        path(f"<int:object_id>/{route}", admin_site.admin_view(view), name=name),
        path(f"<str:object_id>/{route}", admin_site.admin_view(_not_an_id)),
    ]


def _not_an_id(request, object_id: str):
    raise Http404(f"{object_id!r}: not an id; ids are whole numbers")


# --- CSV ---------------------------------------------------------------------------------------


class _Echo:
    """A file-like object whose write returns the line: csv.writer's output, streamed."""

    def write(self, value: str) -> str:
        return value


def _csv_cell(value):
    if value is None:
        return ""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value  # a spreadsheet must not read a symbol or a reason as a formula
    if hasattr(value, "tzinfo") and hasattr(value, "isoformat"):
        return timezone.localtime(value).isoformat()
    return value


def csv_download(filename: str, header: Iterable[str], rows: Iterable[Iterable]):
    """Stream rows as a CSV attachment, one row at a time (an export of a million rows never
    sits in memory). Decimals are written as they are stored; times in IST, ISO 8601."""
    writer = csv.writer(_Echo())

    def lines():
        yield writer.writerow(list(header))
        for row in rows:
            yield writer.writerow([_csv_cell(value) for value in row])

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


# --- badges and amounts -----------------------------------------------------------------------


def instrument_label(row):
    """An instrument as risk staff read it: the symbol in bold, then exchange and product."""
    return format_html(
        "<strong>{}</strong> <small>{} {}</small>", row.symbol, row.exchange, row.product
    )


def badge(label: str, tone: str, *, title: str = ""):
    """A coloured label (tones: green, red, amber, blue, teal, grey, purple); CSS in
    templates/admin/base_site.html."""
    return format_html(
        '<span class="oms-badge oms-badge--{}" title="{}">{}</span>', tone, title or label, label
    )


indian_grouping = money_format.indian_grouping


def inr(amount: Decimal | int | None, *, places: int = 2) -> str:
    """₹1,23,456.78, and a true minus sign before a negative amount; "—" for no amount."""
    return money_format.amount(amount, places=places)


def pnl(amount: Decimal | None, *, places: int = 2):
    """A PnL amount, green when positive and red when negative."""
    if amount is None:
        return money_format.NONE
    tone = "up" if amount > 0 else "down" if amount < 0 else "flat"
    text = money_format.amount(amount, places=places, signed=True)
    return format_html('<span class="oms-pnl oms-pnl--{}">{}</span>', tone, text)


def price(amount: Decimal | None) -> str:
    """A price at its tick: 3,890.50, never the column's 3890.5000."""
    return money_format.price(amount)


def average(amount: Decimal | None):
    """An average price to two decimals, the exact stored value on hover."""
    if amount is None:
        return money_format.NONE
    return format_html(
        '<span class="oms-average" title="{}">{}</span>',
        money_format.exact(amount),
        money_format.average(amount),
    )


def exact_inr(amount: Decimal | None):
    """An amount kept finer than the paisa (a cash flow): rupees to 2 decimals, exact on hover."""
    if amount is None:
        return money_format.NONE
    return format_html(
        '<span title="{}">{}</span>', money_format.exact(amount), money_format.amount(amount)
    )


def quantity(count: int | None) -> str:
    """A quantity grouped the Indian way: 1,40,000."""
    return money_format.quantity(count)


def compact(amount: Decimal | None) -> str:
    """A card's short amount: ₹12.35 L, ₹1.20 Cr."""
    return money_format.compact(amount)


def local_time(moment, *, seconds: bool = True) -> str:
    """14:32:05 today, 24 Nov 14:32 otherwise (IST)."""
    if moment is None:
        return "—"
    local = timezone.localtime(moment)
    if local.date() == timezone.localdate():
        return local.strftime("%H:%M:%S" if seconds else "%H:%M")
    if local.year == timezone.localdate().year:
        return local.strftime("%d %b %H:%M")
    return local.strftime("%d %b %Y %H:%M")


class DefaultChoiceFilter(admin.SimpleListFilter):
    """A filter whose first choice applies when none is picked (e.g. open positions only)."""

    def value(self):
        return super().value() or self.lookup_choices[0][0]

    def choices(self, changelist):
        for lookup, title in self.lookup_choices:
            yield {
                "selected": self.value() == lookup,
                "query_string": changelist.get_query_string({self.parameter_name: lookup}),
                "display": title,
            }
