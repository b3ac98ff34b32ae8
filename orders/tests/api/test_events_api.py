"""GET /api/v1/events/: the strategy's own events after a cursor, and the long poll.

The long poll is tested as it runs in production: a real request thread waiting on its own
LISTEN connection, woken by a commit in another thread, timed."""

from __future__ import annotations

import statistics
import threading
import time

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from omsproject.testing.threads import run_together
from orders.enums import EventKind, OrderStatus, StrategyStatus
from orders.models import StrategyEvent
from orders.services import strategy_status_set
from orders.tests.api.conftest import make_caller
from orders.tests.factories import OrderEventFactory, OrderFactory
from risk.models import KillSwitchState
from risk.services import kill_switch_record

URL = "/api/v1/events/"
pytestmark = pytest.mark.django_db(transaction=True)


def order_status_event(order) -> None:
    """An order.status event for the order's strategy, committed when this returns."""
    with transaction.atomic():
        OrderEventFactory(
            order=order,
            kind=EventKind.TRANSITION,
            from_status=OrderStatus.SUBMITTED,
            to_status=OrderStatus.OPEN,
            reason="acknowledged",
        )


def listeners() -> int:
    """Long polls waiting now: their connections, LISTENing and idle."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND application_name LIKE '%%-events' "
            "AND query LIKE 'LISTEN%%'"
        )
        return cursor.fetchone()[0]


def until_listening(count: int) -> None:
    deadline = time.monotonic() + 10
    while listeners() < count:
        assert time.monotonic() < deadline, "the long poll never listened"
        time.sleep(0.005)


def no_listener_left() -> bool:
    """Every long poll's connection closed (a backend takes a moment to exit)."""
    deadline = time.monotonic() + 5
    while listeners() and time.monotonic() < deadline:
        time.sleep(0.01)
    return listeners() == 0


@pytest.fixture(autouse=True)
def _no_waiter_from_before():
    """A test counts the waiters it starts: none may be left from an earlier one."""
    assert no_listener_left()


def test_a_page_lists_own_events_in_order_with_the_documented_fields():
    caller = make_caller(name="Feed A")
    order = OrderFactory(strategy=caller.strategy, status=OrderStatus.SUBMITTED)
    order_status_event(order)
    strategy_status_set(caller.strategy, status=StrategyStatus.PAUSED, actor="ops", reason="x")

    answer = caller.client.get(URL)

    assert answer.status_code == 200, answer.content
    body = answer.json()
    events = body["events"]
    assert [event["kind"] for event in events] == ["order.status", "strategy.status"]
    first = events[0]
    assert set(first) == {"id", "kind", "order_id", "client_order_id", "created_at", "data"}
    assert first["order_id"] == order.pk
    assert first["client_order_id"] == order.client_order_id
    assert first["data"]["to_status"] == "OPEN"
    assert events[1]["order_id"] is None and events[1]["data"]["reason"] == "x"
    rows = StrategyEvent.objects.filter(strategy=caller.strategy).order_by("seq")
    assert [event["id"] for event in events] == [row.seq for row in rows]
    assert body["next_after"] == events[-1]["id"]


def test_the_cursor_pages_through_everything_once():
    caller = make_caller(name="Feed pages")
    order = OrderFactory(strategy=caller.strategy, status=OrderStatus.SUBMITTED)
    for _ in range(5):
        order_status_event(order)

    seen, after = [], 0
    for _ in range(4):
        body = caller.client.get(URL, {"after": after, "page_size": 2}).json()
        seen += [event["id"] for event in body["events"]]
        assert len(body["events"]) <= 2
        after = body["next_after"]

    assert len(seen) == 5 == len(set(seen))
    assert seen == sorted(seen)
    assert body == {"events": [], "next_after": after}


def test_a_page_costs_the_same_queries_whatever_its_size():
    caller = make_caller(name="Feed queries")
    order = OrderFactory(strategy=caller.strategy, status=OrderStatus.SUBMITTED)
    for _ in range(6):
        order_status_event(order)

    caller.client.get(URL)  # the key's first use is recorded once
    counts = []
    for size in (1, 6):
        with CaptureQueriesContext(connection) as queries:
            answer = caller.client.get(URL, {"page_size": size})
        assert len(answer.json()["events"]) == size
        counts.append(len(queries))

    assert counts[0] == counts[1]


def test_a_strategy_sees_only_its_own_events_and_a_global_kill_switch():
    mine, theirs = make_caller(name="Mine"), make_caller(name="Theirs")
    order = OrderFactory(strategy=theirs.strategy, status=OrderStatus.SUBMITTED)
    order_status_event(order)
    strategy_status_set(theirs.strategy, status=StrategyStatus.PAUSED, actor="ops")
    kill_switch_record(KillSwitchState.HALTED, strategy=theirs.strategy, reason="r", actor="o")
    kill_switch_record(KillSwitchState.REDUCING, reason="market-wide", actor="ops")

    events = mine.client.get(URL).json()["events"]

    assert [(event["kind"], event["data"]["scope"]) for event in events] == [
        ("kill_switch", "GLOBAL")
    ]
    assert len(theirs.client.get(URL).json()["events"]) == 4


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"after": "-1"}, "after"),
        ({"after": "abc"}, "after"),
        ({"after": str(2**63)}, "after"),
        ({"page_size": "0"}, "page_size"),
        ({"page_size": "1001"}, "page_size"),
        ({"wait": "31"}, "wait"),
        ({"wait": "-1"}, "wait"),
        ({"wait": "nan"}, "wait"),
        ({"wait": "soon"}, "wait"),
    ],
)
def test_bad_parameters_are_400_naming_the_field(params, field):
    caller = make_caller(name=f"Bad {field}")

    answer = caller.client.get(URL, params)

    assert answer.status_code == 400
    error = answer.json()["error"]
    assert list(error["fields"]) == [field]
    assert field in error["message"]


def test_staff_and_strangers_are_refused(admin_client, client):
    assert client.get(URL).status_code == 401
    assert admin_client.get(URL).status_code == 403


def test_the_long_poll_answers_within_100_ms_of_the_commit():
    caller = make_caller(name="Waiter")
    order = OrderFactory(strategy=caller.strategy, status=OrderStatus.SUBMITTED)
    delays = []
    for _ in range(5):
        after = caller.client.get(URL).json()["next_after"]
        committed: dict[str, float] = {}

        def wait(after=after):
            answer = caller.client.get(URL, {"after": after, "wait": 10})
            return time.monotonic(), answer

        def commit(committed=committed):
            until_listening(1)
            order_status_event(order)
            committed["at"] = time.monotonic()

        (answered_at, answer), _ = (outcome for outcome, _ in run_together([wait, commit]))
        assert answer.status_code == 200
        assert [event["kind"] for event in answer.json()["events"]] == ["order.status"]
        delays.append(answered_at - committed["at"])

    print(f"long poll: commit -> answer, ms: {[round(d * 1000, 1) for d in delays]}")
    assert statistics.median(delays) < 0.1
    assert max(delays) < 0.5
    assert no_listener_left()  # each wait closed its connection


def test_the_long_poll_returns_empty_with_the_same_cursor_when_the_wait_ends():
    caller, other = make_caller(name="Patient"), make_caller(name="Busy")
    order = OrderFactory(strategy=other.strategy, status=OrderStatus.SUBMITTED)
    after = caller.client.get(URL).json()["next_after"]

    def wait():
        started = time.monotonic()
        answer = caller.client.get(URL, {"after": after, "wait": "0.6"})
        return time.monotonic() - started, answer

    def others_news():  # another strategy's events neither wake nor reach this one
        until_listening(1)
        for _ in range(3):
            order_status_event(order)

    (elapsed, answer), _ = (outcome for outcome, _ in run_together([wait, others_news]))

    assert answer.status_code == 200
    assert answer.json() == {"events": [], "next_after": after}
    assert 0.6 <= elapsed < 1.5
    assert no_listener_left()


def test_the_server_wait_bound_shortens_a_long_poll(settings):
    settings.OMS_EVENTS_MAX_WAIT = 0.2
    caller = make_caller(name="Bounded")
    started = time.monotonic()

    answer = caller.client.get(URL, {"wait": 30})

    assert answer.json()["events"] == []
    assert time.monotonic() - started < 1.5


def test_waiters_over_the_cap_get_429_with_retry_after(settings):
    settings.OMS_EVENTS_MAX_WAITERS = 1
    first, second = make_caller(name="First waiter"), make_caller(name="Second waiter")
    order = OrderFactory(strategy=first.strategy, status=OrderStatus.SUBMITTED)
    mine = OrderFactory(strategy=second.strategy, status=OrderStatus.SUBMITTED)
    released = threading.Event()

    def hold_the_slot():
        answer = first.client.get(URL, {"wait": 10})
        released.set()
        return answer

    def over_the_cap():
        until_listening(1)
        refused = second.client.get(URL, {"wait": 5})
        no_wait = second.client.get(URL)
        order_status_event(mine)
        with_news = second.client.get(URL, {"wait": 5})  # news: answered without waiting
        order_status_event(order)  # lets the first waiter go
        assert released.wait(10)
        after = with_news.json()["next_after"]
        waits_again = second.client.get(URL, {"after": after, "wait": "0.2"})
        return refused, no_wait, with_news, waits_again

    (held, _), ((refused, no_wait, with_news, waits_again), error) = run_together(
        [hold_the_slot, over_the_cap]
    )

    assert error is None
    assert held.status_code == 200 and len(held.json()["events"]) == 1
    assert refused.status_code == 429
    assert refused["Retry-After"] == "1"
    assert refused.json()["error"]["code"] == "too_many_waiters"
    assert "wait" in refused.json()["error"]["fields"]
    assert no_wait.status_code == 200
    assert with_news.status_code == 200 and len(with_news.json()["events"]) == 1
    assert waits_again.status_code == 200  # the slot was given back
