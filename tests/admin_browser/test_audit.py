"""The audit lists in a real browser: a risk officer reads today's order events, exports them to
CSV (the download holds every row the filters select) and reads the admin's change log; a viewer
reads the same lists without the export. Screenshots: artifacts/screenshots/audit-*.png."""

from __future__ import annotations

import csv
import io

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from orders.models import OrderEvent

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_risk_officer_exports_todays_order_events_and_reads_the_change_log(
    page, live_server, people, desk, log_in, shot
):
    log_in(people["Risk officer"])
    # A change made in the admin today: cancelling the INFY order (never sent: at once).
    infy = desk["orders"]["INFY"]
    page.goto(f"{live_server.url}/admin/orders/order/{infy.pk}/cancel/")
    page.fill("#id_reason", "duplicate signal")
    page.click("#confirm-cancel")
    expect(page.locator(".messagelist")).to_contain_text("Cancel requested for 1 order")

    page.goto(f"{live_server.url}/admin/orders/orderevent/")
    page.click("#changelist-filter >> text=Today")
    today = timezone.localdate().isoformat()
    expect(page).to_have_url(
        f"{live_server.url}/admin/orders/orderevent/?created_at__since={today}&created_at__until={today}"
    )
    events_today = OrderEvent.objects.filter(created_at__date=timezone.localdate()).count()
    expect(page.locator("#result_list tbody tr")).to_have_count(events_today)
    expect(page.locator("#result_list")).to_contain_text("duplicate signal")
    shot("audit-1-order-events-today")

    with page.expect_download() as download_info:
        page.click("text=Export CSV")
    download = download_info.value
    assert download.suggested_filename == f"order-events-{timezone.localdate():%Y%m%d}.csv"
    rows = list(csv.DictReader(io.StringIO(download.path().read_text(encoding="utf-8"))))
    assert len(rows) == events_today
    cancel = next(row for row in rows if row["reason"] == "duplicate signal")
    assert (cancel["actor"], cancel["to_status"], cancel["symbol"]) == ("rita", "CANCELLED", "INFY")

    page.goto(f"{live_server.url}/admin/admin/logentry/")
    page.click("#changelist-filter >> text=Today")
    expect(page.locator("#result_list tbody tr")).to_have_count(1)
    expect(page.locator("#result_list")).to_contain_text("rita")
    expect(page.locator("#result_list")).to_contain_text("duplicate signal")
    expect(page.locator("#result_list")).to_contain_text("Changed")
    shot("audit-2-change-log")


def test_a_viewer_reads_the_audit_lists_without_the_export(
    page, live_server, people, desk, log_in, shot
):
    log_in(people["Viewer"])
    page.goto(f"{live_server.url}/admin/risk/killswitchevent/")
    expect(page.locator("#changelist-filter")).to_contain_text("Past 7 days")
    page.goto(f"{live_server.url}/admin/orders/strategyevent/")
    expect(page.locator("#result_list tbody tr").first).to_be_visible()
    expect(page.locator("text=Export CSV")).to_have_count(0)
    shot("audit-3-viewer-strategy-events")
    response = page.goto(f"{live_server.url}/admin/orders/strategyevent/export.csv")
    assert response.status == 403
