"""Broker accounts: the morning login that gives each Kite account its day's session, and
telling staff when a LIVE strategy's account has none.

The login is Kite's: staff press "Connect Kite" in the admin, log in at Kite, and Kite sends
the browser back to our redirect view with a ``request_token`` and the ``state`` we gave it
(login_start signs it: the account, the person, and a ten-minute life). broker_account_connect
exchanges the token for the day's access token — a broker call, made with no lock or
transaction open — then stores it, encrypted, with its expiry (06:00 IST next day).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.core import signing
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from orders.broker_sessions import session_expiry, session_problem
from orders.brokers.kite import login_url, session_create
from orders.enums import StrategyMode, StrategyStatus
from orders.models import BrokerAccount
from risk import calendar

logger = logging.getLogger("oms.brokers.accounts")

LOGIN_STATE_SALT = "oms.kite-login"
LOGIN_STATE_MAX_AGE = 600  # seconds between "Connect Kite" and Kite's redirect back


class LoginRefused(Exception):
    """The login could not give the account a session; the message says why, for staff."""


def login_start(account: BrokerAccount, *, actor: str) -> str:
    """Kite's login page for ``account``, carrying a signed state naming it and ``actor``."""
    if not account.is_active:
        raise LoginRefused(f"account {account.user_id} is disabled: enable it first")
    state = signing.dumps({"account": account.pk, "actor": actor}, salt=LOGIN_STATE_SALT)
    return login_url(account.api_key, state=state)


def login_state_read(state: str, *, actor: str) -> int:
    """The account id a login's ``state`` names, or LoginRefused: forged, older than ten
    minutes, or started by someone else than the person now signed in."""
    try:
        data = signing.loads(state, salt=LOGIN_STATE_SALT, max_age=LOGIN_STATE_MAX_AGE)
    except signing.SignatureExpired as error:
        raise LoginRefused("state: the login took longer than 10 minutes; start again") from error
    except signing.BadSignature as error:
        raise LoginRefused("state: not one this OMS issued; start again") from error
    if data.get("actor") != actor:
        raise LoginRefused("state: the login was started by another person; start again")
    return int(data["account"])


def broker_account_connect(
    account_id: int, *, request_token: str, actor: str, now: datetime | None = None
) -> BrokerAccount:
    """Give the account its day's session from the login's ``request_token``.

    Kite is asked first, outside any transaction; then the token, its expiry and who logged in
    are stored under the account's row lock. A token for another Kite user than the account's
    is refused: the desk would otherwise trade one user's strategies on another's money.
    """
    if not request_token:
        raise LoginRefused("request_token: missing (Kite sends it when the login succeeds)")
    account = BrokerAccount.objects.get(pk=account_id)
    try:
        session = session_create(
            api_key=account.api_key, api_secret=account.api_secret, request_token=request_token
        )
    except Exception as error:
        raise LoginRefused(f"Kite refused the login: {error}") from error
    if session.user_id and session.user_id != account.user_id:
        raise LoginRefused(
            f"Kite logged in user {session.user_id}, but this account is {account.user_id}: "
            "log in to Kite as that user"
        )
    now = now or timezone.now()
    with transaction.atomic():
        account = BrokerAccount.objects.select_for_update().get(pk=account_id)
        account.access_token = session.access_token
        account.token_expires_at = session_expiry(session.login_time or now)
        account.connected_at = now
        account.connected_by = actor
        account.session_alerted_on = None
        account.save()
    logger.info(
        "Kite session for %s until %s (by %s)",
        account.user_id,
        account.token_expires_at.isoformat(),
        actor,
    )
    return account


def broker_account_disconnect(account_id: int, *, actor: str) -> None:
    """Forget the account's session (its token is no longer stored)."""
    with transaction.atomic():
        account = BrokerAccount.objects.select_for_update().get(pk=account_id)
        account.access_token = ""
        account.token_expires_at = None
        account.save()
    logger.info("Kite session of %s dropped by %s", account.user_id, actor)


@dataclass(frozen=True)
class SessionAlert:
    account: BrokerAccount
    problem: str
    strategies: list[str]


def broker_sessions_alert(now: datetime | None = None) -> list[SessionAlert]:
    """E-mail staff, once an IST day per account, about each account that ACTIVE LIVE
    strategies trade through and that has no valid session, from OMS_SESSION_ALERT_FROM on a
    trading day. Returns the alerts sent. The claim of the day is one UPDATE, so several
    workers running this at once send one e-mail."""
    now = now or timezone.now()
    local = calendar.ist(now)
    if not calendar.is_trading_day(local.date()):
        return []
    if local.strftime("%H:%M") < settings.OMS_SESSION_ALERT_FROM:
        return []
    alerts = []
    accounts = BrokerAccount.objects.filter(
        is_active=True,
        strategies__mode=StrategyMode.LIVE,
        strategies__status=StrategyStatus.ACTIVE,
    ).distinct()
    for account in accounts:
        problem = session_problem(account, now=now)
        if not problem:
            continue
        claimed = (
            BrokerAccount.objects.filter(pk=account.pk)
            .exclude(session_alerted_on=local.date())
            .update(session_alerted_on=local.date())
        )
        if not claimed:
            continue
        names = sorted(
            account.strategies.filter(
                mode=StrategyMode.LIVE, status=StrategyStatus.ACTIVE
            ).values_list("name", flat=True)
        )
        alert = SessionAlert(account, problem, names)
        _alert_send(alert)
        alerts.append(alert)
    return alerts


def _alert_send(alert: SessionAlert) -> None:
    subject = f"[OMS] Kite account {alert.account.user_id} has no session: LIVE orders refused"
    body = (
        f"{alert.problem}.\n\nLIVE strategies trading through it: {', '.join(alert.strategies)}.\n"
        "Their orders are refused (broker_session_missing) until someone logs in: admin → "
        "Broker accounts → Connect Kite."
    )
    logger.error(subject)
    if settings.OMS_RISK_EMAILS:
        send_mail(subject, body, None, settings.OMS_RISK_EMAILS, fail_silently=True)
