"""The admin's own change log (Django's ``LogEntry``): who changed what in the back office, and
when. Every write the admin makes leaves one (a cancel, a kill switch change, a resolved issue,
a changed limit), beside the service's own record. Read-only for everyone who may see it (every
role: risk/roles.py); risk officers export the filtered rows to CSV.
"""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry
from django.urls import reverse
from django.utils.html import format_html

from omsproject.admin_audit import CsvExportMixin, DateRangeFilter, titled
from omsproject.admin_tools import LargeTableAdmin, ReadOnlyAdmin, badge, local_time
from risk.audit import changes_sentence
from risk.models import AdminChange

ACTIONS = {ADDITION: ("Added", "green"), CHANGE: ("Changed", "blue"), DELETION: ("Deleted", "red")}


def action_name(flag: int) -> str:
    return ACTIONS.get(flag, (str(flag), ""))[0]


def change_message_text(change_message: str) -> str:
    """The message as the admin's History page words it ("Changed Status.", a reason)."""
    return LogEntry(change_message=change_message).get_change_message()


CHANGE_LOG_CSV = (
    ("id", "id"),
    ("action_time", "action_time"),
    ("user", "user__username"),
    ("action", "action_flag", action_name),
    ("app", "content_type__app_label"),
    ("model", "content_type__model"),
    ("object_id", "object_id"),
    ("object", "object_repr"),
    ("message", "change_message", change_message_text),
)


@admin.register(LogEntry)
class ChangeLogAdmin(CsvExportMixin, ReadOnlyAdmin, LargeTableAdmin):
    """Each change made in the admin: who, when, which object, what was done, the message."""

    list_display = ("when", "user", "action", "kind", "target", "message")
    list_display_links = ("when",)
    list_filter = (
        ("action_time", DateRangeFilter),
        ("user", admin.RelatedFieldListFilter),
        ("action_flag", titled(admin.ChoicesFieldListFilter, "action")),
        ("content_type", titled(admin.RelatedOnlyFieldListFilter, "kind of object")),
    )
    list_select_related = ("user", "content_type")
    sortable_by = ("when",)
    search_fields = ("object_repr", "=object_id")
    search_help_text = "The object's name (part of it) or its exact id."
    csv_columns = CHANGE_LOG_CSV
    fields = (
        "action_time",
        "user",
        "action",
        "kind",
        "target",
        "object_id",
        "object_repr",
        "message",
    )
    readonly_fields = fields

    def get_ordering(self, request):
        return ["-id"]  # written in time order: newest first, by the primary key

    def changelist_view(self, request, extra_context=None):
        extra_context = {
            "title": "Change log (every change made in the admin)",
            **(extra_context or {}),
        }
        return super().changelist_view(request, extra_context)

    @admin.display(description="time", ordering="id")
    def when(self, entry):
        return local_time(entry.action_time)

    @admin.display(description="action")
    def action(self, entry):
        label, tone = ACTIONS.get(entry.action_flag, (str(entry.action_flag), "grey"))
        return badge(label, tone)

    @admin.display(description="kind of object")
    def kind(self, entry):
        return entry.content_type.name if entry.content_type else "—"

    @admin.display(description="object")
    def target(self, entry):
        url = entry.get_admin_url() if entry.action_flag != DELETION else ""
        if url:
            return format_html('<a href="{}">{}</a>', url, entry.object_repr)
        return entry.object_repr

    @admin.display(description="message")
    def message(self, entry):
        return entry.get_change_message()


CONTROLLED_CHANGES_CSV = (
    ("id", "id"),
    ("created_at", "created_at"),
    ("user", "user__username"),
    ("action", "action"),
    ("app", "content_type__app_label"),
    ("model", "content_type__model"),
    ("object_id", "object_id"),
    ("object", "object_label"),
    ("reason", "reason"),
    ("changes", "changes", changes_sentence),
)


@admin.register(AdminChange)
class AdminChangeAdmin(CsvExportMixin, ReadOnlyAdmin, LargeTableAdmin):
    """The controlled changes (a strategy paused or resumed, a limit changed, a key revoked):
    who, when, on what, why, and each field's old → new value. Append-only in the database."""

    list_display = ("when", "user", "action", "target", "what_changed", "reason")
    list_display_links = ("when",)
    list_filter = (
        ("created_at", DateRangeFilter),
        ("user", admin.RelatedFieldListFilter),
        ("action", titled(admin.ChoicesFieldListFilter, "change")),
    )
    list_select_related = ("user", "content_type")
    sortable_by = ("when",)
    search_fields = ("object_label", "reason")
    search_help_text = "Part of the object's name or of the reason."
    csv_columns = CONTROLLED_CHANGES_CSV
    fields = ("when", "user", "action", "target", "what_changed", "reason")
    readonly_fields = fields

    def get_ordering(self, request):
        return ["-id"]

    def changelist_view(self, request, extra_context=None):
        extra_context = {
            "title": "Controlled changes (old → new, with the reason)",
            **(extra_context or {}),
        }
        return super().changelist_view(request, extra_context)

    @admin.display(description="time", ordering="id")
    def when(self, change):
        return local_time(change.created_at)

    @admin.display(description="object")
    def target(self, change):
        model = change.content_type.model_class() if change.content_type else None
        if model is not None and admin.site.is_registered(model):
            url = reverse(
                f"admin:{change.content_type.app_label}_{change.content_type.model}_change",
                args=[change.object_id],
            )
            return format_html('<a href="{}">{}</a>', url, change.object_label)
        return change.object_label

    @admin.display(description="old → new")
    def what_changed(self, change):
        return changes_sentence(change.changes) or "—"
