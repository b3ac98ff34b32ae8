"""Admin login throttling (django-axes): after OMS_LOGIN_FAILURE_LIMIT wrong passwords for one
username from one address, even the right password is refused until the cool-off has passed;
staff see the attempts in the admin; API keys never go through it."""

from __future__ import annotations

import pytest
from django.test import Client

from orders.tests.api.conftest import make_caller
from tests.admin.conftest import person

pytestmark = pytest.mark.django_db

LOGIN = "/admin/login/?next=/admin/"


def log_in(client: Client, username: str, password: str):
    return client.post(LOGIN, {"username": username, "password": password})


def test_five_wrong_passwords_lock_the_username_and_address_even_with_the_right_password(
    settings,
):
    assert settings.AXES_FAILURE_LIMIT == 5
    person("rita")
    attacker = Client(REMOTE_ADDR="203.0.113.7")

    answers = [log_in(attacker, "rita", f"guess-{n}").status_code for n in range(4)]
    assert answers == [200] * 4  # the login form again, with its error
    fifth = log_in(attacker, "rita", "guess-4")
    right = log_in(attacker, "rita", "pw-rita")

    assert (fifth.status_code, right.status_code) == (429, 429)
    page = right.content.decode()
    assert "Login temporarily locked" in page
    assert "<strong>rita</strong>" in page
    assert "0:15:00" in page  # the cool-off
    assert "_auth_user_id" not in attacker.session
    # The lockout is per username and address: rita at her own desk still logs in.
    at_desk = Client(REMOTE_ADDR="198.51.100.20")
    assert log_in(at_desk, "rita", "pw-rita").status_code == 302
    assert "_auth_user_id" in at_desk.session


def test_a_right_password_before_the_limit_resets_the_count():
    person("omar")
    client = Client(REMOTE_ADDR="203.0.113.8")
    for n in range(4):
        log_in(client, "omar", f"guess-{n}")
    assert log_in(client, "omar", "pw-omar").status_code == 302
    other = Client(REMOTE_ADDR="203.0.113.8")
    for n in range(4):
        assert log_in(other, "omar", f"again-{n}").status_code == 200


def test_a_risk_officer_sees_the_lockouts_and_an_operator_does_not(as_risk_officer, as_operator):
    person("vera")
    attacker = Client(REMOTE_ADDR="203.0.113.9")
    for n in range(5):
        log_in(attacker, "vera", f"guess-{n}")

    seen = as_risk_officer.get("/admin/axes/accessattempt/")

    assert seen.status_code == 200
    assert "vera" in seen.content.decode()
    assert as_risk_officer.post("/admin/axes/accessattempt/1/delete/").status_code in (403, 404)
    assert as_operator.get("/admin/axes/accessattempt/").status_code == 403


def test_staff_see_the_attempts_and_the_lockout_in_the_admin(as_superuser):
    person("vera")
    attacker = Client(REMOTE_ADDR="203.0.113.9")
    for n in range(5):
        log_in(attacker, "vera", f"guess-{n}")

    attempts = as_superuser.get("/admin/axes/accessattempt/")

    assert attempts.status_code == 200
    html = attempts.content.decode()
    assert "vera" in html
    assert "203.0.113.9" in html
    failures = as_superuser.get("/admin/axes/accessattempt/?q=vera")
    assert ">5<" in failures.content.decode()  # failures counted


def test_api_keys_and_force_login_are_not_throttled():
    caller = make_caller(name="Strategy A")
    for _ in range(8):
        assert caller.client.get("/api/v1/strategy/").status_code == 200
    client = Client()
    client.force_login(person("root", superuser=True))
    assert client.get("/admin/").status_code == 200
