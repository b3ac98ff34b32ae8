"""The pre-trade validator, check by check: each with an accepted and a refused case at its
boundary. Every test calls ``validate_order`` as order_place does (inside the test's
transaction); the instruments are the sample master loaded for every test."""

from datetime import datetime
from decimal import Decimal

import pytest

from orders.enums import OrderStatus, StrategyMode, StrategyStatus
from orders.tests.conftest import kite_account_create
from orders.tests.factories import OrderFactory, StrategyFactory, TradeFactory
from positions.services import market_prices_update
from positions.tests.factories import PositionFactory
from risk.calendar import IST
from risk.limits import limits_for
from risk.models import Instrument, KillSwitchScope, KillSwitchState
from risk.tests.checks import validate_order
from risk.tests.factories import (
    KillSwitchEventFactory,
    MarketHolidayFactory,
    limits_set,
    order_request,
)

pytestmark = pytest.mark.django_db

OPTION = {"symbol": "NIFTY26DEC26000CE", "exchange": "NFO", "product": "NRML", "price": "120.05"}
FUTURE = {"symbol": "NIFTY26DECFUT", "exchange": "NFO", "product": "NRML", "price": "26000.00"}


def codes(strategy, order=None, **request) -> list[str]:
    violations = validate_order(order_request(strategy, **request), strategy=strategy, order=order)
    return [violation.code for violation in violations]


def last_price(price: str, symbol: str = "RELIANCE", exchange: str = "NSE") -> None:
    market_prices_update([(symbol, exchange, Decimal(price))])


def order_in(strategy, status: str, **fields):
    """An order of 10 RELIANCE @ 2450.50 in ``status``, filled as that status requires."""
    if status == OrderStatus.FILLED:
        fields.setdefault("filled_quantity", fields.get("quantity", 10))
    if fields.get("filled_quantity"):
        fields.setdefault("average_price", Decimal("2450.50"))
    return OrderFactory(strategy=strategy, status=status, **fields)


def holding(strategy, quantity: int, symbol: str = "RELIANCE", **fields):
    fields.setdefault("average_price", Decimal("2000.00"))
    return PositionFactory(strategy=strategy, symbol=symbol, quantity=quantity, **fields)


def test_a_plain_order_passes_every_check(strategy):
    assert codes(strategy) == []


def test_every_violation_is_reported_at_once_each_naming_its_field(strategy):
    limits_set(max_order_quantity=50)
    last_price("120.00", "NIFTY26DEC26000CE", "NFO")

    violations = validate_order(
        order_request(
            strategy,
            **{**OPTION, "price": None},
            order_type="SL-M",
            quantity=64,
            trigger_price="120.03",
        ),
        strategy=strategy,
    )

    assert [(v.code, v.field) for v in violations] == [
        ("lot_size", "quantity"),
        ("tick_size", "trigger_price"),
        ("sl_m_option", "order_type"),
        ("max_order_quantity", "quantity"),
    ]
    assert violations[0].message == "quantity 64: must be a multiple of the lot size 65"
    assert violations[1].message == "trigger_price 120.03: must be a multiple of the tick size 0.05"


# --- the strategy's status ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (StrategyStatus.ACTIVE, []),
        (StrategyStatus.INACTIVE, ["strategy_inactive"]),
        (StrategyStatus.ERROR, ["strategy_inactive"]),
    ],
)
def test_only_a_strategy_that_may_trade_passes(status, expected):
    strategy = StrategyFactory(status=status)

    assert codes(strategy) == expected


@pytest.mark.parametrize(
    ("held", "side", "quantity", "expected"),
    [
        pytest.param(10, "SELL", 10, [], id="long-closed-whole"),
        pytest.param(10, "SELL", 4, [], id="long-reduced"),
        pytest.param(-10, "BUY", 10, [], id="short-closed-whole"),
        pytest.param(10, "SELL", 11, ["strategy_paused"], id="long-flipped-short"),
        pytest.param(10, "BUY", 1, ["strategy_paused"], id="long-added-to"),
        pytest.param(0, "SELL", 1, ["strategy_paused"], id="nothing-held"),
    ],
)
def test_a_paused_strategy_may_only_reduce(held, side, quantity, expected):
    strategy = StrategyFactory(status=StrategyStatus.PAUSED)
    if held:
        holding(strategy, held)

    assert codes(strategy, side=side, quantity=quantity) == expected


def test_a_position_in_another_product_is_not_reduced(strategy):
    strategy.status = StrategyStatus.PAUSED
    strategy.save()
    holding(strategy, 10, product="CNC")

    assert codes(strategy, side="SELL", product="MIS") == ["strategy_paused"]
    assert codes(strategy, side="SELL", product="CNC") == []


# --- the kill switch ---------------------------------------------------------------------------


def test_halted_refuses_every_order_even_a_reducing_one(strategy):
    holding(strategy, 10)
    KillSwitchEventFactory(state=KillSwitchState.HALTED)

    assert codes(strategy) == ["kill_switch_halted"]
    assert codes(strategy, side="SELL") == ["kill_switch_halted"]


def test_reducing_lets_only_reducing_orders_pass(strategy):
    holding(strategy, 10)
    KillSwitchEventFactory(state=KillSwitchState.REDUCING)

    assert codes(strategy, side="SELL", quantity=10) == []
    assert codes(strategy, side="SELL", quantity=11) == ["kill_switch_reducing"]
    assert codes(strategy, side="BUY", quantity=1) == ["kill_switch_reducing"]


def test_exits_already_working_count_against_the_position_they_reduce(strategy):
    """Two exits that each fit a long of 10 would flip it to a short if both filled."""
    holding(strategy, 10)
    KillSwitchEventFactory(state=KillSwitchState.REDUCING)
    working_exit = order_in(strategy, OrderStatus.OPEN, side="SELL", quantity=6)

    assert codes(strategy, side="SELL", quantity=4) == []
    assert codes(strategy, side="SELL", quantity=5) == ["kill_switch_reducing"]
    # Modifying the working exit itself is judged without it.
    assert codes(strategy, working_exit, side="SELL", quantity=10) == []
    # Of a partly filled exit, only what is still unfilled waits: 6 + (5 - 2) of the 10.
    order_in(strategy, OrderStatus.PARTIALLY_FILLED, side="SELL", quantity=5, filled_quantity=2)
    assert codes(strategy, side="SELL", quantity=1) == []
    assert codes(strategy, side="SELL", quantity=2) == ["kill_switch_reducing"]
    # An exit the desk is cancelling does not hold the room, nor do other instruments' orders.
    order_in(strategy, OrderStatus.CANCEL_PENDING, side="SELL", quantity=4)
    order_in(strategy, OrderStatus.OPEN, side="SELL", quantity=9, symbol="INFY")
    assert codes(strategy, side="SELL", quantity=1) == []


@pytest.mark.parametrize("limit", ["max_order_value", "max_strategy_exposure"])
def test_an_order_that_cannot_be_valued_is_refused_while_a_value_limit_is_set(strategy, limit):
    limits_set(strategy, **{limit: Decimal("1000000.00")})

    assert codes(strategy, order_type="MARKET") == ["value_unknown"]
    last_price("2450.00")
    assert codes(strategy, order_type="MARKET") == []


def test_an_order_that_cannot_be_valued_passes_without_value_limits_or_when_it_reduces(strategy):
    assert codes(strategy, order_type="MARKET") == []
    limits_set(max_total_exposure=Decimal("1000000.00"))
    holding(strategy, 10)
    assert codes(strategy, order_type="MARKET", side="SELL", quantity=10) == []
    assert codes(strategy, order_type="MARKET", side="BUY", quantity=10) == ["value_unknown"]


def test_a_strategys_own_switch_leaves_the_others_trading(strategy):
    other = StrategyFactory()
    KillSwitchEventFactory(scope=KillSwitchScope.STRATEGY, strategy=strategy)

    assert codes(strategy) == ["kill_switch_halted"]
    assert codes(other) == []


def test_the_stricter_of_the_global_and_the_strategys_switch_is_in_force(strategy):
    holding(strategy, 10)
    KillSwitchEventFactory(state=KillSwitchState.REDUCING)
    KillSwitchEventFactory(scope=KillSwitchScope.STRATEGY, strategy=strategy)

    assert codes(strategy, side="SELL") == ["kill_switch_halted"]


def test_the_latest_change_of_the_switch_is_in_force(strategy):
    KillSwitchEventFactory(state=KillSwitchState.HALTED)
    KillSwitchEventFactory(state=KillSwitchState.ACTIVE, reason="checked, all clear")

    assert codes(strategy) == []


# --- the instrument: master, lot, freeze, tick, order type ---------------------------------------


def test_a_symbol_missing_from_the_instrument_master_is_refused(strategy):
    assert codes(strategy, symbol="NOSUCHSTOCK") == ["instrument_unknown"]
    # RELIANCE is listed on BSE too, TCS only on NSE.
    assert codes(strategy, symbol="RELIANCE", exchange="BSE") == []
    assert codes(strategy, symbol="TCS", exchange="BSE", price="3500.00") == ["instrument_unknown"]


def test_an_instrument_that_is_not_tradable_is_refused(strategy):
    Instrument.objects.filter(tradingsymbol="RELIANCE", exchange="NSE").update(tradable=False)

    assert codes(strategy) == ["instrument_not_tradable"]


@pytest.mark.parametrize(
    ("quantity", "expected"),
    [(65, []), (130, []), (64, ["lot_size"]), (66, ["lot_size"]), (1, ["lot_size"])],
)
def test_nifty_options_trade_in_lots_of_65(strategy, quantity, expected):
    assert codes(strategy, **OPTION, quantity=quantity) == expected


@pytest.mark.parametrize(
    ("symbol", "quantity", "expected"),
    [
        pytest.param("NIFTY26DEC26000CE", 65 * 27, [], id="nifty-1755"),
        pytest.param("NIFTY26DEC26000CE", 65 * 28, ["freeze_quantity"], id="nifty-1820"),
        pytest.param("BANKNIFTY26DEC59000PE", 30 * 20, [], id="banknifty-600"),
        pytest.param("BANKNIFTY26DEC59000PE", 30 * 21, ["freeze_quantity"], id="banknifty-630"),
    ],
)
def test_one_order_stays_within_the_freeze_quantity(strategy, symbol, quantity, expected):
    assert codes(strategy, **{**OPTION, "symbol": symbol}, quantity=quantity) == expected


def test_the_freeze_quantity_itself_passes_one_more_does_not(strategy):
    # A lot of 1 isolates the freeze limit (1,800 is not a multiple of NIFTY's 65).
    Instrument.objects.filter(tradingsymbol="NIFTY26DEC26000CE").update(lot_size=1)

    assert codes(strategy, **OPTION, quantity=1800) == []
    assert codes(strategy, **OPTION, quantity=1801) == ["freeze_quantity"]


@pytest.mark.parametrize(
    ("request_fields", "expected"),
    [
        pytest.param({"price": "2450.10"}, [], id="reliance-on-0.10"),
        pytest.param({"price": "2450.05"}, ["tick_size"], id="reliance-off-0.10"),
        pytest.param({"symbol": "SBIN", "price": "812.35"}, [], id="sbin-on-0.05"),
        pytest.param({"symbol": "SBIN", "price": "812.33"}, ["tick_size"], id="sbin-off-0.05"),
        pytest.param({**OPTION, "quantity": 65, "price": "0.05"}, [], id="option-on-0.05"),
        pytest.param({**OPTION, "quantity": 65, "price": "120.01"}, ["tick_size"], id="option-off"),
        pytest.param(
            {"side": "SELL", "order_type": "SL", "price": "2440.00", "trigger_price": "2440.05"},
            ["tick_size"],
            id="trigger-off",
        ),
    ],
)
def test_prices_sit_on_the_instruments_own_tick(strategy, request_fields, expected):
    assert codes(strategy, **request_fields) == expected


def test_the_tick_violation_names_the_field_it_concerns(strategy):
    (violation,) = validate_order(
        order_request(
            strategy, side="SELL", order_type="SL", price="2440.00", trigger_price="2440.05"
        ),
        strategy=strategy,
    )

    assert violation.field == "trigger_price"


def test_sl_m_is_refused_for_options_only(strategy):
    stop = {"side": "SELL", "quantity": 65, "order_type": "SL-M", "trigger_price": "100.00"}

    assert codes(strategy, **{**OPTION, "price": None}, **stop) == ["sl_m_option"]
    assert codes(strategy, **{**OPTION, "price": "99.00"}, **{**stop, "order_type": "SL"}) == []
    assert codes(strategy, **{**FUTURE, "price": None}, **stop) == []


@pytest.mark.parametrize(
    ("side", "trigger", "expected"),
    [
        pytest.param("BUY", "2450.10", [], id="stop-buy-above"),
        pytest.param("BUY", "2450.00", ["trigger_side"], id="stop-buy-at"),
        pytest.param("SELL", "2449.90", [], id="stop-sell-below"),
        pytest.param("SELL", "2450.00", ["trigger_side"], id="stop-sell-at"),
    ],
)
def test_a_stop_triggers_on_the_far_side_of_the_last_price(strategy, side, trigger, expected):
    last_price("2450.00")

    assert codes(strategy, side=side, order_type="SL-M", trigger_price=trigger) == expected


def test_without_a_last_price_the_trigger_side_is_not_checked(strategy):
    assert codes(strategy, order_type="SL-M", trigger_price="1.00") == []


# --- price band and order size -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("price", "expected"),
    [
        ("2100.00", []),
        ("2100.10", ["price_band"]),
        ("1900.00", []),
        ("1899.90", ["price_band"]),
    ],
)
def test_a_limit_price_stays_within_the_band_around_the_last_price(strategy, price, expected):
    limits_set(price_band_percent=Decimal("5"))
    last_price("2000.00")

    assert codes(strategy, price=price) == expected


def test_the_price_band_needs_a_last_price(strategy):
    limits_set(price_band_percent=Decimal("5"))

    assert codes(strategy, price="9000.00") == []


@pytest.mark.parametrize(("quantity", "expected"), [(100, []), (101, ["max_order_quantity"])])
def test_the_global_order_quantity_limit(strategy, quantity, expected):
    limits_set(max_order_quantity=100)

    assert codes(strategy, quantity=quantity) == expected


def test_a_strategys_config_cannot_loosen_the_global_limit():
    strategy = StrategyFactory(config={"limits": {"max_order_quantity": 500}})
    limits_set(max_order_quantity=100)

    assert limits_for(strategy).max_order_quantity == 100
    assert codes(strategy, quantity=100) == []
    assert codes(strategy, quantity=101) == ["max_order_quantity"]


def test_a_strategys_config_may_tighten_the_global_limit():
    strategy = StrategyFactory(config={"limits": {"max_order_quantity": 50}})
    limits_set(max_order_quantity=100)

    assert limits_for(strategy).max_order_quantity == 50
    assert codes(strategy, quantity=50) == []
    assert codes(strategy, quantity=51) == ["max_order_quantity"]


def test_the_strictest_of_global_row_strategy_row_and_config_is_in_force():
    strategy = StrategyFactory(config={"limits": {"max_open_orders": 9, "max_order_value": "1e6"}})
    limits_set(max_order_quantity=100, max_open_orders=5, max_order_value=Decimal("500000"))
    limits_set(strategy, max_order_quantity=80, max_open_orders=7)

    limits = limits_for(strategy)

    assert limits.max_order_quantity == 80
    assert limits.max_open_orders == 5
    assert limits.max_order_value == Decimal("500000")
    assert limits_for(StrategyFactory()).max_order_quantity == 100


@pytest.mark.parametrize("junk", ["many", True, -5, 0, None, [1]])
def test_a_config_limit_that_is_not_a_positive_number_is_ignored(junk):
    strategy = StrategyFactory(config={"limits": {"max_order_quantity": junk}})
    limits_set(max_order_quantity=100)

    assert limits_for(strategy).max_order_quantity == 100


@pytest.mark.parametrize(("price", "expected"), [("2450.00", []), ("2450.10", ["max_order_value"])])
def test_the_order_value_limit(strategy, price, expected):
    limits_set(max_order_value=Decimal("24500.00"))

    assert codes(strategy, quantity=10, price=price) == expected


def test_a_market_order_is_valued_at_the_last_price(strategy):
    limits_set(max_order_value=Decimal("24500.00"))
    last_price("2450.10")

    assert codes(strategy, order_type="MARKET") == ["max_order_value"]


# --- position, exposure, open orders -----------------------------------------------------------


@pytest.mark.parametrize(
    ("held", "side", "quantity", "expected"),
    [
        pytest.param(60, "BUY", 40, [], id="long-to-the-limit"),
        pytest.param(60, "BUY", 41, ["max_position_quantity"], id="long-past-the-limit"),
        pytest.param(-60, "SELL", 41, ["max_position_quantity"], id="short-past-the-limit"),
        pytest.param(60, "SELL", 160, [], id="flipped-to-the-limit"),
        pytest.param(60, "SELL", 161, ["max_position_quantity"], id="flipped-past-the-limit"),
        pytest.param(150, "SELL", 50, [], id="reducing-an-oversized-position"),
        pytest.param(150, "SELL", 150, [], id="closing-an-oversized-position"),
        pytest.param(150, "BUY", 1, ["max_position_quantity"], id="adding-to-an-oversized-one"),
    ],
)
def test_the_position_limit_lets_reductions_pass(strategy, held, side, quantity, expected):
    limits_set(max_position_quantity=100)
    holding(strategy, held)

    assert codes(strategy, side=side, quantity=quantity) == expected


def _book_of_69005(strategy):
    """Exposure 44,505 before the new order of 24,500 (10 @ 2450.00): 69,005 after it."""
    holding(strategy, 10, average_price=Decimal("2000.00"))  # 20,000
    order_in(strategy, OrderStatus.OPEN)  # 10 @ 2450.50
    # 6 of 10 filled (the 6 are in the position): 4 @ 2450.50 = 9,802 still working.
    order_in(strategy, OrderStatus.PARTIALLY_FILLED, filled_quantity=6)
    order_in(strategy, OrderStatus.FILLED)  # counts nothing
    other = StrategyFactory()  # not this strategy's exposure
    holding(other, 1000)
    return 20000 + 24505 + 9802


def test_the_strategys_gross_exposure_limit(strategy):
    before = _book_of_69005(strategy)
    limits_set(strategy, max_strategy_exposure=Decimal(before + 24500))

    assert codes(strategy, price="2450.00") == []
    assert codes(strategy, price="2450.10") == ["max_strategy_exposure"]
    assert codes(strategy, side="SELL", price="2450.10") == []  # reduces the position


def test_the_total_gross_exposure_counts_every_strategy(strategy):
    other = StrategyFactory()
    holding(other, 10, average_price=Decimal("2000.00"))
    limits_set(max_total_exposure=Decimal("44500.00"))

    assert codes(strategy, price="2450.00") == []
    assert codes(strategy, price="2450.10") == ["max_total_exposure"]


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        pytest.param(["OPEN", "FILLED", "CANCELLED", "REJECTED"], [], id="one-working"),
        pytest.param(["OPEN", "PENDING"], ["max_open_orders"], id="two-working"),
        pytest.param(["TRIGGER_PENDING", "CANCEL_PENDING"], ["max_open_orders"], id="in-flight"),
    ],
)
def test_the_open_orders_limit(strategy, statuses, expected):
    limits_set(max_open_orders=2)
    for status in statuses:
        order_in(strategy, status)
    order_in(StrategyFactory(), OrderStatus.OPEN)  # another strategy's

    assert codes(strategy) == expected


def test_a_modification_is_not_counted_as_one_more_open_order(strategy):
    limits_set(max_open_orders=1)
    working = OrderFactory(strategy=strategy, status=OrderStatus.OPEN)

    assert codes(strategy) == ["max_open_orders"]
    assert codes(strategy, order=working) == []


# --- the day's loss ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("realized", "unrealized", "expected"),
    [
        ("-600.00", "-399.99", []),
        ("-600.00", "-400.00", ["daily_loss_limit"]),
        ("0.00", "-1500.00", ["daily_loss_limit"]),
    ],
)
def test_at_the_daily_loss_limit_only_reducing_orders_pass(
    strategy, realized, unrealized, expected
):
    limits_set(strategy, daily_loss_limit=Decimal("1000.00"))
    holding(strategy, 10, realized_pnl=Decimal(realized), unrealized_pnl=Decimal(unrealized))
    # What the position realized was booked by a fill today (the day's realized PnL).
    TradeFactory(
        order=OrderFactory(strategy=strategy, status=OrderStatus.CANCELLED),
        realized_pnl=Decimal(realized),
    )

    assert codes(strategy) == expected
    assert codes(strategy, side="SELL", quantity=10) == []


def test_the_overall_daily_loss_counts_every_strategy(strategy):
    limits_set(daily_loss_limit=Decimal("1000.00"))
    holding(strategy, 10, unrealized_pnl=Decimal("-600.00"))
    holding(StrategyFactory(), 10, unrealized_pnl=Decimal("-400.00"))

    (violation,) = validate_order(order_request(strategy), strategy=strategy)

    assert violation.code == "daily_loss_limit"
    assert violation.message.startswith("overall PnL today \N{MINUS SIGN}₹1,000.00")


# --- market hours (a fixed clock) --------------------------------------------------------------


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        pytest.param("2026-01-14 09:14:59", ["market_closed"], id="before-the-open"),
        pytest.param("2026-01-14 09:15:00", [], id="at-the-open"),
        pytest.param("2026-01-14 15:29:59", [], id="last-second"),
        pytest.param("2026-01-14 15:30:00", ["market_closed"], id="at-the-close"),
        pytest.param("2026-01-17 11:00:00", ["market_closed"], id="saturday"),
        pytest.param("2026-01-15 11:00:00", ["market_closed"], id="holiday-15-jan-2026"),
        pytest.param("2026-01-26 11:00:00", ["market_closed"], id="republic-day"),
    ],
)
def test_orders_are_taken_in_the_normal_session_of_a_trading_day(
    strategy, enforce_hours, clock, moment, expected
):
    clock(moment)

    assert codes(strategy, product="CNC") == expected


def test_a_holiday_added_by_staff_closes_the_market(strategy, enforce_hours, clock):
    clock("2026-01-14 11:00")
    MarketHolidayFactory(date="2026-01-14", description="Municipal elections")

    (violation,) = validate_order(order_request(strategy), strategy=strategy)

    assert violation.code == "market_closed"
    assert violation.message == "2026-01-14 is not an NSE trading day"


def test_paper_strategies_may_ignore_the_hours_when_the_setting_says_so(strategy, clock):
    clock("2026-01-17 23:00")  # the autouse fixture sets OMS_PAPER_MARKET_HOURS=ignore

    assert codes(strategy) == []


def test_live_strategies_never_skip_the_hours(clock):
    kite_account_create()  # the desk's only account: its session runs to tomorrow
    live = StrategyFactory(mode=StrategyMode.LIVE, config={"paper_market_hours": "ignore"})
    clock("2026-01-17 23:00")

    assert codes(live) == ["market_closed"]


def test_a_live_strategy_without_an_account_is_refused_before_any_broker_call(db, clock):
    clock("2026-01-16 10:00")
    kite_account_create("AB1234")
    kite_account_create("CD5678")  # two accounts: staff must choose one
    live = StrategyFactory(mode=StrategyMode.LIVE, config={"paper_market_hours": "ignore"})

    (violation,) = validate_order(order_request(live), strategy=live)

    assert (violation.code, violation.field) == ("broker_account_missing", "strategy")
    assert "LIVE without a broker account" in violation.message


def test_a_live_strategy_whose_account_has_no_session_today_is_refused(db, clock):
    account = kite_account_create()
    live = StrategyFactory(mode=StrategyMode.LIVE, broker_account=account)
    clock("2026-01-16 10:00")
    account.token_expires_at = datetime(2026, 1, 16, 6, 0, tzinfo=IST)  # this morning
    account.save()

    (violation,) = validate_order(order_request(live), strategy=live)

    assert violation.code == "broker_session_missing"
    assert violation.message == (
        "Kite account AB1234: session expired at 16 Jan 06:00 IST; log in to Kite again "
        "(Connect Kite)"
    )
    account.token_expires_at = datetime(2026, 1, 17, 6, 0, tzinfo=IST)  # logged in today
    account.save()
    assert codes(live) == []


def test_a_paper_strategy_may_ask_for_the_hours_itself(clock):
    strict = StrategyFactory(config={"paper_market_hours": "enforce"})
    clock("2026-01-17 23:00")

    assert codes(strict) == ["market_closed"]


@pytest.mark.parametrize(
    ("moment", "request_fields", "expected"),
    [
        pytest.param("15:19:59", {}, [], id="eq-before-15:20"),
        pytest.param("15:20:00", {}, ["mis_after_square_off"], id="eq-at-15:20"),
        pytest.param("15:20:00", {"product": "CNC"}, [], id="cnc-at-15:20"),
        pytest.param("15:24:59", {**FUTURE, "product": "MIS", "quantity": 65}, [], id="fut-15:24"),
        pytest.param(
            "15:25:00",
            {**FUTURE, "product": "MIS", "quantity": 65},
            ["mis_after_square_off"],
            id="fut-at-15:25",
        ),
        pytest.param(
            "15:25:00",
            {**OPTION, "product": "MIS", "quantity": 65},
            ["mis_after_square_off"],
            id="opt-at-15:25",
        ),
    ],
)
def test_no_new_mis_orders_after_the_square_off_time(
    strategy, enforce_hours, clock, moment, request_fields, expected, settings
):
    settings.OMS_MIS_SQUARE_OFF = "15:29"  # the broker's times (the OMS's comes first otherwise)
    clock(f"2026-01-14 {moment}")

    assert codes(strategy, **request_fields) == expected


def test_an_mis_order_that_closes_a_position_passes_after_the_square_off_time(
    strategy, enforce_hours, clock
):
    """The square-off's own closing orders are MIS orders placed after 15:20."""
    clock("2026-01-14 15:21")
    holding(strategy, 10)

    assert codes(strategy, side="SELL", quantity=10) == []
    assert codes(strategy, side="SELL", quantity=11) == ["mis_after_square_off"]
