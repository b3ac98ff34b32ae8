"""Orders in the admin: a list that stays cheap on any table size, a read-only detail with its
history and fills, cancels through order_cancel after a confirmation page, CSV export."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import pytest
from django.contrib.admin.models import CHANGE, LogEntry
from django.db import connection
from django.test.utils import CaptureQueriesContext

from omsproject.admin_tools import LargeTablePaginator
from orders.admin import OrderAdmin
from orders.enums import EventSource, OrderStatus
from orders.models import Order, OrderEvent
from orders.tests.factories import OrderEventFactory, OrderFactory, StrategyFactory, TradeFactory

pytestmark = pytest.mark.django_db

LIST = "/admin/orders/order/"


def queries(client, url: str, **params) -> tuple[int, list[str]]:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url, params)
    assert response.status_code == 200
    return len(captured), [q["sql"] for q in captured]


def orders(count: int, **fields):
    strategy = fields.pop("strategy", None) or StrategyFactory()
    return [OrderFactory(strategy=strategy, **fields) for _ in range(count)]


# --- the list ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "params",
    [{}, {"status__exact": "PENDING"}, {"q": "RELIANCE"}, {"created_at__year": "2026"}],
    ids=["unfiltered", "status", "search", "year"],
)
def test_the_list_costs_the_same_for_5_and_50_orders(as_viewer, params):
    orders(5)
    as_viewer.get(LIST)  # the session's first request touches it
    few, _ = queries(as_viewer, LIST, **params)
    orders(45)
    many, _ = queries(as_viewer, LIST, **params)

    assert few == many
    # session, user, permissions, kill switch board, capped count, page, strategies for the
    # filter, and the oldest order for the calendar
    assert many <= 10


def test_the_list_never_counts_the_whole_table(as_viewer):
    orders(3)
    _, sql = queries(as_viewer, LIST)

    counts = [q for q in sql if "COUNT(" in q.upper()]
    assert counts, "the capped count runs"
    assert all("LIMIT" in q.upper() for q in counts), counts
    drilldowns = [q for q in sql if "DISTINCT" in q.upper() and 'FROM "orders"' in q]
    assert not drilldowns, "no date drill-down over the table"


def test_a_capped_list_says_so(as_viewer, monkeypatch):
    monkeypatch.setattr(LargeTablePaginator, "max_count", 10)
    monkeypatch.setattr(OrderAdmin, "list_per_page", 5)
    orders(12)

    page = as_viewer.get(LIST).content.decode()

    assert "10+ orders" in page
    assert "Select all 10+" in page


def test_unfiltered_the_size_is_postgres_estimate(as_viewer, monkeypatch):
    monkeypatch.setattr(LargeTablePaginator, "max_count", 10)
    orders(25)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE orders")

    page = as_viewer.get(LIST).content.decode()

    assert "10+ of about 25 orders" in page


def test_search_matches_symbol_ids_and_numbers_exactly(as_viewer):
    strategy = StrategyFactory()
    infy = OrderFactory(strategy=strategy, symbol="INFY", client_order_id="momo-0001")
    tcs = OrderFactory(strategy=strategy, symbol="TCS", status=OrderStatus.OPEN)
    Order.objects.filter(pk=tcs.pk).update(broker_order_id="2411000042")

    def found(term):
        response = as_viewer.get(LIST, {"q": term})
        return {o.pk for o in response.context["cl"].result_list}

    assert found("infy") == {infy.pk}
    assert found("momo-0001") == {infy.pk}
    assert found("2411000042") == {tcs.pk}
    assert found(str(tcs.pk)) == {tcs.pk}
    assert found("INF") == set()  # exact, so an index answers


def test_filters_and_the_calendar(as_viewer):
    strategy = StrategyFactory()
    open_order = OrderFactory(strategy=strategy, status=OrderStatus.OPEN)
    OrderFactory(strategy=strategy)

    response = as_viewer.get(LIST, {"status__exact": "OPEN"})
    assert [o.pk for o in response.context["cl"].result_list] == [open_order.pk]

    year = open_order.created_at.year
    response = as_viewer.get(LIST, {"created_at__year": year})
    assert len(response.context["cl"].result_list) == 2
    calendar = response.context["calendar"]
    assert calendar["back"]["title"] == "All dates"
    assert calendar["choices"][0]["title"] == f"January {year}"  # months from the calendar

    response = as_viewer.get(LIST, {"created_at__year": year - 1})
    assert len(response.context["cl"].result_list) == 0


def test_the_list_shows_status_side_and_fill_at_a_glance(as_viewer):
    order = OrderFactory(status=OrderStatus.OPEN, quantity=10, side="SELL")
    TradeFactory(order=order, quantity=4, price=Decimal("2450.50"))
    Order.objects.filter(pk=order.pk).update(
        filled_quantity=4, average_price=Decimal("2450.5"), status=OrderStatus.PARTIALLY_FILLED
    )

    page = as_viewer.get(LIST).content.decode()

    assert "oms-badge--teal" in page and "Partially filled" in page
    assert "oms-badge--sell" in page
    assert "4 / 10" in page
    assert "2,450.50" in page


# --- the detail ----------------------------------------------------------------------------


def test_the_detail_costs_the_same_with_more_events_and_trades(as_viewer):
    few = OrderFactory(status=OrderStatus.OPEN, quantity=100)
    many = OrderFactory(status=OrderStatus.OPEN, quantity=100)
    OrderEventFactory(order=few)
    TradeFactory(order=few, quantity=1)
    for _ in range(20):
        OrderEventFactory(order=many)
        TradeFactory(order=many, quantity=1)
    as_viewer.get(f"{LIST}{few.pk}/change/")  # content types are cached after the first page

    small, _ = queries(as_viewer, f"{LIST}{few.pk}/change/")
    large, _ = queries(as_viewer, f"{LIST}{many.pk}/change/")

    assert small == large
    assert large <= 12


def test_the_detail_is_read_only_with_history_and_charges(as_risk_officer):
    order = OrderFactory(status=OrderStatus.OPEN)
    OrderEventFactory(order=order, reason="order received")
    TradeFactory(order=order, quantity=5, price=Decimal("2450.50"), brokerage=Decimal("20.00"))

    response = as_risk_officer.get(f"{LIST}{order.pk}/change/")
    page = response.content.decode()

    assert response.context["title"].startswith("View order")
    assert 'name="symbol"' not in page and 'name="status"' not in page
    assert "order received" in page  # the history inline
    assert "20.00" in page  # the trade's brokerage
    assert 'id="cancel-order"' in page
    assert as_risk_officer.post(f"{LIST}{order.pk}/change/", {"symbol": "X"}).status_code == 403


def test_nobody_deletes_orders_even_a_superuser(as_superuser):
    order = OrderFactory()

    assert as_superuser.get(f"{LIST}{order.pk}/delete/").status_code == 403
    actions = as_superuser.get(LIST).context["action_form"].fields["action"].choices
    assert "delete_selected" not in dict(actions)
    assert Order.objects.filter(pk=order.pk).exists()


# --- cancelling ----------------------------------------------------------------------------


def post_action(client, action: str, ids, **extra):
    return client.post(LIST, {"action": action, "_selected_action": ids, **extra})


def test_cancel_shows_what_will_be_cancelled_and_changes_nothing(as_risk_officer):
    pending = OrderFactory()
    filled = OrderFactory(status=OrderStatus.CANCELLED)

    response = post_action(as_risk_officer, "cancel_orders", [pending.pk, filled.pk])

    assert response.status_code == 200
    assert [o.pk for o in response.context["orders"]] == [pending.pk]
    assert response.context["skipped"] == 1
    pending.refresh_from_db()
    assert pending.status == OrderStatus.PENDING


def test_confirmed_cancel_goes_through_the_service_and_is_audited(as_risk_officer, risk_officer):
    pending = OrderFactory()
    working = OrderFactory(status=OrderStatus.OPEN, broker_order_id="B-1")

    response = post_action(
        as_risk_officer,
        "cancel_orders",
        [pending.pk, working.pk],
        confirmed="yes",
        reason="fat finger",
    )

    assert response.status_code == 302
    pending.refresh_from_db()
    working.refresh_from_db()
    assert pending.status == OrderStatus.CANCELLED  # never sent: cancelled at once
    assert working.status == OrderStatus.CANCEL_PENDING  # the broker is asked by a job
    for order in (pending, working):
        event = OrderEvent.objects.filter(order=order).latest("id")
        assert (event.source, event.actor, event.reason) == (
            EventSource.ADMIN,
            "rita",
            "fat finger",
        )
        entry = LogEntry.objects.get(object_id=str(order.pk), content_type__model="order")
        assert (entry.user, entry.action_flag) == (risk_officer, CHANGE)
        assert "fat finger" in entry.get_change_message()


def test_one_order_is_cancelled_from_its_page(as_risk_officer):
    order = OrderFactory()
    url = f"{LIST}{order.pk}/cancel/"

    confirmation = as_risk_officer.get(url)
    assert confirmation.status_code == 200
    assert "Yes, cancel 1 order" in confirmation.content.decode()

    response = as_risk_officer.post(url, {"reason": ""})

    assert response.status_code == 302
    order.refresh_from_db()
    assert order.status == OrderStatus.CANCELLED
    assert order.events.latest("id").reason == "cancelled in the admin by rita"


def test_a_finished_order_has_nothing_to_cancel(as_risk_officer):
    order = OrderFactory(status=OrderStatus.REJECTED)

    response = as_risk_officer.post(f"{LIST}{order.pk}/cancel/", {"reason": "x"})

    assert response.status_code == 302
    order.refresh_from_db()
    assert order.status == OrderStatus.REJECTED


def test_too_many_at_once_is_the_kill_switch_job(as_risk_officer, monkeypatch):
    monkeypatch.setattr("orders.admin.orders.MAX_CANCEL", 2)
    ids = [o.pk for o in orders(3)]

    response = post_action(as_risk_officer, "cancel_orders", ids, confirmed="yes")

    assert response.status_code == 302
    assert Order.objects.filter(status=OrderStatus.CANCELLED).count() == 0


@pytest.mark.parametrize("who", ["as_operator", "as_viewer"])
def test_only_risk_officers_cancel(who, request):
    client = request.getfixturevalue(who)
    order = OrderFactory()

    choices = dict(client.get(LIST).context["action_form"].fields["action"].choices)
    assert "cancel_orders" not in choices
    post_action(client, "cancel_orders", [order.pk], confirmed="yes")
    assert client.get(f"{LIST}{order.pk}/cancel/").status_code == 403
    assert 'id="cancel-order"' not in client.get(f"{LIST}{order.pk}/change/").content.decode()
    order.refresh_from_db()
    assert order.status == OrderStatus.PENDING


# --- export --------------------------------------------------------------------------------


def test_export_streams_the_selected_orders_as_csv(as_viewer):
    strategy = StrategyFactory(name="Momentum")
    chosen = OrderFactory(strategy=strategy, symbol="INFY", tag="=cmd()")
    OrderFactory(strategy=strategy)

    response = post_action(as_viewer, "export_csv", [chosen.pk])

    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert len(rows) == 1
    row = rows[0]
    assert (row["id"], row["strategy"], row["symbol"], row["price"]) == (
        str(chosen.pk),
        "Momentum",
        "INFY",
        "2450.5000",
    )
    assert row["tag"] == "'=cmd()"  # never a formula in a spreadsheet
