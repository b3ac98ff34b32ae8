"""Badges and rupee amounts for the admin's own templates (the dashboard, the kill switch)."""

from django import template

from omsproject import admin_tools
from risk.charts import compact_inr

register = template.Library()

KILL_SWITCH_TONES = {"ACTIVE": "green", "REDUCING": "amber", "HALTED": "red"}
SEVERITY_TONES = {"CRITICAL": "red", "WARNING": "amber", "INFO": "blue"}
STRATEGY_TONES = {"ACTIVE": "green", "PAUSED": "amber", "INACTIVE": "grey", "ERROR": "red"}


@register.filter
def pnl(amount):
    return admin_tools.pnl(amount)


@register.filter
def inr(amount):
    return admin_tools.inr(amount)


@register.filter
def inr_compact(amount):
    return "—" if amount is None else compact_inr(amount)


@register.simple_tag
def state_badge(state):
    return admin_tools.badge(str(state), KILL_SWITCH_TONES[str(state)])


@register.simple_tag
def severity_badge(severity, count=None):
    label = str(severity) if count is None else f"{count} {severity}"
    tone = SEVERITY_TONES[str(severity)] if count is None or count else "grey"
    return admin_tools.badge(label, tone)


@register.simple_tag
def strategy_status_badge(status):
    return admin_tools.badge(str(status), STRATEGY_TONES[str(status)])
