"""OrderRequest validation and OrderResult: pure, no database."""

from decimal import Decimal

import pytest

from orders.domain import (
    MAX_PRICE,
    MAX_QUANTITY,
    OrderRequest,
    OrderRequestError,
    OrderResult,
    Violation,
    segment_for,
)
from orders.enums import (
    Exchange,
    OrderSide,
    OrderStatus,
    OrderType,
    Product,
    Segment,
    Validity,
)


def request(**overrides) -> OrderRequest:
    fields = {
        "strategy_id": 1,
        "client_order_id": "abc-1",
        "symbol": "RELIANCE",
        "side": "BUY",
        "quantity": 10,
        "order_type": "LIMIT",
        "product": "MIS",
        "price": Decimal("2450.50"),
    }
    fields.update(overrides)
    return OrderRequest(**fields)


def errors_of(**overrides) -> dict[str, str]:
    with pytest.raises(OrderRequestError) as caught:
        request(**overrides)
    return caught.value.errors


# --- a valid request ---------------------------------------------------------------------------


def test_a_valid_request_is_normalised():
    order = request(
        symbol=" reliance ",
        side="buy",
        order_type="limit",
        product="mis",
        exchange="nse",
        validity="day",
        quantity="10",
        price="2450.5",
    )
    assert order.symbol == "RELIANCE"
    assert order.side is OrderSide.BUY
    assert order.order_type is OrderType.LIMIT
    assert order.product is Product.MIS
    assert order.exchange is Exchange.NSE
    assert order.validity is Validity.DAY
    assert order.quantity == 10
    assert order.price == Decimal("2450.50")
    assert order.trigger_price is None
    assert order.segment is Segment.EQ
    assert order.tag == ""
    assert order.signed_quantity == 10
    assert request(side=OrderSide.SELL).signed_quantity == -10


def test_enum_members_are_accepted():
    order = request(side=OrderSide.SELL, order_type=OrderType.MARKET, price=None)
    assert order.side is OrderSide.SELL
    assert order.order_type is OrderType.MARKET


# --- one field at a time: the message names the field and the rule -----------------------------


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"strategy_id": "1"}, "strategy_id", "strategy_id '1': must be an integer"),
        ({"strategy_id": True}, "strategy_id", "strategy_id True: must be an integer"),
        (
            {"client_order_id": ""},
            "client_order_id",
            "client_order_id '': must be 1-64 letters, digits or _-:. starting with a letter "
            "or digit",
        ),
        ({"client_order_id": "-abc"}, "client_order_id", "client_order_id '-abc': must be"),
        ({"client_order_id": "a" * 65}, "client_order_id", "must be 1-64 letters"),
        ({"client_order_id": "a b"}, "client_order_id", "client_order_id 'a b': must be"),
        ({"symbol": ""}, "symbol", "symbol '': must be a tradingsymbol of 1-50 characters"),
        ({"symbol": "RELI ANCE"}, "symbol", "symbol 'RELI ANCE': must be a tradingsymbol"),
        ({"symbol": "A" * 51}, "symbol", "must be a tradingsymbol of 1-50 characters"),
        ({"side": "HOLD"}, "side", "side 'HOLD': must be one of BUY, SELL"),
        ({"side": None}, "side", "side None: must be one of BUY, SELL"),
        (
            {"order_type": "STOP"},
            "order_type",
            "order_type 'STOP': must be one of MARKET, LIMIT, SL, SL-M",
        ),
        ({"product": "MTF"}, "product", "product 'MTF': must be one of MIS, CNC, NRML"),
        ({"exchange": "MCX"}, "exchange", "exchange 'MCX': must be one of NSE, BSE, NFO, BFO"),
        ({"validity": "TTL"}, "validity", "validity 'TTL': must be one of DAY, IOC"),
        ({"quantity": 0}, "quantity", "quantity 0: must be at least 1"),
        ({"quantity": -5}, "quantity", "quantity -5: must be at least 1"),
        (
            {"quantity": MAX_QUANTITY + 1},
            "quantity",
            f"quantity {MAX_QUANTITY + 1}: must be at most {MAX_QUANTITY}",
        ),
        ({"quantity": 2.0}, "quantity", "quantity 2.0: must be a whole number"),
        ({"quantity": "ten"}, "quantity", "quantity 'ten': must be a whole number"),
        ({"quantity": True}, "quantity", "quantity True: must be a whole number"),
        ({"quantity": None}, "quantity", "quantity None: must be a whole number"),
        ({"price": Decimal("0")}, "price", "price 0: must be greater than 0"),
        ({"price": Decimal("-1.00")}, "price", "price -1.00: must be greater than 0"),
        ({"price": "abc"}, "price", "price 'abc': must be a decimal number"),
        ({"price": "NaN"}, "price", "price NaN: must be greater than 0"),
        ({"price": "Infinity"}, "price", "price Infinity: must be greater than 0"),
        (
            {"price": MAX_PRICE + Decimal("0.01")},
            "price",
            f"must be at most {MAX_PRICE}",
        ),
        ({"tag": "x" * 65}, "tag", "tag of 65 characters: must be at most 64"),
    ],
)
def test_one_bad_field(overrides, field, message):
    errors = errors_of(**overrides)
    assert set(errors) == {field}
    assert errors[field].startswith(field)
    assert message in errors[field]


@pytest.mark.parametrize("name", ["price", "trigger_price", "stop_loss", "take_profit"])
@pytest.mark.parametrize("value", [2450.5, 100.0, True])
def test_float_and_bool_prices_are_refused(name, value):
    order_type = "SL" if name == "trigger_price" else "LIMIT"
    overrides = {"order_type": order_type, name: value}
    if name == "trigger_price":
        overrides["price"] = Decimal("2450.50")
    errors = errors_of(**overrides)
    assert set(errors) == {name}
    assert errors[name] == (
        f"{name} {value!r}: must be a decimal string or Decimal, not {type(value).__name__}"
    )


@pytest.mark.parametrize("name", ["price", "trigger_price", "stop_loss", "take_profit"])
@pytest.mark.parametrize("value", ["100.005", Decimal("0.001"), "2450.555"])
def test_prices_must_be_whole_paise(name, value):
    overrides = {"order_type": "SL", "price": Decimal("2450.50"), name: value}
    if name != "trigger_price":
        overrides["trigger_price"] = Decimal("2450.00")
    errors = errors_of(**overrides)
    assert errors[name] == f"{name} {value}: must be a whole number of paise (2 decimals at most)"


@pytest.mark.parametrize("value", ["100", 100, "100.1", "100.10", Decimal("100.100"), "1E+2"])
def test_paise_prices_are_accepted_from_strings_ints_and_decimals(value):
    price = request(price=value).price
    assert isinstance(price, Decimal)
    assert price == Decimal(str(value))
    assert price.as_tuple().exponent == -2


def test_empty_price_strings_mean_no_price():
    assert request(order_type="MARKET", price="").price is None


# --- every error at once -----------------------------------------------------------------------


def test_every_bad_field_is_reported_at_once():
    errors = errors_of(
        strategy_id="x",
        client_order_id="",
        symbol="",
        side="HOLD",
        quantity=0,
        order_type="STOP",
        product="MTF",
        exchange="MCX",
        validity="GTT",
        price=1.5,
        trigger_price="-1",
        stop_loss="0.001",
        take_profit="abc",
        tag="t" * 70,
    )
    assert set(errors) == {
        "strategy_id",
        "client_order_id",
        "symbol",
        "side",
        "quantity",
        "order_type",
        "product",
        "exchange",
        "validity",
        "price",
        "trigger_price",
        "stop_loss",
        "take_profit",
        "tag",
    }
    for field, message in errors.items():
        assert message.startswith(field), message


def test_the_exception_message_joins_every_error():
    with pytest.raises(OrderRequestError) as caught:
        request(quantity=0, side="HOLD")
    assert str(caught.value) == "; ".join(caught.value.errors.values())
    assert "quantity 0: must be at least 1" in str(caught.value)
    assert "side 'HOLD'" in str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_combination_errors_are_reported_together():
    errors = errors_of(
        order_type="MARKET",
        price=Decimal("10.00"),
        trigger_price=Decimal("9.00"),
        product="NRML",
        stop_loss=Decimal("120.00"),
        take_profit=Decimal("110.00"),
    )
    assert set(errors) == {"price", "trigger_price", "product", "stop_loss"}


# --- price and trigger by order type -----------------------------------------------------------


@pytest.mark.parametrize("order_type", ["LIMIT", "SL"])
def test_limit_and_sl_need_a_price(order_type):
    errors = errors_of(order_type=order_type, price=None, trigger_price=Decimal("100.00"))
    assert errors["price"] == f"price missing: a {order_type} order needs a price"


@pytest.mark.parametrize("order_type", ["MARKET", "SL-M"])
def test_market_and_sl_m_take_no_price(order_type):
    trigger = "99" if order_type == "SL-M" else None
    errors = errors_of(order_type=order_type, price=Decimal("100.00"), trigger_price=trigger)
    assert errors == {"price": f"price 100.00: a {order_type} order takes no price"}


@pytest.mark.parametrize("order_type", ["SL", "SL-M"])
def test_stop_orders_need_a_trigger(order_type):
    price = Decimal("100.00") if order_type == "SL" else None
    errors = errors_of(order_type=order_type, price=price, trigger_price=None)
    assert errors == {
        "trigger_price": f"trigger_price missing: a {order_type} order needs a trigger price"
    }


@pytest.mark.parametrize("order_type", ["MARKET", "LIMIT"])
def test_market_and_limit_take_no_trigger(order_type):
    price = Decimal("100.00") if order_type == "LIMIT" else None
    errors = errors_of(order_type=order_type, price=price, trigger_price=Decimal("99.00"))
    assert errors == {
        "trigger_price": f"trigger_price 99.00: a {order_type} order takes no trigger"
    }


def test_market_without_price_and_sl_m_with_trigger_are_valid():
    assert request(order_type="MARKET", price=None).price is None
    order = request(order_type="SL-M", price=None, trigger_price="99.50")
    assert order.trigger_price == Decimal("99.50")


@pytest.mark.parametrize(
    ("side", "price", "trigger", "valid"),
    [
        # a stop-buy triggers on a rise: its trigger is at or below its limit
        ("BUY", "101.00", "100.00", True),
        ("BUY", "100.00", "100.00", True),
        ("BUY", "100.00", "100.05", False),
        # a stop-sell triggers on a fall: its trigger is at or above its limit
        ("SELL", "99.00", "100.00", True),
        ("SELL", "100.00", "100.00", True),
        ("SELL", "100.00", "99.95", False),
    ],
)
def test_sl_trigger_side(side, price, trigger, valid):
    overrides = {"side": side, "order_type": "SL", "price": price, "trigger_price": trigger}
    if valid:
        assert request(**overrides).trigger_price == Decimal(trigger)
        return
    errors = errors_of(**overrides)
    relation = "at or below" if side == "BUY" else "at or above"
    assert errors == {
        "trigger_price": f"trigger_price {trigger}: must be {relation} price {price} "
        f"for an SL {side}"
    }


# --- product by exchange -----------------------------------------------------------------------


@pytest.mark.parametrize("exchange", ["NSE", "BSE"])
def test_nrml_only_on_derivative_exchanges(exchange):
    errors = errors_of(exchange=exchange, product="NRML")
    assert errors == {"product": "product NRML: only for futures and options (NFO, BFO)"}


@pytest.mark.parametrize("exchange", ["NFO", "BFO"])
def test_nrml_is_valid_on_nfo_and_bfo(exchange):
    order = request(exchange=exchange, product="NRML", symbol="NIFTY26JANFUT")
    assert order.product is Product.NRML


@pytest.mark.parametrize("exchange", ["NFO", "BFO"])
def test_cnc_not_on_derivative_exchanges(exchange):
    errors = errors_of(exchange=exchange, product="CNC", symbol="NIFTY26JANFUT")
    assert errors == {"product": f"product CNC: not available on {exchange}; use NRML or MIS"}


@pytest.mark.parametrize(("exchange", "product"), [("NSE", "CNC"), ("BSE", "CNC"), ("NFO", "MIS")])
def test_other_products_by_exchange_are_valid(exchange, product):
    assert request(exchange=exchange, product=product).product == product


# --- stop-loss and take-profit -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("side", "stop_loss", "take_profit", "valid"),
    [
        ("BUY", "95.00", "110.00", True),
        ("BUY", "110.00", "95.00", False),
        ("BUY", "100.00", "100.00", False),
        ("SELL", "110.00", "95.00", True),
        ("SELL", "95.00", "110.00", False),
        ("SELL", "100.00", "100.00", False),
    ],
)
def test_stop_loss_and_take_profit_sides(side, stop_loss, take_profit, valid):
    overrides = {"side": side, "stop_loss": stop_loss, "take_profit": take_profit}
    if valid:
        order = request(**overrides)
        assert (order.stop_loss, order.take_profit) == (Decimal(stop_loss), Decimal(take_profit))
        return
    errors = errors_of(**overrides)
    relation = "below" if side == "BUY" else "above"
    assert errors == {
        "stop_loss": f"stop_loss {stop_loss}: must be {relation} take_profit {take_profit} "
        f"for a {side}"
    }


def test_stop_loss_or_take_profit_alone_is_valid():
    assert request(stop_loss="90").stop_loss == Decimal("90.00")
    assert request(take_profit="300").take_profit == Decimal("300.00")


# --- segment -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("exchange", "symbol", "segment"),
    [
        ("NSE", "RELIANCE", Segment.EQ),
        ("BSE", "RELIANCE", Segment.EQ),
        ("NSE", "NIFTYBEESCE", Segment.EQ),  # an equity is equity whatever its name ends with
        ("NFO", "NIFTY26JAN24000CE", Segment.OPT),
        ("NFO", "BANKNIFTY26JAN52000PE", Segment.OPT),
        ("BFO", "SENSEX26JAN80000CE", Segment.OPT),
        ("NFO", "NIFTY26JANFUT", Segment.FUT),
        ("BFO", "SENSEX26JANFUT", Segment.FUT),
    ],
)
def test_segment_is_derived_from_exchange_and_symbol(exchange, symbol, segment):
    product = "NRML" if exchange in ("NFO", "BFO") else "MIS"
    assert request(exchange=exchange, symbol=symbol, product=product).segment is segment
    assert segment_for(Exchange(exchange), symbol) is segment


def test_a_segment_passed_in_is_overridden_by_the_derivation():
    order = request(segment=Segment.OPT)
    assert order.segment is Segment.EQ


def test_lowercase_option_symbols_are_derived_after_normalising():
    order = request(exchange="nfo", symbol="nifty26jan24000ce", product="NRML")
    assert (order.symbol, order.segment) == ("NIFTY26JAN24000CE", Segment.OPT)


# --- fingerprint -------------------------------------------------------------------------------


def test_fingerprint_is_equal_for_equal_content():
    first = request()
    assert first.fingerprint() == request().fingerprint()
    # the same content spelled differently is the same request
    assert (
        first.fingerprint() == request(price="2450.5", side="buy", symbol="reliance").fingerprint()
    )


def test_fingerprint_ignores_the_client_order_id():
    assert (
        request(client_order_id="a-1").fingerprint() == request(client_order_id="b-2").fingerprint()
    )


@pytest.mark.parametrize(
    "change",
    [
        {"strategy_id": 2},
        {"symbol": "INFY"},
        {"side": "SELL"},
        {"quantity": 11},
        {"order_type": "SL", "trigger_price": "2450.00"},
        {"product": "CNC"},
        {"exchange": "BSE"},
        {"validity": "IOC"},
        {"price": "2450.55"},
        {"stop_loss": "2400.00"},
        {"take_profit": "2500.00"},
        {"tag": "x"},
    ],
)
def test_fingerprint_differs_for_different_content(change):
    assert request(**change).fingerprint() != request().fingerprint()


def test_fingerprint_is_a_sha256_hex_digest():
    fingerprint = request().fingerprint()
    assert len(fingerprint) == 64
    int(fingerprint, 16)


def test_a_request_is_immutable():
    order = request()
    with pytest.raises(AttributeError):
        order.quantity = 5


# --- OrderResult -------------------------------------------------------------------------------


@pytest.mark.parametrize("status", list(OrderStatus))
def test_order_result_is_accepted_unless_rejected(status):
    result = OrderResult(order_id=1, client_order_id="a", status=status)
    assert result.accepted is (status != OrderStatus.REJECTED)
    assert result.replayed is False
    assert result.violations == ()


def test_violation_as_dict():
    violation = Violation("strategy_inactive", "strategy", "strategy S is INACTIVE")
    assert violation.as_dict() == {
        "code": "strategy_inactive",
        "field": "strategy",
        "message": "strategy S is INACTIVE",
    }
