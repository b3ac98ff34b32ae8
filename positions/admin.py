"""The positions back office: positions read like a trader's terminal (stop-loss and
take-profit set through a service). Reconciliation issues: positions/admin_issues.py; daily
statistics and market prices: positions/admin_stats.py.

Writes go through positions.services; each also leaves an admin log entry. PnL and prices are
read-only everywhere.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.utils.html import format_html

from omsproject.admin_tools import (
    DefaultChoiceFilter,
    LargeTableAdmin,
    average,
    badge,
    inr,
    instrument_label,
    local_time,
    pnl,
    price,
    quantity,
)
from omsproject.money_format import plural
from positions.admin_protections import PositionProtectionColumns, with_protection
from positions.models import (
    Position,
)
from positions.selectors import marks_flagged, positions_totals, positions_with_charges
from positions.services import (
    PositionError,
    position_protection_errors,
    position_protection_set,
)

MAX_TOTALLED = 5000  # the totals row sums at most this many positions (one query)


# --- positions -----------------------------------------------------------------------------


class PositionStatusFilter(DefaultChoiceFilter):
    title = "position"
    parameter_name = "held"

    def lookups(self, request, model_admin):
        return (("open", "Open"), ("closed", "Closed"), ("all", "All"))

    def queryset(self, request, queryset):
        if self.value() == "open":
            return queryset.filter(closed_at__isnull=True)
        if self.value() == "closed":
            return queryset.filter(closed_at__isnull=False)
        return queryset


class PositionForm(forms.ModelForm):
    """Only the protection levels are editable; the service's own rules check them."""

    class Meta:
        model = Position
        fields = ("stop_loss", "take_profit")

    def clean(self):
        data = super().clean()
        errors = position_protection_errors(
            self.instance, stop_loss=data.get("stop_loss"), take_profit=data.get("take_profit")
        )
        for field, message in errors.items():
            self.add_error(field, message)
        return data


@admin.register(Position)
class PositionAdmin(PositionProtectionColumns, LargeTableAdmin):
    form = PositionForm
    list_display = (
        "instrument",
        "held",
        "average",
        "last",
        "value",
        "unrealized",
        "realized",
        "protection",
    )
    list_filter = (PositionStatusFilter, "strategy", "product", "exchange")
    list_select_related = ("strategy",)
    search_fields = ("symbol",)
    search_help_text = "Exact symbol, e.g. RELIANCE."
    sortable_by = ()  # newest first (by id): what a terminal shows

    def get_ordering(self, request):
        # By the primary key (rows are written in time order): the page is read backwards
        # through its index, never a sort of every position (480,000 in the bench took 1 s).
        return ["-id"]

    fieldsets = (
        (None, {"fields": ("summary",)}),
        (
            "Holding",
            {
                "fields": (
                    ("strategy", "symbol", "exchange", "product"),
                    ("quantity", "average_price", "last_price", "last_price_at"),
                )
            },
        ),
        (
            "Protection (checked against the last price: a long's stop below it, a short's above)",
            {"fields": (("stop_loss", "take_profit"), "protection_held")},
        ),
        (
            "PnL (from fills and prices)",
            {
                "fields": (
                    ("realized_pnl", "unrealized_pnl"),
                    ("peak_pnl", "max_drawdown"),
                    ("highest_price", "lowest_price"),
                )
            },
        ),
        ("Life", {"fields": (("opened_at", "closed_at"), "exit_order", "updated_at")}),
    )

    def get_queryset(self, request):
        # "last" flags a stale mark; "realized net" takes the charges of the position's fills;
        # "protection" says where the stop lives.
        return with_protection(positions_with_charges(marks_flagged(super().get_queryset(request))))

    def changelist_view(self, request, extra_context=None):
        response = super().changelist_view(request, extra_context)
        changelist = getattr(response, "context_data", {}).get("cl")
        if changelist is not None:  # the result_list tag sees the change list, not the context
            changelist.totals_row = self.totals_row(changelist)
        return response

    def totals_row(self, changelist) -> list:
        """The footer of the list: the sums of every position the filters select (not only
        this page's), cell by cell under the list's columns."""
        columns = [getattr(name, "__name__", name) for name in changelist.list_display]
        if changelist.result_count > MAX_TOTALLED:
            cells = {
                "instrument": f"No totals over {quantity(MAX_TOTALLED)} positions: filter the list"
            }
        else:
            totals = positions_totals(changelist.queryset)
            unmarked = (
                format_html(
                    ' <small title="left out of the value">{} without a mark</small>',
                    quantity(totals.unmarked),
                )
                if totals.unmarked
                else ""
            )
            cells = {
                "instrument": format_html(
                    "<strong>Totals</strong> of {}", plural(totals.count, "position")
                ),
                "value": format_html("{}{}", inr(totals.value), unmarked),
                "unrealized": pnl(totals.unrealized),
                "realized": realized_gross_net(totals.realized_gross, totals.charges),
            }
        return [cells.get(column, "") for column in columns]

    def get_readonly_fields(self, request, obj=None):
        fields = ["summary", "protection_held", *(f.name for f in Position._meta.fields)]
        if obj is not None and obj.is_open and self.has_change_permission(request, obj):
            fields = [f for f in fields if f not in ("stop_loss", "take_profit")]
        return fields

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return super().has_change_permission(request, obj) and (obj is None or obj.is_open)

    def has_delete_permission(self, request, obj=None):
        return False

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        return (queryset.filter(symbol=term.upper()), False) if term else (queryset, False)

    def save_model(self, request, obj, form, change):
        try:
            position_protection_set(
                obj,
                stop_loss=form.cleaned_data.get("stop_loss"),
                take_profit=form.cleaned_data.get("take_profit"),
                actor=request.user.get_username(),
            )
        except PositionError as error:  # the price moved between the form and the save
            self.message_user(request, str(error), messages.ERROR)

    @admin.display(description="instrument")
    def instrument(self, position):
        return format_html(
            '{}<br><small class="quiet">{}</small>', instrument_label(position), position.strategy
        )

    @admin.display(description="quantity", ordering="quantity")
    def held(self, position):
        if position.closed_at:
            when = f"closed {self.closed(position)}"
        else:
            when = f"since {self.opened(position)}"
        if position.quantity == 0:
            held = badge("FLAT", "grey")
        else:
            side = "LONG" if position.quantity > 0 else "SHORT"
            tone = "buy" if position.quantity > 0 else "sell"
            held = badge(f"{side} {quantity(abs(position.quantity))}", tone)
        return format_html('{}<br><small class="quiet">{}</small>', held, when)

    @admin.display(description="avg price")
    def average(self, position):
        return average(position.average_price)

    @admin.display(description="mark")
    def last(self, position):
        stale = getattr(position, "mark_stale", False)
        stale = badge("STALE", "amber", title="no fresh price: exits wait") if stale else ""
        at = local_time(position.last_price_at) if position.last_price_at else ""
        return format_html(
            '{}<br><small class="quiet">{}</small> {}', price(position.last_price), at, stale
        )

    @admin.display(description="value")
    def value(self, position):
        if position.last_price is None or position.quantity == 0:
            return "—"
        return inr(position.quantity * position.last_price)

    @admin.display(description="unrealized")
    def unrealized(self, position):
        return pnl(position.unrealized_pnl)

    @admin.display(description="realized gross / net")
    def realized(self, position):
        return realized_gross_net(position.realized_pnl, getattr(position, "fill_charges", None))

    @admin.display(description="SL / TP, held by")
    def protection(self, position, *, full: bool = False):
        """The levels, and where they are held (the OMS, a GTT at the broker, or both)."""
        held_by = super().protection(position, full=full)
        if position.stop_loss is None and position.take_profit is None:
            return format_html("—<br>{}", held_by)
        return format_html(
            "SL {}<br>TP {}<br>{}", price(position.stop_loss), price(position.take_profit), held_by
        )

    @admin.display(description="opened", ordering="opened_at")
    def opened(self, position):
        return local_time(position.opened_at, seconds=False)

    @admin.display(description="closed", ordering="closed_at")
    def closed(self, position):
        return local_time(position.closed_at, seconds=False) if position.closed_at else "open"

    @admin.display(description="position")
    def summary(self, position):
        return format_html(
            "{} <strong>{}</strong> {} {} · avg {} · mark {} · PnL {}",
            self.held(position),
            position.symbol,
            position.exchange,
            position.product,
            average(position.average_price),
            self.last(position),
            pnl(position.total_pnl),
        )


def realized_gross_net(gross, charges):
    """Realized PnL gross, and below it net of the charges of the position's fills."""
    if charges is None:
        return pnl(gross)
    return format_html(
        '{}<br><small title="gross {} less charges {}">net {}</small>',
        pnl(gross),
        inr(gross),
        inr(charges),
        pnl(gross - charges),
    )


# Reconciliation issues (positions/admin_issues.py), daily statistics and market prices
# (positions/admin_stats.py): registered on import.
from positions import admin_issues, admin_stats  # noqa: E402, F401
