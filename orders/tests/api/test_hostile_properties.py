"""Property-based: whatever shape a hostile client sends, the answer is never a 5xx.

Hypothesis builds the shapes a security review tried by hand, and their neighbours: bodies
nested to any depth, JSON values of every type in every field of an order, NaN and Infinity
literals, forged cursors, signed Kite postbacks with impossible figures, admin URLs with ids
that are not ids. Each goes through Django's test client against PostgreSQL, which re-raises
any unhandled exception, so a 500 fails the test with its traceback. Bounded and derandomized
(the same examples on every run); test_schema_fuzz.py explores the schema on a live server.
"""

from __future__ import annotations

import base64
import hashlib
import json
from decimal import Decimal
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from orders.enums import OrderStatus, StrategyMode
from orders.models import Trade
from orders.tests.api.conftest import order_body
from orders.tests.factories import OrderFactory, StrategyFactory
from orders.tests.fake_kite import BROKER_ORDER_ID, TAG, recorded
from positions.tests.factories import PositionFactory

pytestmark = pytest.mark.django_db

BOUNDED = settings(
    max_examples=60,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
SECRET = "kite-api-secret"

# Any JSON value, nested a little; the deep ones come from `deep_body`.
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
    | st.sampled_from(["NaN", "Infinity", "-Infinity", "1e20", "1e-20", "-0", "1_500", " 1 "]),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=6,
)


@st.composite
def deep_body(draw) -> str:
    """Arrays and objects nested 0 to 3,000 deep, inside an otherwise valid order or alone."""
    depth = draw(st.integers(min_value=0, max_value=3000))
    opener, closer = draw(st.sampled_from([("[", "]"), ('{"a":', "}")]))
    nested = opener * depth + "1" + closer * depth
    if draw(st.booleans()):
        return nested
    field = draw(st.sampled_from(sorted(order_body())))
    return json.dumps(order_body())[:-1] + f', "{field}": {nested}' + "}"


@st.composite
def hostile_order(draw) -> dict:
    """A valid order with some of its fields (or extra ones) replaced by any JSON value."""
    body = order_body(client_order_id=f"h-{draw(st.integers(0, 10**9))}")
    for field in draw(
        st.lists(st.sampled_from([*sorted(body), "stop_loss", "take_profit", "extra"]), max_size=4)
    ):
        body[field] = draw(json_values)
    return body


def assert_error_shape(response) -> None:
    event(f"HTTP {response.status_code}")  # --hypothesis-show-statistics shows the spread
    assert response.status_code < 500, response.content[:500]
    if response.status_code >= 400:
        error = response.json()["error"]
        assert isinstance(error["message"], str) and error["message"]
        assert isinstance(error["fields"], dict)


@BOUNDED
@given(body=st.one_of(deep_body(), hostile_order().map(json.dumps)))
def test_no_order_body_is_a_5xx(api, body):
    response = api.generic("POST", "/api/v1/orders/", body, content_type="application/json")

    assert_error_shape(response)


@BOUNDED
@given(
    body=st.one_of(
        st.binary(max_size=64),
        st.sampled_from([b"NaN", b"[Infinity]", b'{"price": -Infinity}', b"\xff\xfe", b""]),
    )
)
def test_no_raw_body_is_a_5xx(api, body):
    response = api.generic("POST", "/api/v1/orders/", body, content_type="application/json")

    assert_error_shape(response)


@BOUNDED
@given(
    change=st.dictionaries(
        st.sampled_from(["quantity", "price", "trigger_price", "order_type"]),
        json_values,
        max_size=4,
    )
)
def test_no_modification_is_a_5xx(api, caller, change):
    order = OrderFactory(strategy=caller.strategy, status=OrderStatus.OPEN)

    response = api.patch(f"/api/v1/orders/{order.pk}/", change, format="json")

    assert_error_shape(response)


def forged_cursor():
    positions = st.one_of(
        st.text(max_size=30),
        st.datetimes().map(str),
        st.datetimes().map(lambda moment: moment.isoformat() + "+05:30"),
    )
    queries = st.builds(
        lambda offset, reverse, position: f"o={offset}&r={reverse}&p={quote(position)}",
        st.one_of(st.integers(-5, 10**20), st.text(max_size=4)),
        st.sampled_from(["0", "1", "x", ""]),
        positions,
    )
    encoded = queries.map(lambda query: base64.b64encode(query.encode()).decode())
    return st.one_of(encoded, st.text(max_size=40))


@BOUNDED
@given(
    url=st.sampled_from(["/api/v1/orders/", "/api/v1/trades/", "/api/v1/positions/"]),
    cursor=forged_cursor(),
    page_size=st.one_of(st.none(), st.text(max_size=6), st.integers(-5, 10**6).map(str)),
)
def test_no_cursor_is_a_5xx(api, caller, url, cursor, page_size):
    query = {"cursor": cursor} | ({"page_size": page_size} if page_size is not None else {})

    response = api.get(url, query)

    assert_error_shape(response)


# --- the Kite postback ------------------------------------------------------------------------

postback_figures = st.one_of(
    st.integers(min_value=-(10**30), max_value=10**30),
    st.decimals(allow_nan=True, allow_infinity=True).filter(lambda d: not d.is_snan()),
    st.sampled_from(["Infinity", "NaN", "1e20", "-1", "", "abc"]),
    st.none(),
    st.booleans(),
    st.lists(st.integers(), max_size=2),
)


def signed(payload: dict) -> bytes:
    payload["checksum"] = hashlib.sha256(
        f"{payload['order_id']}{payload['order_timestamp']}{SECRET}".encode()
    ).hexdigest()
    # Decimals as JSON numbers, as Kite writes them (NaN and Infinity as the literals).
    return json.dumps(payload, default=float).encode()


@pytest.fixture
def live_order(kite_account):
    """A LIVE order working at Kite, the one every generated postback is about."""
    return OrderFactory(
        strategy=StrategyFactory(mode=StrategyMode.LIVE),
        broker_tag=TAG,
        broker_order_id=BROKER_ORDER_ID,
        status=OrderStatus.OPEN,
    )


@BOUNDED
@given(
    figures=st.dictionaries(
        st.sampled_from(
            [
                "average_price",
                "price",
                "trigger_price",
                "quantity",
                "filled_quantity",
                "pending_quantity",
                "status",
                "tag",
            ]
        ),
        postback_figures,
        min_size=1,
        max_size=4,
    )
)
def test_no_signed_postback_is_a_5xx_and_a_refused_one_applies_nothing(client, live_order, figures):
    fills = Trade.objects.count()
    payload = {
        **recorded("postback_open"),
        "filled_quantity": 4,
        "average_price": Decimal("2450.5"),
    }

    response = client.post(
        "/broker/kite/postback/", signed(payload | figures), content_type="application/json"
    )

    event(f"HTTP {response.status_code}")
    assert response.status_code in (200, 400), response.content[:500]
    assert response.json()["status"] == ("ok" if response.status_code == 200 else "error")
    if response.status_code == 400:
        assert Trade.objects.count() == fills


# --- the admin's own pages --------------------------------------------------------------------


@pytest.fixture
def admin_rows():
    OrderFactory(status=OrderStatus.OPEN)
    PositionFactory(symbol="RELIANCE")


url_segments = st.text(
    alphabet=st.characters(codec="utf-8", exclude_characters="/?#%"), min_size=1, max_size=12
)


@BOUNDED
@given(
    page=st.sampled_from(
        [
            "/admin/orders/order/{}/cancel/",
            "/admin/positions/reconciliationissue/{}/resolve/",
            "/admin/positions/reconciliationissue/{}/auto-fix/",
            "/admin/risk/killswitch/flatten/?strategy={}",
            "/admin/orders/order/?created_at__year=2025&created_at__month={}",
            "/admin/orders/order/?q={}",
        ]
    ),
    value=st.one_of(url_segments, st.integers(-(10**20), 10**20).map(str)),
    method=st.sampled_from(["get", "post"]),
)
def test_no_admin_page_is_a_5xx(admin_client, admin_rows, page, value, method):
    response = getattr(admin_client, method)(page.format(quote(value)))
    event(f"HTTP {response.status_code}")

    assert response.status_code < 500
