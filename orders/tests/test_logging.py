"""Structured logs: every line about an order carries its id, strategy and client_order_id, and
with OMS_LOG_JSON they are keys of the JSON line."""

from __future__ import annotations

import io
import json
import logging
from decimal import Decimal

import pytest
from django.conf import settings
from pythonjsonlogger.json import JsonFormatter

from orders.domain import OrderRequest
from orders.enums import OrderStatus
from orders.models import Order, Trade
from orders.services import order_place, order_submit
from orders.tests.factories import StrategyFactory
from positions.services import market_prices_update

pytestmark = pytest.mark.django_db

ORDER_KEYS = ("order_id", "strategy_id", "client_order_id")


@pytest.fixture
def filled_order(caplog):
    """A MARKET order placed and filled on the paper broker, with the log lines it made."""
    market_prices_update([("SBIN", "NSE", Decimal("812.35"))])
    strategy = StrategyFactory(name="Logged")
    caplog.set_level(logging.INFO, logger="oms")
    result = order_place(
        OrderRequest(
            strategy_id=strategy.pk,
            client_order_id="log-1",
            symbol="SBIN",
            side="BUY",
            quantity=10,
            order_type="MARKET",
            product="MIS",
        ),
        actor="tester",
    )
    order_submit(result.order_id)
    order = Order.objects.get(pk=result.order_id)
    assert order.status == OrderStatus.FILLED
    return order, [r for r in caplog.records if r.name == "oms.orders"]


def json_line(record: logging.LogRecord) -> dict:
    """The record as the console handler writes it with OMS_LOG_JSON=true."""
    formatter = JsonFormatter(settings.LOGGING["formatters"]["json"]["format"])
    return json.loads(formatter.format(record))


def test_order_lines_carry_the_order_strategy_and_client_order_id(filled_order):
    order, records = filled_order

    messages = [r.getMessage() for r in records]
    assert "order PENDING -> SUBMITTED" in messages
    assert "order SUBMITTED -> OPEN" in messages
    assert "order OPEN -> FILLED" in messages
    trade = Trade.objects.get(order=order)
    assert f"fill {trade.trade_id}: 10 @ 812.35" in messages
    for record in records:
        assert (record.order_id, record.strategy_id, record.client_order_id) == (
            order.pk,
            order.strategy_id,
            "log-1",
        ), record.getMessage()


def test_a_json_line_has_them_as_keys(filled_order):
    order, records = filled_order
    [fill] = [r for r in records if r.getMessage().startswith("fill ")]

    line = json_line(fill)

    assert line["message"] == fill.getMessage()
    assert line["levelname"] == "INFO"
    assert line["name"] == "oms.orders"
    assert {key: line[key] for key in ORDER_KEYS} == {
        "order_id": order.pk,
        "strategy_id": order.strategy_id,
        "client_order_id": "log-1",
    }


def test_every_json_line_about_the_order_has_them(caplog):
    """The console handler as OMS_LOG_JSON=true configures it, on a real placement and fill."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter(settings.LOGGING["formatters"]["json"]["format"]))
    caplog.set_level(logging.INFO, logger="oms")
    logging.getLogger("oms.orders").addHandler(handler)
    try:
        market_prices_update([("SBIN", "NSE", Decimal("812.35"))])
        strategy = StrategyFactory(name="Json")
        result = order_place(
            OrderRequest(
                strategy_id=strategy.pk,
                client_order_id="json-1",
                symbol="SBIN",
                side="SELL",
                quantity=5,
                order_type="MARKET",
                product="MIS",
            ),
            actor="tester",
        )
        order_submit(result.order_id)
    finally:
        logging.getLogger("oms.orders").removeHandler(handler)

    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert len(lines) == 5  # placed (PENDING), SUBMITTED, OPEN, the fill, FILLED
    for line in lines:
        assert {key: line[key] for key in ORDER_KEYS} == {
            "order_id": result.order_id,
            "strategy_id": strategy.pk,
            "client_order_id": "json-1",
        }, line["message"]
