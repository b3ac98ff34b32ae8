"""The admin's change log: each controlled change a person makes (a strategy paused, a limit
changed, a key revoked) as an AdminChange row with its old → new values and reason, and an
admin LogEntry saying the same, so the object's own history page reads it too.

Called by the services that make those changes, inside their transaction: the change, its
audit row and its log entry commit together or not at all.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import Enum

from django.contrib.admin.models import ADDITION, CHANGE, LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db import models

from risk.models import AdminAction, AdminChange

MAX_REASON_LENGTH = 1000


class ChangeReasonMissing(ValueError):
    """A controlled change without a reason (or with one too long); the message names the rule."""


def change_reason_clean(reason: str | None) -> str:
    """The reason, stripped; ChangeReasonMissing when blank or too long."""
    reason = (reason or "").strip()
    if not reason:
        raise ChangeReasonMissing("reason: required for every controlled change")
    if len(reason) > MAX_REASON_LENGTH:
        raise ChangeReasonMissing(f"reason: at most {MAX_REASON_LENGTH} characters")
    return reason


def audit_value(value):
    """A value as the change log keeps it: None, a bool or an int as it is; a decimal, a
    choice, a time or a row as a string (JSON has no decimals)."""
    if isinstance(value, Enum):
        return str(value.value)
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, models.Model):
        return str(value)
    if isinstance(value, dict | list):
        return value
    return str(value)


def changes_between(before: dict, after: dict) -> dict[str, list]:
    """{field: [old, new]} for each field whose value differs, in audit_value's terms."""
    changes = {}
    for field, new in after.items():
        old = before.get(field)
        if old == new or audit_value(old) == audit_value(new):
            continue  # Decimal("5E+4") is 50000.00: the same value
        changes[field] = [audit_value(old), audit_value(new)]
    return changes


def _shown(value) -> str:
    return "blank" if value is None or value == "" else str(value)


def changes_sentence(changes: dict[str, list]) -> str:
    """ "status ACTIVE → PAUSED; daily_loss_limit 50000.00 → 40000.00"."""
    return "; ".join(
        f"{field} {_shown(old)} → {_shown(new)}" for field, (old, new) in changes.items()
    )


def admin_change_record(
    *,
    user,
    target: models.Model,
    action: AdminAction,
    reason: str,
    changes: dict[str, list],
    label: str = "",
) -> AdminChange:
    """Record one controlled change of ``target`` by ``user``: an AdminChange row and an admin
    LogEntry whose message gives the old → new values and the reason.

    Call it inside the transaction that makes the change. The reason must not be blank
    (ChangeReasonMissing; the database refuses a blank one too).
    """
    reason = change_reason_clean(reason)
    label = (label or str(target))[:200]
    content_type = ContentType.objects.get_for_model(target, for_concrete_model=False)
    row = AdminChange.objects.create(
        user=user,
        content_type=content_type,
        object_id=str(target.pk),
        object_label=label,
        action=action,
        reason=reason,
        changes=changes,
    )
    LogEntry.objects.create(
        user_id=user.pk,
        content_type=content_type,
        object_id=str(target.pk),
        object_repr=label,
        action_flag=ADDITION if action == AdminAction.LIMIT_ADD else CHANGE,
        change_message=f"{AdminAction(action).label}: {changes_sentence(changes)}. "
        f"Reason: {reason}",
    )
    return row
