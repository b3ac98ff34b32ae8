"""The morning Kite login in Chromium: a risk officer sees the banner (a LIVE strategy's account
has no session), presses "Connect Kite", logs in on Kite's page (the Kite sandbox, a real HTTP
server speaking Kite's login and session API) and is back with the day's session; the banner
is gone and the health cards say until when. Screenshots: artifacts/screenshots/kite-*.png."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from omsproject.kite_sandbox import KiteSandbox
from omsproject.kite_sandbox_records import Account, instruments_read
from orders.broker_sessions import session_state
from orders.enums import StrategyMode
from orders.models import BrokerAccount
from orders.tests.conftest import kite_account_create
from orders.tests.factories import StrategyFactory

pytestmark = pytest.mark.browser
INSTRUMENTS = Path(__file__).resolve().parents[2] / "risk" / "fixtures" / "instruments_sample.csv"


@pytest.fixture
def sandbox(live_server, settings):
    """The Kite sandbox, its redirect URL the live server's, the OMS pointed at it."""
    kite = KiteSandbox(
        accounts=[Account("DEMO01", "sandbox_key", "sandbox_secret")],
        instruments=instruments_read(INSTRUMENTS),
        redirect_url=f"{live_server.url}/broker/kite/login/",
        walk_seconds=None,
    ).start()
    settings.KITE_API_ROOT = kite.root
    settings.KITE_LOGIN_URL = f"{kite.root}/connect/login"
    yield kite
    kite.stop()


def test_a_risk_officer_logs_the_desk_in_to_kite_in_the_morning(
    page, live_server, people, log_in, shot, sandbox
):
    account = kite_account_create(
        "DEMO01",
        api_key="sandbox_key",
        api_secret="sandbox_secret",
        access_token="",
        name="Demo desk (Kite sandbox)",
    )
    StrategyFactory(name="Live Sandbox Desk", mode=StrategyMode.LIVE, broker_account=account)

    log_in(people["Risk officer"])
    banner = page.locator("#broker-session-banner")
    assert "DEMO01 has no session" in banner.inner_text()
    card = page.locator('[data-check="kite DEMO01"]')
    assert "health--critical" in card.get_attribute("class")
    shot("kite-1-morning-banner")

    page.click("#broker-session-banner a")
    page.wait_for_url(f"{live_server.url}/admin/orders/brokeraccount/")
    assert "Not logged in" in page.locator("#result_list").inner_text()
    shot("kite-2-accounts")
    page.click("#result_list a.button:has-text('Connect Kite')")
    page.wait_for_url(re.compile(re.escape(f"{sandbox.root}/connect/login?")))
    assert "DEMO01" in page.locator("#user-id").inner_text()
    shot("kite-3-kite-login-page")
    page.click("button[type=submit]")

    page.wait_for_url(f"{live_server.url}/admin/orders/brokeraccount/")
    assert (
        "Kite account DEMO01 connected: session until" in page.locator(".messagelist").inner_text()
    )
    assert "Connected" in page.locator("#result_list").inner_text()
    assert page.locator("#broker-session-banner").count() == 0
    shot("kite-4-connected")
    account = BrokerAccount.objects.get(user_id="DEMO01")
    assert session_state(account) == "connected"
    page.goto(f"{live_server.url}/admin/")
    assert "session until" in page.locator('[data-check="kite DEMO01"]').inner_text()
    shot("kite-5-dashboard-health")


def test_a_viewer_sees_the_accounts_but_no_secret_and_no_connect_button(
    page, live_server, people, log_in, shot
):
    account = kite_account_create(access_token="")
    log_in(people["Viewer"])

    page.goto(f"{live_server.url}/admin/orders/brokeraccount/{account.pk}/change/")

    text = page.content()
    assert "stored encrypted, never shown" in text
    assert "kite-api-secret" not in text and "kite-key" not in text
    assert page.locator("text=Connect Kite").count() == 0
    shot("kite-6-viewer-account")
