"""Kite's reports arrive twice, late and out of order, at any web process: each fill counts once,
and a fill reported after the broker cancelled the order is applied, not refused.

The strategy is LIVE and its orders are already working at Kite (written as the Kite tests
write them, orders/tests/test_postback.py): no Kite session exists in the cluster, so nothing
is ever sent to Kite; the reports come in through the postback endpoint, signed with the
cluster's KITE_API_SECRET, as Kite sends them.
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
from orders.tests.factories import OrderFactory, StrategyFactory
from orders.tests.fake_kite import recorded
from positions.models import Position
from tests.reliability.cluster import KITE_API_SECRET

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


def report(order: Order, status: str, filled: int, average: str = "0") -> bytes:
    """Kite's postback for ``order``, cumulative figures, signed as Kite signs it."""
    payload = {
        **recorded("postback_open"),
        "order_id": order.broker_order_id,
        "tag": order.broker_tag,
        "status": status,
        "filled_quantity": filled,
        "pending_quantity": 0 if status != "OPEN" else 10 - filled,
        "unfilled_quantity": 10 - filled,
        "cancelled_quantity": 10 - filled if status == "CANCELLED" else 0,
        "average_price": Decimal(average),
    }
    text = f"{payload['order_id']}{payload['order_timestamp']}{KITE_API_SECRET}"
    payload["checksum"] = hashlib.sha256(text.encode()).hexdigest()
    return json.dumps(payload, default=float).encode()


def test_duplicate_late_and_out_of_order_reports_count_each_fill_once(cluster, figures):
    strategy = StrategyFactory(name="Live reports", mode=StrategyMode.LIVE)
    duplicated, reversed_, cancelled_late, cancelled_with_more = (
        working_order(strategy, n) for n in range(1, 5)
    )
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

    # 1. A partial fill reported 6 times at once: one fill.
    at_once(report(duplicated, "OPEN", 4, "2450.50"))
    # 2. COMPLETE before the partial that preceded it, each also repeated: one fill of 10.
    post(urls[0], report(reversed_, "COMPLETE", 10, "2450.53"))
    post(urls[1], report(reversed_, "OPEN", 4, "2450.50"))
    at_once(report(reversed_, "COMPLETE", 10, "2450.53"))
    # 3. A partial, the cancel, then the report of a fill made before the cancel took effect
    #    (older, so delivered late): applied; the order stays CANCELLED.
    post(urls[0], report(cancelled_late, "OPEN", 3, "2450.50"))
    post(urls[1], report(cancelled_late, "CANCELLED", 3, "2450.50"))
    at_once(report(cancelled_late, "OPEN", 6, "2450.45"))
    # 4. The cancel reported with more filled than we had heard of: the rest applied.
    post(urls[1], report(cancelled_with_more, "OPEN", 2, "2450.50"))
    at_once(report(cancelled_with_more, "CANCELLED", 5, "2450.44"))

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
        Decimal("2450.530000"),
        [(10, Decimal("2450.5300"))],
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

    trades = Trade.objects.filter(strategy=strategy)
    trade_ids = list(trades.values_list("trade_id", flat=True))
    assert len(trade_ids) == len(set(trade_ids)) == 6
    position = Position.objects.get(strategy=strategy, symbol="RELIANCE", closed_at__isnull=True)
    total = trades.aggregate(total=Sum("quantity"))["total"]
    filled = Order.objects.filter(strategy=strategy).aggregate(total=Sum("filled_quantity"))
    assert position.quantity == total == filled["total"] == 4 + 10 + 6 + 5
    assert Strategy.objects.get(pk=strategy.pk).total_trades == 6
    # No fill was refused; the one stale status (OPEN after CANCELLED) was recorded, not applied.
    refused = OrderEvent.objects.filter(order__strategy=strategy, kind=EventKind.REFUSED)
    assert not refused.filter(details__has_key="trade_id").exists()
    assert set(refused.values_list("order_id", "to_status")) <= {
        (cancelled_late.pk, OrderStatus.OPEN)
    }

    figures(
        f"{len(sent)} signed postbacks (each report {COPIES}x to each of {len(urls)} web "
        f"processes at once, out of order, after the cancel): all 200, {len(trade_ids)} fills "
        f"recorded once each, position {position.quantity} = fills {total}, "
        f"{refused.count()} stale status reports (OPEN after CANCELLED) refused and recorded"
    )
