"""Controlled changes in the admin: pausing and resuming a strategy, changing a limit and
revoking a key each go through a confirmation page with a required reason, and are recorded
old → new (AdminChange, and a LogEntry saying the same); the database refuses to change the
record; a rule the database keeps reads in words, never as a constraint's name."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.apps import apps as django_apps
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Group
from django.db import IntegrityError, ProgrammingError, connection, transaction

from omsproject.constraint_words import CONSTRAINT_WORDS
from orders.api_keys import api_key_authenticate, api_key_create
from orders.enums import StrategyStatus
from orders.models import Strategy, StrategyApiKey
from orders.services import OrderError, strategy_status_set
from orders.tests.factories import StrategyFactory
from risk.models import AdminAction, AdminChange, RiskLimit
from risk.services import RiskLimitError, risk_limit_set
from tests.admin.test_strategies_admin import confirmed, form, url

pytestmark = pytest.mark.django_db


def log_messages(obj) -> list[str]:
    return list(
        LogEntry.objects.filter(object_id=str(obj.pk), content_type__model=obj._meta.model_name)
        .order_by("id")
        .values_list("change_message", flat=True)
    )


# --- strategies --------------------------------------------------------------------------------


def test_a_pause_is_confirmed_with_a_reason_and_recorded_old_to_new(as_risk_officer, risk_officer):
    strategy = StrategyFactory(name="Momentum")

    page = as_risk_officer.post(url(strategy), form(strategy, status="PAUSED"))

    # First the confirmation page: what changes, and the reason it asks for; nothing saved.
    assert page.status_code == 200
    text = page.content.decode()
    assert "Confirm the change of Momentum" in text
    assert 'name="_change_reason"' in text
    assert "ACTIVE" in text and "PAUSED" in text
    assert Strategy.objects.get(pk=strategy.pk).status == "ACTIVE"

    response = as_risk_officer.post(
        url(strategy), confirmed(form(strategy, status="PAUSED"), reason="  broker outage  ")
    )

    assert response.status_code == 302
    assert Strategy.objects.get(pk=strategy.pk).status == "PAUSED"
    [change] = AdminChange.objects.all()
    assert change.user == risk_officer
    assert change.action == AdminAction.STRATEGY_STATUS
    assert (change.object_id, change.object_label) == (str(strategy.pk), "Momentum")
    assert change.reason == "broker outage"
    assert change.changes == {"status": ["ACTIVE", "PAUSED"], "paused_by": ["", "STAFF"]}
    # The object's history says it too, and Django's bare "Changed Status" is not written.
    assert log_messages(strategy) == [
        "Strategy status: status ACTIVE → PAUSED; paused_by blank → STAFF. Reason: broker outage"
    ]
    history = as_risk_officer.get(f"/admin/orders/strategy/{strategy.pk}/history/")
    assert "status ACTIVE → PAUSED" in history.content.decode()

    # Resuming likewise.
    as_risk_officer.post(
        url(strategy),
        confirmed(form(Strategy.objects.get(pk=strategy.pk), status="ACTIVE"), reason="back"),
    )
    assert AdminChange.objects.order_by("-id").first().changes == {
        "status": ["PAUSED", "ACTIVE"],
        "paused_by": ["STAFF", ""],
    }


def test_pause_and_resume_from_the_strategy_page(as_risk_officer, as_viewer, risk_officer):
    strategy = StrategyFactory(name="Momentum")
    page = as_risk_officer.get(url(strategy)).content.decode()
    assert 'id="status-PAUSED"' in page
    pause = f"/admin/orders/strategy/{strategy.pk}/status/?to=PAUSED"

    confirmation = as_risk_officer.get(pause).content.decode()
    assert "Pause Momentum?" in confirmation
    blank = as_risk_officer.post(pause, {"_change_reason": " "})
    assert "reason: required for this change" in blank.content.decode()
    assert Strategy.objects.get(pk=strategy.pk).status == "ACTIVE"
    assert as_risk_officer.post(pause, {"_change_reason": "news"}).status_code == 302

    assert Strategy.objects.get(pk=strategy.pk).status == "PAUSED"
    [change] = AdminChange.objects.all()
    assert (change.user, change.reason, change.changes["status"]) == (
        risk_officer,
        "news",
        ["ACTIVE", "PAUSED"],
    )
    assert 'id="status-ACTIVE"' in as_risk_officer.get(url(strategy)).content.decode()
    # A viewer sees no button, and the page refuses them.
    assert 'id="status-' not in as_viewer.get(url(strategy)).content.decode()
    assert as_viewer.get(pause).status_code == 403
    assert as_risk_officer.get(pause.replace("PAUSED", "ERROR")).status_code == 404


def test_a_change_without_a_reason_changes_nothing(as_risk_officer):
    strategy = StrategyFactory()

    response = as_risk_officer.post(
        url(strategy), confirmed(form(strategy, status="PAUSED"), reason="   ")
    )

    assert response.status_code == 200
    assert "reason: required for this change" in response.content.decode()
    assert Strategy.objects.get(pk=strategy.pk).status == "ACTIVE"
    assert not AdminChange.objects.exists()
    assert not LogEntry.objects.exists()


def test_the_service_refuses_a_person_s_change_without_a_reason(risk_officer):
    strategy = StrategyFactory()

    with pytest.raises(OrderError) as refused:
        strategy_status_set(
            strategy, status=StrategyStatus.PAUSED, actor="rita", reason="", user=risk_officer
        )

    assert refused.value.fields == {"reason": "reason: required for every controlled change"}
    assert Strategy.objects.get(pk=strategy.pk).status == "ACTIVE"
    assert not AdminChange.objects.exists()


def test_settings_and_inline_limits_are_recorded_too(as_risk_officer):
    strategy = StrategyFactory(name="Momentum", description="old")
    data = form(
        strategy,
        description="new",
        **{
            "risk_limits-TOTAL_FORMS": "1",
            "risk_limits-0-max_order_quantity": "500",
            "risk_limits-0-daily_loss_limit": "25000.00",
            "risk_limits-0-rejection_window_seconds": "60",
            "risk_limits-0-halt_on_critical_issue": "on",
        },
    )

    page = as_risk_officer.post(url(strategy), data).content.decode()
    assert "Risk limit: Max order quantity" in page  # the inline's changes are listed too

    as_risk_officer.post(url(strategy), confirmed(data, reason="desk review"))

    settings, limits = AdminChange.objects.order_by("id")
    assert (settings.action, settings.changes) == (
        AdminAction.STRATEGY_SETTINGS,
        {"description": ["old", "new"]},
    )
    assert limits.action == AdminAction.LIMIT_ADD
    assert limits.object_label == "limits: Momentum"
    assert limits.changes["max_order_quantity"] == [None, 500]
    assert limits.changes["daily_loss_limit"] == [None, "25000.00"]
    assert RiskLimit.objects.get(strategy=strategy).daily_loss_limit == Decimal("25000.00")


# --- limits ------------------------------------------------------------------------------------


def limit_form(row: RiskLimit, **changes) -> dict:
    data = {
        "max_order_quantity": row.max_order_quantity or "",
        "max_order_value": row.max_order_value or "",
        "price_band_percent": row.price_band_percent or "",
        "orders_per_second": row.orders_per_second or "",
        "max_position_quantity": row.max_position_quantity or "",
        "max_open_orders": row.max_open_orders or "",
        "max_strategy_exposure": row.max_strategy_exposure or "",
        "max_total_exposure": row.max_total_exposure or "",
        "daily_loss_limit": row.daily_loss_limit or "",
        "drawdown_limit": row.drawdown_limit or "",
        "rejection_burst": row.rejection_burst or "",
        "rejection_window_seconds": row.rejection_window_seconds,
        "halt_on_critical_issue": "on" if row.halt_on_critical_issue else "",
    }
    return {**data, **changes}


def test_a_limit_change_is_confirmed_and_recorded(as_risk_officer, risk_officer):
    row = RiskLimit.objects.create(daily_loss_limit=Decimal("50000.00"))
    change_url = f"/admin/risk/risklimit/{row.pk}/change/"
    data = limit_form(row, daily_loss_limit="40000")

    page = as_risk_officer.post(change_url, data).content.decode()
    assert "Confirm the change of limits: global" in page
    assert "<td>₹50,000.00</td><td>→</td><td><strong>₹40,000.00</strong></td>" in page
    assert RiskLimit.objects.get(pk=row.pk).daily_loss_limit == Decimal("50000.00")

    as_risk_officer.post(change_url, confirmed(data, reason="smaller book today"))

    assert RiskLimit.objects.get(pk=row.pk).daily_loss_limit == Decimal("40000.00")
    [change] = AdminChange.objects.all()
    assert (change.action, change.user, change.reason) == (
        AdminAction.LIMIT_CHANGE,
        risk_officer,
        "smaller book today",
    )
    assert change.changes == {"daily_loss_limit": ["50000.00", "40000.00"]}
    assert log_messages(row) == [
        "Limit changed: daily_loss_limit 50000.00 → 40000.00. Reason: smaller book today"
    ]


def test_limit_rules_read_in_words_never_as_a_constraint_name(as_risk_officer, risk_officer):
    row = RiskLimit.objects.create()
    change_url = f"/admin/risk/risklimit/{row.pk}/change/"

    response = as_risk_officer.post(
        change_url, limit_form(row, daily_loss_limit="0", price_band_percent="-1")
    )

    errors = response.context["adminform"].form.errors
    assert errors["daily_loss_limit"] == [
        "daily loss limit: must be more than ₹0 (leave it blank for no limit)"
    ]
    assert errors["price_band_percent"] == [
        "price band %: must be more than 0 (leave it blank for no band)"
    ]
    assert "risk_limit_" not in response.content.decode()
    # A second global row: refused in words as well.
    response = as_risk_officer.post("/admin/risk/risklimit/add/", limit_form(row))
    text = response.content.decode()
    assert "risk_limit_one_per_scope" not in text
    assert response.context["adminform"].form.errors
    # The service, reached without the form: the database's refusal, in words, nothing written.
    with pytest.raises(RiskLimitError) as refused:
        risk_limit_set(
            user=risk_officer, reason="x", values={"drawdown_limit": Decimal("-5")}, limit=row
        )
    assert (refused.value.field, str(refused.value)) == (
        "drawdown_limit",
        "drawdown limit: must be more than ₹0 (leave it blank for no limit)",
    )
    assert RiskLimit.objects.get(pk=row.pk).drawdown_limit is None
    assert not AdminChange.objects.exists()


def test_strategy_rules_read_in_words(as_risk_officer):
    strategy = StrategyFactory()

    response = as_risk_officer.post(url(strategy), form(strategy, name="  "))

    assert response.context["adminform"].form.errors["name"]
    assert "strategy_name_not_blank" not in response.content.decode()


# --- keys --------------------------------------------------------------------------------------


def test_a_key_is_revoked_after_a_confirmation_with_a_reason(as_risk_officer, risk_officer):
    strategy = StrategyFactory(name="Momentum")
    key, plaintext = api_key_create(strategy=strategy, name="runner", actor="test")
    action = {"action": "revoke_keys", "_selected_action": [key.pk]}

    page = as_risk_officer.post("/admin/orders/strategyapikey/", action)
    assert "1 live key will stop working" in page.content.decode()
    missing = as_risk_officer.post(
        "/admin/orders/strategyapikey/", {**action, "confirmed": "yes", "reason": " "}
    )
    assert "This field is required." in missing.content.decode()
    assert StrategyApiKey.objects.get(pk=key.pk).revoked_at is None

    as_risk_officer.post(
        "/admin/orders/strategyapikey/", {**action, "confirmed": "yes", "reason": "leaked"}
    )

    key.refresh_from_db()
    assert key.revoked_by == "rita"
    assert api_key_authenticate(plaintext) is None
    [change] = AdminChange.objects.all()
    assert (change.action, change.reason, change.user) == (
        AdminAction.KEY_REVOKE,
        "leaked",
        risk_officer,
    )
    assert change.changes == {
        "revoked_at": [None, key.revoked_at.isoformat()],
        "revoked_by": ["", "rita"],
    }
    [message] = log_messages(key)
    assert message.startswith("API key revoked: revoked_at blank → ")
    assert message.endswith("Reason: leaked")


# --- the record itself -------------------------------------------------------------------------


def test_the_database_keeps_the_change_log_append_only_and_requires_a_reason(risk_officer):
    strategy = StrategyFactory()
    strategy_status_set(
        strategy, status=StrategyStatus.PAUSED, actor="rita", reason="r", user=risk_officer
    )
    change = AdminChange.objects.get()

    for statement in (
        "UPDATE admin_changes SET reason = 'rewritten' WHERE id = %s",
        "DELETE FROM admin_changes WHERE id = %s",
    ):
        refused = pytest.raises(ProgrammingError, match="Cannot update or delete rows")
        with refused, transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(statement, [change.pk])
    with (
        pytest.raises(IntegrityError) as refused,
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(
            "INSERT INTO admin_changes (user_id, content_type_id, object_id, object_label, "
            "action, reason, changes) SELECT user_id, content_type_id, object_id, "
            "object_label, action, '  ', changes FROM admin_changes WHERE id = %s",
            [change.pk],
        )
    assert refused.value.__cause__.diag.constraint_name == "admin_change_reason_required"
    assert AdminChange.objects.get().reason == "r"


def test_every_role_reads_the_change_log(roles):
    for group in Group.objects.all():
        codenames = set(group.permissions.values_list("codename", flat=True))
        assert "view_adminchange" in codenames, group.name
        assert "change_adminchange" not in codenames


def test_every_rule_in_words_names_a_real_constraint():
    """A renamed constraint would fall back to Django's message with its name: each name
    listed must be one the models declare."""
    declared = {
        constraint.name
        for model in django_apps.get_models()
        for constraint in model._meta.constraints
    }
    assert set(CONSTRAINT_WORDS) <= declared, set(CONSTRAINT_WORDS) - declared


def test_the_controlled_changes_list_shows_old_to_new_and_exports_it(
    as_risk_officer, as_viewer, risk_officer
):
    strategy = StrategyFactory(name="Momentum")
    as_risk_officer.post(
        url(strategy), confirmed(form(strategy, status="PAUSED"), reason="broker outage")
    )

    page = as_viewer.get("/admin/risk/adminchange/")
    text = page.content.decode()
    assert page.status_code == 200
    assert "Momentum" in text and "broker outage" in text
    assert "status ACTIVE → PAUSED" in text
    assert "Export CSV" not in text  # viewers read, risk officers export

    export = as_risk_officer.get("/admin/risk/adminchange/export.csv")
    rows = b"".join(export.streaming_content).decode().splitlines()
    assert rows[0].split(",")[:4] == ["id", "created_at", "user", "action"]
    [row] = rows[1:]
    assert "STRATEGY_STATUS" in row and "broker outage" in row and "ACTIVE → PAUSED" in row
    assert as_viewer.get("/admin/risk/adminchange/export.csv").status_code == 403
