"""Kite's reports arrive twice, late and out of order, at any web process: each fill counts once,
and a fill reported after the broker cancelled the order is applied, not refused.

The strategy is LIVE and its orders are already working at Kite (written as the Kite tests
write them, orders/tests/test_postback.py). A postback is only a notification: the web
process checks its checksum and body and defers a confirm job; a worker asks Kite for the
order's history and applies Kite's answer. Kite is the cluster's fake Kite (``cluster.kite``):
before each round of reports the test sets each order's history to the broker's truth at
that moment, sends the reports (signed with the account's API secret, as Kite signs
them), and waits for the workers to confirm them all.
"""

from __future__ import annotations

import hashlib
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
import requests
from django.db.models import Sum

from orders.enums import EventKind, OrderStatus, StrategyMode
from orders.models import Order, OrderEvent, Strategy, Trade
from orders.tests.conftest import kite_account_create
from orders.tests.factories import OrderFactory, StrategyFactory
from orders.tests.fake_kite import recorded
from positions.models import Position, ReconciliationIssue
from tests.reliability.cluster import KITE_ACCESS_TOKEN, KITE_API_KEY, KITE_API_SECRET

pytestmark = [pytest.mark.reliability, pytest.mark.django_db(transaction=True)]

COPIES = 3  # of one report, to each web process, all at once


def working_order(strategy, n: int) -> Order:
    """BUY 10 RELIANCE LIMIT 2450.50, OPEN at Kite."""
    return OrderFactory(
        strategy=strategy,
        broker_tag=f"OMSREL{n:014d}",
        broker_order_id=f"2604010009{n:05d}",
        status=OrderStatus.OPEN,
    )


def cumulative(status: str, filled: int, average: str) -> dict:
    """The order's cumulative figures as Kite reports them (a postback, a history entry)."""
    return {
        "status": status,
        "filled_quantity": filled,
        "pending_quantity": 10 - filled if status == "OPEN" else 0,
        "cancelled_quantity": 10 - filled if status == "CANCELLED" else 0,
        "average_price": Decimal(average),
    }


def report(order: Order, status: str, filled: int, average: str = "0") -> bytes:
    """Kite's postback for ``order``, signed as Kite signs it (order id and timestamp only)."""
    payload = {
        **recorded("postback_open"),
        "order_id": order.broker_order_id,
        "tag": order.broker_tag,
        "unfilled_quantity": 10 - filled,
        **cumulative(status, filled, average),
    }
    text = f"{payload['order_id']}{payload['order_timestamp']}{KITE_API_SECRET}"
    payload["checksum"] = hashlib.sha256(text.encode()).hexdigest()
    return json.dumps(payload, default=float).encode()


def history_path(order: Order) -> str:
    return f"/orders/{order.broker_order_id}"


def kite_says(kite, order: Order, status: str, filled: int, average: str = "0") -> None:
    """From now on Kite's history of ``order`` (the recorded one, as this order) ends with
    these figures: the broker's truth the next confirmations read."""
    history = recorded("order_history")
    for entry in history["data"]:
        entry.update(order_id=order.broker_order_id, tag=order.broker_tag, tags=[order.broker_tag])
    latest = cumulative(status, filled, average)
    latest["average_price"] = float(latest["average_price"])  # a JSON number, as Kite sends it
    history["data"][-1].update(latest)
    kite.reply("GET", history_path(order), history, replace=True)
    # Kite's trade book lags the order here (no trade listed yet): the confirmation books the
    # cumulative figures' increments, as it does when the trades cannot be read.
    trades = {"status": "success", "data": []}
    kite.reply("GET", f"{history_path(order)}/trades", trades, replace=True)


def test_duplicate_late_and_out_of_order_reports_count_each_fill_once(cluster, figures):
    kite_account_create(
        "AB1234",  # the user of the recorded postbacks
        api_key=KITE_API_KEY,
        api_secret=KITE_API_SECRET,
        access_token=KITE_ACCESS_TOKEN,
    )
    strategy = StrategyFactory(name="Live reports", mode=StrategyMode.LIVE)
    duplicated, reversed_, cancelled_late, cancelled_with_more, forged = (
        working_order(strategy, n) for n in range(1, 6)
    )
    kite = cluster.kite
    urls = cluster.urls
    sent = []

    def post(url: str, body: bytes) -> int:
        response = requests.post(
            f"{url}/broker/kite/postback/",
            data=body,
            headers={"Content-Type": "application/json"},
            timeout=30,
        )
        sent.append(response.status_code)
        assert response.status_code == 200, response.text
        return response.status_code

    def at_once(body: bytes) -> None:
        """The same report ``COPIES`` times to every web process, concurrently."""
        targets = [url for url in urls for _ in range(COPIES)]
        start = threading.Barrier(len(targets), timeout=30)

        def send(url):
            start.wait()
            return post(url, body)

        with ThreadPoolExecutor(len(targets)) as pool:
            list(pool.map(send, targets))

    def confirmed() -> None:
        """Every confirm job the reports deferred has asked Kite and applied its answer."""
        cluster.drain(timeout=60, queues=("orders",))

    # Round 1: each order's first reports, Kite's history saying what they say.
    # 1. A partial fill reported 6 times at once: one fill.
    kite_says(kite, duplicated, "OPEN", 4, "2450.50")
    at_once(report(duplicated, "OPEN", 4, "2450.50"))
    # 2. COMPLETE before the partial that preceded it, each also repeated: one fill of 10
    #    (Kite says COMPLETE whichever report made us ask).
    kite_says(kite, reversed_, "COMPLETE", 10, "2450.47")
    post(urls[0], report(reversed_, "COMPLETE", 10, "2450.47"))
    post(urls[1], report(reversed_, "OPEN", 4, "2450.50"))
    at_once(report(reversed_, "COMPLETE", 10, "2450.47"))
    # 3 and 4 begin with a partial fill.
    kite_says(kite, cancelled_late, "OPEN", 3, "2450.50")
    post(urls[0], report(cancelled_late, "OPEN", 3, "2450.50"))
    kite_says(kite, cancelled_with_more, "OPEN", 2, "2450.50")
    post(urls[1], report(cancelled_with_more, "OPEN", 2, "2450.50"))
    # 5. The review's forged postback: a valid checksum (it signs only the order id and the
    #    timestamp) on COMPLETE 10 @ 5000 for a BUY LIMIT 2450.50; Kite says OPEN, unfilled.
    kite_says(kite, forged, "OPEN", 0)
    at_once(report(forged, "COMPLETE", 10, "5000"))
    confirmed()

    # Round 2: the broker cancels 3 and 4.
    # 3. The cancel, with the 3 we know of.
    kite_says(kite, cancelled_late, "CANCELLED", 3, "2450.50")
    post(urls[1], report(cancelled_late, "CANCELLED", 3, "2450.50"))
    # 4. The cancel reported with more filled than we had heard of: the rest applied.
    kite_says(kite, cancelled_with_more, "CANCELLED", 5, "2450.44")
    at_once(report(cancelled_with_more, "CANCELLED", 5, "2450.44"))
    confirmed()

    # Round 3: 3. the report of fills made before the cancel took effect, delivered late (an
    # OPEN report after the CANCELLED one); Kite's history now says CANCELLED with 6 filled.
    kite_says(kite, cancelled_late, "CANCELLED", 6, "2450.45")
    at_once(report(cancelled_late, "OPEN", 6, "2450.45"))
    confirmed()

    def state(order):
        order = Order.objects.get(pk=order.pk)
        fills = list(order.trades.order_by("id").values_list("quantity", "price"))
        return order.status, order.filled_quantity, order.average_price, fills

    assert state(duplicated) == (
        OrderStatus.PARTIALLY_FILLED,
        4,
        Decimal("2450.500000"),
        [(4, Decimal("2450.5000"))],
    )
    assert state(reversed_) == (
        OrderStatus.FILLED,
        10,
        Decimal("2450.470000"),
        [(10, Decimal("2450.4700"))],
    )
    # 6 @ 2450.45 in all, of which 3 @ 2450.50 came first: the other 3 @ 2450.40.
    assert state(cancelled_late) == (
        OrderStatus.CANCELLED,
        6,
        Decimal("2450.450000"),
        [(3, Decimal("2450.5000")), (3, Decimal("2450.4000"))],
    )
    # 5 @ 2450.44 in all, of which 2 @ 2450.50 came first: the other 3 @ 2450.40.
    assert state(cancelled_with_more) == (
        OrderStatus.CANCELLED,
        5,
        Decimal("2450.440000"),
        [(2, Decimal("2450.5000")), (3, Decimal("2450.4000"))],
    )
    # The forged figures were never applied: Kite's answer stands, and it is consistent.
    assert state(forged) == (OrderStatus.OPEN, 0, None, [])

    trades = Trade.objects.filter(strategy=strategy)
    trade_ids = list(trades.values_list("trade_id", flat=True))
    assert len(trade_ids) == len(set(trade_ids)) == 6
    position = Position.objects.get(strategy=strategy, symbol="RELIANCE", closed_at__isnull=True)
    total = trades.aggregate(total=Sum("quantity"))["total"]
    filled = Order.objects.filter(strategy=strategy).aggregate(total=Sum("filled_quantity"))
    assert position.quantity == total == filled["total"] == 4 + 10 + 6 + 5
    assert Strategy.objects.get(pk=strategy.pk).total_trades == 6
    # Nothing refused (Kite's answers never went back in time, nor contradicted an order), no
    # issue raised.
    assert not OrderEvent.objects.filter(order__strategy=strategy, kind=EventKind.REFUSED).exists()
    assert not ReconciliationIssue.objects.exists()

    # Every order was confirmed with Kite, with the cluster's session, at most once a report.
    orders = (duplicated, reversed_, cancelled_late, cancelled_with_more, forged)
    asked = {order.pk: kite.count("GET", history_path(order)) for order in orders}
    assert all(asked.values()), asked
    assert sum(asked.values()) <= len(sent)
    assert {r.headers["Authorization"] for r in kite.sent} == {
        f"token {KITE_API_KEY}:{KITE_ACCESS_TOKEN}"
    }

    figures(
        f"{len(sent)} signed postbacks (each report {COPIES}x to each of {len(urls)} web "
        f"processes at once, out of order, after the cancel, one forged): all 200, "
        f"{sum(asked.values())} confirmations from Kite, {len(trade_ids)} fills recorded once "
        f"each, position {position.quantity} = fills {total}, the forged COMPLETE @ 5000 "
        "applied nothing"
    )
