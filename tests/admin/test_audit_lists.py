"""The audit lists: order events, strategy events, kill switch events, reconciliation issues and
the admin's change log. Filters by day, strategy, kind and person; "Export CSV" streams every
row the filters select (not just the page), for risk officers only."""

from __future__ import annotations

import csv
import io
import json
import tracemalloc
from datetime import datetime, time, timedelta

import pytest
from django.contrib.admin.models import ADDITION, CHANGE, LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.http import StreamingHttpResponse
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from omsproject import admin_audit
from orders.enums import EventKind, EventSource, OrderStatus, StrategyEventKind
from orders.models import OrderEvent, StrategyEvent
from orders.tests.factories import OrderEventFactory, OrderFactory
from positions.models import ReconciliationIssue
from risk.models import KillSwitchEvent
from risk.tests.factories import KillSwitchEventFactory
from tests.admin.conftest import logged_in, person

pytestmark = pytest.mark.django_db

ORDER_EVENTS = "/admin/orders/orderevent/"
STRATEGY_EVENTS = "/admin/orders/strategyevent/"
KILL_SWITCH_EVENTS = "/admin/risk/killswitchevent/"
ISSUES = "/admin/positions/reconciliationissue/"
CHANGE_LOG = "/admin/admin/logentry/"


def today() -> str:
    return timezone.localdate().isoformat()


def days_ago(days: int):
    """Noon IST, ``days`` days ago."""
    day = timezone.localdate() - timedelta(days=days)
    return timezone.make_aware(datetime.combine(day, time(12)))


def event_at(order, at, **fields) -> int:
    """An order event written at ``at`` (auto_now_add would say now; the table refuses updates),
    as one INSERT."""
    row = {
        "kind": EventKind.TRANSITION,
        "from_status": "",
        "to_status": OrderStatus.PENDING,
        "source": EventSource.SYSTEM,
        "reason": "recorded",
        "actor": "",
        **fields,
    }
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO order_events (order_id, kind, from_status, to_status, source, reason, "
            "actor, details, created_at) VALUES (%s, %s, %s, %s, %s, %s, %s, '{}', %s) "
            "RETURNING id",
            [order.pk, *row.values(), at],
        )
        return cursor.fetchone()[0]


def csv_text(response) -> str:
    assert response.status_code == 200
    assert isinstance(response, StreamingHttpResponse)
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"].startswith("attachment; filename=")
    return b"".join(response.streaming_content).decode()


def csv_rows(response) -> list[dict]:
    return list(csv.DictReader(io.StringIO(csv_text(response))))


def listed_ids(response) -> set[int]:
    assert response.status_code == 200
    return {obj.pk for obj in response.context["cl"].result_list}


@pytest.fixture
def history(desk):
    """Order events of two strategies: today by two people and the system, and yesterday."""
    momentum, live = desk["momentum"], desk["live"]
    infy = OrderFactory(strategy=momentum, symbol="INFY")
    reliance = OrderFactory(strategy=live, symbol="RELIANCE")
    now = timezone.now()
    return {
        "rita_today": event_at(
            infy,
            now,
            kind=EventKind.TRANSITION,
            from_status=OrderStatus.OPEN,
            to_status=OrderStatus.CANCEL_PENDING,
            source=EventSource.ADMIN,
            actor="rita",
            reason="=cancel before results",
        ),
        "system_today": event_at(infy, now, kind=EventKind.FILL, to_status=OrderStatus.FILLED),
        "live_today": event_at(reliance, now, actor="omar", to_status=OrderStatus.OPEN),
        "momentum_yesterday": event_at(infy, days_ago(1), actor="rita"),
        "momentum_last_week": event_at(infy, days_ago(8), actor="rita"),
        "momentum": momentum,
        "live": live,
        "infy": infy,
    }


# --- order events ------------------------------------------------------------------------------


def test_order_events_filter_by_day_strategy_kind_and_person(as_risk_officer, history):
    today_only = {"created_at__since": today(), "created_at__until": today()}
    ids = listed_ids(as_risk_officer.get(ORDER_EVENTS, today_only))
    assert {history["rita_today"], history["system_today"], history["live_today"]} <= ids
    assert history["momentum_yesterday"] not in ids

    yesterday = (timezone.localdate() - timedelta(days=1)).isoformat()
    week = {"created_at__since": (timezone.localdate() - timedelta(days=7)).isoformat()}
    assert listed_ids(
        as_risk_officer.get(
            ORDER_EVENTS, {"created_at__since": yesterday, "created_at__until": yesterday}
        )
    ) == {history["momentum_yesterday"]}
    assert history["momentum_last_week"] not in listed_ids(as_risk_officer.get(ORDER_EVENTS, week))

    strategy = {"order__strategy__id__exact": history["live"].pk, **today_only}
    assert listed_ids(as_risk_officer.get(ORDER_EVENTS, strategy)) >= {history["live_today"]}
    assert history["rita_today"] not in listed_ids(as_risk_officer.get(ORDER_EVENTS, strategy))

    fills = listed_ids(as_risk_officer.get(ORDER_EVENTS, {"kind__exact": "FILL", **today_only}))
    assert fills == {history["system_today"]}
    by_rita = listed_ids(as_risk_officer.get(ORDER_EVENTS, {"actor__exact": "rita"}))
    assert by_rita == {
        history["rita_today"],
        history["momentum_yesterday"],
        history["momentum_last_week"],
    }
    by_order = listed_ids(as_risk_officer.get(ORDER_EVENTS, {"q": str(history["infy"].pk)}))
    assert history["live_today"] not in by_order
    assert history["rita_today"] in by_order
    client_id = history["infy"].client_order_id
    assert listed_ids(as_risk_officer.get(ORDER_EVENTS, {"q": client_id})) == by_order
    assert listed_ids(as_risk_officer.get(ORDER_EVENTS, {"q": "no-such-order"})) == set()


def test_the_today_link_and_the_from_to_form_are_on_the_list(as_risk_officer, history):
    page = as_risk_officer.get(ORDER_EVENTS, {"actor__exact": "rita"}).content.decode()
    assert f"created_at__since={today()}&amp;created_at__until={today()}" in page
    assert ">Today</a>" in page
    assert 'name="created_at__since"' in page and 'name="created_at__until"' in page
    # the from-to form keeps the list's other filters
    assert '<input type="hidden" name="actor__exact" value="rita">' in page


@pytest.mark.parametrize(
    "params",
    [
        {"created_at__since": "2026-13-01"},
        {"created_at__since": "2026-12-05", "created_at__until": "2026-12-01"},
    ],
    ids=["not a day", "from after to"],
)
def test_a_bad_range_is_refused_not_a_server_error(as_risk_officer, history, params):
    for url in (ORDER_EVENTS, ORDER_EVENTS + "export.csv"):
        response = as_risk_officer.get(url, params)
        assert response.status_code == 302
        assert response["Location"].endswith("?e=1")


def test_order_event_csv_holds_every_filtered_row_not_the_page(
    as_risk_officer, history, monkeypatch
):
    monkeypatch.setattr("orders.admin.events.OrderEventAdmin.list_per_page", 2)
    params = {
        "created_at__since": today(),
        "created_at__until": today(),
        "order__strategy__id__exact": history["momentum"].pk,
    }
    page = as_risk_officer.get(ORDER_EVENTS, params)
    assert len(page.context["cl"].result_list) == 2  # a page of two ...
    rows = csv_rows(as_risk_officer.get(ORDER_EVENTS + "export.csv", params))
    expected = set(
        OrderEvent.objects.filter(
            order__strategy=history["momentum"],
            created_at__date__gte=timezone.localdate(),
        ).values_list("pk", flat=True)
    )
    assert len(expected) > 2  # ... of more rows than that
    assert {int(row["id"]) for row in rows} == expected
    assert list(rows[0]) == [
        "id",
        "created_at",
        "order_id",
        "strategy",
        "client_order_id",
        "symbol",
        "kind",
        "from_status",
        "to_status",
        "source",
        "actor",
        "reason",
        "details",
    ]
    rita = next(row for row in rows if int(row["id"]) == history["rita_today"])
    assert (rita["strategy"], rita["symbol"], rita["actor"]) == ("Momentum", "INFY", "rita")
    assert (rita["from_status"], rita["to_status"]) == ("OPEN", "CANCEL_PENDING")
    assert rita["reason"] == "'=cancel before results"  # never a formula in a spreadsheet
    assert rita["details"] == "{}"  # JSON, not a Python repr
    assert datetime.fromisoformat(rita["created_at"]).utcoffset() == timedelta(hours=5, minutes=30)
    # newest first, as the list
    assert [int(row["id"]) for row in rows] == sorted(expected, reverse=True)


def test_the_export_button_carries_the_filters(as_risk_officer, history):
    response = as_risk_officer.get(ORDER_EVENTS, {"kind__exact": "FILL", "p": "1"})
    url = response.context["csv_export_url"]
    assert url == ORDER_EVENTS + "export.csv?kind__exact=FILL"
    assert "Export CSV" in response.content.decode()


@pytest.mark.parametrize("who", ["as_viewer", "as_operator"])
@pytest.mark.parametrize(
    "url", [ORDER_EVENTS, STRATEGY_EVENTS, KILL_SWITCH_EVENTS, ISSUES, CHANGE_LOG]
)
def test_viewers_and_operators_read_the_lists_but_never_export(who, url, request, history):
    client = request.getfixturevalue(who)
    page = client.get(url)
    assert page.status_code == 200
    assert "csv_export_url" not in page.context
    assert "Export CSV" not in page.content.decode()
    assert client.get(url + "export.csv").status_code == 403


@pytest.mark.parametrize(
    "url", [ORDER_EVENTS, STRATEGY_EVENTS, KILL_SWITCH_EVENTS, ISSUES, CHANGE_LOG]
)
def test_risk_officers_and_superusers_export_every_list(url, as_risk_officer, as_superuser, desk):
    for client in (as_risk_officer, as_superuser):
        assert "Export CSV" in client.get(url).content.decode()
        header = csv_text(client.get(url + "export.csv")).split("\r\n")[0]
        assert header.startswith("id,"), url


def test_staff_without_a_role_see_no_audit_list(db, desk):
    client = logged_in(person("nobody"))
    for url in (ORDER_EVENTS, CHANGE_LOG, ORDER_EVENTS + "export.csv"):
        assert client.get(url).status_code == 403


def test_the_order_event_list_costs_the_same_for_5_and_50_events(as_risk_officer, desk):
    order = OrderFactory(strategy=desk["momentum"])
    params = {"created_at__since": today(), "actor__exact": ""}
    for _ in range(5):
        OrderEventFactory(order=order)
    as_risk_officer.get(ORDER_EVENTS)
    with CaptureQueriesContext(connection) as few:
        as_risk_officer.get(ORDER_EVENTS, params)
    for _ in range(45):
        OrderEventFactory(order=OrderFactory(strategy=desk["live"]))
    with CaptureQueriesContext(connection) as many:
        response = as_risk_officer.get(ORDER_EVENTS, params)
    assert response.status_code == 200
    assert len(few) == len(many) <= 10
    assert not any("DISTINCT" in q["sql"].upper() for q in many.captured_queries)


def test_an_export_streams_from_a_cursor_and_never_holds_the_rows(
    as_risk_officer, desk, monkeypatch
):
    """The body is made while it is read, from a server-side cursor a chunk at a time: the
    memory an export needs does not grow with its rows."""
    order = OrderFactory(strategy=desk["momentum"])

    def add_events(count: int) -> None:
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO order_events (order_id, kind, from_status, to_status, source, "
                "reason, actor, details, created_at) SELECT %s, 'NOTE', '', 'PENDING', "
                "'SYSTEM', repeat('x', 200), 'bulk', '{}', now() FROM generate_series(1, %s)",
                [order.pk, count],
            )

    monkeypatch.setattr(admin_audit, "CSV_CHUNK_ROWS", 500)
    cursors = []

    def watch(execute, sql, params, many, context):
        cursors.append((sql, type(context["cursor"].cursor).__name__))
        return execute(sql, params, many, context)

    def peak_while_reading(params) -> tuple[int, int]:
        tracemalloc.start()
        try:
            with connection.execute_wrapper(watch):
                response = as_risk_officer.get(ORDER_EVENTS + "export.csv", params)
                # Nothing has been read yet: the view returned before any row was fetched.
                assert not any("order_events" in sql and "SELECT" in sql for sql, _ in cursors)
                lines = sum(chunk.count(b"\n") for chunk in response.streaming_content)
            return lines, tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    params = {"actor__exact": "bulk"}
    add_events(1_000)
    small_lines, small_peak = peak_while_reading(params)
    add_events(19_000)
    cursors.clear()
    large_lines, large_peak = peak_while_reading(params)

    assert (small_lines, large_lines) == (1_001, 20_001)  # the header and every row
    export_cursor = next(kind for sql, kind in cursors if "order_events" in sql)
    assert "Server" in export_cursor  # psycopg's named (server-side) cursor
    # 20x the rows, about the same memory (loaded at once, it would be about 20x)
    assert large_peak < 3 * small_peak, (small_peak, large_peak)


# --- strategy events ---------------------------------------------------------------------------


def test_strategy_events_filter_by_strategy_kind_and_day(as_risk_officer, history):
    momentum = history["momentum"]
    events = StrategyEvent.objects.filter(strategy=momentum)
    assert events.exists()  # the order events' triggers wrote them
    params = {
        "strategy__id__exact": momentum.pk,
        "kind__exact": StrategyEventKind.ORDER_STATUS,
        "created_at__since": today(),
    }
    ids = listed_ids(as_risk_officer.get(STRATEGY_EVENTS, params))
    assert ids == set(
        events.filter(
            kind=StrategyEventKind.ORDER_STATUS, created_at__date__gte=timezone.localdate()
        ).values_list("pk", flat=True)
    )
    assert ids
    rows = csv_rows(as_risk_officer.get(STRATEGY_EVENTS + "export.csv", params))
    assert {int(row["id"]) for row in rows} == ids
    assert {row["strategy"] for row in rows} == {"Momentum"}
    assert all(json.loads(row["payload"]) for row in rows)
    # The feed's cursor, given after commit by the sequencer (here, as the sequencer would).
    sequenced = events.first()
    StrategyEvent.objects.filter(pk=sequenced.pk).update(seq=987_654)
    sequenced.refresh_from_db()
    assert listed_ids(as_risk_officer.get(STRATEGY_EVENTS, {"q": str(sequenced.seq)})) == {
        sequenced.pk
    }
    assert listed_ids(as_risk_officer.get(STRATEGY_EVENTS, {"q": "abc"})) == set()
    detail = as_risk_officer.get(f"{STRATEGY_EVENTS}{rows[0]['id']}/change/")
    assert detail.status_code == 200
    assert as_risk_officer.get(f"{STRATEGY_EVENTS}{rows[0]['id']}/delete/").status_code == 403


# --- kill switch events ------------------------------------------------------------------------


def test_kill_switch_events_filter_by_day_and_person_and_export(as_risk_officer, desk):
    mine = KillSwitchEventFactory(actor="rita", reason="Nifty gap down")
    KillSwitchEventFactory(actor="risk-desk", state="ACTIVE", reason="resumed")
    with connection.cursor() as cursor:  # an old one, written as the database would have
        cursor.execute(
            "INSERT INTO kill_switch_events (state, scope, reason, actor, actor_type, details, "
            "created_at) VALUES ('REDUCING', 'GLOBAL', 'old', 'rita', 'PERSON', '{}', %s)",
            [days_ago(3)],
        )
    params = {"created_at__since": today(), "actor": "rita"}
    assert listed_ids(as_risk_officer.get(KILL_SWITCH_EVENTS, params)) == {mine.pk}
    rows = csv_rows(as_risk_officer.get(KILL_SWITCH_EVENTS + "export.csv", params))
    assert [(row["id"], row["state"], row["actor"], row["reason"]) for row in rows] == [
        (str(mine.pk), "HALTED", "rita", "Nifty gap down")
    ]
    everyone = csv_rows(as_risk_officer.get(KILL_SWITCH_EVENTS + "export.csv"))
    assert len(everyone) == KillSwitchEvent.objects.count() == 3


# --- reconciliation issues ---------------------------------------------------------------------


def test_reconciliation_issues_filter_by_day_and_export(as_risk_officer, desk):
    old = desk["critical"]
    ReconciliationIssue.objects.filter(pk=old.pk).update(detected_at=days_ago(2))
    params = {"detected_at__since": today()}
    ids = listed_ids(as_risk_officer.get(ISSUES, params))
    assert desk["issue"].pk in ids and old.pk not in ids

    rows = csv_rows(as_risk_officer.get(ISSUES + "export.csv", {"severity__exact": "CRITICAL"}))
    assert [(row["id"], row["strategy"], row["symbol"]) for row in rows] == [
        (str(old.pk), "Live Arb", "RELIANCE")
    ]
    assert {"strategy_id", "issue_type", "internal_quantity", "broker_quantity"} <= set(rows[0])


# --- the admin's change log --------------------------------------------------------------------


def test_the_change_log_lists_who_did_what_and_exports_it(
    as_risk_officer, as_viewer, risk_officer, desk
):
    strategy_type = ContentType.objects.get_for_model(desk["momentum"])
    paused = LogEntry.objects.log_actions(
        risk_officer.pk,
        [desk["momentum"]],
        CHANGE,
        change_message=[{"changed": {"fields": ["Status"]}}],
        single_object=True,
    )
    other = person("otto", "Risk officer")
    LogEntry.objects.create(
        user=other,
        content_type=strategy_type,
        object_id=str(desk["live"].pk),
        object_repr="Live Arb",
        action_flag=ADDITION,
        change_message="Kill switch HALTED for Live Arb: gap down",
    )
    page = as_viewer.get(CHANGE_LOG, {"user__id__exact": risk_officer.pk})
    assert listed_ids(page) == {paused.pk}
    html = page.content.decode()
    assert "Changed Status." in html and "Momentum" in html
    assert f'href="/admin/orders/strategy/{desk["momentum"].pk}/change/"' in html
    assert as_viewer.get(f"{CHANGE_LOG}{paused.pk}/change/").status_code == 200
    assert as_viewer.get(f"{CHANGE_LOG}{paused.pk}/delete/").status_code == 403
    assert as_viewer.get(CHANGE_LOG + "add/").status_code == 403

    rows = csv_rows(as_risk_officer.get(CHANGE_LOG + "export.csv", {"action_time__since": today()}))
    assert [(row["user"], row["action"], row["object"], row["message"]) for row in rows] == [
        ("otto", "Added", "Live Arb", "Kill switch HALTED for Live Arb: gap down"),
        ("rita", "Changed", "Momentum", "Changed Status."),
    ]
    assert (rows[1]["app"], rows[1]["model"]) == ("orders", "strategy")
