"""The event feed through the client: the strategy's own events in id order, the long poll
answering when something commits, a new client resuming from the last id after a restart,
fills with their charges, and the strategy pausing and resuming itself."""

from __future__ import annotations

import threading
import time
from decimal import Decimal

import pytest
from oms_client import Conflict, OMSClient, RiskRefused

from orders.enums import StrategyStatus
from orders.services import strategy_status_set
from orders.tests.api.conftest import make_caller
from positions.services import market_prices_update

pytestmark = pytest.mark.django_db(transaction=True)


def drain(feed) -> list:
    """Everything the feed yields until it is idle."""
    return list(feed)


def test_the_feed_resumes_after_a_restart_from_the_last_id(live_server, oms, caller):
    first = oms.place("RELIANCE", "BUY", 1, order_type="MARKET", client_order_id="feed-1")
    second = oms.place("RELIANCE", "BUY", 2, order_type="MARKET", client_order_id="feed-2")
    everything = drain(oms.events(after=0, wait=1, idle_timeout=1.5))
    assert [e.client_order_id for e in everything] == ["feed-1", "feed-2"]
    assert [(e.kind, e.data["to_status"]) for e in everything] == [("order.status", "PENDING")] * 2
    assert [e.order_id for e in everything] == [first.id, second.id]
    assert [e.id for e in everything] == sorted({e.id for e in everything})

    # The strategy handles one event, then dies; it kept feed.after with its state.
    feed = oms.events(after=0, wait=1)
    handled = next(feed)
    assert feed.after == handled.id == everything[0].id
    third = oms.place("RELIANCE", "BUY", 3, order_type="MARKET", client_order_id="feed-3")

    with OMSClient(live_server.url, caller.plaintext) as restarted:
        resumed = drain(restarted.events(after=feed.after, wait=1, idle_timeout=1.5))

    assert [e.id for e in resumed] == [everything[1].id, resumed[1].id]
    assert [e.client_order_id for e in resumed] == ["feed-2", "feed-3"]
    assert resumed[1].order_id == third.id and resumed[1].id > everything[1].id


def test_the_long_poll_answers_as_soon_as_an_event_commits(oms):
    cursor = oms.poll_events(0).next_after
    placing = threading.Timer(
        0.5, lambda: oms.place("RELIANCE", "BUY", 1, order_type="MARKET", client_order_id="lp")
    )
    started = time.monotonic()
    placing.start()

    page = oms.poll_events(cursor, wait=20)

    waited = time.monotonic() - started
    placing.join()
    assert [e.client_order_id for e in page.events] == ["lp"]
    assert 0.4 < waited < 5, waited  # woken by the commit, not by the end of the wait
    assert page.next_after == page.events[-1].id

    started = time.monotonic()
    quiet = oms.poll_events(page.next_after, wait=1)
    assert quiet.events == [] and quiet.next_after == page.next_after
    assert time.monotonic() - started >= 0.9


def test_a_strategy_hears_only_its_own_events(live_server, oms):
    other = make_caller(name="Someone else")
    with OMSClient(live_server.url, other.plaintext) as theirs:
        theirs.place("RELIANCE", "SELL", 1, order_type="MARKET", client_order_id="theirs")
    oms.place("RELIANCE", "BUY", 1, order_type="MARKET", client_order_id="mine")

    assert {e.client_order_id for e in drain(oms.events(wait=0.5, idle_timeout=1))} == {"mine"}


def test_a_fill_comes_with_its_charges_in_decimal(oms, run_jobs):
    market_prices_update([("SBIN", "NSE", Decimal("812.35"))])
    order = oms.place("SBIN", "BUY", 4, order_type="MARKET", client_order_id="fills")
    run_jobs()

    events = drain(oms.events(wait=0.5, idle_timeout=1))

    [fill] = [e for e in events if e.kind == "order.fill"]
    assert fill.order_id == order.id and fill.client_order_id == "fills"
    assert fill.data["quantity"] == 4 and isinstance(fill.data["price"], Decimal)
    assert isinstance(fill.data["charges"]["total"], Decimal)
    trade = next(oms.trades(order=order.id))
    assert fill.data["charges"]["total"] == trade.total_charges
    statuses = [e.data["to_status"] for e in events if e.kind == "order.status"]
    assert statuses[0] == "PENDING" and statuses[-1] == "FILLED"


def test_a_strategy_pauses_and_resumes_itself(oms):
    paused = oms.pause("news at 14:00")

    assert paused.status == "PAUSED" and oms.strategy().status == "PAUSED"
    with pytest.raises(RiskRefused):
        oms.place("RELIANCE", "BUY", 1, order_type="MARKET")
    assert oms.resume("news digested").status == "ACTIVE"
    assert oms.strategy().status == "ACTIVE"
    changes = [
        e for e in drain(oms.events(wait=0.5, idle_timeout=1)) if e.kind == "strategy.status"
    ]
    assert [(e.data["to_status"], e.data["reason"]) for e in changes] == [
        ("PAUSED", "news at 14:00"),
        ("ACTIVE", "news digested"),
    ]
    with pytest.raises(ValueError, match="reason"):
        oms.pause(" ")


def test_a_strategy_cannot_lift_a_pause_staff_made(oms, caller):
    strategy_status_set(caller.strategy, status=StrategyStatus.PAUSED, actor="risk", reason="x")

    with pytest.raises(Conflict) as refused:
        oms.resume("I know better")

    assert refused.value.status == 409 and "status" in refused.value.fields
    assert oms.strategy().status == "PAUSED"
