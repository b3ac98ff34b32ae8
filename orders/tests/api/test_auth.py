"""Who may call: a strategy with a live key; staff read-only; nobody else."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission, User
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from orders.api_keys import api_key_authenticate, api_key_create, api_key_hash, api_key_revoke
from orders.models import Order, StrategyApiKey
from orders.tests.api.conftest import order_body
from orders.tests.factories import OrderFactory

pytestmark = pytest.mark.django_db

ORDERS = "/api/v1/orders/"
ENDPOINTS = [
    ("get", "/api/v1/orders/"),
    ("post", "/api/v1/orders/"),
    ("get", "/api/v1/orders/1/"),
    ("patch", "/api/v1/orders/1/"),
    ("post", "/api/v1/orders/1/cancel/"),
    ("get", "/api/v1/trades/"),
    ("get", "/api/v1/trades/1/"),
    ("get", "/api/v1/positions/"),
    ("get", "/api/v1/positions/1/"),
    ("get", "/api/v1/strategy/"),
    ("post", "/api/v1/prices/"),
]


def assert_401(response, code: str):
    assert response.status_code == 401
    assert response.json()["error"]["code"] == code
    assert set(response.json()["error"]) >= {"code", "message", "fields"}
    assert response["WWW-Authenticate"] == 'Bearer realm="oms"'


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
def test_every_endpoint_needs_a_key(method, path):
    assert_401(getattr(APIClient(), method)(path, {}, format="json"), "not_authenticated")


@pytest.mark.parametrize(
    "header",
    [
        "Bearer oms_00000000_notakey",
        "Bearer garbage",
        "Bearer",
        "Bearer two words",
        "bearer oms_00000000_notakey",
    ],
)
def test_a_wrong_key_is_a_401(header):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)
    assert_401(client.get(ORDERS), "authentication_failed")


def test_a_revoked_key_stops_working_at_once(caller):
    assert caller.client.get(ORDERS).status_code == 200
    api_key_revoke(caller.key, actor="test")

    assert_401(caller.client.get(ORDERS), "authentication_failed")
    assert_401(caller.client.post(ORDERS, order_body(), format="json"), "authentication_failed")
    assert Order.objects.count() == 0


def test_only_the_hash_is_stored(caller):
    row = StrategyApiKey.objects.get()
    assert row.key_hash == api_key_hash(caller.plaintext)
    assert caller.plaintext not in {str(v) for v in StrategyApiKey.objects.values().get().values()}
    assert caller.plaintext.startswith(f"oms_{row.prefix}_")


def test_a_strategy_may_have_several_keys(caller):
    _, second = api_key_create(strategy=caller.strategy, name="backup", actor="test")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {second}")
    assert client.get(ORDERS).status_code == 200
    assert caller.client.get(ORDERS).status_code == 200


def test_last_used_at_is_touched_at_most_once_a_minute(caller):
    caller.client.get(ORDERS)
    caller.key.refresh_from_db()
    first = caller.key.last_used_at
    assert first is not None
    caller.client.get(ORDERS)
    caller.key.refresh_from_db()
    assert caller.key.last_used_at == first
    StrategyApiKey.objects.filter(pk=caller.key.pk).update(
        last_used_at=timezone.now() - timedelta(minutes=2)
    )
    assert api_key_authenticate(caller.plaintext).last_used_at > first


# --- staff -----------------------------------------------------------------------------------


def staff_user(*, permission: bool = True, staff: bool = True) -> User:
    user = User.objects.create_user("risk-desk", password="pw", is_staff=staff)
    if permission:
        user.user_permissions.add(Permission.objects.get(codename="view_order"))
    return user


def test_staff_with_the_permission_read_across_strategies(caller, other):
    mine, theirs = OrderFactory(strategy=caller.strategy), OrderFactory(strategy=other.strategy)
    client = APIClient()
    client.force_login(staff_user())

    listed = {o["id"] for o in client.get(ORDERS).json()["results"]}
    assert listed == {mine.pk, theirs.pk}
    only_a = client.get(ORDERS, {"strategy": caller.strategy.pk}).json()["results"]
    assert [o["id"] for o in only_a] == [mine.pk]
    assert client.get(f"{ORDERS}{theirs.pk}/").status_code == 200
    overview = client.get("/api/v1/strategy/", {"strategy": other.strategy.pk})
    assert overview.json()["name"] == "Strategy B"
    assert client.get("/api/v1/strategy/").status_code == 400


def test_staff_may_not_write(caller):
    order = OrderFactory(strategy=caller.strategy)
    client = APIClient(enforce_csrf_checks=False)
    client.force_login(staff_user())

    for response in (
        client.post(ORDERS, order_body(), format="json"),
        client.patch(f"{ORDERS}{order.pk}/", {"price": "1.00"}, format="json"),
        client.post(f"{ORDERS}{order.pk}/cancel/", format="json"),
        client.post("/api/v1/prices/", {"prices": []}, format="json"),
    ):
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "permission_denied"
    order.refresh_from_db()
    assert order.status == "PENDING"


def test_staff_tokens_work_like_sessions(caller):
    OrderFactory(strategy=caller.strategy)
    token = Token.objects.create(user=staff_user())
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")

    assert len(client.get(ORDERS).json()["results"]) == 1
    assert client.post(ORDERS, order_body(), format="json").status_code == 403


@pytest.mark.parametrize(("staff", "permission"), [(True, False), (False, True)])
def test_users_without_staff_and_the_permission_see_nothing(caller, staff, permission):
    OrderFactory(strategy=caller.strategy)
    client = APIClient()
    client.force_login(staff_user(staff=staff, permission=permission))

    response = client.get(ORDERS)

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"
