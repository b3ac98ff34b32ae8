"""The kill switch log as PostgreSQL enforces it: its rules, and that it is append-only."""

import pytest
from django.db import IntegrityError, ProgrammingError, connection, transaction

from orders.tests.factories import (
    StrategyFactory,
    raw_fetch,
    raw_insert,
    raw_update,
    violated_constraint,
)
from risk.models import KillSwitchEvent
from risk.tests.factories import KillSwitchEventFactory, kill_switch_row

pytestmark = pytest.mark.django_db


@pytest.fixture
def strategy():
    return StrategyFactory()


THE_STRATEGY = object()  # stands for the test strategy's id in a row


def _resolve(overrides: dict, strategy) -> dict:
    return {
        column: strategy.pk if value is THE_STRATEGY else value
        for column, value in overrides.items()
    }


REFUSED = [
    pytest.param("kill_switch_state_valid", {"state": "PAUSED"}, id="state-invalid"),
    # An unknown scope also fails kill_switch_scope_matches_strategy, checked first (by name).
    pytest.param(
        frozenset({"kill_switch_scope_valid", "kill_switch_scope_matches_strategy"}),
        {"scope": "SYMBOL"},
        id="scope-invalid",
    ),
    pytest.param("kill_switch_actor_type_valid", {"actor_type": "CRON"}, id="actor-type-invalid"),
    pytest.param(
        "kill_switch_scope_matches_strategy",
        {"scope": "STRATEGY"},
        id="strategy-scope-without-strategy",
    ),
    pytest.param(
        "kill_switch_scope_matches_strategy",
        {"strategy_id": THE_STRATEGY},
        id="global-scope-with-strategy",
    ),
    pytest.param("kill_switch_reason_required", {"reason": ""}, id="reason-blank"),
    pytest.param("kill_switch_actor_required", {"actor": ""}, id="actor-blank"),
    pytest.param(
        "kill_switch_resume_by_person",
        {"state": "ACTIVE", "actor_type": "RULE", "actor": "daily-loss-rule"},
        id="rule-resumes-trading",
    ),
]

ACCEPTED = [
    pytest.param({}, id="person-halts-all"),
    pytest.param({"actor_type": "RULE", "actor": "daily-loss-rule"}, id="rule-halts"),
    pytest.param({"state": "REDUCING", "actor_type": "RULE"}, id="rule-reduces"),
    pytest.param({"state": "ACTIVE"}, id="person-resumes"),
    pytest.param({"scope": "STRATEGY", "strategy_id": THE_STRATEGY}, id="strategy-scope"),
]


@pytest.mark.parametrize(("constraint", "overrides"), REFUSED)
def test_kill_switch_events_refuse(strategy, constraint, overrides):
    row = kill_switch_row(**_resolve(overrides, strategy))
    with pytest.raises(IntegrityError) as excinfo, transaction.atomic():
        raw_insert("kill_switch_events", row)
    expected = constraint if isinstance(constraint, frozenset) else {constraint}
    assert violated_constraint(excinfo.value) in expected


@pytest.mark.parametrize("overrides", ACCEPTED)
def test_kill_switch_events_accept(strategy, overrides):
    overrides = _resolve(overrides, strategy)
    row_id = raw_insert("kill_switch_events", kill_switch_row(**overrides))
    event = KillSwitchEvent.objects.get(pk=row_id)
    for column, value in overrides.items():
        assert getattr(event, column) == value


def _raw_delete(row_id: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM kill_switch_events WHERE id = %s", [row_id])


@pytest.mark.parametrize(
    "write",
    [
        pytest.param(
            lambda pk: raw_update("kill_switch_events", pk, {"reason": "x"}), id="sql-update"
        ),
        pytest.param(
            lambda pk: KillSwitchEvent.objects.filter(pk=pk).update(state="ACTIVE"), id="orm-update"
        ),
        pytest.param(_raw_delete, id="sql-delete"),
        pytest.param(lambda pk: KillSwitchEvent.objects.filter(pk=pk).delete(), id="orm-delete"),
    ],
)
def test_kill_switch_events_are_append_only(write):
    event = KillSwitchEventFactory()
    with pytest.raises(ProgrammingError) as excinfo, transaction.atomic():
        write(event.pk)
    assert excinfo.value.__cause__.sqlstate == "P0001"  # RAISE EXCEPTION in pgtrigger's Protect
    assert "Cannot update or delete rows from kill_switch_events table" in str(excinfo.value)
    assert raw_fetch("kill_switch_events", event.pk, "state", "reason") == (
        "HALTED",
        "Daily loss limit breached",
    )
