"""Badges and rupee amounts for the admin's own templates (the dashboard, the kill switch)."""

from django import template

from omsproject import admin_tools
from risk.limits import INTEGER_FIELDS

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
    return admin_tools.compact(amount)


@register.filter
def price(amount):
    return admin_tools.price(amount)


@register.filter
def average(amount):
    return admin_tools.average(amount)


@register.filter
def quantity(count):
    return admin_tools.quantity(count)


@register.filter
def limit_figure(value, name):
    """A limit's value as it reads: rupees, a count grouped, or a percentage."""
    if value is None:
        return "—"
    if name in INTEGER_FIELDS:
        return admin_tools.quantity(value)
    if name.endswith("_percent"):
        return f"{value.normalize():f}%"
    return admin_tools.inr(value)


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
