"""The order state machine: the transition table, pair by pair, and order_transition on real rows.

The expected table below is written out independently of orders/state.py on purpose: any change
to the allowed transitions must be made in both places, deliberately.
"""

from decimal import Decimal
from itertools import product

import pytest

from orders import state
from orders.enums import EventKind, EventSource, OrderStatus
from orders.models import OrderEvent
from orders.services import order_transition
from orders.state import can_transition
from orders.tests.factories import OrderFactory

S = OrderStatus

EXPECTED_TRANSITIONS: set[tuple[S, S]] = {
    # recorded, never sent: it goes to the broker, or is refused, cancelled or expired here
    (S.PENDING, S.SUBMITTED),
    (S.PENDING, S.REJECTED),
    (S.PENDING, S.CANCELLED),
    (S.PENDING, S.EXPIRED),
    # in flight: the broker answers anything, or does not answer at all
    (S.SUBMITTED, S.OPEN),
    (S.SUBMITTED, S.TRIGGER_PENDING),
    (S.SUBMITTED, S.PARTIALLY_FILLED),
    (S.SUBMITTED, S.FILLED),
    (S.SUBMITTED, S.CANCEL_PENDING),
    (S.SUBMITTED, S.CANCELLED),
    (S.SUBMITTED, S.REJECTED),
    (S.SUBMITTED, S.EXPIRED),
    (S.SUBMITTED, S.UNKNOWN),
    # no answer: settled by what the broker has under our tag
    (S.UNKNOWN, S.OPEN),
    (S.UNKNOWN, S.TRIGGER_PENDING),
    (S.UNKNOWN, S.PARTIALLY_FILLED),
    (S.UNKNOWN, S.FILLED),
    (S.UNKNOWN, S.CANCEL_PENDING),
    (S.UNKNOWN, S.CANCELLED),
    (S.UNKNOWN, S.REJECTED),
    (S.UNKNOWN, S.EXPIRED),
    # working
    (S.OPEN, S.PARTIALLY_FILLED),
    (S.OPEN, S.FILLED),
    (S.OPEN, S.CANCEL_PENDING),
    (S.OPEN, S.CANCELLED),
    (S.OPEN, S.REJECTED),
    (S.OPEN, S.EXPIRED),
    (S.TRIGGER_PENDING, S.OPEN),
    (S.TRIGGER_PENDING, S.PARTIALLY_FILLED),
    (S.TRIGGER_PENDING, S.FILLED),
    (S.TRIGGER_PENDING, S.CANCEL_PENDING),
    (S.TRIGGER_PENDING, S.CANCELLED),
    (S.TRIGGER_PENDING, S.REJECTED),
    (S.TRIGGER_PENDING, S.EXPIRED),
    (S.PARTIALLY_FILLED, S.FILLED),
    (S.PARTIALLY_FILLED, S.CANCEL_PENDING),
    (S.PARTIALLY_FILLED, S.CANCELLED),
    (S.PARTIALLY_FILLED, S.EXPIRED),
    # a cancel in flight: refused (back to working), beaten by fills, done, expired, or the
    # order itself rejected by the broker (a rejection can follow the acknowledgement)
    (S.CANCEL_PENDING, S.OPEN),
    (S.CANCEL_PENDING, S.TRIGGER_PENDING),
    (S.CANCEL_PENDING, S.PARTIALLY_FILLED),
    (S.CANCEL_PENDING, S.FILLED),
    (S.CANCEL_PENDING, S.CANCELLED),
    (S.CANCEL_PENDING, S.EXPIRED),
    (S.CANCEL_PENDING, S.REJECTED),
    # a late fill report completes an order the broker had already closed
    (S.CANCELLED, S.FILLED),
    (S.EXPIRED, S.FILLED),
}

ALL_PAIRS = list(product(S, S))
LEGAL_PAIRS = sorted(EXPECTED_TRANSITIONS)
ILLEGAL_PAIRS = [(a, b) for a, b in ALL_PAIRS if a != b and (a, b) not in EXPECTED_TRANSITIONS]

EXPECTED_STAMPS = {
    S.SUBMITTED: "submitted_at",
    S.OPEN: "acknowledged_at",
    S.TRIGGER_PENDING: "acknowledged_at",
    S.FILLED: "filled_at",
    S.CANCEL_PENDING: "cancel_requested_at",
    S.CANCELLED: "cancelled_at",
    S.REJECTED: "rejected_at",
    S.EXPIRED: "expired_at",
}
TIMESTAMP_COLUMNS = sorted(set(EXPECTED_STAMPS.values()))

EXPECTED_CANCELLABLE = {
    S.PENDING,
    S.SUBMITTED,
    S.UNKNOWN,
    S.OPEN,
    S.TRIGGER_PENDING,
    S.PARTIALLY_FILLED,
}
EXPECTED_MODIFIABLE = {S.OPEN, S.TRIGGER_PENDING, S.PARTIALLY_FILLED}
# a fill may race a cancel, and may arrive after the broker closed the order
EXPECTED_FILLABLE = {
    S.SUBMITTED,
    S.UNKNOWN,
    S.OPEN,
    S.TRIGGER_PENDING,
    S.PARTIALLY_FILLED,
    S.CANCEL_PENDING,
    S.CANCELLED,
    S.EXPIRED,
}


def _id(pair) -> str:
    return f"{pair[0]}->{pair[1]}"


# --- the table ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("current", "target"), ALL_PAIRS, ids=[_id(p) for p in ALL_PAIRS])
def test_can_transition_matches_expected_table(current, target):
    assert can_transition(current, target) is ((current, target) in EXPECTED_TRANSITIONS)


def test_table_covers_every_status_and_nothing_else():
    assert set(state.TRANSITIONS) == set(S)
    assert {(a, b) for a, exits in state.TRANSITIONS.items() for b in exits} == (
        EXPECTED_TRANSITIONS
    )


def test_can_transition_accepts_plain_strings_as_loaded_from_the_database():
    assert can_transition("OPEN", "FILLED") is True
    assert can_transition("FILLED", "OPEN") is False


@pytest.mark.parametrize("terminal", [S.FILLED, S.REJECTED])
def test_filled_and_rejected_have_no_exits(terminal):
    assert state.TRANSITIONS[terminal] == frozenset()
    assert not any(can_transition(terminal, target) for target in S)


@pytest.mark.parametrize("closed", [S.CANCELLED, S.EXPIRED])
def test_cancelled_and_expired_only_exit_to_filled_on_a_late_fill(closed):
    assert {target for target in S if can_transition(closed, target)} == {S.FILLED}


def test_no_status_returns_to_pending_or_submitted():
    assert not any(can_transition(s, S.PENDING) for s in S)
    assert {s for s in S if can_transition(s, S.SUBMITTED)} == {S.PENDING}


def test_every_status_is_reachable_from_pending():
    reached, frontier = {S.PENDING}, [S.PENDING]
    while frontier:
        for target in state.TRANSITIONS[frontier.pop()]:
            if target not in reached:
                reached.add(target)
                frontier.append(target)
    assert reached == set(S)


def test_stamp_columns():
    assert state.STAMPS == EXPECTED_STAMPS


def test_cancellable_modifiable_and_fillable_sets():
    assert state.CANCELLABLE == EXPECTED_CANCELLABLE
    assert state.MODIFIABLE == EXPECTED_MODIFIABLE
    assert state.FILLABLE == EXPECTED_FILLABLE


def test_the_helper_sets_agree_with_the_table():
    # A cancel request is a legal move from every cancellable status (PENDING cancels at once).
    for status in state.CANCELLABLE - {S.PENDING}:
        assert can_transition(status, S.CANCEL_PENDING), status
    assert can_transition(S.PENDING, S.CANCELLED)
    # A fill that completes the order is legal from every fillable status ...
    for status in state.FILLABLE:
        assert can_transition(status, S.FILLED), status
    # ... and one that does not leaves it where AFTER_PARTIAL_FILL says, legally.
    for status, after in state.AFTER_PARTIAL_FILL.items():
        assert status in state.FILLABLE
        assert can_transition(status, after), status
    # Fillable statuses that are not in AFTER_PARTIAL_FILL stay put on a partial fill.
    assert state.FILLABLE - set(state.AFTER_PARTIAL_FILL) == {
        S.PARTIALLY_FILLED,
        S.CANCEL_PENDING,
        S.CANCELLED,
        S.EXPIRED,
    }


# --- order_transition on a real order ----------------------------------------------------------


def _order_in(status: S, *, complete: bool = False):
    """An order row in ``status`` that satisfies every database constraint of that status.

    ``complete``: fully filled already, so that a move to FILLED passes the database's
    "FILLED means complete" check.
    """
    fields = {"status": status, "quantity": 10, "price": Decimal("100.00")}
    if status != S.PENDING:
        fields["broker_order_id"] = None if status == S.SUBMITTED else f"B-{status}"
    if status == S.FILLED or complete:
        fields.update(filled_quantity=10, average_price=Decimal("100.00"))
    elif status == S.PARTIALLY_FILLED:
        fields.update(filled_quantity=4, average_price=Decimal("100.00"))
    return OrderFactory(**fields)


def _events(order):
    return list(OrderEvent.objects.filter(order=order).order_by("id"))


@pytest.mark.django_db
@pytest.mark.parametrize(("current", "target"), ILLEGAL_PAIRS, ids=[_id(p) for p in ILLEGAL_PAIRS])
def test_illegal_transition_is_refused_and_recorded(current, target):
    order = _order_in(current)
    before = {column: getattr(order, column) for column in TIMESTAMP_COLUMNS}

    applied = order_transition(
        order, target=target, source=EventSource.BROKER, reason="late report", actor="tester"
    )

    assert applied is False
    order.refresh_from_db()
    assert order.status == current
    assert {column: getattr(order, column) for column in TIMESTAMP_COLUMNS} == before
    [event] = _events(order)
    assert event.kind == EventKind.REFUSED
    assert (event.from_status, event.to_status) == (current, target)
    assert event.source == EventSource.BROKER
    assert event.reason == "late report"
    assert event.actor == "tester"


@pytest.mark.django_db
def test_illegal_transition_without_a_reason_names_the_pair():
    order = _order_in(S.FILLED)
    order_transition(order, target=S.OPEN, source=EventSource.BROKER)
    [event] = _events(order)
    assert event.kind == EventKind.REFUSED
    assert event.reason == "illegal transition FILLED -> OPEN"


@pytest.mark.django_db
@pytest.mark.parametrize(("current", "target"), LEGAL_PAIRS, ids=[_id(p) for p in LEGAL_PAIRS])
def test_legal_transition_is_applied_recorded_and_stamped(current, target):
    order = _order_in(current, complete=target == S.FILLED)
    untouched = [c for c in TIMESTAMP_COLUMNS if c != EXPECTED_STAMPS.get(target)]
    before = {column: getattr(order, column) for column in untouched}

    applied = order_transition(
        order,
        target=target,
        source=EventSource.ADMIN,
        reason="because",
        actor="alice",
        details={"k": "v"},
    )

    assert applied is True
    order.refresh_from_db()
    assert order.status == target
    if stamp := EXPECTED_STAMPS.get(target):
        assert getattr(order, stamp) is not None
    assert {column: getattr(order, column) for column in untouched} == before
    [event] = _events(order)
    assert event.kind == EventKind.TRANSITION
    assert (event.from_status, event.to_status) == (current, target)
    assert event.source == EventSource.ADMIN
    assert event.reason == "because"
    assert event.actor == "alice"
    assert event.details == {"k": "v"}
    if target == S.REJECTED:
        assert order.status_message == "because"


@pytest.mark.django_db
@pytest.mark.parametrize("status", list(S))
def test_same_status_is_a_no_op_without_an_event(status):
    order = _order_in(status)
    before = {column: getattr(order, column) for column in TIMESTAMP_COLUMNS}

    assert (
        order_transition(order, target=status, source=EventSource.BROKER, reason="again") is False
    )

    order.refresh_from_db()
    assert order.status == status
    assert {column: getattr(order, column) for column in TIMESTAMP_COLUMNS} == before
    assert _events(order) == []


@pytest.mark.django_db
def test_extra_fields_are_saved_even_when_the_status_does_not_change():
    order = _order_in(S.PARTIALLY_FILLED)
    order.filled_quantity = 6
    order_transition(
        order,
        target=S.PARTIALLY_FILLED,
        source=EventSource.BROKER,
        extra_fields=("filled_quantity",),
    )
    order.refresh_from_db()
    assert order.filled_quantity == 6
    assert _events(order) == []
