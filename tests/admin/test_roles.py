"""The back office's groups, as the migration makes them and `manage.py create_roles` re-syncs
them; and what each role may do, page by page."""

from __future__ import annotations

from io import StringIO

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group, Permission
from django.core.management import call_command

from risk.roles import OPERATOR, RISK_OFFICER, ROLES, VIEWER

pytestmark = pytest.mark.django_db


def held(group: Group) -> set[str]:
    return {
        f"{app}.{codename}"
        for app, codename in group.permissions.values_list("content_type__app_label", "codename")
    }


def test_the_migration_made_the_groups_with_exactly_their_permissions():
    for name, permissions in ROLES.items():
        assert held(Group.objects.get(name=name)) == set(permissions), name


def test_the_roles_nest_and_nobody_deletes_history():
    assert VIEWER < OPERATOR < RISK_OFFICER
    assert all(p.split(".")[1].startswith("view_") for p in VIEWER)
    assert not any(".delete_" in p for p in RISK_OFFICER)
    assert {
        "risk.change_kill_switch",
        "positions.resolve_critical_issue",
        "orders.cancel_order",
    } <= (RISK_OFFICER - OPERATOR)


def test_create_roles_re_syncs(roles):
    viewer = Group.objects.get(name="Viewer")
    viewer.permissions.add(Permission.objects.get(codename="cancel_order"))
    Group.objects.get(name="Operator").delete()
    out = StringIO()

    call_command("create_roles", stdout=out)

    assert held(Group.objects.get(name="Viewer")) == set(VIEWER)
    assert held(Group.objects.get(name="Operator")) == set(OPERATOR)
    # The login attempts (3) since risk 0011, the broker accounts (view, connect) since 0012,
    # the instrument refreshes since 0015, the webhooks (view 2, add and change) since
    # roles_webhooks, the background jobs (operators too) since roles_jobs_and_health, the
    # audit lists (the change log, strategy events, the CSV export) since roles_audit, the
    # broker protections (view) since roles_protections, the controlled changes' audit rows
    # (view) since admin_changes, the baskets and sliced parents (view 2) since roles_baskets.
    assert "Risk officer: 44 permissions" in out.getvalue()


PAGES = [
    "/admin/",
    "/admin/orders/order/",
    "/admin/orders/trade/",
    "/admin/orders/strategy/",
    "/admin/orders/strategyapikey/",
    "/admin/orders/webhookendpoint/",
    "/admin/orders/webhookdelivery/",
    "/admin/orders/basket/",
    "/admin/orders/orderparent/",
    "/admin/positions/position/",
    "/admin/positions/reconciliationissue/",
    "/admin/positions/dailystats/",
    "/admin/positions/marketprice/",
    "/admin/risk/killswitch/",
    "/admin/risk/killswitchevent/",
    "/admin/risk/risklimit/",
    "/admin/risk/instrument/",
    "/admin/risk/marketholiday/",
    "/admin/risk/pnlsnapshot/",
    "/admin/orders/orderevent/",
    "/admin/orders/strategyevent/",
    "/admin/admin/logentry/",
]


@pytest.mark.parametrize("who", ["as_viewer", "as_operator", "as_risk_officer", "as_superuser"])
def test_every_role_reads_every_screen(who, request, desk):
    client = request.getfixturevalue(who)
    for url in PAGES:
        assert client.get(url).status_code == 200, url
    for model in admin.site._registry:
        if model._meta.app_label not in ("orders", "positions", "risk"):
            continue  # users and groups are the superuser's
        obj = model._default_manager.first()
        if obj is not None:
            url = f"/admin/{model._meta.app_label}/{model._meta.model_name}/{obj.pk}/change/"
            assert client.get(url).status_code == 200, url


@pytest.mark.parametrize("who", ["as_viewer", "as_operator", "as_risk_officer", "as_superuser"])
def test_nobody_deletes_orders_trades_events_or_switch_history(who, request, desk):
    client = request.getfixturevalue(who)
    for url in (
        f"/admin/orders/order/{desk['working'].pk}/delete/",
        f"/admin/orders/trade/{desk['filled'].trades.get().pk}/delete/",
        f"/admin/orders/strategy/{desk['momentum'].pk}/delete/",
        f"/admin/positions/position/{desk['position'].pk}/delete/",
        f"/admin/positions/reconciliationissue/{desk['issue'].pk}/delete/",
    ):
        assert client.get(url).status_code in (403, 302), url
    event = desk["working"].events.first()
    assert client.get(f"/admin/orders/orderevent/{event.pk}/delete/").status_code in (403, 302)
    assert client.get(f"/admin/orders/orderevent/{event.pk}/change/").status_code == 200
    assert client.get("/admin/orders/orderevent/add/").status_code == 403


def test_viewers_change_nothing(as_viewer, desk):
    strategy = desk["momentum"]
    response = as_viewer.post(
        f"/admin/orders/strategy/{strategy.pk}/change/",
        {"name": "x", "status": "PAUSED", "mode": "PAPER", "config": "{}"},
    )
    assert response.status_code == 403
    assert as_viewer.get("/admin/risk/risklimit/add/").status_code == 403
    assert as_viewer.get("/admin/orders/strategyapikey/add/").status_code == 403
