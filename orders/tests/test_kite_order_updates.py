"""Kite's order updates as the OMS applies them, against the fake Kite HTTP server.

Statuses Kite does not document raise an alert instead of a guess; a protected MARKET order
(a LIMIT tagged ``mktp`` at Kite) is no contradiction; several fills reported in one update
are booked as Kite's own trades, at their exact prices, never twice; a modification is
applied on the report that confirms it, not on the modify call's 200; one failing order does
not end the poll; the ticker's order updates defer the same one confirm job as postbacks.
"""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from procrastinate.contrib.django.models import ProcrastinateJob

from omsproject.testing.threads import run_together
from orders.brokers import BrokerOrderUpdate
from orders.brokers.kite import ticker_order_update
from orders.enums import EventKind, OrderStatus, OrderType, StrategyMode
from orders.models import Order, Trade
from orders.services import (
    IllegalOrderState,
    order_confirm_at_broker,
    order_modify,
    order_modify_at_broker,
    order_update_notified,
    order_updates_apply,
    orders_poll,
    report_contradictions,
)
from orders.services.pending_modification import MODIFICATION_CONFIRM_GRACE
from orders.tests.conftest import KITE_API_SECRET
from orders.tests.factories import OrderFactory, StrategyFactory
from orders.tests.fake_kite import BROKER_ORDER_ID, TAG, recorded
from positions.models import IssueType, ReconciliationIssue, Severity

pytestmark = pytest.mark.django_db

HISTORY = ("GET", f"/orders/{BROKER_ORDER_ID}")
ORDER_TRADES = ("GET", f"/orders/{BROKER_ORDER_ID}/trades")
MODIFY = ("PUT", f"/orders/regular/{BROKER_ORDER_ID}")
# Three executions of BUY 300: 100 @ 1247.80, 100 @ 1247.85, 100 @ 1247.85 (1247.8333 average).
T1 = ("80000001", 100, "1247.80", "2026-04-01 09:20:01")
T2 = ("80000002", 100, "1247.85", "2026-04-01 09:20:01")
T3 = ("80000003", 100, "1247.85", "2026-04-01 09:20:02")


@pytest.fixture
def order():
    """A LIVE order working at Kite: BUY 10 RELIANCE LIMIT 2450.50."""
    return OrderFactory(
        strategy=StrategyFactory(mode=StrategyMode.LIVE),
        broker_tag=TAG,
        broker_order_id=BROKER_ORDER_ID,
        status=OrderStatus.OPEN,
    )


@pytest.fixture
def big_order():
    """A LIVE order working at Kite: BUY 300 RELIANCE LIMIT 1250."""
    return OrderFactory(
        strategy=StrategyFactory(mode=StrategyMode.LIVE),
        broker_tag=TAG,
        broker_order_id=BROKER_ORDER_ID,
        status=OrderStatus.OPEN,
        quantity=300,
        price=Decimal("1250.00"),
    )


def kite_history(kite_server, broker_order_id: str = BROKER_ORDER_ID, **fields) -> None:
    """Queue Kite's next answer to the order's history: the recorded one, its latest entry
    (the order now) with these fields."""
    numbers = {k: float(v) if isinstance(v, Decimal) else v for k, v in fields.items()}
    kite_server.reply("GET", f"/orders/{broker_order_id}", "order_history", **numbers)


def kite_trades(kite_server, *trades) -> None:
    template = recorded("order_trades")["data"][0]
    data = [
        {
            **template,
            "trade_id": trade_id,
            "quantity": quantity,
            "average_price": float(price),
            "fill_timestamp": at,
            "exchange_timestamp": at,
        }
        for trade_id, quantity, price, at in trades
    ]
    kite_server.reply(*ORDER_TRADES, {"status": "success", "data": data})


def filled(quantity: int, average: str, status: str = "OPEN", total: int = 300) -> dict:
    return {
        "status": status,
        "quantity": total,
        "price": 1250.0,
        "filled_quantity": quantity,
        "pending_quantity": total - quantity,
        "average_price": float(average),
    }


def working(**fields) -> dict:
    """The recorded order (BUY 10 LIMIT 2450.50) working, nothing filled, with ``fields``."""
    return {
        "status": "OPEN",
        "filled_quantity": 0,
        "pending_quantity": 10,
        "average_price": 0,
        **fields,
    }


def trades_of(order) -> list[tuple[str, int, Decimal]]:
    return list(
        Trade.objects.filter(order=order)
        .order_by("id")
        .values_list("trade_id", "quantity", "price")
    )


def kite_id(trade) -> str:
    return f"{BROKER_ORDER_ID}:{trade[0]}"


def confirm_jobs(order) -> int:
    return ProcrastinateJob.objects.filter(
        task_name="orders.confirm", status="todo", args={"order_id": order.pk}
    ).count()


def modify_events(order) -> list:
    return list(order.events.filter(kind=EventKind.MODIFY).order_by("id"))


# --- fills: Kite's own trades of the order --------------------------------------------------------


def test_three_trades_reported_together_are_booked_at_their_exact_prices(big_order, kite_server):
    kite_history(kite_server, **filled(300, "1247.8333", status="COMPLETE"))
    kite_server.reply(*ORDER_TRADES, "reports_order_trades_three_fills")  # newest first

    order_confirm_at_broker(big_order.pk)

    big_order.refresh_from_db()
    assert (big_order.status, big_order.filled_quantity) == (OrderStatus.FILLED, 300)
    # Not 1247.83 (one fill at the rounded average): each trade at its own price.
    assert big_order.average_price == Decimal("1247.833333")
    assert trades_of(big_order) == [
        (kite_id(T1), 100, Decimal("1247.80")),
        (kite_id(T2), 100, Decimal("1247.85")),
        (kite_id(T3), 100, Decimal("1247.85")),
    ]
    assert kite_server.count(*ORDER_TRADES) == 1


def test_the_same_confirmation_again_adds_nothing(big_order, kite_server):
    kite_history(kite_server, **filled(300, "1247.8333", status="COMPLETE"))
    kite_trades(kite_server, T1, T2, T3)
    order_confirm_at_broker(big_order.pk)
    events = big_order.events.count()

    order_confirm_at_broker(big_order.pk)

    assert kite_server.count(*ORDER_TRADES) == 2
    assert len(trades_of(big_order)) == 3
    assert big_order.events.count() == events
    big_order.refresh_from_db()
    assert (big_order.filled_quantity, big_order.average_price) == (300, Decimal("1247.833333"))


def test_a_partial_fill_then_the_rest_books_each_trade_once(big_order, kite_server):
    kite_history(kite_server, **filled(100, "1247.80"))
    kite_history(kite_server, **filled(300, "1247.8333", status="COMPLETE"))
    kite_trades(kite_server, T1)
    kite_trades(kite_server, T1, T2, T3)

    order_confirm_at_broker(big_order.pk)
    big_order.refresh_from_db()
    assert (big_order.status, big_order.filled_quantity) == (OrderStatus.PARTIALLY_FILLED, 100)

    order_confirm_at_broker(big_order.pk)

    big_order.refresh_from_db()
    assert (big_order.status, big_order.filled_quantity) == (OrderStatus.FILLED, 300)
    assert big_order.average_price == Decimal("1247.833333")
    assert [trade_id for trade_id, _, _ in trades_of(big_order)] == [
        kite_id(T1),
        kite_id(T2),
        kite_id(T3),
    ]


def test_fills_booked_from_cumulative_figures_before_are_not_counted_twice(big_order, kite_server):
    # The order book (reconciliation's auto-fix) said 200 filled at 1247.825 first: one fill
    # under the cumulative id. Kite's trades later list all three executions.
    order_updates_apply(
        [
            BrokerOrderUpdate(
                broker_order_id=BROKER_ORDER_ID,
                tag=TAG,
                status=OrderStatus.OPEN,
                filled_quantity=200,
                average_price=Decimal("1247.825"),
            )
        ],
        source="SYSTEM",
    )
    kite_history(kite_server, **filled(300, "1247.8333", status="COMPLETE"))
    kite_trades(kite_server, T1, T2, T3)

    order_confirm_at_broker(big_order.pk)

    big_order.refresh_from_db()
    assert (big_order.status, big_order.filled_quantity) == (OrderStatus.FILLED, 300)
    # The two oldest trades are the 200 booked already: only the third is added.
    assert trades_of(big_order) == [
        (f"{BROKER_ORDER_ID}/200", 200, Decimal("1247.83")),
        (kite_id(T3), 100, Decimal("1247.85")),
    ]


def test_trades_lagging_the_order_status_leave_the_rest_to_the_cumulative_figures(
    big_order, kite_server
):
    kite_history(kite_server, **filled(300, "1247.8333", status="COMPLETE"))
    kite_trades(kite_server, T1, T2)  # the third trade is not listed yet
    kite_trades(kite_server, T1, T2, T3)

    order_confirm_at_broker(big_order.pk)
    order_confirm_at_broker(big_order.pk)

    big_order.refresh_from_db()
    assert (big_order.status, big_order.filled_quantity) == (OrderStatus.FILLED, 300)
    # (1247.8333 x 300 - 249565.00) / 100 = 1247.8499, to the paisa; the third trade, listed
    # later, is that fill already.
    assert trades_of(big_order) == [
        (kite_id(T1), 100, Decimal("1247.80")),
        (kite_id(T2), 100, Decimal("1247.85")),
        (f"{BROKER_ORDER_ID}/300", 100, Decimal("1247.85")),
    ]


@pytest.mark.django_db(transaction=True)
def test_confirmations_and_an_order_book_fix_racing_book_each_execution_once(
    big_order, kite_server
):
    """Two confirm jobs (Kite's trades) and reconciliation's auto-fix (the order book's
    cumulative figures) apply the same 300 at once: whoever comes first, 300 are booked."""
    kite_history(kite_server, **filled(300, "1247.8333", status="COMPLETE"))
    kite_trades(kite_server, T1, T2, T3)
    book = BrokerOrderUpdate(
        broker_order_id=BROKER_ORDER_ID,
        tag=TAG,
        status=OrderStatus.FILLED,
        filled_quantity=300,
        average_price=Decimal("1247.833333"),
    )

    def confirm():
        order_confirm_at_broker(big_order.pk)

    def fix():
        order_updates_apply([book], source="SYSTEM")

    outcomes = run_together([confirm, confirm, fix])

    assert [error for _, error in outcomes] == [None, None, None]
    big_order.refresh_from_db()
    assert (big_order.status, big_order.filled_quantity) == (OrderStatus.FILLED, 300)
    assert sum(quantity for _, quantity, _ in trades_of(big_order)) == 300
    assert not big_order.events.filter(kind=EventKind.REFUSED).exists()


# --- statuses ---------------------------------------------------------------------------------


def test_an_unknown_status_moves_nothing_raises_an_alert_and_asks_again(order, kite_server):
    kite_history(kite_server, status="PARTLY SUSPENDED", filled_quantity=0, average_price=0)

    order_confirm_at_broker(order.pk)

    order.refresh_from_db()
    assert order.status == OrderStatus.OPEN
    issue = ReconciliationIssue.objects.get()
    assert (issue.issue_type, issue.severity) == (
        IssueType.UNKNOWN_BROKER_STATUS,
        Severity.WARNING,
    )
    assert (issue.order_id, issue.strategy_id) == (order.pk, order.strategy_id)
    assert "'PARTLY SUSPENDED'" in issue.description
    assert issue.details["raw_status"] == "PARTLY SUSPENDED"
    assert confirm_jobs(order) == 1

    # Seen again (the confirmation deferred, say, runs): counted, and no job defers itself.
    ProcrastinateJob.objects.filter(task_name="orders.confirm").update(status="succeeded")
    order_confirm_at_broker(order.pk)

    issue.refresh_from_db()
    assert issue.occurrences == 2
    assert confirm_jobs(order) == 0


def test_an_unknown_status_still_applies_credible_fills(order, kite_server):
    kite_history(kite_server, status="PARTLY SUSPENDED", filled_quantity=4, average_price=2450.5)
    kite_trades(kite_server, ("70000001", 4, "2450.50", "2026-04-01 09:15:02"))

    order_confirm_at_broker(order.pk)

    order.refresh_from_db()
    assert order.filled_quantity == 4
    assert order.status == OrderStatus.PARTIALLY_FILLED  # the fill's doing, not the status's
    assert ReconciliationIssue.objects.get().issue_type == IssueType.UNKNOWN_BROKER_STATUS


def test_an_unknown_status_among_several_reports_is_alerted_too(order):
    other = OrderFactory(
        strategy=order.strategy, broker_order_id="260401000999999", status=OrderStatus.OPEN
    )
    reports = [
        BrokerOrderUpdate(
            broker_order_id=o.broker_order_id,
            tag=o.broker_tag,
            status=OrderStatus.SUBMITTED,
            raw_status="SOMETHING NEW",
            status_unknown=True,
        )
        for o in (order, other)
    ]

    order_updates_apply(reports, source="BROKER")

    assert (
        ReconciliationIssue.objects.filter(issue_type=IssueType.UNKNOWN_BROKER_STATUS).count() == 2
    )


def test_a_protected_market_order_reported_as_a_limit_is_no_contradiction(kite_server):
    order = OrderFactory(
        strategy=StrategyFactory(mode=StrategyMode.LIVE),
        broker_tag=TAG,
        broker_order_id=BROKER_ORDER_ID,
        status=OrderStatus.OPEN,
        order_type=OrderType.MARKET,
        price=None,
    )
    # Kite shows it as a LIMIT at its protection price, tagged mktp beside our tag.
    kite_history(
        kite_server,
        status="COMPLETE",
        order_type="LIMIT",
        price=2475.0,
        tag="mktp",
        tags=["mktp", "mktp:2.00", TAG],
        filled_quantity=10,
        pending_quantity=0,
        average_price=2450.47,
    )
    kite_trades(
        kite_server,
        ("70000001", 4, "2450.50", "2026-04-01 09:15:02"),
        ("70000002", 6, "2450.45", "2026-04-01 09:15:03"),
    )

    order_confirm_at_broker(order.pk)

    order.refresh_from_db()
    assert (order.status, order.filled_quantity) == (OrderStatus.FILLED, 10)
    assert order.average_price == Decimal("2450.470000")
    assert not ReconciliationIssue.objects.exists()


def test_a_limit_report_of_a_market_order_has_no_limit_price_to_break(order):
    order.order_type, order.price = OrderType.MARKET, None
    report = BrokerOrderUpdate(
        broker_order_id=BROKER_ORDER_ID,
        tag=TAG,
        status=OrderStatus.FILLED,
        filled_quantity=10,
        average_price=Decimal("2480.00"),  # above the protection price shown: still a market
        order_type="LIMIT",
        price=Decimal("2475.00"),
        market_protected=True,
        symbol="RELIANCE",
        exchange="NSE",
        side="BUY",
    )

    assert report_contradictions(order, report) == []


# --- modifications: applied on Kite's confirming report ------------------------------------------


def pending(order, **terms) -> None:
    order.metadata["pending_modification"] = {
        "quantity": 10,
        "price": "2440.00",
        "trigger_price": None,
        "order_type": "LIMIT",
        **terms,
    }
    order.save(update_fields=["metadata"])


def test_kites_200_to_a_modify_changes_no_term(order, kite_server):
    pending(order)
    kite_server.reply(*MODIFY, "modify_order")

    order_modify_at_broker(order.pk)

    order.refresh_from_db()
    assert (order.price, order.quantity, order.modification_count) == (Decimal("2450.50"), 10, 0)
    assert order.metadata["pending_modification"]["price"] == "2440.00"
    assert order.metadata["pending_modification"]["sent_at"]
    [sent] = modify_events(order)
    assert sent.reason.startswith("modification sent: the broker accepted the request")
    assert sent.details["sent"]["price"] == "2440.00"
    assert kite_server.sent[-1].data["price"] == "2440.00"
    # A second run of the job (a retry) sends nothing again.
    order_modify_at_broker(order.pk)
    assert kite_server.count(*MODIFY) == 1


def test_the_report_with_the_new_terms_applies_the_modification(order, kite_server):
    pending(order)
    kite_server.reply(*MODIFY, "modify_order")
    order_modify_at_broker(order.pk)
    kite_history(kite_server, **working(status="MODIFY PENDING", price=2440.0))  # in flight
    kite_server.reply(*HISTORY, "reports_order_history_modified")  # ... MODIFIED, OPEN 2440

    order_confirm_at_broker(order.pk)
    order.refresh_from_db()
    assert order.price == Decimal("2450.50")
    assert "sent_at" in order.metadata["pending_modification"]

    order_confirm_at_broker(order.pk)

    order.refresh_from_db()
    assert (order.price, order.modification_count) == (Decimal("2440.00"), 1)
    assert "pending_modification" not in order.metadata
    applied = modify_events(order)[-1]
    assert applied.reason == "modification confirmed by the broker (OPEN)"
    assert applied.details["applied"]["price"] == "2440.00"
    assert applied.details["previous"]["price"] == "2450.50"


def test_a_modification_kite_refused_is_dropped_saying_why(order, kite_server):
    pending(order)
    kite_server.reply(*MODIFY, "modify_order")
    order_modify_at_broker(order.pk)
    message = "16346 : Order cannot be modified"
    kite_history(kite_server, **working(status_message=message))

    order_confirm_at_broker(order.pk)

    order.refresh_from_db()
    assert (order.price, order.modification_count) == (Decimal("2450.50"), 0)
    assert "pending_modification" not in order.metadata
    dropped = modify_events(order)[-1]
    assert dropped.reason == f"modification not applied by the broker: {message}"
    assert dropped.details["dropped"]["price"] == "2440.00"
    assert dropped.details["broker"]["price"] == "2450.50"


def test_kites_not_modified_showing_the_refused_terms_drops_the_modification(order, kite_server):
    pending(order)
    kite_server.reply(*MODIFY, "modify_order")
    order_modify_at_broker(order.pk)
    # The history's latest entry: NOT MODIFIED, at the price asked (2440), with Kite's reason.
    kite_server.reply(*HISTORY, "reports_order_history_not_modified")

    order_confirm_at_broker(order.pk)

    order.refresh_from_db()
    assert (order.status, order.price, order.modification_count) == (
        OrderStatus.OPEN,
        Decimal("2450.50"),
        0,
    )
    assert "pending_modification" not in order.metadata
    assert modify_events(order)[-1].reason == (
        "modification refused by the broker: 16346 : Order cannot be modified"
    )


def test_old_terms_without_a_reason_drop_the_modification_only_after_the_grace(order, kite_server):
    pending(order)
    kite_server.reply(*MODIFY, "modify_order")
    order_modify_at_broker(order.pk)
    kite_history(kite_server, **working())

    order_confirm_at_broker(order.pk)  # just sent: Kite may not show it yet
    order.refresh_from_db()
    assert "pending_modification" in order.metadata

    long_ago = timezone.now() - MODIFICATION_CONFIRM_GRACE - timedelta(seconds=1)
    order.metadata["pending_modification"]["sent_at"] = long_ago.isoformat()
    order.save(update_fields=["metadata"])
    order_confirm_at_broker(order.pk)

    order.refresh_from_db()
    assert "pending_modification" not in order.metadata
    assert "still shows the order's old terms" in modify_events(order)[-1].reason


def test_a_final_order_drops_its_sent_modification(order, kite_server):
    pending(order)
    kite_server.reply(*MODIFY, "modify_order")
    order_modify_at_broker(order.pk)
    kite_history(kite_server, **working(status="CANCELLED"))

    order_confirm_at_broker(order.pk)

    order.refresh_from_db()
    assert order.status == OrderStatus.CANCELLED
    assert "pending_modification" not in order.metadata
    assert modify_events(order)[-1].reason == "modification dropped: the order is CANCELLED"


def test_a_raised_quantity_is_applied_before_the_fills_it_allows(order, kite_server):
    pending(order, quantity=15, price="2450.50")
    kite_server.reply(*MODIFY, "modify_order")
    order_modify_at_broker(order.pk)
    kite_history(
        kite_server, status="COMPLETE", quantity=15, filled_quantity=15, average_price=2450.5
    )
    kite_trades(kite_server, ("70000001", 15, "2450.50", "2026-04-01 09:16:00"))

    order_confirm_at_broker(order.pk)

    order.refresh_from_db()
    assert (order.quantity, order.filled_quantity, order.status) == (15, 15, OrderStatus.FILLED)
    assert not order.events.filter(kind=EventKind.REFUSED).exists()


def test_no_new_modification_while_one_waits_for_kites_confirmation(order, kite_server):
    pending(order)
    kite_server.reply(*MODIFY, "modify_order")
    order_modify_at_broker(order.pk)

    with pytest.raises(IllegalOrderState, match="waiting for the broker's confirmation"):
        order_modify(order.pk, actor="alice", price="2430.00")

    order.refresh_from_db()
    assert order.metadata["pending_modification"]["price"] == "2440.00"


# --- the poll ---------------------------------------------------------------------------------


def test_one_failing_order_does_not_end_the_poll(kite_server):
    strategy = StrategyFactory(mode=StrategyMode.LIVE)
    ids = ["260401000000001", "260401000000002", "260401000000003"]
    orders = [
        OrderFactory(strategy=strategy, broker_order_id=broker_id, status=OrderStatus.OPEN)
        for broker_id in ids
    ]
    kite_history(kite_server, ids[0], order_id=ids[0], status="CANCELLED", filled_quantity=0)
    kite_server.reply("GET", f"/orders/{ids[1]}", "error_network", http_status=503)
    kite_history(kite_server, ids[2], order_id=ids[2], status="CANCELLED", filled_quantity=0)

    outcome = orders_poll(stale_after=timedelta(0))

    assert (outcome.asked, outcome.failed) == (3, 1)
    statuses = [Order.objects.get(pk=o.pk).status for o in orders]
    assert statuses == [OrderStatus.CANCELLED, OrderStatus.OPEN, OrderStatus.CANCELLED]
    [note] = orders[1].events.filter(kind=EventKind.NOTE)
    assert note.details["poll_failed"] == "BrokerUnavailable"
    assert "Gateway timed out" in note.reason

    # Failing again at the next poll: counted and logged, not noted again so soon.
    assert orders_poll(stale_after=timedelta(0)) == type(outcome)(asked=1, failed=1)
    assert orders[1].events.filter(kind=EventKind.NOTE).count() == 1


# --- the ticker's order updates: a third notification channel -------------------------------------


def signed_postback(**fields) -> bytes:
    payload = {**recorded("postback_open"), **fields}
    text = f"{payload['order_id']}{payload['order_timestamp']}{KITE_API_SECRET}"
    payload["checksum"] = hashlib.sha256(text.encode()).hexdigest()
    return json.dumps(payload).encode()


def test_the_same_update_by_postback_and_by_ticker_asks_kite_once(client, kite_account, order):
    # KiteTicker hands on_order_update the ``data`` of a ``{"type": "order"}`` message.
    ticker_payload = recorded("reports_ticker_order_update")["data"]
    update = {k: ticker_payload[k] for k in ("status", "filled_quantity", "average_price")}
    response = client.post(
        "/broker/kite/postback/", data=signed_postback(**update), content_type="application/json"
    )
    assert response.status_code == 200

    found = order_update_notified(ticker_order_update(ticker_payload), channel="ticker")

    assert found == order
    assert confirm_jobs(order) == 1
    order.refresh_from_db()
    assert (order.status, order.filled_quantity) == (OrderStatus.OPEN, 0)  # nothing applied


def test_a_ticker_update_alone_defers_the_confirmation(order):
    payload = {**recorded("postback_open"), "status": "COMPLETE"}

    order_update_notified(ticker_order_update(payload), channel="ticker")
    order_update_notified(ticker_order_update(payload), channel="ticker")

    assert confirm_jobs(order) == 1
    assert not Trade.objects.exists()


def test_a_ticker_update_of_an_order_we_do_not_know_defers_nothing(order):
    payload = {**recorded("postback_open"), "order_id": "260401000999999", "tag": "OTHER"}

    assert order_update_notified(ticker_order_update(payload), channel="ticker") is None
    assert not ProcrastinateJob.objects.filter(task_name="orders.confirm").exists()
