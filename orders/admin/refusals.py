"""Why an order was refused, as a risk officer reads it: a pre-trade refusal is the risk
checks' decision, one line per violation (code, field, value vs limit), never the broker's."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal, InvalidOperation

from django.contrib import admin
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from omsproject.admin_tools import inr
from orders.admin.display import day_start
from orders.enums import OrderStatus

# What a violation's value and limit measure, by its code (risk.validator).
MONEY_CODES = frozenset(
    {"max_order_value", "max_strategy_exposure", "max_total_exposure", "daily_loss_limit"}
)
PERCENT_CODES = frozenset({"price_band"})
REASON_WIDTH = 56  # characters of the reason a list shows (the whole text on hover)


def is_risk_refusal(order) -> bool:
    """Refused by the pre-trade checks (it never reached a broker), not rejected by one."""
    return order.status == OrderStatus.REJECTED and bool((order.metadata or {}).get("violations"))


def _amount(code: str, raw: str) -> str:
    try:
        number = Decimal(raw)
    except (InvalidOperation, TypeError):
        return str(raw)
    if code in MONEY_CODES:
        return inr(number)
    if code in PERCENT_CODES:
        return f"{number}%"
    return f"{number:,}"


def violation_line(violation: dict):
    """One violation: its code, the field it concerns, and the value against the limit (the
    check's whole message on hover); a check without a limit shows its message."""
    code, field = violation.get("code", "?"), violation.get("field", "")
    message = violation.get("message", "")
    if violation.get("value") or violation.get("limit"):
        measured = format_html(
            "{} <span class='oms-vs'>vs limit</span> {}",
            _amount(code, violation.get("value", "")),
            _amount(code, violation.get("limit", "")),
        )
    else:
        measured = message
    return format_html(
        '<li class="oms-violation" title="{}"><code>{}</code> · {} · {}</li>',
        message,
        code,
        field or "—",
        measured,
    )


def violations_list(order):
    violations = (order.metadata or {}).get("violations") or []
    return format_html(
        '<ul class="oms-violations" id="risk-violations" style="{}">{}</ul>',
        "margin: 0; padding: 0; list-style: none",
        format_html_join("", "{}", ((violation_line(v),) for v in violations)),
    )


def risk_codes(order) -> str:
    """ "Risk checks: max_order_quantity, max_order_value": which checks refused the order."""
    codes = [v.get("code", "?") for v in (order.metadata or {}).get("violations") or []]
    return "Risk checks: " + ", ".join(dict.fromkeys(codes))


def short_reason(text: str, *, shown: str = ""):
    """The reason, cut to the list's width (or ``shown`` in its place), with the whole of it
    on hover."""
    if not text:
        return "—"
    shown = shown or text
    short = shown if len(shown) <= REASON_WIDTH else shown[: REASON_WIDTH - 1] + "…"
    return format_html(
        '<span class="oms-reason" title="{}" style="{}">{}</span>',
        text,
        # The list's cells do not wrap; this one does, within its width, so the list keeps
        # to the screen.
        "display: inline-block; max-width: 19em; white-space: normal",
        short,
    )


class DayFilter(admin.SimpleListFilter):
    """Today's (or yesterday's) orders, IST: a range on created_at, which the index serves."""

    title = "day"
    parameter_name = "day"

    def lookups(self, request, model_admin):
        return (("today", "Today"), ("yesterday", "Yesterday"))

    def queryset(self, request, queryset):
        if self.value() == "today":
            return queryset.filter(created_at__gte=day_start())
        if self.value() == "yesterday":
            yesterday = timezone.localdate() - timedelta(days=1)
            return queryset.filter(created_at__gte=day_start(yesterday), created_at__lt=day_start())
        return queryset
