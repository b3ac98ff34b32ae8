"""Reconciliation issues in the back office: a list by severity and state, resolved with a
note or auto-fixed (one at a time or in bulk, after a confirmation), read-only once settled.
Writes go through positions.services; each also leaves an admin log entry.
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
    DefaultChoiceFilter,
    OmsModelAdmin,
    badge,
    instrument_label,
    local_time,
    object_page_paths,
    quantity,
)
from omsproject.money_format import duration, plural
from omsproject.templatetags.oms_admin import SEVERITY_TONES
from positions.models import (
    Position,
    ReconciliationIssue,
    Severity,
)
from positions.services import (
    AUTO_FIXABLE,
    ReconciliationIssueError,
    reconciliation_issue_auto_fix,
    reconciliation_issue_auto_fix_plan,
    reconciliation_issue_resolve,
)

MAX_AT_ONCE = 100


# --- the list --------------------------------------------------------------------


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
