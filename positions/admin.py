"""The positions back office: positions (stop-loss and take-profit set through a service),
reconciliation issues (resolved with a note, or auto-fixed), daily statistics, market prices.

Writes go through positions.services; each also leaves an admin log entry. PnL and prices are
read-only everywhere; a resolved issue can no longer be changed.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Case, IntegerField, Value, When
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html

from omsproject.admin_audit import CsvExportMixin
from omsproject.admin_tools import (
    LargeTableAdmin,
    OmsModelAdmin,
    average,
    badge,
    inr,
    instrument_label,
    local_time,
    object_page_paths,
    pnl,
    price,
    quantity,
)
from omsproject.money_format import duration, plural
from omsproject.templatetags.oms_admin import SEVERITY_TONES
from positions.admin_protections import PositionProtectionColumns, with_protection
from positions.models import (
    Position,
    ReconciliationIssue,
    Severity,
)
from positions.selectors import marks_flagged, positions_totals, positions_with_charges
from positions.services import (
    AUTO_FIXABLE,
    PositionError,
    ReconciliationIssueError,
    position_protection_errors,
    position_protection_set,
    reconciliation_issue_auto_fix,
    reconciliation_issue_auto_fix_plan,
    reconciliation_issue_resolve,
)

MAX_AT_ONCE = 100
MAX_TOTALLED = 5000  # the totals row sums at most this many positions (one query)


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


# --- reconciliation issues --------------------------------------------------------------------


class IssueStatusFilter(DefaultChoiceFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return (
            ("unresolved", "Unresolved"),
            ("resolved", "Resolved"),
            ("auto_fixed", "Auto-fixed"),
            ("all", "All"),
        )

    def queryset(self, request, queryset):
        value = self.value()
        if value == "unresolved":
            return queryset.filter(resolved=False)
        if value == "resolved":
            return queryset.filter(resolved=True)
        if value == "auto_fixed":
            return queryset.filter(auto_fixed=True)
        return queryset


class ResolutionForm(forms.Form):
    note = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, "cols": 80}),
        max_length=2000,
        error_messages={"required": "note: required — say what was checked and what was done"},
        help_text="Required: what you checked and what was done (kept with the issue, "
        "with your name and the time).",
    )


@admin.register(ReconciliationIssue)
class ReconciliationIssueAdmin(CsvExportMixin, OmsModelAdmin):
    """Differences between our book and the broker's, most severe and oldest first (the order
    of v_reconciliation_issues). Settled only through a resolve page (a note is required) or an
    auto-fix (adopting the broker's quantity), both positions.services; once resolved, an issue
    is read-only. Operators settle non-CRITICAL issues; CRITICAL ones need
    ``positions.resolve_critical_issue``.
    """

    list_display = (
        "id",
        "severity_label",
        "issue_type",
        "strategy",
        "instrument",
        "quantities",
        "hours",
        "state",
    )
    list_filter = (IssueStatusFilter, "severity", "issue_type", "strategy")
    list_day_filter = "detected_at"  # and CSV export: omsproject.admin_audit
    list_select_related = ("strategy",)
    search_fields = ("symbol",)
    actions = ("resolve_issues", "auto_fix_issues")
    fieldsets = (
        (None, {"fields": ("summary", "description")}),
        (
            "What differs",
            {
                "fields": (
                    ("issue_type", "severity"),
                    ("strategy", "symbol", "exchange", "product", "order"),
                    ("internal_quantity", "broker_quantity"),
                    ("internal_price", "broker_price"),
                    ("details", "safe_fix"),
                )
            },
        ),
        ("Seen", {"fields": (("detected_at", "last_seen_at", "occurrences"), "fingerprint")}),
        (
            "Resolution",
            {"fields": (("resolved", "auto_fixed"), ("resolved_by", "resolved_at"), "resolution")},
        ),
    )

    def get_readonly_fields(self, request, obj=None):
        return ["summary", *(f.name for f in ReconciliationIssue._meta.fields)]

    def get_queryset(self, request):
        rank = Case(
            *(When(severity=severity, then=Value(severity.rank)) for severity in Severity),
            output_field=IntegerField(),
        )
        # Annotated before ordering (ModelAdmin.get_queryset orders first).
        issues = self.model._default_manager.get_queryset().annotate(severity_rank=rank)
        return issues.order_by(*self.get_ordering(request))

    def get_ordering(self, request):
        # v_reconciliation_issues' order (most severe, then oldest), unresolved first.
        return ["resolved", "-severity_rank", "detected_at", "id"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        # The detail page is read-only: issues are settled through resolve and auto-fix.
        return obj is None and super().has_change_permission(request)

    def has_delete_permission(self, request, obj=None):
        return False

    def may_settle(self, request, issue) -> bool:
        return (
            not issue.resolved
            and super().has_change_permission(request)
            and (not issue.is_critical or request.user.has_perm("positions.resolve_critical_issue"))
        )

    # --- columns ---

    @admin.display(description="severity", ordering="severity_rank")
    def severity_label(self, issue):
        return badge(issue.severity, SEVERITY_TONES[issue.severity])

    @admin.display(description="instrument")
    def instrument(self, issue):
        if not issue.symbol:
            return f"order {issue.order_id}" if issue.order_id else "—"
        return instrument_label(issue)

    @admin.display(description="ours / broker")
    def quantities(self, issue):
        if issue.internal_quantity is None and issue.broker_quantity is None:
            return "—"
        return format_html(
            "{} / <strong>{}</strong>",
            quantity(issue.internal_quantity),
            quantity(issue.broker_quantity),
        )

    @admin.display(description="unresolved for", ordering="detected_at")
    def hours(self, issue):
        seconds = issue.seconds_unresolved()
        since = f"since {local_time(issue.detected_at, seconds=False)}"
        words = duration(seconds)
        if issue.resolved:
            return format_html('<span class="quiet" title="{}">{}</span>', since, words)
        if seconds >= 3600:
            return format_html('<strong title="{}">{}</strong>', since, words)
        return format_html('<span title="{}">{}</span>', since, words)

    @admin.display(description="state")
    def state(self, issue):
        if issue.auto_fixed:
            return badge("AUTO-FIXED", "teal", title=issue.resolution)
        if issue.resolved:
            return badge("RESOLVED", "green", title=f"{issue.resolved_by}: {issue.resolution}")
        return badge("OPEN", "amber")

    @admin.display(description="issue")
    def summary(self, issue):
        return format_html(
            "{} {} {} · {}",
            self.severity_label(issue),
            issue.get_issue_type_display(),
            self.instrument(issue),
            self.state(issue),
        )

    # --- the detail page and its resolve / auto-fix pages ---

    def get_urls(self):
        return [
            *object_page_paths(
                self.admin_site,
                "resolve/",
                self.resolve_view,
                name="positions_reconciliationissue_resolve",
            ),
            *object_page_paths(
                self.admin_site,
                "auto-fix/",
                self.auto_fix_view,
                name="positions_reconciliationissue_auto_fix",
            ),
            *super().get_urls(),
        ]

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        issue = obj
        if issue is not None and not issue.resolved:
            may = self.may_settle(request, issue)
            context["can_resolve"] = may
            context["can_auto_fix"] = may and issue.issue_type in AUTO_FIXABLE
            if issue.is_critical and not may and super().has_change_permission(request):
                context["settle_refusal"] = (
                    "This issue is CRITICAL: resolving or fixing it needs a risk officer."
                )
        return super().render_change_form(request, context, add, change, form_url, obj)

    def _plans(self, issues):
        """(issue, plan or None, refusal or "") for each issue: what an auto-fix would do."""
        rows = []
        for issue in issues:
            position = None
            if issue.strategy_id is not None and issue.issue_type in AUTO_FIXABLE:
                position = _open_position(issue)
            try:
                rows.append((issue, reconciliation_issue_auto_fix_plan(issue, position), ""))
            except ReconciliationIssueError as error:
                rows.append((issue, None, str(error)))
        return rows

    def _render(self, request, template: str, **context):
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
            **context,
        }
        return TemplateResponse(
            request, f"admin/positions/reconciliationissue/{template}.html", context
        )

    def _settleable(self, request, object_id):
        """The issue this person may settle and its change page's URL; or a redirect to that
        page when it is resolved already (PermissionDenied when they may not settle it)."""
        issue = get_object_or_404(
            ReconciliationIssue.objects.select_related("strategy"), pk=object_id
        )
        change_url = reverse("admin:positions_reconciliationissue_change", args=[issue.pk])
        if self.may_settle(request, issue):
            return issue, change_url, None
        if issue.resolved:
            self.message_user(request, f"Issue {issue.pk} is already resolved.", messages.WARNING)
            return issue, change_url, HttpResponseRedirect(change_url)
        raise PermissionDenied

    def resolve_view(self, request, object_id):
        issue, change_url, settled = self._settleable(request, object_id)
        if settled is not None:
            return settled
        form = ResolutionForm(request.POST or None)
        resolved = (
            request.method == "POST"
            and form.is_valid()
            and self._resolve(request, [issue], form.cleaned_data["note"])
        )
        if resolved:
            return HttpResponseRedirect(change_url)
        return self._render(
            request, "resolve", title=f"Resolve issue {issue.pk}", issues=[issue], form=form
        )

    def auto_fix_view(self, request, object_id):
        issue, change_url, settled = self._settleable(request, object_id)
        if settled is not None:
            return settled
        if request.method == "POST":
            self._auto_fix(request, [issue])
            return HttpResponseRedirect(change_url)
        plans = self._plans([issue])
        return self._render(
            request,
            "auto_fix",
            title=f"Auto-fix issue {issue.pk}?",
            plans=plans,
            fixable=any(plan for _, plan, _ in plans),
        )

    # --- actions ---

    def _selected_open(self, request, queryset):
        issues = list(queryset.filter(resolved=False).select_related("strategy")[: MAX_AT_ONCE + 1])
        if len(issues) > MAX_AT_ONCE:
            self.message_user(
                request,
                f"At most {MAX_AT_ONCE} issues at once: narrow the filters.",
                messages.ERROR,
            )
            return None, []
        allowed = [i for i in issues if self.may_settle(request, i)]
        refused = [i for i in issues if i not in allowed]
        if not allowed:
            self.message_user(
                request,
                "Nothing to settle: the selected issues are resolved already"
                + (", or CRITICAL (a risk officer's)" if refused else "")
                + ".",
                messages.WARNING,
            )
            return None, []
        return allowed, refused

    @admin.action(description="Resolve selected issues (with a note)…", permissions=["change"])
    def resolve_issues(self, request, queryset):
        issues, refused = self._selected_open(request, queryset)
        if issues is None:
            return None
        form = ResolutionForm(request.POST if request.POST.get("confirmed") == "yes" else None)
        if form.is_bound and form.is_valid():
            self._resolve(request, issues, form.cleaned_data["note"])
            return None
        return self._render(
            request,
            "resolve",
            title="Resolve issues",
            issues=issues,
            refused=refused,
            form=form,
            action="resolve_issues",
        )

    @admin.action(
        description="Auto-fix selected issues (adopt the broker's quantity)…",
        permissions=["change"],
    )
    def auto_fix_issues(self, request, queryset):
        issues, refused = self._selected_open(request, queryset)
        if issues is None:
            return None
        if request.POST.get("confirmed") == "yes":
            self._auto_fix(request, issues)
            return None
        plans = self._plans(issues)
        return self._render(
            request,
            "auto_fix",
            title="Auto-fix issues?",
            plans=plans,
            fixable=any(plan for _, plan, _ in plans),
            refused=refused,
            action="auto_fix_issues",
        )

    def _resolve(self, request, issues, note: str) -> int:
        actor = request.user.get_username()
        may_critical = request.user.has_perm("positions.resolve_critical_issue")
        done = 0
        for issue in issues:
            try:
                resolved = reconciliation_issue_resolve(
                    issue, note=note, actor=actor, may_resolve_critical=may_critical
                )
            except ReconciliationIssueError as error:
                self.message_user(request, str(error), messages.ERROR)
                continue
            done += 1
            self.log_change(request, resolved, f"Resolved: {note}")
        if done:
            self.message_user(request, f"Resolved {plural(done, 'issue')}.", messages.SUCCESS)
        return done

    def _auto_fix(self, request, issues) -> int:
        actor = request.user.get_username()
        may_critical = request.user.has_perm("positions.resolve_critical_issue")
        done = 0
        for issue in issues:
            try:
                fixed = reconciliation_issue_auto_fix(
                    issue, actor=actor, may_resolve_critical=may_critical
                )
            except ReconciliationIssueError as error:
                self.message_user(request, str(error), messages.ERROR)
                continue
            done += 1
            self.log_change(request, fixed, f"Auto-fixed: {fixed.resolution}")
        if done:
            self.message_user(request, f"Auto-fixed {plural(done, 'issue')}.", messages.SUCCESS)
        return done


def _open_position(issue) -> Position | None:
    """The issue's strategy's open position in its instrument now (not locked: a preview)."""
    return Position.objects.filter(
        strategy_id=issue.strategy_id,
        symbol=issue.symbol,
        exchange=issue.exchange,
        product=issue.product,
        closed_at__isnull=True,
    ).first()


# Daily statistics and market prices: positions/admin_stats.py (registered on import).
from positions import admin_stats  # noqa: E402, F401
