"""Limits in use (risk.usage) as a table: one row per scope (the desk, each strategy), one
column per limit, each cell today's usage against the limit in force, coloured as it nears it.
Used by the dashboard, a strategy's page and the risk limits list."""

from __future__ import annotations

from django import template

from omsproject.admin_tools import indian_grouping, inr
from risk.limits import LIMIT_MEANINGS
from risk.usage import limits_in_use

register = template.Library()

# The table's columns: (heading, the strategy's limit, the desk's limit).
COLUMNS = (
    ("Loss today / daily loss limit", "daily_loss_limit", "daily_loss_limit"),
    ("Drop from peak / drawdown limit", "drawdown_limit", "drawdown_limit"),
    ("Gross exposure / max exposure", "max_strategy_exposure", "max_total_exposure"),
    ("Working orders / max open orders", "max_open_orders", None),
    ("Busiest second / orders a second", "orders_per_second", None),
    ("Largest position / max position quantity", "max_position_quantity", None),
)


def _amount(use, value) -> str:
    if use.money:
        return inr(value)
    return indian_grouping(str(int(value)))


def _cell(use) -> dict | None:
    if use is None:
        return None
    limit = use.limit
    used = _amount(use, use.used)
    if use.off:
        return {"tone": "off", "used": used, "limit": "OFF", "title": limit.warning}
    sources = ", ".join(limit.sources)
    return {
        "tone": use.tone,
        "used": used,
        "limit": _amount(use, limit.value),
        "percent": use.percent,
        "bar": min(use.percent, 100),
        "title": f"{limit.label}: {_amount(use, limit.value)} in force, from {sources}; "
        f"measured: {use.measure}",
    }


@register.inclusion_tag("risk/limits_in_use.html")
def limits_usage_table(usage, caption="Limits in use"):
    """Render a LimitsUsage (risk.usage.limits_in_use)."""
    rows = []
    for scope in usage.scopes:
        names = [mine if scope.strategy else desk for _, mine, desk in COLUMNS]
        rows.append(
            {
                "scope": scope,
                "cells": [_cell(scope.use(name)) if name else None for name in names],
            }
        )
    # One line per limit that is off somewhere, naming where: not one per scope and limit.
    off: dict[str, list[str]] = {}
    for scope in usage.scopes:
        for use in scope.uses:
            if use.off:
                off.setdefault(use.name, []).append(scope.label)
    warnings = [
        (", ".join(scopes), f"{name} is off: {LIMIT_MEANINGS[name][1]}")
        for name, scopes in off.items()
    ]
    return {
        "columns": [heading for heading, _, _ in COLUMNS],
        "rows": rows,
        "warnings": warnings,
        "caption": caption,
    }


@register.simple_tag
def limits_in_use_of(strategy=None):
    """The desk's limits and ``strategy``'s (None: every strategy's)."""
    return limits_in_use(strategy=strategy)
