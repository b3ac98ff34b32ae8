"""The feed's cursor: numbered in commit order, so a reader never skips an event.

Real threads, real transactions (omsproject.testing.threads.run_together): ids are drawn at
insert time, so a transaction that inserts first and commits last has the lower id. A cursor
on ids would skip its event; the cursor on seq (oms_events_sequence) does not.
"""

from __future__ import annotations

import random
import threading
import time

import pytest
from django.db import transaction

from omsproject.testing.threads import run_together
from orders.enums import EventKind, OrderStatus
from orders.event_feed import events_page
from orders.models import StrategyEvent
from orders.tests.factories import OrderEventFactory, OrderFactory, StrategyFactory

pytestmark = pytest.mark.django_db(transaction=True)
WAIT = 20  # seconds: a step that takes longer means a thread is stuck


def status_event(order) -> None:
    """One order.status event for the order's strategy (the database's trigger writes it)."""
    OrderEventFactory(
        order=order,
        kind=EventKind.TRANSITION,
        from_status=OrderStatus.SUBMITTED,
        to_status=OrderStatus.OPEN,
    )


def read_until(strategy_id: int, after: int, count: int) -> list[StrategyEvent]:
    """Follow the cursor from ``after`` until ``count`` events came (or WAIT ends)."""
    seen: list[StrategyEvent] = []
    deadline = time.monotonic() + WAIT
    while len(seen) < count and time.monotonic() < deadline:
        page = events_page(strategy_id=strategy_id, after=after, limit=100)
        if page:
            seen += page
            after = page[-1].seq
        else:
            time.sleep(0.01)
    return seen


def test_a_reader_past_a_fast_commit_still_gets_the_slow_transactions_event_later():
    strategy = StrategyFactory()
    slow_order = OrderFactory(strategy=strategy, status=OrderStatus.SUBMITTED)
    fast_order = OrderFactory(strategy=strategy, status=OrderStatus.SUBMITTED)
    slow_inserted, fast_committed, reader_looked = (threading.Event() for _ in range(3))

    def slow():
        with transaction.atomic():
            status_event(slow_order)  # id drawn now: the lower one
            slow_inserted.set()
            assert reader_looked.wait(WAIT)  # stays open while the fast one commits

    def fast():
        assert slow_inserted.wait(WAIT)
        with transaction.atomic():
            status_event(fast_order)
        fast_committed.set()

    def reader():
        assert fast_committed.wait(WAIT)
        fast_visible = StrategyEvent.objects.filter(order=fast_order).exists()
        first = events_page(strategy_id=strategy.pk, after=0, limit=100)
        reader_looked.set()
        cursor = first[-1].seq if first else 0
        return fast_visible, first, read_until(strategy.pk, cursor, 2 - len(first))

    outcomes = run_together([slow, fast, reader])

    assert [error for _, error in outcomes] == [None, None, None]
    fast_visible, first, later = outcomes[2][0]
    slow_event = StrategyEvent.objects.get(order=slow_order)
    fast_event = StrategyEvent.objects.get(order=fast_order)
    # The trap: the fast event was committed and readable, with the higher id; a reader
    # keeping "the last id seen" would have moved past the slow event's id for good.
    assert fast_visible
    assert slow_event.pk < fast_event.pk
    # The cursor waits for the older transaction: nothing numbered while it is open ...
    assert first == []
    # ... then both, in insert order, each once.
    assert [event.pk for event in first + later] == [slow_event.pk, fast_event.pk]
    assert slow_event.seq < fast_event.seq


def test_readers_following_the_cursor_under_concurrent_writers_get_every_event_once():
    strategy = StrategyFactory()
    writers, per_writer = 4, 15
    orders = [OrderFactory(strategy=strategy, status=OrderStatus.SUBMITTED) for _ in range(writers)]
    done = threading.Semaphore(0)

    def writer(order, seed):
        pace = random.Random(seed)
        for _ in range(per_writer):
            with transaction.atomic():
                status_event(order)
                time.sleep(pace.uniform(0, 0.01))  # commits land out of insert order
            time.sleep(pace.uniform(0, 0.003))
        done.release()

    def reader():
        return read_until(strategy.pk, 0, writers * per_writer)

    work = [lambda order=order, seed=seed: writer(order, seed) for seed, order in enumerate(orders)]
    outcomes = run_together([*work, reader, reader])

    assert [error for _, error in outcomes] == [None] * (writers + 2)
    written = list(StrategyEvent.objects.filter(strategy=strategy).order_by("seq"))
    assert len(written) == writers * per_writer
    for seen, _ in outcomes[writers:]:
        seqs = [event.seq for event in seen]
        assert seqs == sorted(set(seqs)), "out of order or repeated"
        assert [event.pk for event in seen] == [event.pk for event in written], "skipped"
