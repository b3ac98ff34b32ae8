"""The back office's view of broker-held protections (GTTs): where each position's stop lives
(a column and a line on the position's page) and the list of protections. Read-only: the OMS
places, amends and cancels them (positions.protection)."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import F, OuterRef, Subquery
from django.urls import reverse
from django.utils.html import format_html

from omsproject.admin_tools import ReadOnlyAdmin, badge, local_time
from orders.enums import ProtectionMode
from positions.models import BrokerProtection, ProtectionState

STATE_TONES = {
    ProtectionState.PLACING: "amber",
    ProtectionState.ACTIVE: "green",
    ProtectionState.AMENDING: "amber",
    ProtectionState.CANCELLING: "amber",
    ProtectionState.TRIGGERED: "blue",
    ProtectionState.CANCELLED: "grey",
    ProtectionState.FAILED: "red",
}
MODE_LABELS = {
    ProtectionMode.OMS: "OMS",
    ProtectionMode.BROKER: "broker",
    ProtectionMode.BOTH: "both",
}


def with_protection(queryset):
    """Positions with their strategy's protection mode and their latest protection's state and
    trigger id: one query for the page, whatever its length."""
    latest = BrokerProtection.objects.filter(position=OuterRef("pk")).order_by("-pk")
    return queryset.annotate(
        protection_mode=F("strategy__protection_mode"),
        protection_state=Subquery(latest.values("state")[:1]),
        protection_trigger=Subquery(latest.values("trigger_id")[:1]),
    )


class PositionProtectionColumns:
    """The position admin's protection column and its page's line."""

    @admin.display(description="protection")
    def protection(self, position, *, full: bool = False):
        """``broker ACTIVE`` in the list (the GTT's trigger id on hover), ``broker: GTT 123
        ACTIVE`` on the position's page."""
        mode = getattr(position, "protection_mode", position.strategy.protection_mode)
        label = MODE_LABELS[mode]
        state = getattr(position, "protection_state", None)
        if mode == ProtectionMode.OMS or state is None:
            return badge(label, "grey", title="stop-loss / take-profit watched by the OMS")
        trigger = getattr(position, "protection_trigger", "") or "—"
        where = (
            "held at the broker as GTT " + trigger + (" and by the OMS" if label == "both" else "")
        )
        text = f"{label}: GTT {trigger} {state}" if full else f"{label} {state}"
        return badge(text, STATE_TONES[state], title=where)

    @admin.display(description="where its protection lives")
    def protection_held(self, position):
        url = reverse("admin:positions_brokerprotection_changelist")
        return format_html(
            '{} <a href="{}?position__id__exact={}">broker protections of this position</a>',
            PositionProtectionColumns.protection(self, position, full=True),
            url,
            position.pk,
        )


@admin.register(BrokerProtection)
class BrokerProtectionAdmin(ReadOnlyAdmin):
    """Every GTT the OMS asked a broker to hold for a position, live or ended."""

    list_display = (
        "id",
        "position_link",
        "strategy",
        "broker",
        "state_label",
        "trigger_id",
        "quantity",
        "stop_loss",
        "take_profit",
        "exit_order",
        "last_error",
        "updated",
    )
    list_filter = ("state", "broker", "strategy")
    list_select_related = ("strategy", "position")
    search_fields = ("=trigger_id", "=position__symbol")

    @admin.display(description="position", ordering="position")
    def position_link(self, protection):
        url = reverse("admin:positions_position_change", args=[protection.position_id])
        position = protection.position
        label = f"{position.pk} {position.symbol} {position.quantity:+d}"
        return format_html('<a href="{}">{}</a>', url, label)

    @admin.display(description="state", ordering="state")
    def state_label(self, protection):
        return badge(protection.get_state_display(), STATE_TONES[protection.state])

    @admin.display(description="updated", ordering="updated_at")
    def updated(self, protection):
        return local_time(protection.updated_at)
