"""Reconciliation issues in the admin: most severe and oldest first, resolved with a note on a
page of their own, auto-fixed after a confirmation, read-only once resolved; operators settle
what is not CRITICAL."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.admin.models import LogEntry
from django.utils import timezone

from positions.models import IssueType, ReconciliationIssue, Severity
from positions.tests.factories import PositionFactory, ReconciliationIssueFactory

pytestmark = pytest.mark.django_db

LIST = "/admin/positions/reconciliationissue/"


def page_of(issue, suffix="change/"):
    return f"{LIST}{issue.pk}/{suffix}"


def test_most_severe_then_oldest_first_resolved_last(as_viewer):
    now = timezone.now()
    old_warning = ReconciliationIssueFactory(
        severity=Severity.WARNING, detected_at=now - timedelta(hours=5)
    )
    new_critical = ReconciliationIssueFactory(severity=Severity.CRITICAL, detected_at=now)
    old_critical = ReconciliationIssueFactory(
        severity=Severity.CRITICAL, detected_at=now - timedelta(hours=2)
    )
    info = ReconciliationIssueFactory(severity=Severity.INFO, detected_at=now - timedelta(days=1))
    resolved = ReconciliationIssueFactory(
        severity=Severity.CRITICAL,
        resolved=True,
        resolved_at=now,
        resolution="done",
        detected_at=now - timedelta(days=2),
    )

    unresolved = as_viewer.get(LIST).context["cl"].result_list
    everything = as_viewer.get(LIST, {"state": "all"}).context["cl"].result_list

    order = [old_critical, new_critical, old_warning, info]
    assert list(unresolved) == order  # unresolved is the default
    assert list(everything) == [*order, resolved]
    page = as_viewer.get(LIST).content.decode()
    assert "oms-badge--red" in page and ">5 h<" in page  # durations in words, not "5.0 h"


def test_resolving_needs_a_note_and_records_who_and_when(as_operator, operator):
    issue = ReconciliationIssueFactory(severity=Severity.WARNING)

    blank = as_operator.post(page_of(issue, "resolve/"), {"note": "  "})
    assert blank.status_code == 200 and "note: required" in blank.content.decode()
    issue.refresh_from_db()
    assert not issue.resolved

    response = as_operator.post(page_of(issue, "resolve/"), {"note": "broker corrected it"})

    assert response.status_code == 302
    issue.refresh_from_db()
    assert issue.resolved and issue.resolved_by == "omar" and issue.resolved_at is not None
    entry = LogEntry.objects.get(object_id=str(issue.pk), content_type__model="reconciliationissue")
    assert entry.user == operator and "broker corrected it" in entry.get_change_message()


def test_a_resolved_issue_is_read_only(as_risk_officer):
    issue = ReconciliationIssueFactory(
        resolved=True, resolved_at=timezone.now(), resolution="done", resolved_by="rita"
    )

    change = as_risk_officer.get(page_of(issue))
    assert change.context["title"].startswith("View")
    assert 'id="resolve-issue"' not in change.content.decode()
    assert as_risk_officer.post(page_of(issue), {"resolution": "edited"}).status_code == 403
    as_risk_officer.post(page_of(issue, "resolve/"), {"note": "again"})
    issue.refresh_from_db()
    assert issue.resolution == "done"


def test_operators_leave_critical_issues_to_risk_officers(as_operator, as_risk_officer):
    critical = ReconciliationIssueFactory(severity=Severity.CRITICAL)
    warning = ReconciliationIssueFactory(severity=Severity.WARNING)

    page = as_operator.get(page_of(critical)).content.decode()
    assert 'id="resolve-issue"' not in page and "needs a risk officer" in page
    assert as_operator.post(page_of(critical, "resolve/"), {"note": "x"}).status_code == 403
    confirmation = as_operator.post(
        LIST, {"action": "resolve_issues", "_selected_action": [critical.pk, warning.pk]}
    )
    assert confirmation.context["issues"] == [warning]
    assert confirmation.context["refused"] == [critical]

    as_risk_officer.post(page_of(critical, "resolve/"), {"note": "checked with Zerodha"})
    critical.refresh_from_db()
    assert critical.resolved and critical.resolved_by == "rita"


def test_viewers_resolve_nothing(as_viewer):
    issue = ReconciliationIssueFactory(severity=Severity.INFO)

    assert as_viewer.post(page_of(issue, "resolve/"), {"note": "x"}).status_code == 403
    assert as_viewer.get(page_of(issue, "auto-fix/")).status_code == 403
    assert as_viewer.get(LIST).context["action_form"] is None  # no action at all


def test_bulk_resolve_with_one_note(as_risk_officer):
    issues = ReconciliationIssueFactory.create_batch(3)
    ids = [i.pk for i in issues]

    form = as_risk_officer.post(LIST, {"action": "resolve_issues", "_selected_action": ids})
    assert form.status_code == 200 and len(form.context["issues"]) == 3

    as_risk_officer.post(
        LIST,
        {"action": "resolve_issues", "_selected_action": ids, "confirmed": "yes", "note": "EOD"},
    )
    assert (
        ReconciliationIssue.objects.filter(pk__in=ids, resolved=True, resolution="EOD").count() == 3
    )


def test_auto_fix_shows_the_change_then_adopts_the_broker_quantity(as_risk_officer, risk_officer):
    position = PositionFactory(quantity=10, average_price=Decimal("100"))
    issue = ReconciliationIssueFactory(
        strategy=position.strategy,
        symbol=position.symbol,
        internal_quantity=10,
        broker_quantity=4,
        broker_price=Decimal("100"),
    )
    unattributed = ReconciliationIssueFactory(strategy=None, symbol="X")
    ids = [issue.pk, unattributed.pk]

    preview = as_risk_officer.post(LIST, {"action": "auto_fix_issues", "_selected_action": ids})
    page = preview.content.decode()
    assert f"position {position.pk}: +10 → +4" in page
    assert "names no strategy" in page
    position.refresh_from_db()
    assert position.quantity == 10

    as_risk_officer.post(
        LIST, {"action": "auto_fix_issues", "_selected_action": [issue.pk], "confirmed": "yes"}
    )

    position.refresh_from_db()
    issue.refresh_from_db()
    assert position.quantity == 4
    assert issue.auto_fixed and issue.resolved_by == "rita"
    entry = LogEntry.objects.get(object_id=str(issue.pk), content_type__model="reconciliationissue")
    assert entry.user == risk_officer and "+10 → +4" in entry.get_change_message()


def test_auto_fix_from_the_issue_page(as_risk_officer):
    position = PositionFactory(quantity=-5)
    issue = ReconciliationIssueFactory(
        strategy=position.strategy,
        symbol=position.symbol,
        issue_type=IssueType.MISSING_AT_BROKER,
        internal_quantity=-5,
        broker_quantity=0,
    )

    assert 'id="auto-fix-issue"' in as_risk_officer.get(page_of(issue)).content.decode()
    assert (
        "Yes, adopt the broker" in as_risk_officer.get(page_of(issue, "auto-fix/")).content.decode()
    )
    as_risk_officer.post(page_of(issue, "auto-fix/"))

    position.refresh_from_db()
    assert position.closed_at is not None
