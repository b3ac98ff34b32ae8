"""PATCH /api/v1/strategy/ (a strategy pauses and resumes itself) and `manage.py strategy`
(operators, as staff): who may lift which pause."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from orders.enums import PausedBy, StrategyEventKind, StrategyStatus
from orders.models import Strategy, StrategyEvent
from orders.services import strategy_status_set
from risk.models import KillSwitchEvent, KillSwitchState
from risk.selectors import kill_switch_state
from risk.services import kill_switch_record

URL = "/api/v1/strategy/"
pytestmark = pytest.mark.django_db


def status_events(strategy) -> list[dict]:
    rows = StrategyEvent.objects.filter(strategy=strategy, kind=StrategyEventKind.STRATEGY_STATUS)
    return [row.payload for row in rows.order_by("id")]


def steer(caller, status, reason="feed gap on NIFTY"):
    return caller.client.patch(URL, {"status": status, "reason": reason}, format="json")


def test_a_strategy_pauses_and_resumes_itself_each_change_an_event(caller):
    paused = steer(caller, "PAUSED")

    assert paused.status_code == 200, paused.content
    assert paused.json()["status"] == "PAUSED"
    assert paused.json()["paused_by"] == "STRATEGY"
    assert paused.json()["status_reason"] == "feed gap on NIFTY"
    caller.strategy.refresh_from_db()
    assert caller.strategy.paused_by == PausedBy.STRATEGY
    assert caller.strategy.status_actor == f"api-key:{caller.key.prefix}"

    resumed = steer(caller, "ACTIVE", reason="feed back")

    assert resumed.status_code == 200
    assert resumed.json()["status"] == "ACTIVE"
    assert resumed.json()["paused_by"] == ""
    actor = f"api-key:{caller.key.prefix}"
    assert status_events(caller.strategy) == [
        {
            "from_status": "ACTIVE",
            "to_status": "PAUSED",
            "paused_by": "STRATEGY",
            "reason": "feed gap on NIFTY",
            "actor": actor,
        },
        {
            "from_status": "PAUSED",
            "to_status": "ACTIVE",
            "paused_by": None,
            "reason": "feed back",
            "actor": actor,
        },
    ]


def test_asking_for_the_status_it_has_changes_nothing(caller):
    steer(caller, "PAUSED")

    again = steer(caller, "PAUSED", reason="still")

    assert again.status_code == 200
    assert len(status_events(caller.strategy)) == 1


def test_a_strategy_never_lifts_a_staff_pause(caller):
    strategy_status_set(caller.strategy, status=StrategyStatus.PAUSED, actor="alice", reason="r")

    answer = steer(caller, "ACTIVE")

    assert answer.status_code == 409
    error = answer.json()["error"]
    assert error["code"] == "strategy_status_refused"
    assert "paused by staff" in error["fields"]["status"]
    caller.strategy.refresh_from_db()
    assert caller.strategy.status == StrategyStatus.PAUSED
    assert caller.strategy.paused_by == PausedBy.STAFF
    assert len(status_events(caller.strategy)) == 1  # staff's, no other


def test_staff_pausing_a_self_paused_strategy_takes_the_pause_over(caller):
    steer(caller, "PAUSED")
    strategy_status_set(caller.strategy, status=StrategyStatus.PAUSED, actor="alice")

    assert steer(caller, "ACTIVE").status_code == 409
    assert status_events(caller.strategy)[-1]["paused_by"] == "STAFF"


@pytest.mark.parametrize("status", [StrategyStatus.INACTIVE, StrategyStatus.ERROR])
@pytest.mark.parametrize("asked", ["PAUSED", "ACTIVE"])
def test_inactive_and_error_are_for_staff_only(caller, status, asked):
    strategy_status_set(caller.strategy, status=status, actor="alice")

    answer = steer(caller, asked)

    assert answer.status_code == 409
    assert Strategy.objects.get(pk=caller.strategy.pk).status == status


def test_resuming_its_own_pause_leaves_the_kill_switch_as_staff_set_it(caller):
    steer(caller, "PAUSED")
    kill_switch_record(KillSwitchState.HALTED, strategy=caller.strategy, reason="r", actor="ops")
    switches = KillSwitchEvent.objects.count()

    answer = steer(caller, "ACTIVE", reason="ready")

    assert answer.status_code == 200
    assert answer.json()["status"] == "ACTIVE"
    assert answer.json()["kill_switch"] == "HALTED"
    assert KillSwitchEvent.objects.count() == switches
    assert kill_switch_state(strategy=caller.strategy) == KillSwitchState.HALTED


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"status": "PAUSED"}, "reason"),
        ({"status": "PAUSED", "reason": ""}, "reason"),
        ({"status": "PAUSED", "reason": "   "}, "reason"),
        ({"status": "PAUSED", "reason": "x" * 501}, "reason"),
        ({"status": "INACTIVE", "reason": "done"}, "status"),
        ({"status": "paused", "reason": "done"}, "status"),
        ({"reason": "done"}, "status"),
    ],
)
def test_a_bad_request_is_400_naming_the_field(caller, body, field):
    answer = caller.client.patch(URL, body, format="json")

    assert answer.status_code == 400
    assert field in answer.json()["error"]["fields"]
    caller.strategy.refresh_from_db()
    assert caller.strategy.status == StrategyStatus.ACTIVE
    assert status_events(caller.strategy) == []


def test_staff_cannot_steer_through_the_api(admin_client, caller):
    answer = admin_client.patch(
        URL, {"status": "PAUSED", "reason": "x"}, content_type="application/json"
    )

    assert answer.status_code == 403
    assert status_events(caller.strategy) == []


def test_one_strategy_steers_only_itself(caller, other):
    steer(caller, "PAUSED")

    other.strategy.refresh_from_db()
    assert other.strategy.status == StrategyStatus.ACTIVE
    assert status_events(other.strategy) == []


def test_the_schema_documents_the_feed_and_the_patch(client):
    paths = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()["paths"]

    feed = paths["/api/v1/events/"]["get"]
    assert {p["name"] for p in feed["parameters"]} == {"after", "page_size", "wait"}
    assert {"200", "400", "429"} <= set(feed["responses"])
    assert "LISTEN/NOTIFY" in feed["description"]
    patch = paths["/api/v1/strategy/"]["patch"]
    assert {"200", "400", "409"} <= set(patch["responses"])


# --- manage.py strategy ---------------------------------------------------------------------


def run(*args) -> str:
    out = StringIO()
    call_command("strategy", *args, stdout=out)
    return out.getvalue()


def test_the_command_pauses_as_staff_and_the_strategy_cannot_resume(caller):
    shown = run("pause", caller.strategy.name, "--reason", "broker maintenance", "--actor", "bob")

    assert f"{caller.strategy.name}: PAUSED by staff" in shown
    assert "broker maintenance (bob)" in shown
    assert status_events(caller.strategy) == [
        {
            "from_status": "ACTIVE",
            "to_status": "PAUSED",
            "paused_by": "STAFF",
            "reason": "broker maintenance",
            "actor": "bob",
        }
    ]
    assert steer(caller, "ACTIVE").status_code == 409

    run("resume", caller.strategy.name, "--reason", "maintenance over")

    caller.strategy.refresh_from_db()
    assert caller.strategy.status == StrategyStatus.ACTIVE
    assert caller.strategy.status_actor == "operator"


def test_the_command_resumes_a_self_pause_too(caller):
    steer(caller, "PAUSED")

    run("resume", caller.strategy.name, "--reason", "checked")

    assert Strategy.objects.get(pk=caller.strategy.pk).status == StrategyStatus.ACTIVE


def test_the_command_shows_the_status_and_its_history(caller):
    steer(caller, "PAUSED", reason="halting for the auction")

    shown = run("status", caller.strategy.name)

    assert f"{caller.strategy.name}: PAUSED by strategy" in shown
    assert "ACTIVE -> PAUSED" in shown
    assert "halting for the auction" in shown
    assert len(status_events(caller.strategy)) == 1  # status changes nothing


def test_the_command_refuses_without_a_reason_or_a_known_name(caller):
    with pytest.raises(CommandError, match="--reason"):
        run("pause", caller.strategy.name)
    with pytest.raises(CommandError, match="no such strategy"):
        run("status", "Nobody")
    assert Strategy.objects.get(pk=caller.strategy.pk).status == StrategyStatus.ACTIVE
