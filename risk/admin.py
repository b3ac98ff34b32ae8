"""The risk back office: the kill switch page, its history, limits, instruments, holidays, PnL
snapshots, and the admin's own change log (risk.admin_audit).

The kill switch page (``/admin/risk/killswitch/``) shows the global switch and every
strategy's, and changes one through ``risk.kill_switch.kill_switch_set`` after a confirmation
page; flattening positions is a separate confirmed act (``positions_flatten``). Both need
``risk.change_kill_switch`` and leave an admin log entry beside the kill switch event. The
event history is append-only: nobody changes or deletes it here (nor in the database).
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, F
from django.http import Http404, HttpResponseRedirect
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import path, reverse

from omsproject.admin_audit import CsvExportMixin, DateRangeFilter
from omsproject.admin_forms import ConfirmedChangeAdmin, ConstraintWordsForm, change_reason
from omsproject.admin_tools import (
    LargeTableAdmin,
    OmsModelAdmin,
    ReadOnlyAdmin,
    badge,
    local_time,
    pnl,
)
from omsproject.templatetags.oms_admin import KILL_SWITCH_TONES
from orders.enums import OrderStatus
from orders.models import Order, Strategy
from orders.selectors import orders_cancellable
from positions.models import Position
from risk import calendar
from risk.admin_audit import ChangeLogAdmin as ChangeLogAdmin  # registers the change log
from risk.admin_exits import flatten_page
from risk.kill_switch import kill_switch_set
from risk.limits import limits_report
from risk.models import (
    Instrument,
    InstrumentRefresh,
    KillSwitchEvent,
    KillSwitchState,
    MarketHoliday,
    PnlSnapshot,
    RiskLimit,
)
from risk.selectors import kill_switch_board, kill_switch_state
from risk.services import LIMIT_FIELDS, KillSwitchError, RiskLimitError, risk_limit_set

EFFECTS = {
    KillSwitchState.HALTED: "No order passes, closing orders included; every working order of "
    "the scope is cancelled at the broker.",
    KillSwitchState.REDUCING: "Only orders that reduce a position pass; working orders stay.",
    KillSwitchState.ACTIVE: "Trading resumes: orders pass the usual pre-trade checks again.",
}


def state_badge(state: str):
    return badge(state, KILL_SWITCH_TONES[state])


class KillSwitchForm(forms.Form):
    state = forms.ChoiceField(
        choices=[
            ("HALTED", "HALTED · nothing passes"),
            ("REDUCING", "REDUCING · only orders that reduce"),
            ("ACTIVE", "ACTIVE · trading allowed"),
        ],
        widget=forms.RadioSelect,
    )
    strategy = forms.ModelChoiceField(
        queryset=Strategy.objects.order_by("name"),
        required=False,
        empty_label="All strategies (the global switch)",
        label="Scope",
    )
    reason = forms.CharField(
        max_length=1000,
        widget=forms.Textarea(attrs={"rows": 2, "cols": 70}),
        help_text="Required: kept with the event and sent to the risk e-mail list.",
    )

    def clean_reason(self):
        reason = self.cleaned_data["reason"].strip()
        if not reason:
            raise forms.ValidationError("reason: required for every kill switch change")
        return reason


class FlattenForm(forms.Form):
    reason = forms.CharField(
        max_length=500,
        widget=forms.TextInput(attrs={"size": 70}),
        help_text="Required: kept as the tag of each closing order.",
    )

    def clean_reason(self):
        reason = self.cleaned_data["reason"].strip()
        if not reason:
            raise forms.ValidationError("reason: required to flatten positions")
        return reason


KILL_SWITCH_EVENT_CSV = (
    ("id", "id"),
    ("created_at", "created_at"),
    ("state", "state"),
    ("scope", "scope"),
    ("strategy", "strategy__name"),
    ("actor", "actor"),
    ("actor_type", "actor_type"),
    ("reason", "reason"),
    ("details", "details"),
)


@admin.register(KillSwitchEvent)
class KillSwitchEventAdmin(CsvExportMixin, ReadOnlyAdmin):
    """The kill switch's history (append-only), and the kill switch page itself."""

    list_display = ("created", "state_label", "scope", "strategy", "actor", "actor_type", "reason")
    list_filter = (
        ("created_at", DateRangeFilter),
        "state",
        "scope",
        "actor_type",
        "strategy",
        "actor",
    )
    list_select_related = ("strategy",)
    search_fields = ("reason", "actor")
    csv_columns = KILL_SWITCH_EVENT_CSV
    fields = (
        "created_at",
        "state",
        "scope",
        "strategy",
        "actor",
        "actor_type",
        "reason",
        "details",
    )
    readonly_fields = fields

    # Sorted by id, the order the changes committed in: the time is the database's, for
    # reading, and the id is what decides which change is in force.
    @admin.display(description="time", ordering="id")
    def created(self, event):
        return local_time(event.created_at)

    @admin.display(description="state", ordering="state")
    def state_label(self, event):
        return state_badge(event.state)

    def has_switch_permission(self, request) -> bool:
        return request.user.has_perm("risk.change_kill_switch")

    def get_site_urls(self):
        view = self.admin_site.admin_view
        return [
            path("risk/killswitch/", view(self.kill_switch_view), name="risk_kill_switch"),
            path(
                "risk/killswitch/flatten/", view(self.flatten_view), name="risk_kill_switch_flatten"
            ),
        ]

    def _render(self, request, template: str, **context):
        context = {**self.admin_site.each_context(request), "opts": self.opts, **context}
        return TemplateResponse(request, f"admin/risk/killswitch/{template}.html", context)

    def kill_switch_view(self, request):
        """GET: the switches and the form. POST: a confirmation page; POST with
        ``confirmed=yes``: the change, through kill_switch_set."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        if request.method == "POST":
            if not self.has_switch_permission(request):
                raise PermissionDenied
            form = KillSwitchForm(request.POST)
            if form.is_valid():
                if request.POST.get("confirmed") == "yes":
                    return self._switch(request, form.cleaned_data)
                return self._confirm(request, form)
        else:
            initial = {k: request.GET[k] for k in ("state", "strategy") if k in request.GET}
            form = KillSwitchForm(initial=initial)
        board = kill_switch_board()
        working = dict(
            Order.objects.filter(status__in=sorted(OrderStatus.active()))
            .values("strategy_id")
            .annotate(n=Count("id"))
            .values_list("strategy_id", "n")
        )
        held = dict(
            Position.objects.filter(closed_at__isnull=True)
            .values("strategy_id")
            .annotate(n=Count("id"))
            .values_list("strategy_id", "n")
        )
        strategies = [
            {
                "strategy": strategy,
                "own": board.own_state(strategy.pk),
                "in_force": board.state_for(strategy.pk),
                "event": board.strategy_events.get(strategy.pk),
                "working": working.get(strategy.pk, 0),
                "held": held.get(strategy.pk, 0),
            }
            for strategy in Strategy.objects.order_by("name")
        ]
        return self._render(
            request,
            "page",
            title="Kill switch",
            board=board,
            strategies=strategies,
            working_total=sum(working.values()),
            held_total=sum(held.values()),
            form=form,
            can_switch=self.has_switch_permission(request),
            history=KillSwitchEvent.objects.select_related("strategy").order_by("-id")[:20],
            states=list(KillSwitchState),
        )

    def _confirm(self, request, form):
        data = form.cleaned_data
        strategy = data["strategy"]
        state = KillSwitchState(data["state"])
        return self._render(
            request,
            "confirm",
            title="Confirm the kill switch change",
            form=form,
            state=state,
            strategy=strategy,
            current=kill_switch_state(strategy=strategy),
            effect=EFFECTS[state],
            # What kill_switch_set will cancel: the scope's working orders not already cancelling.
            working=orders_cancellable(strategy=strategy).count()
            if state == KillSwitchState.HALTED
            else None,
            # What stays open: a HALT lets no exit through, the square-off's included.
            open_positions=open_positions_of(strategy) if state == KillSwitchState.HALTED else None,
        )

    def _switch(self, request, data):
        actor = request.user.get_username()
        try:
            event = kill_switch_set(
                KillSwitchState(data["state"]),
                reason=data["reason"],
                actor=actor,
                strategy=data["strategy"],
            )
        except KillSwitchError as error:
            self.message_user(request, str(error), messages.ERROR)
            return HttpResponseRedirect(reverse("admin:risk_kill_switch"))
        where = event.strategy.name if event.strategy else "all strategies"
        self.log_addition(request, event, f"Kill switch {event.state} for {where}: {event.reason}")
        self.message_user(
            request, f"Kill switch set to {event.state} for {where}.", messages.SUCCESS
        )
        return HttpResponseRedirect(reverse("admin:risk_kill_switch"))

    def flatten_view(self, request):
        """Close every open position of the scope (``?strategy=<id>``, ``?position=<id>``,
        or all) with MARKET orders, after a page listing the orders: risk.admin_exits."""
        return flatten_page(
            self,
            request,
            form_class=FlattenForm,
            strategy_scope=_flatten_scope,
            open_positions_of=open_positions_of,
        )


def open_positions_of(strategy) -> list:
    """The open positions of the scope (a strategy, or all), by strategy and symbol."""
    positions = Position.objects.filter(closed_at__isnull=True).select_related("strategy")
    if strategy is not None:
        positions = positions.filter(strategy=strategy)
    return list(positions.order_by("strategy__name", "symbol"))


def _flatten_scope(request) -> Strategy | None:
    """The strategy ``?strategy=<id>`` names, or None (every strategy) without one.

    A value that names no strategy is a 404: falling back to every strategy would turn a
    mistyped link into flattening the whole desk.
    """
    raw = request.GET.get("strategy", "")
    if not raw:
        return None
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 18:
        raise Http404(f"strategy {raw!r}: must be a strategy id, as ?strategy=<id>")
    strategy = Strategy.objects.filter(pk=int(raw)).first()
    if strategy is None:
        raise Http404(f"strategy {raw}: not found")
    return strategy


# --- limits, instruments, holidays, snapshots -----------------------------------------------------


def limits_table(strategy) -> str:
    """Every limit in force for ``strategy`` (None: globally), where each comes from, and a
    warning for each that is off: the same report as the API's GET /strategy/."""
    return render_to_string("risk/limits_in_force.html", {"report": limits_report(strategy)})


class RiskLimitForm(ConstraintWordsForm):
    """A limit row; a value the database would refuse reads as the field and its rule."""

    class Meta:
        model = RiskLimit
        fields = "__all__"


def save_limit_form(request, form, *, strategy, reason: str) -> RiskLimit | None:
    """Save a limit form's changed fields through risk_limit_set (audited, with the reason);
    a refusal is shown as a message in words."""
    values = {name: form.cleaned_data[name] for name in form.changed_data if name in LIMIT_FIELDS}
    limit = form.instance if form.instance.pk else None
    try:
        row = risk_limit_set(
            user=request.user, reason=reason, values=values, limit=limit, strategy=strategy
        )
    except RiskLimitError as error:
        messages.error(request, str(error))
        return None
    form.instance.pk = row.pk
    return row


@admin.register(RiskLimit)
class RiskLimitAdmin(ConfirmedChangeAdmin, OmsModelAdmin):
    """Pre-trade limits: the global row and one per strategy (blank: no limit at that level).
    Each change, and each new row, is confirmed with a reason and recorded old → new in the
    admin's change log (risk.services.risk_limit_set)."""

    form = RiskLimitForm
    confirm_additions = True

    list_display = (
        "scope",
        "max_order_quantity",
        "max_order_value",
        "max_position_quantity",
        "max_strategy_exposure",
        "max_total_exposure",
        "max_open_orders",
        "daily_loss_limit",
        "drawdown_limit",
        "halt_on_critical_issue",
    )
    list_select_related = ("strategy",)
    fieldsets = (
        (None, {"fields": ("strategy",)}),
        (
            "Per order",
            {
                "fields": (
                    ("max_order_quantity", "max_order_value"),
                    ("price_band_percent", "orders_per_second"),
                )
            },
        ),
        (
            "Exposure",
            {
                "fields": (
                    ("max_position_quantity", "max_open_orders"),
                    ("max_strategy_exposure", "max_total_exposure"),
                )
            },
        ),
        (
            "Automatic kill switch",
            {
                "fields": (
                    ("daily_loss_limit", "drawdown_limit"),
                    ("rejection_burst", "rejection_window_seconds"),
                    "halt_on_critical_issue",
                )
            },
        ),
        ("In force (saved values)", {"fields": ("limits_in_force",)}),
        (None, {"fields": ("updated_at",)}),
    )
    readonly_fields = ("limits_in_force", "updated_at")

    def get_ordering(self, request):
        return [F("strategy_id").asc(nulls_first=True), "strategy__name"]  # the global row first

    def get_readonly_fields(self, request, obj=None):
        # The scope of an existing row is what it is: a row is never moved to another strategy.
        if obj is None:
            return self.readonly_fields
        return ("strategy", *self.readonly_fields)

    def changelist_view(self, request, extra_context=None):
        extra_context = {"global_limits": limits_report(None), **(extra_context or {})}
        return super().changelist_view(request, extra_context)

    @admin.display(description="limits in force")
    def limits_in_force(self, row):
        return limits_table(row.strategy if row.pk else None)

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        save_limit_form(
            request,
            form,
            strategy=obj.strategy if not change else None,
            reason=change_reason(request),
        )

    @admin.display(description="scope", ordering="strategy__name")
    def scope(self, limit):
        return limit.strategy.name if limit.strategy else "Global (all strategies)"


@admin.register(Instrument)
class InstrumentAdmin(ReadOnlyAdmin, LargeTableAdmin):
    """The broker's instrument master, loaded by ``manage.py load_instruments``: read-only."""

    list_display = (
        "tradingsymbol",
        "exchange",
        "instrument_type",
        "expiry",
        "strike",
        "lot_size",
        "tick_size",
        "freeze_quantity",
        "tradable",
    )
    list_filter = ("exchange", "instrument_type", "tradable")
    search_fields = ("^tradingsymbol",)
    ordering = ("tradingsymbol", "exchange")  # the unique index's order: no sort of the master
    sortable_by = ("tradingsymbol",)


@admin.register(InstrumentRefresh)
class InstrumentRefreshAdmin(ReadOnlyAdmin):
    """Each refresh of the instrument master from Kite's dump (08:30 IST): what changed."""

    list_display = (
        "started_at",
        "source",
        "total",
        "added",
        "removed",
        "lot_size_changed",
        "tick_size_changed",
        "succeeded",
    )
    list_filter = ("source",)
    fields = (
        "source",
        "started_at",
        "finished_at",
        "total",
        "added",
        "removed",
        "lot_size_changed",
        "tick_size_changed",
        "error",
        "details",
    )

    @admin.display(boolean=True, description="succeeded")
    def succeeded(self, refresh):
        return refresh.succeeded


@admin.register(MarketHoliday)
class MarketHolidayAdmin(OmsModelAdmin):
    """Holidays the exchange calendar does not know yet (kept by staff)."""

    list_display = ("date", "description", "created_by", "created_at")
    fields = ("date", "description", "created_by", "created_at")
    readonly_fields = ("created_by", "created_at")

    def changelist_view(self, request, extra_context=None):
        # The calendar library's holidays beside the table's: the list alone looks empty.
        year = calendar.ist().year
        library = [{"year": y, "days": calendar.exchange_holidays(y)} for y in (year, year + 1)]
        extra_context = {"library_holidays": library, **(extra_context or {})}
        return super().changelist_view(request, extra_context)

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user.get_username()
        super().save_model(request, obj, form, change)


@admin.register(PnlSnapshot)
class PnlSnapshotAdmin(ReadOnlyAdmin, LargeTableAdmin):
    """The risk monitor's intraday PnL samples (the dashboard's chart): read-only."""

    list_display = ("taken", "scope", "realized", "unrealized", "total")
    list_filter = ("strategy",)
    list_select_related = ("strategy",)
    sortable_by = ()

    def get_ordering(self, request):
        return ["-id"]  # snapshots are written in time order: newest first, by the primary key

    @admin.display(description="taken", ordering="taken_at")
    def taken(self, snapshot):
        return local_time(snapshot.taken_at)

    @admin.display(description="strategy")
    def scope(self, snapshot):
        return snapshot.strategy or "All strategies"

    @admin.display(description="realized")
    def realized(self, snapshot):
        return pnl(snapshot.realized_pnl)

    @admin.display(description="unrealized")
    def unrealized(self, snapshot):
        return pnl(snapshot.unrealized_pnl)

    @admin.display(description="total")
    def total(self, snapshot):
        return pnl(snapshot.total_pnl)
