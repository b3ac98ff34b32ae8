"""The kill switch: its changes and what they do, the automatic rules that pull it, and the
race it must win against orders being placed."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import OperationalError, connection, transaction
from django.db.models import F
from django.utils import timezone
from procrastinate.contrib.django.models import ProcrastinateJob

from orders.enums import EventKind, EventSource, OrderStatus
from orders.models import Order, OrderEvent, Strategy
from orders.services import modification, order_modify, order_place
from orders.tests.factories import OrderEventFactory, OrderFactory, StrategyFactory, raw_insert
from positions.exits import positions_flatten
from positions.models import Severity
from positions.services import positions_mark
from positions.tests.factories import PositionFactory, ReconciliationIssueFactory
from risk.kill_switch import kill_switch_on_critical_issue, kill_switch_set, risk_auto_triggers
from risk.models import ActorType, KillSwitchEvent, KillSwitchScope, KillSwitchState
from risk.selectors import (
    KILL_SWITCH_LOCK,
    kill_switch_board,
    kill_switch_own_state,
    kill_switch_state,
)
from risk.services import KillSwitchError, pnl_snapshot_take
from risk.tests.factories import PnlSnapshotFactory, kill_switch_row, limits_set, order_request

HALTED, REDUCING, ACTIVE = KillSwitchState.HALTED, KillSwitchState.REDUCING, KillSwitchState.ACTIVE


def halt(strategy=None, **fields) -> KillSwitchEvent:
    fields.setdefault("reason", "desk says stop")
    fields.setdefault("actor", "risk-desk")
    return kill_switch_set(HALTED, strategy=strategy, **fields)


# --- changing the switch -----------------------------------------------------------------------


@pytest.mark.django_db
def test_a_change_is_one_event_with_its_reason_actor_and_previous_state(strategy):
    first = kill_switch_set(REDUCING, strategy=strategy, reason="too volatile", actor="asha")
    second = kill_switch_set(HALTED, strategy=strategy, reason="worse", actor="asha")

    assert (first.scope, first.strategy, first.actor_type) == (
        KillSwitchScope.STRATEGY,
        strategy,
        ActorType.PERSON,
    )
    assert first.details == {"previous_state": "ACTIVE"}
    assert second.details == {"previous_state": "REDUCING"}
    assert kill_switch_state(strategy=strategy) == HALTED
    assert kill_switch_state() == ACTIVE


@pytest.mark.django_db
@pytest.mark.parametrize("reason", ["", "   "])
def test_every_change_needs_a_reason(reason):
    with pytest.raises(KillSwitchError, match="reason missing"):
        kill_switch_set(HALTED, reason=reason, actor="asha")
    assert not KillSwitchEvent.objects.exists()


@pytest.mark.django_db
def test_only_a_person_may_lift_the_switch():
    halt()

    with pytest.raises(KillSwitchError, match="only a person"):
        kill_switch_set(
            ACTIVE, reason="recovered", actor="rule:drawdown-from-peak", actor_type=ActorType.RULE
        )
    with pytest.raises(KillSwitchError, match="rule:drawdown-from-peak"):
        kill_switch_set(ACTIVE, reason="recovered", actor="rule:drawdown-from-peak")

    assert kill_switch_state() == HALTED
    kill_switch_set(ACTIVE, reason="checked the book", actor="asha")
    assert kill_switch_state() == ACTIVE


@pytest.mark.django_db
def test_halted_cancels_every_open_order_of_its_scope(strategy):
    pending = OrderFactory(strategy=strategy, status=OrderStatus.PENDING)
    working = OrderFactory(
        strategy=strategy, status=OrderStatus.OPEN, broker_order_id="B-1", price=Decimal("2400.00")
    )
    done = OrderFactory(strategy=strategy, status=OrderStatus.REJECTED)
    theirs = OrderFactory(status=OrderStatus.OPEN, broker_order_id="B-2")

    halt(strategy)

    def status(order):
        order.refresh_from_db()
        return order.status

    assert status(pending) == OrderStatus.CANCELLED  # never sent: cancelled here
    assert status(working) == OrderStatus.CANCEL_PENDING  # the broker is asked, by a job
    assert ProcrastinateJob.objects.filter(
        task_name="orders.cancel", args={"order_id": working.pk}
    ).exists()
    assert status(done) == OrderStatus.REJECTED
    assert status(theirs) == OrderStatus.OPEN  # another strategy's halt is not theirs
    cancel = pending.events.get(to_status=OrderStatus.CANCELLED)
    assert cancel.source == EventSource.SYSTEM
    assert cancel.actor == "kill switch (risk-desk)"
    assert cancel.reason == "kill switch HALTED: desk says stop"


@pytest.mark.django_db
def test_a_global_halt_cancels_every_strategys_orders(strategy):
    orders = [OrderFactory(status=OrderStatus.PENDING) for _ in range(3)]

    halt()

    assert {Order.objects.get(pk=o.pk).status for o in orders} == {OrderStatus.CANCELLED}


@pytest.mark.django_db
def test_reducing_leaves_the_working_orders_alone(strategy):
    working = OrderFactory(strategy=strategy, status=OrderStatus.OPEN, broker_order_id="B-1")

    kill_switch_set(REDUCING, reason="cool off", actor="asha")

    working.refresh_from_db()
    assert working.status == OrderStatus.OPEN


@pytest.mark.django_db
def test_each_change_is_mailed_to_the_risk_desk(
    strategy, settings, mailoutbox, django_capture_on_commit_callbacks
):
    settings.OMS_RISK_EMAILS = ["desk@example.in", "cro@example.in"]
    OrderFactory(strategy=strategy, status=OrderStatus.PENDING)

    with django_capture_on_commit_callbacks(execute=True):
        halt(strategy, reason="broker rejecting everything")

    (mail,) = mailoutbox
    assert mail.to == ["desk@example.in", "cro@example.in"]
    assert mail.subject == f"[OMS] kill switch HALTED for {strategy.name}"
    assert "Reason: broker rejecting everything" in mail.body
    assert "By: risk-desk (PERSON)" in mail.body
    assert "Open orders being cancelled: 1" in mail.body


@pytest.mark.django_db
def test_no_mail_is_sent_before_the_change_commits(
    settings, mailoutbox, django_capture_on_commit_callbacks
):
    settings.OMS_RISK_EMAILS = ["desk@example.in"]

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        halt()

    assert mailoutbox == []
    assert len(callbacks) == 1


@pytest.mark.django_db
def test_nobody_to_tell_no_mail(settings, mailoutbox, django_capture_on_commit_callbacks):
    settings.OMS_RISK_EMAILS = []

    with django_capture_on_commit_callbacks(execute=True):
        halt()

    assert mailoutbox == []


@pytest.mark.django_db
def test_flattening_places_one_closing_order_per_open_position(strategy):
    long = PositionFactory(strategy=strategy, symbol="SBIN", quantity=10)
    short = PositionFactory(strategy=strategy, symbol="INFY", quantity=-5)
    PositionFactory(symbol="TCS", quantity=3)  # another strategy's

    results = positions_flatten(actor="asha", reason="end of experiment", strategy=strategy)
    again = positions_flatten(actor="asha", reason="end of experiment", strategy=strategy)

    orders = Order.objects.filter(strategy=strategy).order_by("symbol")
    assert [(o.symbol, o.side, o.quantity, o.order_type) for o in orders] == [
        ("INFY", "BUY", 5, "MARKET"),
        ("SBIN", "SELL", 10, "MARKET"),
    ]
    assert not any(r.failed for r in results)
    assert all(r.working and not r.orders for r in again)  # the first exits still work
    long.refresh_from_db()
    short.refresh_from_db()
    assert {long.exit_order_id, short.exit_order_id} == {o.pk for o in orders}


# --- which change is in force: the database's order, not a process's clock ----------------------


def lagging_insert(state: str, strategy=None, *, lag=timedelta(seconds=60), **columns) -> int:
    """A change written as a process whose clock is ``lag`` behind would stamp it (directly:
    the database's default stamp is the one a process cannot get wrong)."""
    scope = {"scope": "STRATEGY", "strategy_id": strategy.pk} if strategy is not None else {}
    row = kill_switch_row(state=state, created_at=timezone.now() - lag, **scope, **columns)
    return raw_insert("kill_switch_events", row)


@pytest.mark.django_db
@pytest.mark.parametrize("scope", ["global", "strategy"])
def test_a_halt_stamped_60_s_in_the_past_after_a_resume_is_in_force(strategy, scope):
    """The bug from the review: a HALT from a process whose clock lags 60 s was ignored, the
    ACTIVE before it having the later created_at. The later change (the higher id) wins."""
    target = strategy if scope == "strategy" else None
    halt(target)
    kill_switch_set(ACTIVE, strategy=target, reason="checked the book", actor="asha")

    lagging_insert("HALTED", target)

    assert kill_switch_state(strategy=strategy) == HALTED
    board = kill_switch_board()
    assert board.state_for(strategy.pk) == HALTED
    refused = order_place(order_request(strategy), actor="algo")
    assert [v.code for v in refused.violations] == ["kill_switch_halted"]
    assert refused.status == OrderStatus.REJECTED


@pytest.mark.django_db
def test_the_admin_page_shows_the_lagging_halt(strategy, admin_client):
    kill_switch_set(ACTIVE, strategy=strategy, reason="all clear", actor="asha")
    lagging_insert("HALTED", strategy, reason="broker outage, from a slow clock")

    response = admin_client.get("/admin/risk/killswitch/")

    (row,) = [r for r in response.context["strategies"] if r["strategy"] == strategy]
    assert (row["own"], row["in_force"]) == (HALTED, HALTED)
    assert row["event"].reason == "broker outage, from a slow clock"
    assert "broker outage, from a slow clock" in response.content.decode()


@pytest.mark.django_db
def test_a_change_is_stamped_by_the_databases_clock_not_the_processs(strategy, monkeypatch):
    resume = kill_switch_set(ACTIVE, strategy=strategy, reason="all clear", actor="asha")
    lagging = timezone.now() - timedelta(seconds=60)
    monkeypatch.setattr(timezone, "now", lambda: lagging)

    event = halt(strategy)

    with connection.cursor() as cursor:
        cursor.execute("SELECT statement_timestamp()")
        (database_now,) = cursor.fetchone()
    assert resume.created_at <= event.created_at <= database_now
    assert event.created_at - lagging > timedelta(seconds=59)
    assert KillSwitchEvent.objects.values_list("created_at", flat=True).get(pk=event.pk) == (
        event.created_at
    )


@pytest.mark.django_db
def test_every_reader_agrees_on_each_switchs_state_whatever_the_stamps():
    """The SQL function (the validator's context), the selector, the admin's
    board and the strategies' list expression all read v_kill_switch_current: the highest id."""
    quiet, halted, reducing, lifted = (StrategyFactory(name=n) for n in "ABCD")
    # Each switch's last change carries the older stamp: ordered by created_at, every one of
    # them would read differently.
    now = timedelta(0)
    lagging_insert("REDUCING", lag=now)
    lagging_insert("ACTIVE", halted, lag=timedelta(seconds=-30))  # a clock ahead
    lagging_insert("HALTED", reducing, lag=now)
    lagging_insert("HALTED", lifted, lag=now)
    lagging_insert("HALTED", lag=timedelta(seconds=90))
    lagging_insert("HALTED", halted)
    lagging_insert("REDUCING", reducing)
    lagging_insert("ACTIVE", lifted)

    # The rule written out once more, in Python, as the oracle.
    latest: dict = {}
    for event in KillSwitchEvent.objects.order_by("id"):
        latest[event.strategy_id] = event.state
    expected = {s.pk: latest.get(s.pk) for s in (quiet, halted, reducing, lifted)}
    assert expected == {
        quiet.pk: None,
        halted.pk: "HALTED",
        reducing.pk: "REDUCING",
        lifted.pk: "ACTIVE",
    }
    with connection.cursor() as cursor:
        cursor.execute("SELECT oms_kill_switch_state('GLOBAL', NULL)")
        assert cursor.fetchone()[0] == latest[None] == "HALTED"
    listed = dict(
        Strategy.objects.filter(pk__in=expected)
        .annotate(own=kill_switch_own_state(F("pk")))
        .values_list("pk", "own")
    )
    board = kill_switch_board()
    assert board.global_state == HALTED
    assert listed == expected
    assert {pk: board.own_state(pk) for pk in expected} == {
        pk: KillSwitchState(state or "ACTIVE") for pk, state in expected.items()
    }
    for strategy in (quiet, halted, reducing, lifted):
        assert kill_switch_state(strategy=strategy) == HALTED  # the global switch is stricter
        assert board.state_for(strategy.pk) == HALTED
    lagging_insert("ACTIVE")
    for strategy in (quiet, halted, reducing, lifted):
        own = KillSwitchState(expected[strategy.pk] or "ACTIVE")
        assert kill_switch_state(strategy=strategy) == own
        assert kill_switch_board().state_for(strategy.pk) == own


def _backend_waits_on_a_lock(deadline_seconds: float = 10) -> bool:
    deadline = time.monotonic() + deadline_seconds
    while _backends_waiting_on_a_lock() == 0:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


@pytest.mark.django_db(transaction=True)
def test_an_insert_by_hand_waits_for_the_lock_before_drawing_its_id():
    """A trigger takes the kill switch's exclusive lock for any INSERT, before the row's id is
    drawn: ids follow commit order even for rows written by hand (psql, a script)."""
    outcome = {}

    def insert_by_hand():
        try:
            return raw_insert("kill_switch_events", kill_switch_row(reason="by hand"))
        finally:
            connection.close()

    writer = threading.Thread(target=lambda: outcome.setdefault("id", _catching(insert_by_hand)))
    with transaction.atomic():
        first = raw_insert("kill_switch_events", kill_switch_row(reason="first"))
        writer.start()
        assert _backend_waits_on_a_lock(), "the insert by hand did not wait"
        with connection.cursor() as cursor:
            # Drawn while the other insert waits: its id must come after this one.
            cursor.execute("SELECT nextval(pg_get_serial_sequence('kill_switch_events', 'id'))")
            drawn_meanwhile = cursor.fetchone()[0]
    writer.join(timeout=30)

    assert isinstance(outcome["id"], int), outcome["id"]
    assert first < drawn_meanwhile < outcome["id"]


@pytest.mark.django_db(transaction=True)
def test_an_insert_by_hand_waits_for_a_placement_holding_the_shared_lock():
    def insert_with_a_lock_timeout():
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("SET LOCAL lock_timeout = '200ms'")
                return raw_insert("kill_switch_events", kill_switch_row())
        finally:
            connection.close()

    outcome = {}
    writer = threading.Thread(
        target=lambda: outcome.setdefault("result", _catching(insert_with_a_lock_timeout))
    )
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock_shared(%s)", [KILL_SWITCH_LOCK])
        writer.start()
        writer.join(timeout=30)

    assert isinstance(outcome["result"], OperationalError), outcome["result"]
    assert outcome["result"].__cause__.sqlstate == "55P03"  # lock_not_available
    assert not KillSwitchEvent.objects.exists()


def _catching(function):
    try:
        return function()
    except Exception as error:  # the caller asserts on it
        return error


# --- automatic rules ---------------------------------------------------------------------------


def _day(now, *totals):
    """The day's PnL snapshots of ``now``'s day, a minute apart, the last one at ``now``."""
    return lambda strategy: [
        PnlSnapshotFactory(
            strategy=strategy,
            taken_at=now - timedelta(minutes=len(totals) - index),
            unrealized_pnl=Decimal(total),
        )
        for index, total in enumerate(totals, start=1)
    ]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("totals", "figures"),
    [
        pytest.param(["0", "1500", "500"], None, id="1000-below-the-peak"),
        pytest.param(
            ["0", "1500", "499.99"],
            {"peak": "1500.00", "pnl": "499.99"},
            id="1000.01-below-the-peak",
        ),
        pytest.param(["-200", "-700", "-1000"], None, id="1000-below-the-flat-start"),
        pytest.param(
            ["-200", "-700", "-1000.01"],
            {"peak": "0", "pnl": "-1000.01"},
            id="the-day-starts-flat",
        ),
    ],
)
def test_drawdown_from_the_days_peak_halts_the_strategy(strategy, totals, figures):
    now = timezone.now()
    limits_set(strategy, drawdown_limit=Decimal("1000.00"))
    _day(now, *totals)(strategy)

    fired = risk_auto_triggers(now=now)

    if figures is None:
        assert fired == []
        return
    (event,) = fired
    assert (event.state, event.scope, event.strategy) == (HALTED, "STRATEGY", strategy)
    assert (event.actor, event.actor_type) == ("rule:drawdown-from-peak", ActorType.RULE)
    assert event.details == {**figures, "limit": "1000.00", "previous_state": "ACTIVE"}


@pytest.mark.django_db
def test_yesterdays_peak_is_not_todays(strategy):
    now = timezone.now()
    limits_set(strategy, drawdown_limit=Decimal("1000.00"))
    PnlSnapshotFactory(strategy=strategy, taken_at=now - timedelta(days=1), realized_pnl=5000)
    PnlSnapshotFactory(strategy=strategy, taken_at=now, realized_pnl=Decimal("100.00"))

    assert risk_auto_triggers(now=now) == []


@pytest.mark.django_db
def test_drawdown_measured_on_snapshots_of_marked_positions(strategy):
    """PnL snapshots taken while the position is marked up, then down."""
    limits_set(strategy, drawdown_limit=Decimal("3000.00"))
    PositionFactory(strategy=strategy, symbol="RELIANCE", quantity=10, average_price=2000)
    start = timezone.now()

    positions_mark([("RELIANCE", "NSE", Decimal("2200.00"))])  # +2,000
    pnl_snapshot_take(now=start)
    positions_mark([("RELIANCE", "NSE", Decimal("1900.00"))])  # -1,000: 3,000 below the peak
    pnl_snapshot_take(now=start + timedelta(minutes=1))
    assert risk_auto_triggers(now=start + timedelta(minutes=1)) == []
    positions_mark([("RELIANCE", "NSE", Decimal("1899.90"))])  # -1,001
    snapshots = pnl_snapshot_take(now=start + timedelta(minutes=2))
    (event,) = risk_auto_triggers(now=start + timedelta(minutes=2))

    assert [(s.strategy, s.total_pnl) for s in snapshots] == [
        (None, Decimal("-1001.00")),
        (strategy, Decimal("-1001.00")),
    ]
    assert event.actor == "rule:drawdown-from-peak"
    assert event.details["peak"] == "2000.00"
    assert event.details["pnl"] == "-1001.00"


@pytest.mark.django_db
@pytest.mark.parametrize(("total", "fires"), [("-4999.99", False), ("-5000.00", True)])
def test_the_daily_loss_limit_turns_the_switch_to_reducing(strategy, total, fires):
    now = timezone.now()
    limits_set(strategy, daily_loss_limit=Decimal("5000.00"))
    PnlSnapshotFactory(strategy=strategy, taken_at=now, realized_pnl=Decimal(total))

    fired = risk_auto_triggers(now=now)

    assert [(e.state, e.actor, e.details.get("pnl")) for e in fired] == (
        [(REDUCING, "rule:daily-loss-limit", total)] if fires else []
    )


@pytest.mark.django_db
def test_the_global_rules_watch_the_whole_book():
    now = timezone.now()
    limits_set(daily_loss_limit=Decimal("5000.00"))
    PnlSnapshotFactory(strategy=None, taken_at=now, realized_pnl=Decimal("-6000.00"))

    (event,) = risk_auto_triggers(now=now)

    assert (event.state, event.scope, event.strategy) == (REDUCING, "GLOBAL", None)


def _rejections(strategy, count: int, source=EventSource.BROKER):
    for _ in range(count):
        order = OrderFactory(strategy=strategy, status=OrderStatus.REJECTED)
        OrderEventFactory(
            order=order,
            kind=EventKind.TRANSITION,
            from_status=OrderStatus.SUBMITTED,
            to_status=OrderStatus.REJECTED,
            source=source,
            reason="RMS: margin exceeds",
        )


@pytest.mark.django_db
def test_a_burst_of_broker_rejections_halts_the_strategy(strategy):
    limits_set(strategy, rejection_burst=5, rejection_window_seconds=60)
    _rejections(strategy, 4)
    _rejections(strategy, 3, source=EventSource.SYSTEM)  # our own validator's: not the broker's
    _rejections(StrategyFactory(), 5)  # another strategy's (not limited)

    assert risk_auto_triggers() == []

    _rejections(strategy, 1)
    (event,) = risk_auto_triggers()

    assert (event.state, event.strategy) == (HALTED, strategy)
    assert (event.actor, event.actor_type) == ("rule:rejection-burst", ActorType.RULE)
    assert event.details == {"rejections": 5, "limit": 5, "previous_state": "ACTIVE"}
    assert event.reason == "5 broker rejections in 60s (limit 5)"


@pytest.mark.django_db
def test_rejections_older_than_the_window_do_not_count(strategy):
    limits_set(strategy, rejection_burst=5, rejection_window_seconds=60)
    _rejections(strategy, 5)

    assert risk_auto_triggers(now=timezone.now() + timedelta(seconds=61)) == []


@pytest.mark.django_db
def test_each_rule_fires_once(strategy):
    now = timezone.now()
    limits_set(
        strategy,
        drawdown_limit=Decimal("1000"),
        daily_loss_limit=Decimal("500"),
        rejection_burst=2,
    )
    _day(now, "0", "800", "-600")(strategy)
    _rejections(strategy, 2)

    fired = risk_auto_triggers(now=now)
    again = risk_auto_triggers(now=now)

    # The drawdown halts first; HALTED is stricter than what the other two rules would set.
    assert [e.actor for e in fired] == ["rule:drawdown-from-peak"]
    assert again == []
    assert KillSwitchEvent.objects.count() == 1


@pytest.mark.django_db
def test_reducing_by_the_loss_limit_still_escalates_to_halted(strategy):
    now = timezone.now()
    limits_set(strategy, daily_loss_limit=Decimal("500"), rejection_burst=2)
    _day(now, "-600")(strategy)

    assert [e.state for e in risk_auto_triggers(now=now)] == [REDUCING]
    _rejections(strategy, 2)
    assert [e.state for e in risk_auto_triggers(now=now)] == [HALTED]
    assert risk_auto_triggers(now=now) == []


# After a person resumes, a rule fires again only on a new breach beyond the levels at the resume.


def _snapshot(strategy, at, total: str):
    return PnlSnapshotFactory(strategy=strategy, taken_at=at, unrealized_pnl=Decimal(total))


def resume(strategy=None) -> KillSwitchEvent:
    return kill_switch_set(ACTIVE, strategy=strategy, reason="looked at it: go on", actor="asha")


@pytest.mark.django_db
def test_a_resume_records_the_levels_the_rules_measure_from(strategy):
    now = timezone.now()
    _day(now, "0", "-600")(strategy)
    _rejections(strategy, 2)
    last_event = OrderEvent.objects.order_by("id").last()
    latest = _snapshot(strategy, now, "-650.50")
    _snapshot(StrategyFactory(), now, "-9000")  # another strategy's

    event = resume(strategy)

    assert event.details["levels"] == {
        "pnl_snapshot_id": latest.pk,
        "pnl": "-650.50",
        "order_event_id": last_event.pk,
    }
    assert "levels" not in halt(strategy).details  # only a resume records them


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("after_resume", "fires"),
    [
        pytest.param(["499.00"], None, id="same-figures"),
        pytest.param(["-501.00"], None, id="1000-below-the-pnl-at-resume"),
        pytest.param(["-501.01"], ("499.00", "-501.01"), id="1000.01-below-the-pnl-at-resume"),
        pytest.param(["2000", "999.99"], ("2000.00", "999.99"), id="below-a-new-peak"),
        pytest.param(["2000", "1000"], None, id="1000-below-a-new-peak"),
    ],
)
def test_after_a_resume_the_drawdown_is_measured_from_the_resume(strategy, after_resume, fires):
    now = timezone.now()
    limits_set(strategy, drawdown_limit=Decimal("1000.00"))
    _day(now, "0", "1500", "499")(strategy)  # 1001 below the day's peak
    assert [e.actor for e in risk_auto_triggers(now=now)] == ["rule:drawdown-from-peak"]
    resumed = resume(strategy)
    assert risk_auto_triggers(now=now) == []  # a minute later, on the same figures

    for minute, total in enumerate(after_resume, start=1):
        _snapshot(strategy, now + timedelta(minutes=minute), total)
    fired = risk_auto_triggers(now=now + timedelta(minutes=len(after_resume)))

    if fires is None:
        assert fired == []
        return
    (event,) = fired
    assert (event.state, event.actor) == (HALTED, "rule:drawdown-from-peak")
    assert (event.details["peak"], event.details["pnl"]) == fires
    assert event.details["since_resume_event_id"] == resumed.pk
    assert "below the peak since the resume" in event.reason


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("after_resume", "fires"),
    [("-600.00", False), ("-550.00", False), ("-600.01", True)],
)
def test_after_a_resume_the_loss_must_go_deeper_than_at_the_resume(strategy, after_resume, fires):
    now = timezone.now()
    limits_set(strategy, daily_loss_limit=Decimal("500.00"))
    _day(now, "-600")(strategy)
    assert [e.state for e in risk_auto_triggers(now=now)] == [REDUCING]
    resumed = resume(strategy)
    assert risk_auto_triggers(now=now) == []

    _snapshot(strategy, now + timedelta(minutes=1), after_resume)
    fired = risk_auto_triggers(now=now + timedelta(minutes=1))

    assert [(e.state, e.details["pnl"]) for e in fired] == (
        [(REDUCING, after_resume)] if fires else []
    )
    if fires:
        assert fired[0].details["since_resume_event_id"] == resumed.pk
        assert "below \N{MINUS SIGN}₹600.00 at the resume" in fired[0].reason


@pytest.mark.django_db
def test_after_a_resume_only_new_rejections_count(strategy):
    limits_set(strategy, rejection_burst=2, rejection_window_seconds=60)
    _rejections(strategy, 2)
    assert [e.actor for e in risk_auto_triggers()] == ["rule:rejection-burst"]
    resumed = resume(strategy)
    assert risk_auto_triggers() == []  # the same two rejections, still in the window

    _rejections(strategy, 1)
    assert risk_auto_triggers() == []
    _rejections(strategy, 1)
    (event,) = risk_auto_triggers()

    assert (event.state, event.actor) == (HALTED, "rule:rejection-burst")
    assert event.details == {
        "rejections": 2,
        "limit": 2,
        "previous_state": "ACTIVE",
        "since_resume_event_id": resumed.pk,
    }
    assert event.reason == "2 broker rejections in 60s (limit 2) since the resume"


@pytest.mark.django_db
def test_the_global_rules_also_measure_from_the_global_resume():
    now = timezone.now()
    limits_set(daily_loss_limit=Decimal("5000.00"))
    _snapshot(None, now, "-6000.00")
    assert [e.scope for e in risk_auto_triggers(now=now)] == ["GLOBAL"]
    resume()

    _snapshot(None, now + timedelta(minutes=1), "-6000.00")
    assert risk_auto_triggers(now=now + timedelta(minutes=1)) == []
    _snapshot(None, now + timedelta(minutes=2), "-6000.01")
    assert [e.scope for e in risk_auto_triggers(now=now + timedelta(minutes=2))] == ["GLOBAL"]


@pytest.mark.django_db
def test_a_resume_on_an_earlier_day_leaves_todays_pnl_rules_alone(strategy):
    now = timezone.now()
    limits_set(strategy, daily_loss_limit=Decimal("500.00"))
    _snapshot(strategy, now - timedelta(days=1), "-100")
    resume(strategy)  # yesterday's levels: the PnL then was -100

    _snapshot(strategy, now, "-500.00")

    assert [e.state for e in risk_auto_triggers(now=now)] == [REDUCING]


@pytest.mark.django_db
def test_an_automatic_halt_is_mailed(
    strategy, settings, mailoutbox, django_capture_on_commit_callbacks
):
    settings.OMS_RISK_EMAILS = ["desk@example.in"]
    limits_set(strategy, rejection_burst=1)
    _rejections(strategy, 1)

    with django_capture_on_commit_callbacks(execute=True):
        risk_auto_triggers()

    (mail,) = mailoutbox
    assert "By: rule:rejection-burst (RULE)" in mail.body


@pytest.mark.django_db
def test_a_critical_reconciliation_issue_halts_its_strategy_once(strategy):
    issue = ReconciliationIssueFactory(strategy=strategy, severity=Severity.CRITICAL)

    event = kill_switch_on_critical_issue(issue)

    assert (event.state, event.strategy, event.actor) == (
        HALTED,
        strategy,
        "rule:critical-reconciliation",
    )
    assert event.details["issue_id"] == issue.pk
    assert kill_switch_on_critical_issue(issue) is None


@pytest.mark.django_db
def test_a_critical_issue_does_not_halt_when_the_limits_say_so(strategy):
    limits_set(strategy, halt_on_critical_issue=False)
    issue = ReconciliationIssueFactory(strategy=strategy, severity=Severity.CRITICAL)

    assert kill_switch_on_critical_issue(issue) is None
    assert kill_switch_state(strategy=strategy) == ACTIVE


# --- races against real threads ----------------------------------------------------------------


def _backends_waiting_on_a_lock() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0]


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_halt_and_a_modification_of_an_order_it_cancels_do_not_deadlock(strategy, monkeypatch):
    """order_modify takes the checks' locks (the kill switch's shared lock, the strategy's row),
    then the order's row; a halt takes the exclusive lock, and cancels (locks) the open orders
    only after it has committed. The modification holding the order waits for nothing the halt
    holds: the halt waits for it, then cancels the order it modified."""
    order = OrderFactory(strategy=strategy, status=OrderStatus.OPEN, broker_order_id="B-1")
    modifier_holds_the_order = threading.Event()
    go_on = threading.Event()
    lock_order = modification.order_locked

    def lock_order_then_pause(order_id):
        locked = lock_order(order_id)
        if threading.current_thread().name == "modifier":
            modifier_holds_the_order.set()
            go_on.wait(timeout=10)
        return locked

    monkeypatch.setattr(modification, "order_locked", lock_order_then_pause)
    outcomes = {}

    def run(name, function):
        try:
            outcomes[name] = function()
        except Exception as error:  # reported below
            outcomes[name] = error
        finally:
            connection.close()

    modifier = threading.Thread(
        name="modifier",
        target=run,
        args=("modify", lambda: order_modify(order.pk, actor="algo", price="2400.00")),
    )
    halter = threading.Thread(target=run, args=("halt", lambda: halt(strategy)))
    modifier.start()
    assert modifier_holds_the_order.wait(timeout=10)
    halter.start()
    deadline = time.monotonic() + 10
    while _backends_waiting_on_a_lock() == 0 and time.monotonic() < deadline:
        time.sleep(0.01)  # the halt is waiting for the modification's shared lock
    go_on.set()
    modifier.join(timeout=30)
    halter.join(timeout=30)

    assert isinstance(outcomes["halt"], KillSwitchEvent), outcomes["halt"]
    assert isinstance(outcomes["modify"], Order), outcomes["modify"]  # checked before the halt
    order.refresh_from_db()
    assert order.status == OrderStatus.CANCEL_PENDING  # and cancelled by it


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_no_order_is_accepted_once_a_halt_has_committed(strategy):
    """20 threads place orders while the switch is set to HALTED.

    How the assertion is sound. A placement's transaction first takes the kill switch's shared
    advisory lock (risk.validator.checks_lock, with the strategy's row), then reads the
    switches and checks, then writes: every write of a placement comes after its shared lock.
    kill_switch_set writes its event under the exclusive lock. The order's first event is
    written by the transaction that placed it and the halt's event by the halt's (neither
    is ever updated), so each row's xmin is its transaction's id, drawn at its first write.
    Each placement either
    (a) holds the shared lock, and writes, before the halt holds the exclusive lock: it is
        accepted, and its transaction id is older than the halt's; or
    (b) takes the shared lock after the halt committed: it reads HALTED, is refused, and its
        transaction id is younger than the halt's.
    A placement that waited for the halt's lock is (b). So "older than
    the halt's transaction" must coincide exactly with "accepted"; an order accepted on a stale
    read (checked before the halt, written after it) would be younger and fail the test. No
    clock is compared: transaction ids are PostgreSQL's own order. Also checked from the
    outside: a placement that began after kill_switch_set returned is refused. A test that
    never saw both cases would prove nothing, so both must occur.
    """
    limits_set(orders_per_second=1_000_000)  # the race, not the order rate, is under test
    stop = threading.Event()
    calls: list[tuple[float, object]] = []
    errors: list[BaseException] = []

    def place(worker: int) -> None:
        try:
            number = 0
            while not stop.is_set():
                number += 1
                began = time.monotonic()
                request = order_request(strategy, client_order_id=f"race-{worker}-{number}")
                calls.append((began, order_place(request, actor="algo")))
                connection.close()  # back to the pool: 21 connections compete for 20
        except BaseException as error:
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=place, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    time.sleep(0.3)
    event = halt(reason="race test")
    committed = time.monotonic()
    time.sleep(0.3)
    stop.set()
    for thread in threads:
        thread.join(timeout=60)
        assert not thread.is_alive(), "a placing thread is stuck"

    assert errors == []
    with connection.cursor() as cursor:
        # age() compares transaction ids safely: an older transaction has a greater age.
        cursor.execute(
            "SELECT e.order_id, age(e.xmin) > age(k.xmin) FROM order_events e"
            " CROSS JOIN kill_switch_events k"
            " WHERE k.id = %s AND e.from_status = '' AND e.to_status = 'PENDING'",
            [event.pk],
        )
        older_than_the_halt = dict(cursor.fetchall())
    orders = list(Order.objects.filter(strategy=strategy))
    before = [o for o in orders if older_than_the_halt[o.pk]]
    after = [o for o in orders if not older_than_the_halt[o.pk]]
    assert len(before) + len(after) == len(orders) == len(calls)
    assert before and after, (len(before), len(after))
    # (a): accepted, then cancelled by the halt itself (none was still working after it).
    assert {o.status for o in before} == {OrderStatus.CANCELLED}
    # (b): refused by the kill switch, and for nothing else.
    assert {o.status for o in after} == {OrderStatus.REJECTED}
    assert {tuple(v["code"] for v in o.metadata["violations"]) for o in after} == {
        ("kill_switch_halted",)
    }
    late = [result for began, result in calls if began > committed]
    assert late and all(not r.accepted for r in late)
