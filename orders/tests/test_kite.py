"""The Kite Connect adapter against recorded Kite replies (no network), and the rate bucket.

The official client runs for real; only its HTTP session is replaced (fake_kite), so these
tests see exactly what would go over the wire and how Kite's replies are read.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import requests
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from orders.brokers import (
    BrokerPosition,
    BrokerRateLimited,
    BrokerRejected,
    BrokerTimeout,
    BrokerUnavailable,
    broker_for,
)
from orders.brokers.kite import (
    KITE_STATUSES,
    KiteBroker,
    kite_decimal,
    oms_status,
    order_rate_key,
    order_update,
    ticker_order_update,
)
from orders.enums import OrderStatus, OrderType, StrategyMode
from orders.models import Order, Trade
from orders.services import order_resolve_unknown, order_submit
from orders.tests.conftest import (
    KITE_ACCESS_TOKEN,
    KITE_API_SECRET,
    KITE_USER_ID,
    kite_account_create,
)
from orders.tests.factories import OrderFactory, StrategyFactory
from orders.tests.fake_kite import BROKER_ORDER_ID, TAG, FakeKiteSession, FakeResponse, recorded
from risk.models import RateBucket, RateWindow
from risk.ratelimit import take_token

IST = ZoneInfo("Asia/Kolkata")
PLACE = ("POST", "/orders/regular")
ORDER_BOOK = ("GET", "/orders")
HISTORY = ("GET", f"/orders/{BROKER_ORDER_ID}")
ORDER_TRADES = ("GET", f"/orders/{BROKER_ORDER_ID}/trades")


@pytest.fixture
def session() -> FakeKiteSession:
    return FakeKiteSession()


@pytest.fixture
def kite(session) -> KiteBroker:
    return KiteBroker(
        api_key="kite-key", access_token="kite-token", user_id=KITE_USER_ID, session=session
    )


@pytest.fixture
def live_order(db):
    return OrderFactory(strategy=StrategyFactory(mode=StrategyMode.LIVE), broker_tag=TAG)


def drain_order_bucket() -> None:
    """Fill the Kite user's order window with 10 requests sent a tenth of a second from now:
    the next slot is free 1.1 s from now."""
    soon = timezone.now() + timedelta(milliseconds=100)
    RateWindow.objects.create(
        key=order_rate_key(KITE_USER_ID),
        sent_at=[soon] * 10,
        last_take_granted=True,
        updated_at=soon,
    )


# --- place ------------------------------------------------------------------------------------


def test_place_sends_a_regular_order_with_our_tag(kite, session, live_order):
    session.reply(*PLACE, "place_order")

    ack = kite.place(live_order)

    assert ack.broker_order_id == BROKER_ORDER_ID
    assert ack.updates == ()
    [sent] = session.sent
    assert (sent.method, sent.path) == PLACE
    assert sent.data == {
        "variety": "regular",
        "exchange": "NSE",
        "tradingsymbol": "RELIANCE",
        "transaction_type": "BUY",
        "quantity": 10,
        "product": "MIS",
        "order_type": "LIMIT",
        "price": "2450.50",
        "validity": "DAY",
        "tag": TAG,
    }
    assert sent.headers["Authorization"] == "token kite-key:kite-token"
    assert sent.headers["X-Kite-Version"] == "3"


def test_place_market_order_asks_for_automatic_market_protection(kite, session, live_order):
    live_order.order_type = OrderType.MARKET
    live_order.price = None
    session.reply(*PLACE, "place_order")

    kite.place(live_order)

    data = session.sent[0].data
    assert data["order_type"] == "MARKET"
    assert data["market_protection"] == -1
    assert "price" not in data
    assert "trigger_price" not in data


def test_place_stop_loss_market_sends_trigger_and_market_protection(kite, session, live_order):
    live_order.order_type = OrderType.SL_M
    live_order.price = None
    live_order.trigger_price = Decimal("2400.0000")
    session.reply(*PLACE, "place_order")

    kite.place(live_order)

    data = session.sent[0].data
    assert data["trigger_price"] == "2400.00"
    assert data["market_protection"] == -1
    assert "price" not in data


def test_place_limit_order_sends_no_market_protection(kite, session, live_order):
    session.reply(*PLACE, "place_order")

    kite.place(live_order)

    assert "market_protection" not in session.sent[0].data


@pytest.mark.parametrize(
    ("reply", "status_code", "message"),
    [
        ("error_input", 400, "Markets are closed right now."),
        ("error_order", 500, "Your order price is lower than the current lower circuit limit"),
        # An error type the client does not know (it raises GeneralException): a 4xx refusal.
        ("error_margin", 400, "Insufficient funds."),
    ],
)
def test_place_refused_by_kite_is_a_rejection_with_its_message(
    kite, session, live_order, reply, status_code, message
):
    session.reply(*PLACE, reply, status_code=status_code)

    with pytest.raises(BrokerRejected, match=message):
        kite.place(live_order)


def test_place_with_an_expired_session_is_unavailable(kite, session, live_order):
    session.reply(*PLACE, "error_token", status_code=403)

    with pytest.raises(BrokerUnavailable, match="session expired: log in again"):
        kite.place(live_order)


@pytest.mark.parametrize(
    "error",
    [
        requests.ReadTimeout("read timed out"),
        requests.ConnectionError("connection reset by peer"),
    ],
)
def test_place_without_an_answer_is_a_timeout(kite, session, live_order, error):
    session.raise_(*PLACE, error)

    with pytest.raises(BrokerTimeout):
        kite.place(live_order)


def test_place_when_kites_backend_does_not_answer_is_a_timeout(kite, session, live_order):
    session.reply(*PLACE, "error_network", status_code=503)

    with pytest.raises(BrokerTimeout, match="Gateway timed out"):
        kite.place(live_order)


def test_place_that_never_connected_is_unavailable_not_a_timeout(kite, session, live_order):
    # No connection, so nothing was sent: a retry is safe, no tag lookup needed.
    session.raise_(*PLACE, requests.ConnectTimeout("connect timed out"))

    with pytest.raises(BrokerUnavailable):
        kite.place(live_order)


def test_place_answered_429_is_unavailable_whatever_the_error_type(kite, session, live_order):
    session.reply(*PLACE, "error_rate_limit", status_code=429)

    with pytest.raises(BrokerUnavailable, match="429"):
        kite.place(live_order)


def test_place_without_a_rate_token_sends_nothing(kite, session, live_order):
    drain_order_bucket()

    with pytest.raises(BrokerRateLimited, match="order rate") as raised:
        kite.place(live_order)

    assert 1.0 < raised.value.retry_in <= 1.1
    assert session.sent == []


def test_place_takes_a_slot_of_the_users_order_window(kite, session, live_order):
    session.reply(*PLACE, "place_order")

    kite.place(live_order)

    window = RateWindow.objects.get(key=order_rate_key(KITE_USER_ID))
    assert len(window.sent_at) == 1
    assert window.last_take_granted


# --- modify and cancel -----------------------------------------------------------------------


def test_modify_sends_the_new_values(kite, session, live_order):
    live_order.broker_order_id = BROKER_ORDER_ID
    session.reply("PUT", f"/orders/regular/{BROKER_ORDER_ID}", "modify_order")

    updates = kite.modify(
        live_order,
        quantity=12,
        price=Decimal("2449.95"),
        trigger_price=None,
        order_type=OrderType.LIMIT,
    )

    assert updates == ()
    assert session.sent[0].data == {
        "variety": "regular",
        "order_id": BROKER_ORDER_ID,
        "quantity": 12,
        "order_type": "LIMIT",
        "price": "2449.95",
    }


def test_modify_to_market_asks_for_market_protection(kite, session, live_order):
    live_order.broker_order_id = BROKER_ORDER_ID
    session.reply("PUT", f"/orders/regular/{BROKER_ORDER_ID}", "modify_order")

    kite.modify(live_order, quantity=10, price=None, trigger_price=None, order_type="MARKET")

    assert session.sent[0].data["market_protection"] == -1
    assert "price" not in session.sent[0].data


def test_modify_refused_is_a_rejection(kite, session, live_order):
    live_order.broker_order_id = BROKER_ORDER_ID
    session.reply("PUT", f"/orders/regular/{BROKER_ORDER_ID}", "error_order", status_code=500)

    with pytest.raises(BrokerRejected):
        kite.modify(
            live_order, quantity=10, price=Decimal("1"), trigger_price=None, order_type="LIMIT"
        )


def test_cancel_sends_a_delete_and_waits_for_the_report(kite, session, live_order):
    live_order.broker_order_id = BROKER_ORDER_ID
    session.reply("DELETE", f"/orders/regular/{BROKER_ORDER_ID}", "cancel_order")

    assert kite.cancel(live_order) == ()
    assert [(r.method, r.path) for r in session.sent] == [
        ("DELETE", f"/orders/regular/{BROKER_ORDER_ID}")
    ]


def test_cancel_without_an_answer_is_unavailable_not_a_timeout(kite, session, live_order):
    # Only a lost place leaves an order of unknown existence; a cancel is simply asked again.
    live_order.broker_order_id = BROKER_ORDER_ID
    session.raise_("DELETE", f"/orders/regular/{BROKER_ORDER_ID}", requests.ReadTimeout("slow"))

    with pytest.raises(BrokerUnavailable):
        kite.cancel(live_order)


# --- reading orders back ---------------------------------------------------------------------


def test_find_by_tag_takes_the_latest_order_with_the_tag(kite, session, db):
    session.reply(*ORDER_BOOK, "orders")

    update = kite.find_by_tag(TAG)

    # The book also holds an earlier REJECTED order with the same tag.
    assert update.broker_order_id == BROKER_ORDER_ID
    assert update.tag == TAG
    assert update.status == OrderStatus.FILLED
    assert update.raw_status == "COMPLETE"
    assert update.filled_quantity == 10
    assert update.average_price == Decimal("2450.47")
    assert update.timestamp == datetime(2026, 4, 1, 9, 15, 3, tzinfo=IST)
    # Cumulative figures only: the OMS derives the fills (one mechanism for polls and postbacks).
    assert update.fills == ()
    assert type(update.average_price) is Decimal


def test_find_by_tag_unknown_to_kite_is_none(kite, session, db):
    session.reply(*ORDER_BOOK, "orders")

    assert kite.find_by_tag("OMSNEVERSENT00000000") is None
    assert session.count(*ORDER_TRADES) == 0


def test_order_status_reads_the_history_and_the_orders_trades(kite, session, live_order):
    live_order.broker_order_id = BROKER_ORDER_ID
    session.reply(*HISTORY, "order_history").reply(*ORDER_TRADES, "order_trades")

    update = kite.order_status(live_order)

    assert update.status == OrderStatus.FILLED
    assert update.filled_quantity == 10
    assert update.average_price == Decimal("2450.47")
    # Every execution of the order, oldest first, exact prices, Kite's trade ids (with the
    # order id: an exchange trade number is unique only within its segment and day).
    assert update.fills_complete
    assert [(f.trade_id, f.quantity, f.price, f.executed_at) for f in update.fills] == [
        (
            f"{BROKER_ORDER_ID}:70000001",
            4,
            Decimal("2450.50"),
            datetime(2026, 4, 1, 9, 15, 2, tzinfo=IST),
        ),
        (
            f"{BROKER_ORDER_ID}:70000002",
            6,
            Decimal("2450.45"),
            datetime(2026, 4, 1, 9, 15, 3, tzinfo=IST),
        ),
    ]
    assert (update.quantity, update.order_type, update.price) == (10, "LIMIT", Decimal("2450.50"))
    assert update.trigger_price is None  # Kite's 0
    assert session.count(*ORDER_TRADES) == 1


def test_order_status_with_nothing_filled_asks_for_no_trades(kite, session, live_order):
    live_order.broker_order_id = BROKER_ORDER_ID
    session.reply(*HISTORY, "order_history_modifying")

    assert kite.order_status(live_order).fills == ()
    assert session.count(*ORDER_TRADES) == 0


def test_order_status_whose_trades_cannot_be_read_keeps_the_cumulative_figures(
    kite, session, live_order
):
    live_order.broker_order_id = BROKER_ORDER_ID
    session.reply(*HISTORY, "order_history").reply(*ORDER_TRADES, "error_network", status_code=503)

    update = kite.order_status(live_order)

    assert (update.filled_quantity, update.average_price) == (10, Decimal("2450.47"))
    assert (update.fills, update.fills_complete) == ((), False)


def test_order_status_during_a_modification_reports_the_working_status(kite, session, live_order):
    live_order.broker_order_id = BROKER_ORDER_ID
    session.reply(*HISTORY, "order_history_modifying").reply(*ORDER_TRADES, "order_trades")

    update = kite.order_status(live_order)

    assert update.raw_status == "MODIFY PENDING"
    assert update.status == OrderStatus.TRIGGER_PENDING
    assert update.modifying  # its terms are not settled yet


def test_order_status_of_an_order_kite_does_not_know_is_none(kite, session, live_order):
    live_order.broker_order_id = BROKER_ORDER_ID
    session.reply(*HISTORY, "error_order_not_found", status_code=400)

    assert kite.order_status(live_order) is None


def test_order_status_without_a_broker_id_looks_the_tag_up(kite, session, live_order):
    session.reply(*ORDER_BOOK, "orders").reply(*ORDER_TRADES, "order_trades")

    assert kite.order_status(live_order).broker_order_id == BROKER_ORDER_ID


def test_orders_reads_the_order_book_in_one_request(kite, session, db):
    session.reply(*ORDER_BOOK, "orders")

    updates = kite.orders()

    assert [(u.broker_order_id, u.status, u.filled_quantity) for u in updates] == [
        ("260401000120001", OrderStatus.FILLED, 5),
        ("260401000123400", OrderStatus.REJECTED, 0),
        (BROKER_ORDER_ID, OrderStatus.FILLED, 10),
    ]
    assert updates[1].message.startswith("RMS:Margin Exceeds")
    assert updates[1].average_price is None
    assert all(u.fills == () for u in updates)
    assert len(session.sent) == 1


def test_positions_are_the_net_positions_with_decimal_prices(kite, session, db):
    session.reply("GET", "/portfolio/positions", "positions")

    assert kite.positions() == [
        BrokerPosition("RELIANCE", "NSE", "MIS", 10, Decimal("2450.47"), Decimal("2451.10")),
        BrokerPosition("SBIN", "NSE", "MIS", -5, Decimal("812.35"), Decimal("811.90")),
    ]


@pytest.mark.parametrize(("kite_status", "expected"), sorted(KITE_STATUSES.items()))
def test_every_kite_status_has_an_oms_status(kite_status, expected):
    assert oms_status(kite_status) == expected


@pytest.mark.parametrize(
    "kite_status",
    [
        "PUT ORDER REQ RECEIVED",
        "AMO REQ RECEIVED",
        "VALIDATION PENDING",
        "OPEN PENDING",
        "OPEN",
        "TRIGGER PENDING",
        "MODIFY VALIDATION PENDING",
        "MODIFY PENDING",
        "MODIFIED",
        "CANCEL PENDING",
        "COMPLETE",
        "CANCELLED",
        "REJECTED",
        "UPDATE",
    ],
)
def test_every_status_kite_documents_is_mapped(kite_status):
    update = order_update({"order_id": BROKER_ORDER_ID, "status": kite_status})

    assert oms_status(kite_status) is not None
    assert not update.status_unknown


@pytest.mark.parametrize("kite_status", ["MODIFIED", "UPDATE", "MODIFY PENDING", "NOT MODIFIED"])
def test_a_modification_or_update_status_moves_no_status(kite_status):
    # "working as before": SUBMITTED in a report moves nothing (broker_reports._status_target)
    assert oms_status(kite_status) == OrderStatus.SUBMITTED


def test_an_unknown_kite_status_is_flagged_never_guessed(caplog):
    update = order_update({"order_id": BROKER_ORDER_ID, "status": "SOMETHING NEW"})

    assert oms_status("SOMETHING NEW") is None
    assert update.status_unknown
    assert update.status == OrderStatus.SUBMITTED  # moves nothing
    assert update.raw_status == "SOMETHING NEW"
    assert "unknown Kite order status 'SOMETHING NEW'" in caplog.text


def test_a_protected_market_order_keeps_our_tag_beside_kites_mktp():
    entry = {
        **recorded("orders")["data"][2],
        "order_type": "LIMIT",
        "price": 2475.0,
        "tag": "mktp",
        "tags": ["mktp", "mktp:2.00", TAG],
    }

    update = order_update(entry)

    assert update.tag == TAG
    assert update.market_protected
    assert (update.order_type, update.price) == ("LIMIT", Decimal("2475.00"))


def test_find_by_tag_finds_a_protected_market_order_by_our_tag(kite, session, db):
    book = recorded("orders")
    book["data"][2].update(order_type="LIMIT", tag="mktp", tags=["mktp", "mktp:2.00", TAG])
    session.routes[ORDER_BOOK] = [FakeResponse(book)]

    update = kite.find_by_tag(TAG)

    assert (update.broker_order_id, update.tag) == (BROKER_ORDER_ID, TAG)


def test_a_ticker_order_update_reads_like_a_postback():
    payload = {**recorded("postback_open"), "status": "UPDATE", "filled_quantity": 4}
    del payload["checksum"]  # the ticker's order updates carry none
    payload["average_price"] = 2450.5  # the ticker's JSON numbers are floats

    update = ticker_order_update(payload)

    assert (update.broker_order_id, update.tag) == (BROKER_ORDER_ID, TAG)
    assert (update.raw_status, update.status_unknown) == ("UPDATE", False)
    assert (update.filled_quantity, update.average_price) == (4, Decimal("2450.500000"))


@pytest.mark.parametrize(
    ("payload", "message"),
    [({"status": "OPEN"}, "order_id: missing"), (["OPEN"], "a JSON object is expected")],
)
def test_a_ticker_order_update_without_an_order_is_refused(payload, message):
    with pytest.raises(ValueError, match=message):
        ticker_order_update(payload)


def test_json_floats_become_the_decimals_kite_sent():
    assert kite_decimal(2450.55, Decimal("0.01")) == Decimal("2450.55")
    assert kite_decimal(0.1 + 0.2, Decimal("0.000001")) == Decimal("0.300000")
    assert kite_decimal(Decimal("812.35"), Decimal("0.01")) == Decimal("812.35")
    assert kite_decimal(None, Decimal("0.01")) is None
    # Not prices: never an InvalidOperation in the order poll or a postback.
    for not_a_price in ("Infinity", "NaN", float("inf"), float("nan"), Decimal("1e30"), "abc"):
        assert kite_decimal(not_a_price, Decimal("0.000001")) is None


# --- settings ----------------------------------------------------------------------------------


def test_live_strategy_without_a_broker_account_is_unavailable(db):
    strategy = StrategyFactory(mode=StrategyMode.LIVE)  # no account exists: none is chosen

    with pytest.raises(BrokerUnavailable, match="LIVE without a broker account"):
        broker_for(strategy)


def test_live_strategy_gets_kite_for_its_account(db):
    kite_account_create("AB1234", api_key="key-1", access_token="token-1")
    other = kite_account_create("CD5678", api_key="key-2", access_token="token-2")
    strategy = StrategyFactory(mode=StrategyMode.LIVE, broker_account=other)

    broker = broker_for(strategy)

    assert broker.name == "kite"
    assert (broker.kite.api_key, broker.kite.access_token, broker.user_id) == (
        "key-2",
        "token-2",
        "CD5678",
    )


@pytest.mark.parametrize(
    ("token", "expires_in", "message"),
    [
        ("", None, "has no session"),
        ("token", timedelta(seconds=-1), "session expired at"),
    ],
)
def test_an_account_without_a_session_today_sends_nothing(db, token, expires_in, message):
    account = kite_account_create(access_token=token)
    if expires_in is not None:
        account.token_expires_at = timezone.now() + expires_in
        account.save()

    with pytest.raises(BrokerUnavailable, match=message) as raised:
        broker_for(StrategyFactory(mode=StrategyMode.LIVE, broker_account=account))
    assert raised.value.retry_in == 60.0


# --- through the order services ----------------------------------------------------------------


@pytest.fixture
def kite_for_live(monkeypatch, kite, db):
    """broker_for() hands LIVE strategies the adapter wired to the fake session."""
    kite_account_create()
    monkeypatch.setattr(KiteBroker, "for_account", classmethod(lambda cls, account, now=None: kite))
    return kite


def test_submit_of_a_live_order_goes_to_kite_and_opens(kite_for_live, session, live_order):
    session.reply(*PLACE, "place_order")

    order_submit(live_order.pk)

    live_order.refresh_from_db()
    assert live_order.status == OrderStatus.OPEN
    assert live_order.broker_order_id == BROKER_ORDER_ID
    assert list(live_order.events.values_list("to_status", flat=True)) == ["SUBMITTED", "OPEN"]
    assert session.count(*PLACE) == 1
    assert session.sent[0].data["tag"] == TAG


def test_submit_refused_by_kite_rejects_the_order_with_its_message(
    kite_for_live, session, live_order
):
    session.reply(*PLACE, "error_input", status_code=400)

    order_submit(live_order.pk)

    live_order.refresh_from_db()
    assert live_order.status == OrderStatus.REJECTED
    assert live_order.status_message.startswith("Markets are closed right now.")


def test_timeout_then_the_order_is_found_by_tag_and_adopted_never_resent(
    kite_for_live, session, live_order
):
    session.raise_(*PLACE, requests.ReadTimeout("read timed out"))
    session.reply(*ORDER_BOOK, "orders")

    order_submit(live_order.pk)

    live_order.refresh_from_db()
    assert live_order.status == OrderStatus.UNKNOWN
    assert live_order.broker_order_id is None

    assert order_resolve_unknown(live_order.pk, give_up=False) is True

    live_order.refresh_from_db()
    assert live_order.broker_order_id == BROKER_ORDER_ID
    assert live_order.status == OrderStatus.FILLED
    assert live_order.filled_quantity == 10
    assert live_order.average_price == Decimal("2450.470000")
    # One fill derived from Kite's cumulative figures (4 @ 2450.50 + 6 @ 2450.45).
    assert list(
        Trade.objects.filter(order=live_order).values_list("trade_id", "quantity", "price")
    ) == [
        (f"{BROKER_ORDER_ID}/10", 10, Decimal("2450.4700")),
    ]
    assert session.count(*PLACE) == 1


def test_submit_without_a_rate_token_leaves_the_order_for_the_retried_job(
    kite_for_live, session, live_order
):
    drain_order_bucket()

    with pytest.raises(BrokerUnavailable):
        order_submit(live_order.pk)

    assert Order.objects.get(pk=live_order.pk).status == OrderStatus.SUBMITTED
    assert session.sent == []


# --- the shared token bucket -----------------------------------------------------------------

T0 = datetime(2026, 4, 1, 9, 15, tzinfo=IST)


def take(key: str, at: datetime, capacity: int = 10, rate: float = 10) -> float:
    return take_token(key, capacity=capacity, refill_per_second=rate, now=at)


@pytest.mark.django_db
def test_bucket_gives_its_capacity_then_says_how_long_to_wait():
    assert [take("test:burst", T0) for _ in range(10)] == [0.0] * 10

    assert take("test:burst", T0) == pytest.approx(0.1)
    assert take("test:burst", T0 + timedelta(milliseconds=40)) == pytest.approx(0.06)


@pytest.mark.django_db
def test_bucket_refills_with_time_up_to_its_capacity():
    for _ in range(10):
        take("test:refill", T0)

    assert take("test:refill", T0 + timedelta(milliseconds=100)) == 0.0
    assert take("test:refill", T0 + timedelta(milliseconds=100)) > 0

    later = T0 + timedelta(hours=1)
    assert [take("test:refill", later) for _ in range(10)] == [0.0] * 10
    assert take("test:refill", later) > 0


@pytest.mark.django_db
def test_a_refused_take_costs_nothing():
    for _ in range(10):
        take("test:refused", T0)
    for _ in range(5):
        take("test:refused", T0 + timedelta(milliseconds=50))

    assert take("test:refused", T0 + timedelta(milliseconds=100)) == 0.0


@pytest.mark.django_db
def test_bucket_keys_are_independent():
    for _ in range(10):
        take("test:a", T0)

    assert take("test:a", T0) > 0
    assert take("test:b", T0) == 0.0


@pytest.mark.django_db
def test_bucket_takes_the_callers_new_limits():
    for _ in range(3):
        take("test:limits", T0, capacity=3, rate=1)
    assert take("test:limits", T0, capacity=3, rate=1) == pytest.approx(1.0)

    assert take("test:limits", T0 + timedelta(seconds=1), capacity=5, rate=2) == 0.0
    assert RateBucket.objects.get(key="test:limits").capacity == 5


@pytest.mark.django_db
def test_bucket_uses_the_database_clock_by_default():
    assert take_token("test:clock", capacity=2, refill_per_second=0.001) == 0.0
    assert take_token("test:clock", capacity=2, refill_per_second=0.001) == 0.0
    assert take_token("test:clock", capacity=2, refill_per_second=0.001) > 900


@pytest.mark.django_db
def test_bucket_refuses_a_limit_that_makes_no_sense():
    with pytest.raises(ValueError, match="capacity 0: must be at least 1"):
        take_token("test:bad", capacity=0, refill_per_second=1)
    with pytest.raises(ValueError, match="refill_per_second 0: must be more than 0"):
        take_token("test:bad", capacity=1, refill_per_second=0)


@pytest.mark.django_db
def test_database_refuses_more_tokens_than_capacity():
    with pytest.raises(IntegrityError) as raised, transaction.atomic():
        RateBucket.objects.create(
            key="test:overfull", tokens=11, capacity=10, refill_per_second=1, updated_at=T0
        )
    assert raised.value.__cause__.diag.constraint_name == "rate_bucket_tokens_within_capacity"


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_bucket_is_shared_by_processes_on_their_own_connections():
    """Two workers, each with its own database connection, racing for one bucket."""
    start = threading.Barrier(2)
    granted: list[int] = []

    def worker() -> None:
        try:
            start.wait()
            granted.append(sum(1 for _ in range(10) if take("test:shared", T0) == 0.0))
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(granted) == 2
    assert sum(granted) == 10
    assert take("test:shared", T0) == pytest.approx(0.1)


# --- over HTTP, against a fake Kite server ------------------------------------------------------


def test_the_account_talks_to_kite_at_kite_api_root(kite_server, kite_account, live_order):
    kite_server.reply(*HISTORY, "order_history").reply(*ORDER_TRADES, "order_trades")
    live_order.broker_order_id = BROKER_ORDER_ID

    update = KiteBroker.for_account(kite_account).order_status(live_order)

    assert (update.status, update.filled_quantity) == (OrderStatus.FILLED, 10)
    assert (update.symbol, update.exchange, update.side) == ("RELIANCE", "NSE", "BUY")
    assert kite_server.count(*HISTORY) == 1


def test_kites_errors_are_logged_and_raised_without_the_token_or_secret(
    kite_server, kite_account, live_order, caplog
):
    # Kite's messages may quote what was sent; a requests error names the URL.
    echo = f"Invalid access_token {KITE_ACCESS_TOKEN} (checksum of secret {KITE_API_SECRET})"
    body = {"status": "error", "message": echo, "data": None, "error_type": "TokenException"}
    kite_server.reply(*HISTORY, body, http_status=403)
    live_order.broker_order_id = BROKER_ORDER_ID

    with pytest.raises(BrokerUnavailable) as raised:
        KiteBroker.for_account(kite_account).order_status(live_order)

    text = "\n".join(
        [str(raised.value), repr(raised.value.__cause__)] + [r.getMessage() for r in caplog.records]
    )
    assert "[redacted]" in str(raised.value)
    assert KITE_ACCESS_TOKEN not in text
    assert KITE_API_SECRET not in text
