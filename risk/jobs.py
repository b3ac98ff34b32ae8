"""Deferring risk's background jobs, by task name (the tasks live in risk.tasks, the entry
point that calls the kill switch's rules; this module sits below the services that defer)."""

from __future__ import annotations

from procrastinate.contrib.django import app

CRITICAL_ISSUE = "risk.critical_issue"


def defer_critical_issue(issue) -> None:
    """A write found a CRITICAL issue: the kill switch's rule for it runs as a job (a write
    never calls a reaction), deferred in the transaction that recorded the issue."""
    app.configure_task(CRITICAL_ISSUE, allow_unknown=False).defer(issue_id=issue.pk)
