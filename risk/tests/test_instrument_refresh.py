"""The morning refresh of the instrument master from Kite's instruments dump (the fake Kite
serves a small CSV in Kite's format; the SDK parses it)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command

from orders.brokers import KiteBroker
from orders.tests.conftest import kite_account_create
from orders.tests.fake_kite import FakeKiteServer
from risk.instruments import instruments_refresh
from risk.models import Instrument, InstrumentRefresh
from risk.tasks import instruments_refresh_morning

pytestmark = pytest.mark.django_db

DUMP = ("GET", "/instruments")


@pytest.fixture
def kite_account(db):
    return kite_account_create()


@pytest.fixture
def kite_server(settings, kite_account):
    """As the orders tests': a fake Kite and a LIVE desk's account logged in to it."""
    server = FakeKiteServer().start()
    settings.KITE_API_ROOT = server.root
    yield server
    server.stop()
    assert not server.unexpected, f"requests Kite was not expected to get: {server.unexpected}"


def test_the_refresh_applies_the_dump_and_keeps_what_changed(kite_server, kite_account):
    kite_server.reply_csv(*DUMP, "instruments_dump")

    refresh = instruments_refresh(KiteBroker.for_account(kite_account))

    assert refresh.error == ""
    assert refresh.succeeded
    # 20 rows, less the NIFTY 50 index and the MCX future.
    assert refresh.total == 18
    assert (refresh.added, refresh.removed) == (2, 3)
    assert (refresh.lot_size_changed, refresh.tick_size_changed) == (1, 1)
    assert refresh.details["added"] == ["NFO:NIFTY27JANFUT", "NSE:ETERNAL"]
    assert refresh.details["removed"] == [
        {"instrument": "NFO:NIFTY26DEC26500CE", "expired": False},
        {"instrument": "NFO:NIFTY26DEC26500PE", "expired": False},
        {"instrument": "NSE:KOTAKBANK", "expired": False},
    ]
    assert refresh.details["lot_size"] == [
        {"instrument": "NFO:NIFTY26DECFUT", "from": 65, "to": 75}
    ]
    assert refresh.details["tick_size"] == [{"instrument": "NSE:INFY", "from": "0.1", "to": "0.05"}]
    assert Instrument.objects.get(tradingsymbol="NIFTY26DECFUT").lot_size == 75
    assert Instrument.objects.get(tradingsymbol="INFY").tick_size == Decimal("0.05")
    new = Instrument.objects.get(tradingsymbol="NIFTY27JANFUT")
    assert (new.instrument_token, new.lot_size, new.freeze_quantity) == (10389762, 65, 1800)
    assert not Instrument.objects.get(tradingsymbol="KOTAKBANK").tradable
    # Its token went to NIFTY27JANFUT: the old contract's row had to go.
    assert not Instrument.objects.filter(tradingsymbol="NIFTY26DEC26500CE").exists()
    assert not Instrument.objects.filter(exchange="MCX").exists()
    assert not Instrument.objects.filter(tradingsymbol="NIFTY 50").exists()
    assert kite_server.count(*DUMP) == 1


def test_the_same_dump_twice_changes_nothing_the_second_time(kite_server, kite_account):
    kite_server.reply_csv(*DUMP, "instruments_dump")
    broker = KiteBroker.for_account(kite_account)

    instruments_refresh(broker)
    second = instruments_refresh(broker)

    assert (second.added, second.removed, second.lot_size_changed, second.tick_size_changed) == (
        0,
        0,
        0,
        0,
    )
    assert InstrumentRefresh.objects.count() == 2


def test_a_broker_error_changes_nothing_and_is_recorded(kite_server, kite_account):
    kite_server.reply(*DUMP, "error_network", http_status=503)
    before = list(Instrument.objects.values_list("tradingsymbol", "exchange", "tradable"))

    refresh = instruments_refresh(KiteBroker.for_account(kite_account))

    assert "Gateway timed out" in refresh.error
    assert not refresh.succeeded
    assert list(Instrument.objects.values_list("tradingsymbol", "exchange", "tradable")) == before


def test_the_morning_job_refreshes_and_the_command_prints_the_summary(kite_server, capsys):
    kite_server.reply_csv(*DUMP, "instruments_dump")

    instruments_refresh_morning(0)
    call_command("refresh_instruments")

    assert InstrumentRefresh.objects.count() == 2
    out = capsys.readouterr().out
    assert "instrument refresh: 18 instruments: 0 added, 0 removed" in out


def test_without_a_kite_session_the_job_skips_and_the_command_says_why():
    kite_account_create(access_token="")

    instruments_refresh_morning(0)

    assert not InstrumentRefresh.objects.exists()
    with pytest.raises(CommandError, match="no Kite account has a session today"):
        call_command("refresh_instruments")


def test_the_admin_lists_the_refreshes(kite_server, kite_account, admin_client):
    kite_server.reply_csv(*DUMP, "instruments_dump")
    instruments_refresh(KiteBroker.for_account(kite_account))

    response = admin_client.get("/admin/risk/instrumentrefresh/")

    assert response.status_code == 200
    assert b"kite" in response.content
