"""400 buys placed at once on one instrument, filled by the paper exchange in parts, as prices
come in through the API: once the workers are done, the book adds up exactly."""

from __future__ import annotations

import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from decimal import ROUND_HALF_UP, Decimal

import pytest
from django.db.models import Sum

from orders.enums import EventKind, OrderStatus
from orders.models import Order, OrderEvent, PaperTrade, Strategy, Trade
from orders.tests.api.conftest import make_caller, order_body
from positions.models import Position, StrategyPrice
from tests.reliability.conftest import client_session, percentile, wait_until

pytestmark = [pytest.mark.reliability, pytest.mark.django_db(transaction=True)]

THREADS = 20
ORDERS = 400
SYMBOL = "SBIN"  # tick 0.05 in the sample instrument master
LIMIT = "812.35"
CROSSING, AWAY = "812.30", "812.60"  # a last price that fills the buys, and one that does not


def test_four_hundred_concurrent_buys_add_up_exactly(cluster, figures):
    # Three fills an order at most (fill_parts): more fills than orders, racing on one position.
    caller = make_caller(name="Fills", config={"paper": {"fill_parts": 3}})
    urls = cluster.urls
    feeder = client_session(caller.plaintext)

    def feed(price: str) -> None:
        response = feeder.post(
            f"{urls[0]}/api/v1/prices/",
            json={"prices": [{"symbol": SYMBOL, "exchange": "NSE", "price": price}]},
            timeout=30,
        )
        assert response.status_code == 202, response.text

    feed(AWAY)
    wait_until(
        lambda: StrategyPrice.objects.filter(
            strategy=caller.strategy, symbol=SYMBOL, last_price=Decimal(AWAY)
        ).exists(),
        timeout=30,
        message="the first price applied by a worker",
    )

    placed = threading.Event()
    ticks = Counter()

    def feed_while_placing() -> None:
        # Orders placed while the last price crosses fill at once; the others on a later tick.
        while not placed.wait(0.25):
            price = CROSSING if ticks["all"] % 2 else AWAY
            feed(price)
            ticks["all"] += 1

    def place(thread: int):
        url = urls[thread % len(urls)]
        answers = []
        with client_session(caller.plaintext) as session:
            for n in range(ORDERS // THREADS):
                body = order_body(
                    client_order_id=f"fill-{thread}-{n}",
                    symbol=SYMBOL,
                    quantity=1 + (thread + n) % 5,
                    price=LIMIT,
                )
                began = time.monotonic()
                response = session.post(f"{url}/api/v1/orders/", json=body, timeout=60)
                answers.append((response.status_code, time.monotonic() - began))
        return answers

    cpu_before = cluster.cpu_seconds()
    began = time.monotonic()
    feeding = threading.Thread(target=feed_while_placing, daemon=True)
    feeding.start()
    with ThreadPoolExecutor(THREADS) as pool:
        answers = [answer for batch in pool.map(place, range(THREADS)) for answer in batch]
    placing_seconds = time.monotonic() - began
    placed.set()
    feeding.join(timeout=30)

    statuses = Counter(status for status, _ in answers)
    assert statuses == {201: ORDERS}, statuses

    # A tick matches the paper orders recorded before it; one recorded while it ran waits for
    # the next tick, as on an exchange. Tick until every order is filled (bounded).
    final_ticks = 0
    drain_seconds = 0.0
    while final_ticks < 5:
        feed(CROSSING)
        final_ticks += 1
        drain_seconds += cluster.drain(timeout=90)
        if (
            not Order.objects.filter(strategy=caller.strategy)
            .exclude(status=OrderStatus.FILLED)
            .exists()
        ):
            break
    total_seconds = time.monotonic() - began
    cpu = {kind: used - cpu_before[kind] for kind, used in cluster.cpu_seconds().items()}

    orders = Order.objects.filter(strategy=caller.strategy)
    assert orders.count() == ORDERS
    not_filled = Counter(orders.exclude(status=OrderStatus.FILLED).values_list("status", flat=True))
    assert not not_filled, f"orders not FILLED: {dict(not_filled)}"

    trades = Trade.objects.filter(strategy=caller.strategy)
    trade_quantity = trades.aggregate(total=Sum("quantity"))["total"]
    filled_quantity = orders.aggregate(total=Sum("filled_quantity"))["total"]
    ordered_quantity = orders.aggregate(total=Sum("quantity"))["total"]
    position = Position.objects.get(strategy=caller.strategy, symbol=SYMBOL, closed_at__isnull=True)
    assert position.quantity == trade_quantity == filled_quantity == ordered_quantity

    trade_ids = list(trades.values_list("trade_id", flat=True))
    assert len(trade_ids) == len(set(trade_ids))
    # Every fill of the paper exchange was applied once, and nothing else was.
    paper_ids = set(
        PaperTrade.objects.filter(paper_order__strategy=caller.strategy).values_list(
            "trade_id", flat=True
        )
    )
    assert set(trade_ids) == paper_ids
    for order in orders.prefetch_related("trades"):
        assert sum(t.quantity for t in order.trades.all()) == order.filled_quantity

    value = sum(t.quantity * t.price for t in trades)
    assert position.average_price == (value / trade_quantity).quantize(
        Decimal("0.000001"), rounding=ROUND_HALF_UP
    )
    assert Strategy.objects.get(pk=caller.strategy.pk).total_trades == len(trade_ids)
    refused = OrderEvent.objects.filter(order__strategy=caller.strategy, kind=EventKind.REFUSED)
    assert not refused.exists(), list(refused.values_list("reason", flat=True)[:5])

    latencies = [seconds * 1000 for _, seconds in answers]
    figures(
        f"{ORDERS} buys from {THREADS} threads over {len(urls)} web processes in "
        f"{placing_seconds:.1f}s ({ORDERS / placing_seconds:.0f} placements/s, p50 "
        f"{percentile(latencies, 50):.0f} ms, p99 {percentile(latencies, 99):.0f} ms), "
        f"{ticks['all']} price ticks meanwhile"
    )
    figures(
        f"{len(trade_ids)} fills applied once each; position {position.quantity} = "
        f"trades {trade_quantity} = filled {filled_quantity}; all {ORDERS} FILLED "
        f"{total_seconds:.1f}s after the first order ({final_ticks} closing tick(s), "
        f"{drain_seconds:.1f}s draining)"
    )
    figures(
        f"CPU per order: web {cpu['web'] * 1000 / ORDERS:.1f} ms (placement, price feed), "
        f"workers {cpu['worker'] * 1000 / ORDERS:.1f} ms (submit, ticks, "
        f"{len(trade_ids) / ORDERS:.1f} fills)"
    )
