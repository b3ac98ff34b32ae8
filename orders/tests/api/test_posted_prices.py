"""A price a strategy posts moves its own paper book only (security review, severity high).

The review: paper key A posted INFY at 100.00 and strategy B's MARKET BUY 5 INFY filled at
100.00; posting 0.05 let a 1000-share order pass max_order_value. The rule now (positions
migration 0006, ``oms_last_price``): a PAPER strategy sees its own posted price when it has one,
else the shared market price; a LIVE strategy sees only the shared market price. Shared prices
come from market data or staff (``market_prices_update``, a job without a strategy), never from
``POST /api/v1/prices/``.

Everything goes through HTTP and real jobs (``run_jobs``) against PostgreSQL.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import IntegrityError, connection, transaction
from procrastinate.contrib.django.models import ProcrastinateJob

from orders import tasks
from orders.enums import OrderStatus, StrategyMode
from orders.models import Order, PaperOrder, Trade
from orders.services import strategy_mode_set
from orders.tests.api.conftest import make_caller, order_body
from orders.tests.conftest import kite_account_create
from orders.tests.factories import StrategyFactory
from positions.models import MarketPrice, Position, StrategyPrice
from positions.services import market_prices_update, strategy_prices_update
from risk.tests.factories import limits_set

PRICES = "/api/v1/prices/"
ORDERS = "/api/v1/orders/"
SHARED = Decimal("1500.00")  # INFY's market price (tick 0.10 in the sample master)


def post_price(caller, price: str, symbol: str = "INFY"):
    return caller.client.post(
        PRICES, {"prices": [{"symbol": symbol, "exchange": "NSE", "price": price}]}, format="json"
    )


def market_buy(caller, client_order_id: str, quantity: int = 5, **fields):
    body = order_body(
        client_order_id=client_order_id,
        symbol="INFY",
        quantity=quantity,
        order_type="MARKET",
        price=...,
        **fields,
    )
    return caller.client.post(ORDERS, body, format="json")


def shared_tick(price: str) -> None:
    """Market data: the job a feed defers without a strategy."""
    tasks.apply_prices.defer(prices=[["INFY", "NSE", price]])


def last_price_seen(strategy) -> Decimal | None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT oms_last_price(%s, 'INFY', 'NSE')", [strategy.pk])
        return cursor.fetchone()[0]


# --- attack 1: another strategy's fill and checks at the posted price --------------------------


@pytest.mark.django_db(transaction=True)
def test_a_posted_price_never_fills_another_strategys_order(run_jobs):
    """The review's case as it was (no shared price yet): A posts INFY 100.00; B's MARKET BUY
    5 INFY does not fill at 100.00. It waits for the market and fills at the shared price."""
    a, b = make_caller(name="Poster A"), make_caller(name="Buyer B")
    assert post_price(a, "100.00").status_code == 202
    run_jobs()

    placed = market_buy(b, "b-1")
    assert placed.status_code == 201, placed.json()
    run_jobs()

    assert b.client.get(f"{ORDERS}{placed.json()['id']}/").json()["status"] == "OPEN"
    assert not Trade.objects.filter(strategy=b.strategy).exists()

    shared_tick("1500.00")
    run_jobs()

    order = b.client.get(f"{ORDERS}{placed.json()['id']}/").json()
    assert (order["status"], order["average_price"]) == ("FILLED", "1500.00")
    assert [t.price for t in Trade.objects.filter(strategy=b.strategy)] == [SHARED]
    # A keeps its own price; the shared table never held it.
    assert last_price_seen(a.strategy) == Decimal("100.00")
    assert MarketPrice.objects.get(symbol="INFY").last_price == SHARED


@pytest.mark.django_db(transaction=True)
def test_each_paper_strategy_fills_at_the_price_it_sees(run_jobs):
    """With a shared price, A's posted 1400.00 (within the band) fills A's MARKET BUY; B's
    fills at the shared 1500.00."""
    market_prices_update([("INFY", "NSE", SHARED)])
    a, b = make_caller(name="Poster A"), make_caller(name="Buyer B")
    assert post_price(a, "1400.00").status_code == 202
    run_jobs()

    b_order = market_buy(b, "b-1").json()
    a_order = market_buy(a, "a-1").json()
    run_jobs()

    assert b.client.get(f"{ORDERS}{b_order['id']}/").json()["average_price"] == "1500.00"
    assert a.client.get(f"{ORDERS}{a_order['id']}/").json()["average_price"] == "1400.00"
    assert MarketPrice.objects.get(symbol="INFY").last_price == SHARED
    assert list(StrategyPrice.objects.values_list("strategy", "last_price")) == [
        (a.strategy.pk, Decimal("1400.00"))
    ]


@pytest.mark.django_db
@pytest.mark.parametrize("mode", [StrategyMode.PAPER, StrategyMode.LIVE])
def test_another_strategys_checks_value_its_order_at_the_shared_price(mode):
    """max_order_value 7,200: 5 INFY pass at A's own 1400.00 (7,000) and not at the shared
    1500.00 (7,500). B, paper or live, is checked at the shared price."""
    market_prices_update([("INFY", "NSE", SHARED)])
    limits_set(max_order_value=Decimal("7200.00"))
    a, b = make_caller(name="Poster A"), make_caller(name="Checked B", mode=mode)
    # The job of A's post, run in this test's transaction.
    assert post_price(a, "1400.00").status_code == 202
    strategy_prices_update([("INFY", "NSE", Decimal("1400.00"))], strategy=a.strategy)

    refused = market_buy(b, "b-1")

    assert refused.status_code == 422
    # (A LIVE strategy also keeps the exchange's hours: market_closed may join it.)
    violations = {v["code"]: v["message"] for v in refused.json()["error"]["violations"]}
    assert "order value ₹7,500.00" in violations["max_order_value"]
    assert Order.objects.get(strategy=b.strategy).status == OrderStatus.REJECTED
    assert market_buy(a, "a-1").status_code == 201  # A's own checks see its own price


# --- attack 2: a tiny posted price to pass max_order_value -------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("mode", [StrategyMode.PAPER, StrategyMode.LIVE])
def test_posting_a_tiny_price_lets_no_large_order_through(mode):
    kite_account_create()  # a LIVE strategy's account, logged in for the day
    market_prices_update([("INFY", "NSE", SHARED)])
    limits_set(max_order_value=Decimal("100000.00"))
    a, b = make_caller(name="Poster A"), make_caller(name="Checked B", mode=mode)

    posted = post_price(a, "0.05")

    # Refused outright: off INFY's tick (0.10), and 100% from the market.
    assert posted.status_code == 400
    assert "prices.0.price" in posted.json()["error"]["fields"]
    assert not ProcrastinateJob.objects.filter(task_name="orders.prices").exists()
    assert not StrategyPrice.objects.exists()
    # Within the tick but 99.99% away: the band refuses it.
    banded = post_price(a, "0.10")
    assert banded.status_code == 400
    assert "20% a posted price may stray" in banded.json()["error"]["fields"]["prices.0.price"]

    for caller in (a, b):
        refused = market_buy(caller, f"big-{caller.strategy.pk}", quantity=1000)
        assert refused.status_code == 422
        codes = {v["code"] for v in refused.json()["error"]["violations"]}
        assert codes - {"market_closed"} == {"max_order_value"}  # a LIVE one keeps the hours


@pytest.mark.django_db
def test_without_a_shared_price_a_posted_one_values_only_the_posters_orders():
    """No market price for INFY: A may post 0.10 (nothing to hold it to), but B's MARKET
    order still has no last price and cannot pass the value limit on A's."""
    limits_set(max_order_value=Decimal("100000.00"))
    a, b = make_caller(name="Poster A"), make_caller(name="Checked B")
    assert post_price(a, "0.10").status_code == 202
    strategy_prices_update([("INFY", "NSE", Decimal("0.10"))], strategy=a.strategy)

    refused = market_buy(b, "b-1", quantity=1000)

    assert refused.status_code == 422
    assert [v["code"] for v in refused.json()["error"]["violations"]] == ["value_unknown"]


# --- a strategy's own price moves its own fills, marks and exits --------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_posted_price_moves_only_the_posters_fills_marks_and_exits(run_jobs):
    market_prices_update([("INFY", "NSE", SHARED)])
    a, b = make_caller(name="Poster A"), make_caller(name="Holder B")
    for caller in (a, b):
        assert market_buy(caller, "entry", quantity=10, stop_loss="1450.00").status_code == 201
    waiting = b.client.post(
        ORDERS,
        order_body(client_order_id="b-dip", symbol="INFY", quantity=10, price="1445.00"),
        format="json",
    ).json()
    run_jobs()
    assert Position.objects.filter(quantity=10, closed_at__isnull=True).count() == 2

    assert post_price(a, "1440.00").status_code == 202  # below A's stop-loss of 1450.00
    run_jobs()  # A's tick: marks A, A's stop-loss exit is placed...
    run_jobs()  # ...and filled at A's own price

    a_position = Position.objects.get(strategy=a.strategy)
    assert a_position.closed_at is not None
    assert a_position.realized_pnl == Decimal("-600.00")  # 10 x (1440 - 1500)
    exit_order = Order.objects.get(strategy=a.strategy, closes_position=a_position)
    assert (exit_order.status, exit_order.average_price) == (OrderStatus.FILLED, Decimal("1440"))

    b_position = Position.objects.get(strategy=b.strategy)
    assert b_position.is_open
    assert b_position.last_price in (None, SHARED)  # never 1440.00
    assert b_position.unrealized_pnl == 0
    assert not Order.objects.filter(strategy=b.strategy, closes_position__isnull=False).exists()
    assert b.client.get(f"{ORDERS}{waiting['id']}/").json()["status"] == "OPEN"
    assert PaperOrder.objects.get(strategy=b.strategy, status="OPEN").price == Decimal("1445")

    # The market moves B (and not A, which sees its own price).
    shared_tick("1460.00")
    run_jobs()
    b_position.refresh_from_db()
    assert (b_position.last_price, b_position.unrealized_pnl) == (Decimal("1460"), -400)
    assert last_price_seen(a.strategy) == Decimal("1440.00")
    assert last_price_seen(b.strategy) == Decimal("1460.00")


# --- sanity of a posted price: on the tick, in the master, within the band ------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("price", "accepted"),
    [
        ("1200.00", True),  # 20.00% below: at the band
        ("1800.00", True),  # 20.00% above
        ("1199.90", False),
        ("1800.10", False),
        ("150000.00", False),  # 100x
    ],
)
def test_a_posted_price_stays_within_the_band_around_the_market_price(caller, price, accepted):
    market_prices_update([("INFY", "NSE", SHARED)])

    response = post_price(caller, price)

    assert response.status_code == (202 if accepted else 400)
    if not accepted:
        rule = response.json()["error"]["fields"]["prices.0.price"]
        assert rule.startswith(f"price {price}: ")
        assert "from the market price 1500.00 of INFY on NSE, beyond the 20%" in rule
        assert "OMS_PAPER_PRICE_BAND_PERCENT" in rule
        assert not ProcrastinateJob.objects.exists()


@pytest.mark.django_db
def test_the_band_is_a_setting(caller, settings):
    settings.OMS_PAPER_PRICE_BAND_PERCENT = Decimal("5")
    market_prices_update([("INFY", "NSE", SHARED)])

    assert post_price(caller, "1575.00").status_code == 202
    response = post_price(caller, "1575.10")
    assert response.status_code == 400
    assert "beyond the 5%" in response.json()["error"]["fields"]["prices.0.price"]


@pytest.mark.django_db
def test_each_refused_price_is_named_by_its_place_in_the_batch(caller):
    market_prices_update([("INFY", "NSE", SHARED)])
    body = {
        "prices": [
            {"symbol": "INFY", "exchange": "NSE", "price": "1500.10"},
            {"symbol": "INFY", "exchange": "NSE", "price": "1500.05"},
            {"symbol": "NOSUCHSCRIP", "exchange": "NSE", "price": "10.00"},
            {"symbol": "INFY", "exchange": "NSE", "price": "15.00"},
        ]
    }

    response = caller.client.post(PRICES, body, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {
        "prices.1.price": "price 1500.05: must be a multiple of the tick size 0.1",
        "prices.2.symbol": "symbol NOSUCHSCRIP on NSE: not in the instrument master",
        "prices.3.price": (
            "price 15.00: 99.00% from the market price 1500.00 of INFY on NSE, beyond the 20% "
            "a posted price may stray (OMS_PAPER_PRICE_BAND_PERCENT)"
        ),
    }
    assert not ProcrastinateJob.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("price", ["NaN", "Infinity", "-Infinity", "1e400", "0.00", "-1500.00"])
def test_a_posted_price_is_positive_and_finite(caller, price):
    response = post_price(caller, price)

    assert response.status_code == 400
    assert "prices.0.price" in response.json()["error"]["fields"]
    assert not ProcrastinateJob.objects.exists()


# --- the database: the rule and the table's integrity ------------------------------------------


@pytest.mark.django_db
def test_the_last_price_a_strategy_sees_is_defined_once_in_the_database():
    paper, other, live = (
        StrategyFactory(name="Paper"),
        StrategyFactory(name="Other paper"),
        StrategyFactory(name="Live", mode=StrategyMode.LIVE),
    )
    assert last_price_seen(paper) is None
    market_prices_update([("INFY", "NSE", SHARED)])
    strategy_prices_update([("infy", "nse", Decimal("1490.00"))], strategy=paper)

    assert last_price_seen(paper) == Decimal("1490.00")
    assert last_price_seen(other) == SHARED
    assert last_price_seen(live) == SHARED
    with connection.cursor() as cursor:
        cursor.execute("SELECT oms_last_price(NULL, 'INFY', 'NSE')")
        assert cursor.fetchone()[0] == SHARED
        # A strategy that went LIVE by hand, its posted rows left behind, never sees them.
        cursor.execute("UPDATE strategies SET mode = 'LIVE' WHERE id = %s", [paper.pk])
    assert last_price_seen(paper) == SHARED


@pytest.mark.django_db
def test_the_database_refuses_a_posted_price_for_a_live_strategy():
    live = StrategyFactory(name="Live", mode=StrategyMode.LIVE)

    refused = pytest.raises(IntegrityError, match="only a PAPER strategy posts its own prices")
    with refused, transaction.atomic():
        StrategyPrice.objects.create(
            strategy=live, symbol="INFY", exchange="NSE", last_price=Decimal("1400.00")
        )


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("price", "constraint"),
    [("1400.005", "strategy_price_on_paisa"), ("0", "strategy_price_on_paisa")],
)
def test_the_database_refuses_a_price_off_the_paisa(price, constraint):
    paper = StrategyFactory(name="Paper")

    with pytest.raises(IntegrityError, match=constraint), transaction.atomic():
        StrategyPrice.objects.create(
            strategy=paper, symbol="INFY", exchange="NSE", last_price=Decimal(price)
        )


@pytest.mark.django_db
def test_one_posted_price_per_strategy_and_instrument():
    paper = StrategyFactory(name="Paper")
    strategy_prices_update(
        [("INFY", "NSE", Decimal("1400.00")), ("INFY", "NSE", Decimal("1410.00"))], strategy=paper
    )
    strategy_prices_update([("INFY", "NSE", Decimal("1420.00"))], strategy=paper)

    assert list(StrategyPrice.objects.values_list("last_price", flat=True)) == [Decimal("1420")]
    with pytest.raises(IntegrityError, match="strategy_price_unique"), transaction.atomic():
        StrategyPrice.objects.create(
            strategy=paper, symbol="INFY", exchange="NSE", last_price=Decimal("1430.00")
        )


@pytest.mark.django_db
def test_a_strategy_that_changes_mode_forgets_the_prices_it_posted():
    paper = StrategyFactory(name="Paper")
    strategy_prices_update([("INFY", "NSE", Decimal("1400.00"))], strategy=paper)

    strategy_mode_set(paper, mode=StrategyMode.LIVE, actor="test")
    strategy_mode_set(paper, mode=StrategyMode.PAPER, actor="test")

    assert not StrategyPrice.objects.exists()


@pytest.mark.django_db
def test_a_job_of_a_strategy_no_longer_paper_moves_nothing():
    """Posted while PAPER, applied after a switch to LIVE: nothing is stored or marked."""
    strategy = StrategyFactory(name="Switched")
    strategy_mode_set(strategy, mode=StrategyMode.LIVE, actor="test")

    tasks.apply_prices(prices=[["INFY", "NSE", "1400.00"]], strategy_id=strategy.pk)

    assert not StrategyPrice.objects.exists()
    assert not MarketPrice.objects.exists()
