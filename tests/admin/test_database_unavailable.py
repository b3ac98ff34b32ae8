"""The back office when PostgreSQL stops answering: a 503 page to reload, never a 500."""

from __future__ import annotations

import pytest
from django.db import InterfaceError, OperationalError

from orders.admin import OrderAdmin

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("error", [OperationalError, InterfaceError])
def test_a_lost_database_is_a_503_page_to_reload(as_risk_officer, monkeypatch, error):
    def unavailable(self, request):
        raise error("connection to server was lost")

    monkeypatch.setattr(OrderAdmin, "get_queryset", unavailable)

    response = as_risk_officer.get("/admin/orders/order/")

    assert response.status_code == 503
    assert response["Retry-After"] == "2"
    assert b"The database is not answering" in response.content


def test_other_errors_are_not_disguised(as_risk_officer, monkeypatch):
    def broken(self, request):
        raise ValueError("a bug")

    monkeypatch.setattr(OrderAdmin, "get_queryset", broken)

    with pytest.raises(ValueError, match="a bug"):
        as_risk_officer.get("/admin/orders/order/")
