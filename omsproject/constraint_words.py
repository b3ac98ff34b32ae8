"""The database's rules in words: a constraint's name mapped to the field it guards and what
it requires, so that a person editing in the admin never reads a constraint's name.

Used by the admin forms (omsproject.admin_forms: a constraint Django checks before saving)
and by services that catch an IntegrityError (a constraint only the database checks).
"""

from __future__ import annotations

NON_FIELD = "__all__"

# name → (field, rule). The field is where the admin shows it ("__all__": above the form).
CONSTRAINT_WORDS: dict[str, tuple[str, str]] = {
    # risk limits
    "risk_limit_band_positive": (
        "price_band_percent",
        "price band %: must be more than 0 (leave it blank for no band)",
    ),
    "risk_limit_loss_positive": (
        "daily_loss_limit",
        "daily loss limit: must be more than ₹0 (leave it blank for no limit)",
    ),
    "risk_limit_drawdown_positive": (
        "drawdown_limit",
        "drawdown limit: must be more than ₹0 (leave it blank for no limit)",
    ),
    "risk_limit_one_per_scope": (
        "strategy",
        "scope: limits for it already exist (one global row, one row per strategy); "
        "change that row instead",
    ),
    # strategies
    "strategy_name_not_blank": ("name", "name: required"),
    "strategy_status_valid": ("status", "status: must be ACTIVE, PAUSED, INACTIVE or ERROR"),
    "strategy_mode_valid": ("mode", "mode: must be PAPER or LIVE"),
    "strategy_paused_by_iff_paused": (
        "status",
        "status: only a PAUSED strategy says who paused it",
    ),
    "strategy_counters_consistent": (
        NON_FIELD,
        "performance counters: winning and losing trades cannot exceed the total trades",
    ),
    # API keys
    "api_key_name_set": ("name", "name: a key needs a name saying what it is for"),
    "api_key_live_name_unique_per_strategy": (
        "name",
        "name: the strategy already has a live key of that name",
    ),
    # the admin's change log
    "admin_change_reason_required": ("reason", "reason: required for every controlled change"),
    # broker accounts
    "broker_account_name_not_blank": ("name", "name: required"),
    "broker_account_user_id_format": (
        "user_id",
        "Kite user id: 2 to 32 capital letters and digits, as Kite shows it (e.g. AB1234)",
    ),
    # webhooks
    "webhook_url_http": ("url", "URL: must start with https:// (or http://)"),
    "webhook_kinds_known": ("kinds", "kinds: only the event kinds listed may be chosen"),
    "webhook_state_valid": ("state", "state: must be ACTIVE or PAUSED"),
}


def constraint_words(name: str | None) -> tuple[str, str] | None:
    """(field, rule in words) of a constraint, or None for one not listed."""
    return CONSTRAINT_WORDS.get(name or "")


def integrity_words(error: Exception) -> tuple[str, str] | None:
    """(field, rule in words) of the constraint an IntegrityError names, or None."""
    diag = getattr(getattr(error, "__cause__", None), "diag", None)
    return constraint_words(getattr(diag, "constraint_name", None))


def named_constraint_in(message: str) -> str | None:
    """The listed constraint a Django validation message names ("Constraint “x” is violated.")."""
    for name in CONSTRAINT_WORDS:
        if f"“{name}”" in message or f'"{name}"' in message:
            return name
    return None
