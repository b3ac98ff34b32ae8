"""The calling strategy's overview, the paper price feed, and the health check."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import OperationalError, connection
from procrastinate.contrib.django.models import ProcrastinateJob
from rest_framework.test import APIClient

from orders.enums import OrderStatus, StrategyStatus
from orders.models import Order, Trade
from orders.tests.api.conftest import make_caller, order_body
from orders.tests.factories import OrderFactory, TradeFactory
from positions.models import Position
from positions.tests.factories import PositionFactory
from risk.selectors import desk_today, gross_exposure
from risk.tests.factories import KillSwitchEventFactory

# --- /strategy/ ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_strategy_endpoint_reports_the_gross_exposure_the_limits_and_dashboard_use(caller):
    strategy = caller.strategy
    PositionFactory(
        strategy=strategy,
        quantity=-3,
        average_price=Decimal("100.333333"),
        last_price=Decimal("90.00"),
    )
    OrderFactory(strategy=strategy, status=OrderStatus.OPEN, quantity=2, price=Decimal("50.25"))

    body = caller.client.get("/api/v1/strategy/").json()

    row = next(row for row in desk_today().strategies if row.strategy.pk == strategy.pk)
    # 3 x 100.333333 + 2 x 50.25 = 401.499999: the dashboard's figure, to the paisa.
    assert row.gross_exposure == gross_exposure(strategy) == Decimal("401.499999")
    assert body["gross_exposure"] == "401.50"


@pytest.mark.django_db
def test_the_strategy_endpoint_reports_status_mode_limits_pnl_and_the_kill_switch(caller):
    strategy = caller.strategy
    strategy.status = StrategyStatus.PAUSED
    strategy.config = {"limits": {"max_order_quantity": 500}}
    strategy.save()
    PositionFactory(strategy=strategy, unrealized_pnl=Decimal("125.50"), realized_pnl=Decimal("10"))
    OrderFactory(strategy=strategy)
    # A fill today that realized 10.00 and paid 1.25 of charges.
    TradeFactory(
        order=OrderFactory(strategy=strategy, status=OrderStatus.CANCELLED),
        realized_pnl=Decimal("10"),
        brokerage=Decimal("1.25"),
    )
    OrderFactory(strategy=strategy, status=OrderStatus.CANCELLED)
    KillSwitchEventFactory(state="REDUCING", scope="STRATEGY", strategy=strategy, actor="test")

    response = caller.client.get("/api/v1/strategy/")

    assert response.status_code == 200
    body = response.json()
    assert (body["id"], body["name"], body["status"], body["mode"]) == (
        strategy.pk,
        "Strategy A",
        "PAUSED",
        "PAPER",
    )
    assert body["limits"]["max_order_quantity"] == 500
    assert body["kill_switch"] == "REDUCING"
    assert body["open_positions"] == 1
    assert body["working_orders"] == 1
    today = body["today"]
    assert (today["gross_realized_pnl"], today["charges"], today["realized_pnl"]) == (
        "10.00",
        "1.25",
        "8.75",
    )
    assert (today["unrealized_pnl"], today["net_pnl"]) == ("125.50", "134.25")
    assert body["total_pnl"] == "0.00"


# --- /prices/ ------------------------------------------------------------------------------------

PRICES = "/api/v1/prices/"


@pytest.mark.django_db
def test_prices_are_queued_for_the_paper_exchange(caller):
    body = {
        "prices": [
            {"symbol": "RELIANCE", "exchange": "NSE", "price": "2449.00"},
            {"symbol": "INFY", "exchange": "NSE", "price": "1500.10"},
        ]
    }
    response = caller.client.post(PRICES, body, format="json")

    assert response.status_code == 202
    assert response.json() == {"accepted": 2}
    job = ProcrastinateJob.objects.get(task_name="orders.prices")
    assert job.args == {
        "prices": [["RELIANCE", "NSE", "2449.00"], ["INFY", "NSE", "1500.10"]],
        "strategy_id": caller.strategy.pk,  # the feed moves only the caller's own book
    }


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("prices", "field"),
    [
        ([], "prices"),
        ([{"symbol": "RELIANCE", "exchange": "NSE", "price": "0"}], "prices.0.price"),
        ([{"symbol": "RELIANCE", "exchange": "NSE", "price": "-5.00"}], "prices.0.price"),
        ([{"symbol": "RELIANCE", "exchange": "NSE", "price": "1.005"}], "prices.0.price"),
        ([{"symbol": "RELIANCE", "exchange": "NSE", "price": 2449.5}], "prices.0.price"),
        ([{"symbol": "RELIANCE", "exchange": "LSE", "price": "1.00"}], "prices.0.exchange"),
        ([{"symbol": "", "exchange": "NSE", "price": "1.00"}], "prices.0.symbol"),
    ],
)
def test_bad_prices_are_a_400_naming_each(caller, prices, field):
    response = caller.client.post(PRICES, {"prices": prices}, format="json")

    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]
    assert not ProcrastinateJob.objects.filter(task_name="orders.prices").exists()


@pytest.mark.django_db
def test_a_live_strategy_may_not_feed_prices(live_caller):
    response = live_caller.client.post(
        PRICES,
        {"prices": [{"symbol": "RELIANCE", "exchange": "NSE", "price": "2449.00"}]},
        format="json",
    )

    assert response.status_code == 403
    assert "PAPER" in response.json()["error"]["message"]
    assert not ProcrastinateJob.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_fed_price_fills_a_working_paper_order(run_jobs):
    caller = make_caller(name="Paper filler")
    api = caller.client
    placed = api.post("/api/v1/orders/", order_body(price="2450.00"), format="json").json()
    run_jobs()
    assert api.get(f"/api/v1/orders/{placed['id']}/").json()["status"] == "OPEN"

    fed = api.post(
        PRICES,
        {"prices": [{"symbol": "RELIANCE", "exchange": "NSE", "price": "2449.50"}]},
        format="json",
    )
    assert fed.status_code == 202
    run_jobs()

    order = api.get(f"/api/v1/orders/{placed['id']}/").json()
    assert order["status"] == "FILLED"
    assert order["filled_quantity"] == 10
    assert Decimal(order["average_price"]) <= Decimal("2450.00")
    assert len(order["trades"]) == 1
    trades = api.get("/api/v1/trades/", {"order": placed["id"]}).json()["results"]
    assert [t["quantity"] for t in trades] == [10]
    assert Trade.objects.get().strategy == caller.strategy
    [position] = api.get("/api/v1/positions/").json()["results"]
    assert (position["symbol"], position["quantity"]) == ("RELIANCE", 10)
    assert Position.objects.get().strategy == caller.strategy
    assert Order.objects.get().status == OrderStatus.FILLED


# --- /health/ ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_health_needs_no_key_and_reports_each_part():
    response = APIClient().get("/api/v1/health/")

    assert response.status_code == 200
    body = response.json()
    assert body["database"] == "ok"
    assert body["worker"] == "down"  # no worker runs during the tests
    assert body["status"] == "degraded"
    assert body["broker"] == "paper"


@pytest.mark.django_db
def test_health_ignores_a_bad_key():
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer nonsense")
    assert client.get("/api/v1/health/").status_code == 200


@pytest.mark.django_db
def test_health_is_503_when_the_database_is_down(monkeypatch):
    def down(*args, **kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr(connection, "cursor", down)
    response = APIClient().get("/api/v1/health/")

    assert response.status_code == 503
    assert (response.json()["status"], response.json()["database"]) == ("down", "down")


# --- anything else under /api/ -------------------------------------------------------------------


@pytest.mark.django_db
def test_unknown_api_paths_are_a_404_in_the_error_shape(api):
    for path in ("/api/v2/orders/", "/api/v1/orders", "/api/nothing"):
        response = api.get(path)
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"
