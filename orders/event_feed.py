"""Reading a strategy's event feed: sequence, read after a cursor, and wait for news.

The cursor is ``seq`` (orders.models_events): ``events_sequence()`` numbers what has committed
before every read, so a page after cursor N holds every event numbered above N, in order, and
no event numbered N or less can appear later.

Waiting (the long poll) listens on channel ``oms_events`` on a connection of its own, opened
from the DATABASES settings (not taken from the pool) and closed after: a waiting request
holds one thread and that connection, no pooled connection, and at most ``MAX_WAIT`` seconds
(or ``OMS_EVENTS_MAX_WAIT``, when lower: e.g. under a proxy's idle timeout).
``OMS_EVENTS_MAX_WAITERS`` waiters per process at once; one more is refused
(``TooManyWaiters``) rather than queued. The wait sleeps in the socket (psycopg's
``Connection.notifies``), waking on a notification for its strategy. The one case it checks
again on a timer (every ``PENDING_RECHECK`` s) is an event of its strategy that has committed
but cannot be numbered yet, because an older transaction that writes is still running.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from django.conf import settings
from django.db import connection, connections

from orders.models import StrategyEvent
from orders.models_events import NOTIFY_CHANNEL

MAX_WAIT = 30  # seconds: the longest a request may wait (wait=0..30)
MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 100
PENDING_RECHECK = 0.02  # seconds: while a committed event of ours awaits its number
WAITERS_RETRY_AFTER = 1  # seconds: told to a waiter refused for the cap


class TooManyWaiters(Exception):
    """The process already holds OMS_EVENTS_MAX_WAITERS long polls."""

    retry_after = WAITERS_RETRY_AFTER


def events_sequence() -> int:
    """Number the events committed so far (in commit order); the highest number given.

    Run outside any transaction: inside one, the caller's own uncommitted events, and those of
    every transaction that began after it, would wait (and its lock would be held until the
    caller commits).
    """
    with connection.cursor() as cursor:
        cursor.execute("SELECT oms_events_sequence()")
        return cursor.fetchone()[0]


def events_after(*, strategy_id: int, after: int, limit: int) -> list[StrategyEvent]:
    """The strategy's numbered events after cursor ``after``, oldest first, at most ``limit``."""
    return list(
        StrategyEvent.objects.filter(strategy_id=strategy_id, seq__gt=after).order_by("seq")[:limit]
    )


def events_page(*, strategy_id: int, after: int, limit: int) -> list[StrategyEvent]:
    """Sequence, then read: everything committed before this call is in the page (or after)."""
    events_sequence()
    return events_after(strategy_id=strategy_id, after=after, limit=limit)


def events_wait(*, strategy_id: int, after: int, limit: int, wait: float) -> list[StrategyEvent]:
    """The page after ``after``; when empty, wait up to ``wait`` seconds for one.

    Returns as soon as an event of the strategy commits and is numbered (empty when the wait
    ends first). Raises TooManyWaiters when the process holds its cap of waiters.
    """
    events = events_page(strategy_id=strategy_id, after=after, limit=limit)
    if events or wait <= 0:
        return events
    deadline = time.monotonic() + min(wait, MAX_WAIT, settings.OMS_EVENTS_MAX_WAIT)
    with _waiter_slot(), _listener() as listener:
        # Listening from here on: an event committed since the first read is found by the
        # next, and one committed later notifies.
        while True:
            events = events_page(strategy_id=strategy_id, after=after, limit=limit)
            unnumbered = not events and _ours_unnumbered(strategy_id)
            _pooled_connection_release()  # no pooled connection held while sleeping
            remaining = deadline - time.monotonic()
            if events or remaining <= 0:
                return events
            # Ours committed, but an older writer still runs: its number comes soon.
            _notified(
                listener, strategy_id, min(remaining, PENDING_RECHECK) if unnumbered else remaining
            )


def _pooled_connection_release() -> None:
    if not connection.in_atomic_block:
        connection.close()


def _ours_unnumbered(strategy_id: int) -> bool:
    return StrategyEvent.objects.filter(strategy_id=strategy_id, seq__isnull=True).exists()


def _notified(listener: psycopg.Connection, strategy_id: int, timeout: float) -> bool:
    """Whether a notification for the strategy arrives within ``timeout`` seconds."""
    wanted = str(strategy_id)
    deadline = time.monotonic() + timeout
    while (remaining := deadline - time.monotonic()) > 0:
        arrived = [note.payload for note in listener.notifies(timeout=remaining, stop_after=1)]
        if wanted in arrived:
            return True
        if not arrived:
            return False
    return False


@contextmanager
def _listener() -> Iterator[psycopg.Connection]:
    """A connection of its own, listening on ``oms_events``; closed on the way out."""
    params = connections["default"].get_connection_params()
    for option in ("cursor_factory", "context", "prepare_threshold"):
        params.pop(option, None)
    params["application_name"] = f"{params.get('application_name') or 'oms'}-events"
    listener = psycopg.connect(**params, autocommit=True, connect_timeout=5)
    try:
        listener.execute(f"LISTEN {NOTIFY_CHANNEL}")
        yield listener
    finally:
        listener.close()


_waiters_lock = threading.Lock()
_waiters = 0


@contextmanager
def _waiter_slot() -> Iterator[None]:
    global _waiters
    with _waiters_lock:
        if _waiters >= settings.OMS_EVENTS_MAX_WAITERS:
            raise TooManyWaiters
        _waiters += 1
    try:
        yield
    finally:
        with _waiters_lock:
            _waiters -= 1


def waiters_now() -> int:
    """How many long polls this process holds (for health)."""
    return _waiters
