"""One exit per position (positions.exits.position_close, the one owner of exits): whichever
paths ask to close a position — the stop-loss monitor, the MIS square-off, a flatten from the
admin or the command — one exit works at a time, sliced within the freeze quantity, and an
exit that failed is reported as failed.

The review's case: a long 10 whose stop-loss was crossed, then "flatten": the monitor placed
SELL 10, the flatten another SELL 10; both filled and the position flipped to short 10.
"""

from __future__ import annotations

import contextlib
import io
import itertools
from decimal import Decimal

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.db import IntegrityError, transaction
from django.test import Client

from omsproject.testing.threads import run_together
from orders.enums import OrderStatus
from orders.models import Order
from orders.tests.factories import OrderFactory, StrategyFactory
from positions.exits import ExitKind, exit_slices, position_close, positions_check_exits
from positions.exits import positions_flatten as flatten
from positions.services import market_prices_update, positions_mark
from positions.tests.factories import PositionFactory
from risk.kill_switch import kill_switch_set
from risk.models import Instrument, KillSwitchState
from risk.monitors import square_off_mis


def stop_loss_monitor():
    return positions_check_exits()


def mis_square_off():
    return square_off_mis()


def admin_flatten():
    return flatten(actor="asha", reason="desk flattens")


def admin_flatten_page():
    """A risk officer's POST on the kill switch page's flatten, through the HTTP client."""
    staff, _ = User.objects.get_or_create(
        username="flattening-officer", defaults={"is_staff": True, "is_superuser": True}
    )
    browser = Client()
    browser.force_login(staff)
    answer = browser.post("/admin/risk/killswitch/flatten/", {"reason": "desk flattens"})
    assert answer.status_code == 302, answer.status_code


def flatten_command():
    # The command refuses (CommandError) when an exit failed; the test looks at the orders.
    with contextlib.suppress(CommandError):
        call_command("flatten", reason="operator flattens", stdout=io.StringIO())


PATHS = {
    "stop-loss monitor": stop_loss_monitor,
    "MIS square-off": mis_square_off,
    "admin flatten": admin_flatten,
    "admin flatten page": admin_flatten_page,
    "flatten command": flatten_command,
}


def long_ten_below_its_stop_loss():
    strategy = StrategyFactory(name="Exits")
    position = PositionFactory(
        strategy=strategy,
        symbol="RELIANCE",
        quantity=10,
        average_price=Decimal("2000.00"),
        stop_loss=Decimal("1950.00"),
    )
    market_prices_update([("RELIANCE", "NSE", Decimal("1940.00"))])
    positions_mark([("RELIANCE", "NSE", Decimal("1940.00"))])
    return position


def exit_orders(position) -> list[Order]:
    return list(Order.objects.filter(closes_position=position).order_by("pk"))


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("first", "second"),
    [pytest.param(a, b, id=f"{a} then {b}") for a, b in itertools.product(PATHS, repeat=2)],
)
def test_two_paths_one_after_the_other_make_one_exit(first, second):
    position = long_ten_below_its_stop_loss()

    PATHS[first]()
    PATHS[second]()

    orders = exit_orders(position)
    assert len({order.exit_key for order in orders}) == 1
    assert sum(order.quantity for order in orders) == 10  # never more than the position
    assert all(order.side == "SELL" and order.status == OrderStatus.PENDING for order in orders)
    position.refresh_from_db()
    assert position.exit_order == orders[0]


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
def test_every_path_at_the_same_instant_makes_one_exit():
    position = long_ten_below_its_stop_loss()

    outcomes = run_together([*PATHS.values(), *PATHS.values()])

    assert [error for _, error in outcomes if error is not None] == []
    orders = exit_orders(position)
    assert len(orders) == 1
    assert orders[0].quantity == 10


@pytest.mark.django_db
def test_a_second_exit_is_answered_with_the_one_working():
    position = long_ten_below_its_stop_loss()
    first = position_close(position, kind=ExitKind.STOP_LOSS, actor="monitor")

    second = position_close(position, kind=ExitKind.FLATTEN, actor="asha")

    assert [r.order_id for r in first.orders] == [o.pk for o in second.working]
    assert not second.orders and not second.failed
    assert "an exit is working already" in second.describe()


@pytest.mark.django_db
def test_the_database_refuses_a_second_working_exit():
    position = long_ten_below_its_stop_loss()
    position_close(position, kind=ExitKind.STOP_LOSS, actor="monitor")

    with pytest.raises(IntegrityError, match=r"exit sl-.* is working"), transaction.atomic():
        OrderFactory(
            strategy=position.strategy,
            symbol="RELIANCE",
            side="SELL",
            quantity=10,
            closes_position=position,
            exit_key="flat-by-hand",
        )


@pytest.mark.django_db
def test_an_exit_that_died_is_followed_by_the_next_one():
    position = long_ten_below_its_stop_loss()
    kill_switch_set(KillSwitchState.HALTED, reason="test", actor="asha")

    refused = position_close(position, kind=ExitKind.FLATTEN, actor="asha")

    assert refused.failed
    assert refused.orders[0].violations[0].code == "kill_switch_halted"
    kill_switch_set(KillSwitchState.REDUCING, reason="let exits out", actor="asha")
    again = position_close(position, kind=ExitKind.FLATTEN, actor="asha")
    assert not again.failed
    assert [o.client_order_id for o in exit_orders(position)] == [
        f"flat-{position.pk}-1",
        f"flat-{position.pk}-2",
    ]


@pytest.mark.django_db
def test_monitors_leave_positions_of_a_halted_strategy_and_say_so():
    position = long_ten_below_its_stop_loss()
    position.product = "MIS"
    position.save()
    kill_switch_set(KillSwitchState.HALTED, strategy=position.strategy, reason="t", actor="asha")

    assert positions_check_exits() == []
    plan = square_off_mis()

    assert plan.held == [position]
    assert exit_orders(position) == []
    with pytest.raises(CommandError, match=r"1 position left open"):
        call_command("square_off_mis", stdout=io.StringIO())


# --- slices within the freeze quantity -----------------------------------------------------------


@pytest.mark.django_db
def test_an_exit_above_the_freeze_quantity_is_sliced_in_whole_lots(capsys):
    nifty = Instrument.objects.get(tradingsymbol="NIFTY26DECFUT", exchange="NFO")
    assert (nifty.lot_size, nifty.freeze_quantity) == (65, 1800)
    market_prices_update([("NIFTY26DECFUT", "NFO", Decimal("26000.00"))])
    position = PositionFactory(
        strategy=StrategyFactory(name="Index"),
        symbol="NIFTY26DECFUT",
        exchange="NFO",
        product="NRML",
        quantity=1820,
        average_price=Decimal("26010.00"),
    )

    call_command("flatten", reason="end of day")

    orders = exit_orders(position)
    assert [o.quantity for o in orders] == [1755, 65]  # 27 lots, then 1
    assert {o.exit_key for o in orders} == {f"flat-{position.pk}-1"}
    assert [o.client_order_id for o in orders] == [
        f"flat-{position.pk}-1.1",
        f"flat-{position.pk}-1.2",
    ]
    assert all(o.status == OrderStatus.PENDING for o in orders)
    assert "flatten exit placed" in capsys.readouterr().out


def test_slices_keep_to_the_freeze_quantity_and_whole_lots():
    nifty = Instrument(lot_size=65, freeze_quantity=1800)
    assert exit_slices(1820, nifty) == [1755, 65]
    assert exit_slices(1755, nifty) == [1755]
    assert exit_slices(3640, nifty) == [1755, 1755, 130]
    assert exit_slices(500, Instrument(lot_size=1, freeze_quantity=None)) == [500]
    assert exit_slices(10, None) == [10]


@pytest.mark.django_db
def test_a_failed_exit_makes_the_command_fail():
    position = long_ten_below_its_stop_loss()
    kill_switch_set(KillSwitchState.HALTED, reason="test", actor="asha")

    with pytest.raises(CommandError, match=r"1 exit failed"):
        call_command("flatten", reason="try anyway", stdout=io.StringIO())

    (order,) = exit_orders(position)
    assert order.status == OrderStatus.REJECTED
