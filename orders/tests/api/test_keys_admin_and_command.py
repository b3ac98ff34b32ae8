"""Keys are made and revoked in the admin and by `manage.py strategy_key`; shown once."""

from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.db import IntegrityError, transaction
from rest_framework.test import APIClient

from orders.api_keys import ApiKeyError, api_key_create, api_key_hash
from orders.models import StrategyApiKey
from orders.tests.factories import StrategyFactory

pytestmark = pytest.mark.django_db


def works(plaintext: str) -> bool:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    return client.get("/api/v1/orders/").status_code == 200


def run(*args) -> str:
    out = StringIO()
    call_command("strategy_key", *args, stdout=out)
    return out.getvalue()


# --- command ---------------------------------------------------------------------------------


def test_create_prints_the_key_alone_on_the_last_line():
    strategy = StrategyFactory(name="Momentum")

    output = run("create", "Momentum", "--name", "prod runner")

    plaintext = output.strip().splitlines()[-1]
    assert works(plaintext)
    key = StrategyApiKey.objects.get()
    assert (key.strategy, key.name) == (strategy, "prod runner")
    assert key.key_hash == api_key_hash(plaintext)
    assert key.created_by.startswith("manage.py strategy_key")


def test_list_shows_prefixes_never_keys():
    StrategyFactory(name="Momentum")
    plaintext = run("create", "Momentum").strip().splitlines()[-1]

    listing = run("list", "Momentum")

    assert StrategyApiKey.objects.get().prefix in listing
    assert plaintext not in listing


def test_revoke_by_prefix():
    strategy = StrategyFactory(name="Momentum")
    plaintext = run("create", str(strategy.pk), "--name", "a").strip().splitlines()[-1]
    prefix = StrategyApiKey.objects.get().prefix

    output = run("revoke", "Momentum", "--prefix", prefix)

    assert "Revoked" in output
    assert not works(plaintext)
    assert StrategyApiKey.objects.get().revoked_by.startswith("manage.py strategy_key")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("create", "Nobody"), "no strategy has that name"),
        (("revoke", "Momentum"), "--prefix: required"),
        (("revoke", "Momentum", "--prefix", "deadbeef"), "has no such key"),
    ],
)
def test_errors_are_one_line(args, message):
    StrategyFactory(name="Momentum")
    with pytest.raises(CommandError, match=message) as error:
        run(*args)
    assert "\n" not in str(error.value)


def test_two_live_keys_of_a_strategy_need_two_names():
    strategy = StrategyFactory()
    api_key_create(strategy=strategy, name="runner", actor="test")
    with pytest.raises(ApiKeyError, match="already has a live key"):
        api_key_create(strategy=strategy, name="runner", actor="test")


def test_the_database_refuses_a_key_that_is_not_a_hash():
    strategy = StrategyFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        StrategyApiKey.objects.create(
            strategy=strategy, name="x", prefix="0123abcd", key_hash="oms_plaintext_key"
        )


# --- admin -----------------------------------------------------------------------------------


@pytest.fixture
def admin_client_logged_in(client):
    client.force_login(User.objects.create_superuser("admin", "a@example.com", "pw"))
    return client


def test_the_admin_creates_a_key_and_shows_it_once(admin_client_logged_in):
    strategy = StrategyFactory()

    response = admin_client_logged_in.post(
        "/admin/orders/strategyapikey/add/", {"strategy": strategy.pk, "name": "from admin"}
    )

    assert response.status_code == 200
    key = StrategyApiKey.objects.get()
    page = response.content.decode()
    start = page.index('id="api-key"')
    plaintext = page[page.index(">", start) + 1 : page.index("</code>", start)]
    assert plaintext.startswith(f"oms_{key.prefix}_")
    assert works(plaintext)
    assert key.created_by == "admin"
    # Never again: the change page shows the prefix only.
    change = admin_client_logged_in.get(f"/admin/orders/strategyapikey/{key.pk}/change/")
    assert plaintext not in change.content.decode()


def test_the_admin_refuses_a_duplicate_live_name(admin_client_logged_in):
    strategy = StrategyFactory()
    api_key_create(strategy=strategy, name="runner", actor="test")

    response = admin_client_logged_in.post(
        "/admin/orders/strategyapikey/add/", {"strategy": strategy.pk, "name": "runner"}
    )

    assert response.status_code == 200
    assert "already has a live key" in response.content.decode()
    assert StrategyApiKey.objects.count() == 1


def test_the_admin_revokes_keys(admin_client_logged_in):
    strategy = StrategyFactory()
    key, plaintext = api_key_create(strategy=strategy, name="runner", actor="test")

    response = admin_client_logged_in.post(
        "/admin/orders/strategyapikey/",
        {
            "action": "revoke_keys",
            "_selected_action": [key.pk],
            "confirmed": "yes",
            "reason": "runner retired",
        },
        follow=True,
    )

    assert response.status_code == 200
    key.refresh_from_db()
    assert key.revoked_by == "admin"
    assert not works(plaintext)
    assert admin_client_logged_in.get("/admin/orders/strategyapikey/").status_code == 200
