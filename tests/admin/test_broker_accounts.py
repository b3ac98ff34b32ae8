"""Broker accounts: secrets encrypted at rest and never shown, the morning Kite login from the
admin through a fake Kite HTTP server (the official client's generate_session runs), and what a
LIVE strategy without a session gets: refused before any broker call, staff told."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import pytest
from django.contrib.admin.models import LogEntry
from django.core import mail
from django.db import connection
from django.utils import timezone

from omsproject.testing.threads import run_together
from orders.broker_sessions import session_expiry
from orders.enums import StrategyMode, StrategyStatus
from orders.models import BrokerAccount
from orders.services.broker_accounts import broker_sessions_alert
from orders.tests.conftest import KITE_API_KEY, KITE_API_SECRET, kite_account_create
from orders.tests.factories import StrategyFactory
from orders.tests.fake_kite import FakeKiteServer
from tests.admin.conftest import logged_in

IST = ZoneInfo("Asia/Kolkata")
SESSION_TOKEN = ("POST", "/session/token")


def session_reply(user_id: str = "AB1234", access_token: str = "fresh-token-of-the-day") -> dict:
    """Kite's documented answer to POST /session/token."""
    return {
        "status": "success",
        "data": {
            "user_type": "individual",
            "email": "desk@example.com",
            "user_name": "Desk One",
            "user_shortname": "Desk",
            "broker": "ZERODHA",
            "exchanges": ["NSE", "NFO", "BSE"],
            "products": ["CNC", "NRML", "MIS"],
            "order_types": ["MARKET", "LIMIT", "SL", "SL-M"],
            "avatar_url": None,
            "user_id": user_id,
            "api_key": KITE_API_KEY,
            "access_token": access_token,
            "public_token": "public-token",
            "refresh_token": "",
            "enctoken": "enc-token",
            "login_time": "2026-12-02 08:41:07",
            "meta": {"demat_consent": "physical"},
        },
    }


@pytest.fixture
def kite(settings):
    server = FakeKiteServer().start()
    settings.KITE_API_ROOT = server.root
    settings.KITE_LOGIN_URL = f"{server.root}/connect/login"
    yield server
    server.stop()


@pytest.fixture
def account(db):
    return kite_account_create(access_token="")


def start_login(client, account) -> str:
    """Press "Connect Kite": the state Kite is asked to hand back."""
    response = client.get(f"/admin/orders/brokeraccount/{account.pk}/connect/")
    assert response.status_code == 302
    url = urlsplit(response["Location"])
    query = parse_qs(url.query)
    assert query["api_key"] == [KITE_API_KEY]
    assert query["v"] == ["3"]
    return parse_qs(query["redirect_params"][0])["state"][0]


def kite_redirect(client, state: str, request_token: str = "request-token-1", status="success"):
    """Kite sends the browser back to the app's redirect URL."""
    return client.get(
        "/broker/kite/login/",
        {"request_token": request_token, "action": "login", "status": status, "state": state},
    )


# --- secrets at rest -----------------------------------------------------------------------------


def test_secrets_are_encrypted_at_rest_and_read_back_in_clear(db):
    account = kite_account_create(access_token="the-access-token")

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT api_key, api_secret, access_token FROM broker_accounts WHERE id = %s",
            [account.pk],
        )
        stored = cursor.fetchone()
    for plain, raw in zip((KITE_API_KEY, KITE_API_SECRET, "the-access-token"), stored, strict=True):
        assert plain not in raw
        assert raw.startswith("gAAAA")  # a Fernet token
    fresh = BrokerAccount.objects.get(pk=account.pk)
    assert (fresh.api_key, fresh.api_secret, fresh.access_token) == (
        KITE_API_KEY,
        KITE_API_SECRET,
        "the-access-token",
    )


def test_a_rotated_key_still_reads_what_the_old_one_wrote(db, settings):
    from cryptography.fernet import Fernet

    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.OMS_SECRETS_KEYS = [old]
    account = kite_account_create()
    settings.OMS_SECRETS_KEYS = [new, old]

    assert BrokerAccount.objects.get(pk=account.pk).api_secret == KITE_API_SECRET
    settings.OMS_SECRETS_KEYS = [new]
    from omsproject.crypto import SecretUnreadable

    with pytest.raises(SecretUnreadable, match="OMS_SECRETS_KEYS"):
        BrokerAccount.objects.get(pk=account.pk)


def test_no_page_shows_a_secret(db, account, risk_officer, superuser):
    account.access_token = "token-never-shown"
    account.token_expires_at = timezone.now() + timedelta(hours=5)
    account.save()
    for user in (risk_officer, superuser):
        client = logged_in(user)
        for url in (
            "/admin/orders/brokeraccount/",
            f"/admin/orders/brokeraccount/{account.pk}/change/",
        ):
            page = client.get(url).content.decode()
            for secret in (KITE_API_KEY, KITE_API_SECRET, "token-never-shown"):
                assert secret not in page, (user, url)
    page = logged_in(risk_officer).get(f"/admin/orders/brokeraccount/{account.pk}/change/")
    assert "stored encrypted, never shown" in page.content.decode()


def test_a_blank_secret_field_keeps_the_stored_one(db, account, superuser):
    client = logged_in(superuser)
    response = client.post(
        f"/admin/orders/brokeraccount/{account.pk}/change/",
        {
            "name": "Desk renamed",
            "user_id": "ab1234",
            "api_key": "",
            "api_secret": "",
            "is_active": "on",
        },
    )

    assert response.status_code == 302
    account.refresh_from_db()
    assert (account.name, account.user_id) == ("Desk renamed", "AB1234")
    assert (account.api_key, account.api_secret) == (KITE_API_KEY, KITE_API_SECRET)


def test_a_new_account_needs_its_key_and_secret(db, superuser):
    response = logged_in(superuser).post(
        "/admin/orders/brokeraccount/add/", {"name": "Desk 2", "user_id": "CD5678"}
    )

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert errors["api_key"] == ["required for a new account"]
    assert errors["api_secret"] == ["required for a new account"]
    assert not BrokerAccount.objects.exists()


# --- the morning login ---------------------------------------------------------------------------


def test_the_morning_login_stores_the_days_token_until_six_next_morning(
    kite, account, risk_officer
):
    kite.reply(*SESSION_TOKEN, session_reply())
    client = logged_in(risk_officer)

    state = start_login(client, account)
    response = kite_redirect(client, state)

    assert response.status_code == 302
    assert response["Location"] == "/admin/orders/brokeraccount/"
    account.refresh_from_db()
    assert account.access_token == "fresh-token-of-the-day"
    login = datetime(2026, 12, 2, 8, 41, 7, tzinfo=IST)
    assert account.token_expires_at == datetime(2026, 12, 3, 6, 0, tzinfo=IST)
    assert account.token_expires_at == session_expiry(login)
    assert account.connected_by == "rita"
    sent = kite.sent[-1]
    expected = hashlib.sha256(f"{KITE_API_KEY}request-token-1{KITE_API_SECRET}".encode())
    assert sent.data["checksum"] == expected.hexdigest()
    assert sent.data["request_token"] == "request-token-1"
    entry = LogEntry.objects.get(object_id=str(account.pk))
    assert entry.get_change_message() == "Connected to Kite: session until 03 Dec 06:00 IST"


def test_a_login_as_another_kite_user_is_refused(kite, account, risk_officer):
    kite.reply(*SESSION_TOKEN, session_reply(user_id="XY9999"))
    client = logged_in(risk_officer)

    response = kite_redirect(client, start_login(client, account))

    account.refresh_from_db()
    assert account.access_token == ""
    messages = [str(m) for m in response.wsgi_request._messages]
    assert "Kite logged in user XY9999, but this account is AB1234" in messages[0]


def test_kite_refusing_the_request_token_stores_nothing(kite, account, risk_officer):
    body = {"status": "error", "message": "Token is invalid or has expired.", "data": None}
    kite.reply(*SESSION_TOKEN, {**body, "error_type": "TokenException"}, http_status=403)
    client = logged_in(risk_officer)

    response = kite_redirect(client, start_login(client, account))

    account.refresh_from_db()
    assert account.access_token == ""
    message = str(next(iter(response.wsgi_request._messages)))
    assert "Kite refused the login" in message and "invalid or has expired" in message


@pytest.mark.parametrize("forged", ["", "made-up", "eyJhY2NvdW50IjoxfQ:1:abc"])
def test_a_state_this_oms_did_not_issue_is_refused(kite, account, risk_officer, forged):
    response = kite_redirect(logged_in(risk_officer), forged)

    assert response.status_code == 302
    account.refresh_from_db()
    assert account.access_token == ""
    assert kite.count(*SESSION_TOKEN) == 0


def test_a_login_started_by_someone_else_is_refused(kite, account, risk_officer, roles):
    from tests.admin.conftest import person

    other = person("ravi", "Risk officer")
    state = start_login(logged_in(risk_officer), account)

    kite_redirect(logged_in(other), state)

    account.refresh_from_db()
    assert account.access_token == ""
    assert kite.count(*SESSION_TOKEN) == 0


def test_a_login_kite_did_not_complete_stores_nothing(kite, account, risk_officer):
    client = logged_in(risk_officer)
    kite_redirect(client, start_login(client, account), status="cancelled")

    account.refresh_from_db()
    assert account.access_token == ""


def test_viewers_and_operators_may_not_connect(db, account, viewer, operator):
    for user in (viewer, operator):
        client = logged_in(user)
        assert client.get(f"/admin/orders/brokeraccount/{account.pk}/connect/").status_code == 403
        assert "/connect/" not in client.get("/admin/orders/brokeraccount/").content.decode()


def test_the_redirect_view_needs_a_staff_login(client, account):
    response = client.get("/broker/kite/login/", {"request_token": "x", "status": "success"})

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


# --- a LIVE strategy without a session ------------------------------------------------------------


def test_a_live_strategy_takes_the_desks_only_account_and_none_of_several(db):
    def made(mode):
        strategy = StrategyFactory(mode=mode)
        strategy.refresh_from_db()  # as the database's trigger left it
        return strategy.broker_account

    only = kite_account_create()
    assert made(StrategyMode.LIVE) == only
    assert made(StrategyMode.PAPER) is None
    kite_account_create("CD5678")
    assert made(StrategyMode.LIVE) is None


@pytest.mark.django_db(transaction=True)
def test_staff_are_emailed_once_a_day_per_account_even_by_two_workers(settings):
    settings.OMS_RISK_EMAILS = ["risk@example.com"]
    account = kite_account_create(access_token="")
    StrategyFactory(name="Momentum", mode=StrategyMode.LIVE, broker_account=account)
    StrategyFactory(name="Idle", mode=StrategyMode.LIVE, status=StrategyStatus.PAUSED)
    morning = datetime(2026, 12, 2, 9, 0, tzinfo=IST)  # a Wednesday

    outcomes = run_together([lambda: len(broker_sessions_alert(morning))] * 2)

    assert sorted(result for result, error in outcomes) == [0, 1]
    assert [error for _, error in outcomes] == [None, None]
    assert len(mail.outbox) == 1
    assert "AB1234 has no session" in mail.outbox[0].subject
    assert "Momentum" in mail.outbox[0].body
    assert broker_sessions_alert(morning + timedelta(hours=2)) == []  # once a day
    assert len(broker_sessions_alert(morning + timedelta(days=1))) == 1  # and the next day


def test_no_email_before_the_alert_time_or_for_a_connected_account(db, settings):
    settings.OMS_RISK_EMAILS = ["risk@example.com"]
    account = kite_account_create()
    StrategyFactory(mode=StrategyMode.LIVE, broker_account=account)
    early = datetime(2026, 12, 2, 7, 0, tzinfo=IST)

    assert broker_sessions_alert(early) == []
    assert broker_sessions_alert(early + timedelta(hours=2)) == []  # it has a session
    assert mail.outbox == []


# --- health, the banner, the command -----------------------------------------------------------


def test_health_and_every_admin_page_say_which_account_needs_a_login(db, risk_officer):
    from rest_framework.test import APIClient

    account = kite_account_create(access_token="")
    StrategyFactory(name="Momentum", mode=StrategyMode.LIVE, broker_account=account)

    body = APIClient().get("/api/v1/health/").json()
    page = logged_in(risk_officer).get("/admin/").content.decode()

    assert (body["status"], body["broker"]) == ("degraded", "not_configured")
    (check,) = [c for c in body["checks"] if c["name"] == "kite AB1234"]
    assert check["state"] == "critical"
    assert check["summary"] == (
        "Kite account AB1234 has no session: log in to Kite (Connect Kite); 1 LIVE strategy refused"
    )
    assert 'id="broker-session-banner"' in page
    assert 'data-check="kite AB1234"' in page
    account.access_token = "today"
    account.token_expires_at = timezone.now() + timedelta(hours=3)
    account.save()
    body = APIClient().get("/api/v1/health/").json()
    assert body["broker"] == "configured"
    assert (
        'id="broker-session-banner"' not in logged_in(risk_officer).get("/admin/").content.decode()
    )


def test_the_command_adds_lists_and_rotates_without_a_secret_on_the_command_line(
    db, settings, monkeypatch
):
    from io import StringIO

    from cryptography.fernet import Fernet
    from django.core.management import call_command

    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.OMS_SECRETS_KEYS = [old]
    monkeypatch.setenv("KITE_API_SECRET", "secret-from-env")
    out = StringIO()
    call_command(
        "broker_account",
        "add",
        "--name",
        "Desk 9",
        "--user-id",
        "ef9012",
        "--api-key",
        "k9",
        stdout=out,
    )
    call_command("broker_account", "list", stdout=out)
    assert "EF9012" in out.getvalue() and "never" in out.getvalue()

    settings.OMS_SECRETS_KEYS = [new, old]
    call_command("broker_account", "rotate", stdout=out)
    settings.OMS_SECRETS_KEYS = [new]  # the old key is gone: everything still reads
    account = BrokerAccount.objects.get(user_id="EF9012")
    assert (account.api_key, account.api_secret) == ("k9", "secret-from-env")
