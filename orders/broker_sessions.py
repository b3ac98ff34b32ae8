"""A Kite account's session: when the day's access token stops working, and whether an account
can trade now. Pure rules, read by the adapter, the pre-trade checks, health and the admin."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from django.utils import timezone

IST = ZoneInfo("Asia/Kolkata")
SESSION_ENDS_AT = time(6, 0)  # IST: Kite logs every API session out each morning


class SessionHolder(Protocol):
    user_id: str
    is_active: bool
    access_token: str
    token_expires_at: datetime | None


def session_expiry(login_at: datetime) -> datetime:
    """When a token issued at ``login_at`` stops working: the next 06:00 IST."""
    local = login_at.astimezone(IST)
    expiry = local.replace(
        hour=SESSION_ENDS_AT.hour, minute=SESSION_ENDS_AT.minute, second=0, microsecond=0
    )
    if expiry <= local:
        expiry += timedelta(days=1)
    return expiry


def session_state(account: SessionHolder, *, now: datetime | None = None) -> str:
    """``connected``, ``expired``, ``never`` (no token yet) or ``disabled``."""
    if not account.is_active:
        return "disabled"
    if not account.access_token or account.token_expires_at is None:
        return "never"
    if account.token_expires_at <= (now or timezone.now()):
        return "expired"
    return "connected"


def session_problem(account: SessionHolder, *, now: datetime | None = None) -> str:
    """Why ``account`` cannot trade now ('' when it can): said to staff and to strategies."""
    state = session_state(account, now=now)
    if state == "disabled":
        return f"Kite account {account.user_id} is disabled"
    if state == "never":
        return f"Kite account {account.user_id} has no session: log in to Kite (Connect Kite)"
    if state == "expired":
        expired = account.token_expires_at.astimezone(IST).strftime("%d %b %H:%M IST")
        return (
            f"Kite account {account.user_id}: session expired at {expired}; "
            "log in to Kite again (Connect Kite)"
        )
    return ""
