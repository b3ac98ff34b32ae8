"""Admin URLs with an id that is not a number, or a query parameter that names nothing: a 404
(or the list without the bad filter), never a 500, and nothing is written."""

from __future__ import annotations

import pytest
from django.contrib.admin.models import LogEntry

from orders.models import Order, OrderEvent
from positions.models import ReconciliationIssue

pytestmark = pytest.mark.django_db

ORDER_PAGES = "/admin/orders/order/"
ISSUE_PAGES = "/admin/positions/reconciliationissue/"
FLATTEN = "/admin/risk/killswitch/flatten/"


def written() -> tuple:
    return (
        list(Order.objects.order_by("pk").values_list("pk", "status")),
        OrderEvent.objects.count(),
        list(ReconciliationIssue.objects.order_by("pk").values_list("pk", "resolved")),
        LogEntry.objects.count(),
    )


@pytest.mark.parametrize(
    "url",
    [
        f"{ORDER_PAGES}abc/cancel/",
        f"{ORDER_PAGES}-1/cancel/",
        f"{ORDER_PAGES}1.5/cancel/",
        f"{ORDER_PAGES}%C2%B2/cancel/",  # "²": a digit to str.isdigit, not to int()
        f"{ISSUE_PAGES}abc/resolve/",
        f"{ISSUE_PAGES}abc/auto-fix/",
        f"{ISSUE_PAGES}-1/auto-fix/",
        f"{ORDER_PAGES}99999999999999999999/cancel/",  # beyond bigint
        f"{ISSUE_PAGES}99999999999999999999/resolve/",
    ],
)
@pytest.mark.parametrize("method", ["get", "post"])
def test_an_object_page_with_an_id_that_is_not_one_is_a_404(as_superuser, desk, url, method):
    before = written()

    form = {"reason": "x", "note": "x", "confirmed": "yes"} if method == "post" else None
    response = getattr(as_superuser, method)(url, form)

    assert response.status_code == 404
    assert written() == before


def test_an_object_page_still_answers_for_a_real_id(as_superuser, desk):
    order = desk["working"]

    response = as_superuser.get(f"{ORDER_PAGES}{order.pk}/cancel/")

    assert response.status_code == 200
    assert f"Cancel order {order.pk}?" in response.content.decode()


@pytest.mark.parametrize(
    "strategy", ["abc", "1.5", "-1", "%C2%B2", "99999999999999999999", "999999"]
)
@pytest.mark.parametrize("method", ["get", "post"])
def test_flatten_for_a_strategy_that_is_not_one_is_a_404_never_every_strategy(
    as_risk_officer, desk, strategy, method
):
    # Before, an unknown id fell back to "every strategy": a mistyped link flattened the desk.
    before = written()

    form = {"reason": "end of day"} if method == "post" else None  # a GET's data is its query
    response = getattr(as_risk_officer, method)(f"{FLATTEN}?strategy={strategy}", form)

    assert response.status_code == 404
    assert written() == before


def test_flatten_for_a_real_strategy_lists_its_positions(as_risk_officer, desk):
    response = as_risk_officer.get(f"{FLATTEN}?strategy={desk['momentum'].pk}")

    assert response.status_code == 200
    assert list(response.context["positions"]) == [desk["position"]]


@pytest.mark.parametrize(
    "query",
    [
        "created_at__year=2025&created_at__month=13",
        "created_at__year=2025&created_at__month=2&created_at__day=31",
        "created_at__year=99999999",
        "created_at__year=2025&created_at__month=%C2%B2",
        "q=%C2%B2",
    ],
)
def test_a_list_with_an_impossible_date_or_search_is_never_a_500(as_superuser, desk, query):
    response = as_superuser.get(f"{ORDER_PAGES}?{query}")

    # Django's own answer to a filter it cannot apply: the list again, flagged "?e=1".
    assert response.status_code in (200, 302)
    if response.status_code == 302:
        assert response["Location"] == f"{ORDER_PAGES}?e=1"


def test_a_trade_search_for_a_superscript_digit_finds_nothing(as_superuser, desk):
    response = as_superuser.get("/admin/orders/trade/?q=%C2%B2")

    assert response.status_code == 200
    assert response.context["cl"].result_count == 0
