"""What the orders' admin pages show alike: status and side badges, short choice filters."""

from __future__ import annotations

import json
from datetime import date, datetime, time

from django.contrib import admin
from django.utils import timezone

from omsproject.admin_tools import badge
from orders.enums import OrderSide, OrderStatus

STATUS_TONES = {
    OrderStatus.PENDING: "purple",
    OrderStatus.SUBMITTED: "purple",
    OrderStatus.UNKNOWN: "amber",
    OrderStatus.OPEN: "blue",
    OrderStatus.TRIGGER_PENDING: "blue",
    OrderStatus.PARTIALLY_FILLED: "teal",
    OrderStatus.CANCEL_PENDING: "amber",
    OrderStatus.FILLED: "green",
    OrderStatus.CANCELLED: "grey",
    OrderStatus.REJECTED: "red",
    OrderStatus.EXPIRED: "grey",
}


def order_status_badge(status: str):
    status = OrderStatus(status)
    return badge(status.replace("_", " ").capitalize(), STATUS_TONES[status], title=status.label)


def side_badge(side: str):
    return badge(side, "buy" if side == OrderSide.BUY else "sell")


class ShortChoicesFilter(admin.ChoicesFieldListFilter):
    """A choices filter listing the stored values ("PARTIALLY FILLED", as the columns show
    them) rather than the long labels, so the list keeps its width. No facet counts."""

    def choices(self, changelist):
        yield {
            "selected": self.lookup_val is None,
            "query_string": changelist.get_query_string(remove=[self.lookup_kwarg]),
            "display": "All",
        }
        for value, _label in self.field.flatchoices:
            yield {
                "selected": self.lookup_val is not None and str(value) in self.lookup_val,
                "query_string": changelist.get_query_string({self.lookup_kwarg: value}),
                "display": str(value).replace("_", " "),
            }


def compact_json(value) -> str:
    return json.dumps(value, sort_keys=True, default=str, ensure_ascii=False) if value else "—"


def day_start(day: date | None = None) -> datetime:
    """Midnight IST of ``day`` (default today), aware: where "today" starts for the order lists."""
    return timezone.make_aware(datetime.combine(day or timezone.localdate(), time.min))
