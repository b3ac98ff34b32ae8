"""The one error shape, for every kind of failure (unit tests of the exception handler)."""

from __future__ import annotations

import pytest
from django.http import Http404
from rest_framework import exceptions

from omsproject.api.exceptions import _flatten, api_exception_handler
from orders.domain import OrderRequestError, Violation
from orders.services import OrderRefused, OrderThrottled


def handle(error):
    return api_exception_handler(error, {"view": None, "request": None})


def test_nested_field_errors_are_flattened_to_dotted_names():
    detail = {
        "prices": [{}, {"price": ["must be positive."], "symbol": ["bad.", "worse."]}],
        "items": {"non_field_errors": ["empty."]},
        "non_field_errors": ["whole request."],
    }
    assert _flatten(detail) == {
        "prices.1.price": "must be positive.",
        "prices.1.symbol": "bad. worse.",
        "items": "empty.",
        "non_field_errors": "whole request.",
    }


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (Http404(), 404, "not_found"),
        (exceptions.NotAuthenticated(), 401, "not_authenticated"),
        (exceptions.MethodNotAllowed("PUT"), 405, "method_not_allowed"),
        (exceptions.ParseError(), 400, "parse_error"),
        (OrderRequestError({"quantity": "quantity 0: must be at least 1"}), 400, "invalid_order"),
        (
            OrderRefused([Violation("strategy_paused", "strategy", "strategy X is PAUSED")]),
            422,
            "risk_rejected",
        ),
        (
            OrderRefused([Violation("kill_switch_halted", "kill_switch", "kill switch HALTED")]),
            423,
            "kill_switch_engaged",
        ),
        (OrderThrottled("more than 10 orders a second", retry_after=0.3), 429, "order_rate"),
    ],
)
def test_every_error_has_the_shape(error, status, code):
    response = handle(error)

    assert response.status_code == status
    assert set(response.data["error"]) >= {"code", "message", "fields"}
    assert response.data["error"]["code"] == code


def test_a_bug_is_a_500_in_the_same_shape_never_a_page(caplog):
    response = handle(RuntimeError("boom"))

    assert response.status_code == 500
    assert response.data == {
        "error": {
            "code": "server_error",
            "message": "internal error; it has been logged",
            "fields": {},
        }
    }
    assert "boom" in caplog.text


def test_throttled_order_says_when_to_retry():
    response = handle(OrderThrottled("more than 10 orders a second", retry_after=0.3))

    assert response["Retry-After"] == "1"
    assert response.data["error"]["retry_after"] == 1
