"""The Kite sandbox's state: accounts and their sessions, a price walk per instrument, an order
book that fills against those prices, trades, positions and funds.

In memory only, behind one lock: every public method of SandboxExchange takes it, so the HTTP
server's threads, the price walk's thread and a test may all call in at once.

Not Zerodha: fills are whole (one trade an order) at the sandbox's own price; an order runs
through Kite's statuses at once (PUT ORDER REQ RECEIVED, VALIDATION PENDING, OPEN PENDING, OPEN
or TRIGGER PENDING), then fills when the price reaches it.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from decimal import Decimal
from random import Random
from typing import Any

from omsproject.kite_sandbox_gtt import SandboxGtts
from omsproject.kite_sandbox_records import (
    AUTOMATIC_PROTECTION,
    EXCHANGES,
    IST,
    LEVERAGE,
    MAX_MODIFICATIONS,
    MAX_TAG_LENGTH,
    ORDER_TYPES,
    ORDERS_PER_SECOND,
    PRODUCTS,
    SIDES,
    TIMESTAMP,
    VALIDITIES,
    VARIETIES,
    WALK_STEP,
    WORKING,
    Account,
    Instrument,
    KiteError,
    PositionBook,
    SandboxOrder,
    charges_sum,
    default_price,
    field_choice,
    field_decimal,
    field_integer,
    field_prices,
    field_quantity,
    field_required,
    input_error,
    leg_charges,
    margin_figures,
    on_tick,
    required_margin,
    session_checksum,
    token_error,
)


class SandboxExchange(SandboxGtts):
    """Accounts, prices and order books of the sandbox (see the module's docstring)."""

    def __init__(
        self,
        *,
        accounts: Iterable[Account],
        instruments: Iterable[Instrument],
        prices: Mapping[str, Decimal] | None = None,
        postback: Callable[[Account, dict[str, Any]], None] | None = None,
        seed: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = lambda: datetime.now(IST),
    ):
        self.accounts = {account.api_key: account for account in accounts}
        if not self.accounts:
            raise ValueError("accounts: at least one is needed")
        self.instruments = {instrument.key: instrument for instrument in instruments}
        self.prices = {key: default_price(i) for key, i in self.instruments.items()}
        for key, price in (prices or {}).items():
            if key not in self.instruments:
                raise ValueError(f"prices: {key} is not an instrument of the sandbox")
            self.prices[key] = on_tick(Decimal(price), self.instruments[key].tick_size)
        self.orders: dict[str, SandboxOrder] = {}
        self.trades: list[dict[str, Any]] = []
        self.positions: dict[tuple[str, str, str, str], PositionBook] = {}
        self._postback = postback
        self._random = Random(seed)
        self._clock = clock
        self._now = now
        self._lock = threading.RLock()
        self._sequence = 0

    # --- sessions ------------------------------------------------------------------------------

    def account(self, api_key: str) -> Account:
        account = self.accounts.get(api_key)
        if account is None:
            raise token_error("Invalid `api_key`.")
        return account

    def request_token_issue(self, api_key: str) -> str:
        """A one-time request token, as Kite's login page hands one to the redirect URL."""
        with self._lock:
            token = secrets.token_urlsafe(24)
            self.account(api_key).request_tokens.add(token)
            return token

    def session_create(self, *, api_key: str, request_token: str, checksum: str) -> dict[str, Any]:
        with self._lock:
            account = self.account(api_key)
            if request_token not in account.request_tokens:
                raise token_error("Token is invalid or has expired.")
            expected = session_checksum(api_key, request_token, account.api_secret)
            if not hmac.compare_digest(expected, checksum.lower()):
                raise token_error("Invalid `checksum`.")
            account.request_tokens.discard(request_token)  # one use only, like Kite's
            access_token = secrets.token_urlsafe(24)
            account.access_tokens.add(access_token)
            account.public_tokens[access_token] = secrets.token_hex(16)
            return {
                **self.profile(account),
                "api_key": api_key,
                "access_token": access_token,
                "public_token": account.public_tokens[access_token],
                "enctoken": "",
                "refresh_token": "",
                "silo": "",
                "login_time": self._timestamp(),
            }

    def session_end(self, api_key: str, access_token: str) -> bool:
        with self._lock:
            account = self.account(api_key)
            account.public_tokens.pop(access_token, None)
            if access_token not in account.access_tokens:
                raise token_error()
            account.access_tokens.discard(access_token)
            return True

    def authenticate(self, authorization: str | None) -> Account:
        """The account of an ``Authorization: token api_key:access_token`` header."""
        scheme, _, credentials = (authorization or "").partition(" ")
        api_key, _, access_token = credentials.partition(":")
        with self._lock:
            account = self.accounts.get(api_key)
            if scheme != "token" or account is None or access_token not in account.access_tokens:
                raise token_error()
            return account

    def profile(self, account: Account) -> dict[str, Any]:
        return {
            "user_id": account.user_id,
            "user_type": "individual",
            "email": f"{account.user_id.lower()}@sandbox.invalid",
            "user_name": account.user_name,
            "user_shortname": account.user_name.split()[0],
            "broker": "ZERODHA",
            "exchanges": list(EXCHANGES),
            "products": ["CNC", "NRML", "MIS"],
            "order_types": list(ORDER_TYPES),
            "avatar_url": None,
            "meta": {"demat_consent": "physical"},
        }

    # --- prices --------------------------------------------------------------------------------

    def instrument(self, key: str) -> Instrument:
        instrument = self.instruments.get(key)
        if instrument is None:
            raise input_error(f"instrument {key}: not an instrument of the sandbox")
        return instrument

    def last_price(self, key: str) -> Decimal:
        with self._lock:
            return self.prices[self.instrument(key).key]

    def price_set(self, key: str, price: Decimal | str) -> Decimal:
        """Move an instrument's price (on its tick) and fill whatever that price reaches."""
        with self._lock:
            instrument = self.instrument(key)
            self.prices[key] = on_tick(Decimal(price), instrument.tick_size)
            self._match(instrument)
            return self.prices[key]

    def walk(self) -> None:
        """One step of the price walk: every price moves within ±0.1%, on its tick."""
        with self._lock:
            for key, instrument in self.instruments.items():
                step = Decimal(str(self._random.uniform(-1, 1))) * WALK_STEP
                self.prices[key] = on_tick(self.prices[key] * (1 + step), instrument.tick_size)
                self._match(instrument)

    # --- orders --------------------------------------------------------------------------------

    def order_place(self, account: Account, variety: str, form: Mapping[str, str]) -> str:
        """Validate and take an order; it then runs through Kite's statuses at once."""
        with self._lock:
            if variety not in VARIETIES:
                raise input_error(f"variety {variety}: must be one of {', '.join(VARIETIES)}")
            self._order_rate_take(account)
            exchange = field_choice(form, "exchange", EXCHANGES)
            instrument = self.instrument(f"{exchange}:{field_required(form, 'tradingsymbol')}")
            order_type = field_choice(form, "order_type", ORDER_TYPES)
            price, trigger = field_prices(form, order_type, instrument.tick_size)
            tag = (form.get("tag") or "").strip()
            if len(tag) > MAX_TAG_LENGTH or (tag and not tag.isalnum()):
                raise input_error(f"tag {tag}: must be at most 20 letters and digits")
            self._sequence += 1
            now = self._timestamp()
            order = SandboxOrder(
                order_id=f"{self._now():%y%m%d}{self._sequence:09d}",
                account=account,
                instrument=instrument,
                variety=variety,
                side=field_choice(form, "transaction_type", SIDES),
                product=field_choice(form, "product", PRODUCTS),
                order_type=order_type,
                validity=field_choice(form, "validity", VALIDITIES, default="DAY"),
                quantity=field_quantity(form, "quantity", lot=instrument.lot_size),
                price=price,
                trigger_price=trigger,
                tag=tag,
                order_timestamp=now,
                guid=secrets.token_hex(8),
                market_protection=_market_protection(form, order_type),
                disclosed_quantity=field_integer(form, "disclosed_quantity", low=0, default=0),
                validity_ttl=field_integer(form, "validity_ttl", low=0, default=0),
            )
            self.orders[order.order_id] = order
            if variety == "amo":
                self._record(order, "AMO REQ RECEIVED")  # queued for the next session
                return order.order_id
            self._record(order, "PUT ORDER REQ RECEIVED")
            self._record(order, "VALIDATION PENDING")
            refusal = self._risk_refusal(order)
            if refusal:
                self._record(order, "REJECTED", message=refusal, notify=True)
                return order.order_id
            self._record(order, "OPEN PENDING")
            order.exchange_order_id = f"13{self._sequence:014d}"
            order.exchange_timestamp = now
            resting = "TRIGGER PENDING" if order.order_type in ("SL", "SL-M") else "OPEN"
            self._record(order, resting, exchange=True)
            self._work(order)
            return order.order_id

    def order_modify(
        self, account: Account, variety: str, order_id: str, form: Mapping[str, str]
    ) -> str:
        with self._lock:
            order = self._order(account, order_id)
            self._order_rate_take(account)
            if order.status not in WORKING:
                raise input_error(
                    f"Order cannot be modified as it is {order.status.lower()} already."
                )
            if order.modifications >= MAX_MODIFICATIONS:
                raise input_error("Maximum allowed order modifications exceeded.")
            order_type = field_choice(form, "order_type", ORDER_TYPES, default=order.order_type)
            merged = {"price": str(order.price), "trigger_price": str(order.trigger_price)}
            merged.update({k: v for k, v in form.items() if k in ("price", "trigger_price")})
            price, trigger = field_prices(merged, order_type, order.instrument.tick_size)
            quantity = order.quantity
            if form.get("quantity"):
                quantity = field_quantity(form, "quantity", lot=order.instrument.lot_size)
            if quantity < order.filled_quantity:
                raise input_error(
                    f"quantity {quantity}: must be at least the filled {order.filled_quantity}"
                )
            resting = order.status
            self._record(order, "MODIFY VALIDATION PENDING")
            self._record(order, "MODIFY PENDING")
            order.order_type, order.price, order.trigger_price = order_type, price, trigger
            order.quantity = quantity
            order.validity = field_choice(form, "validity", VALIDITIES, default=order.validity)
            order.modifications += 1
            if resting != "AMO REQ RECEIVED":
                resting = "TRIGGER PENDING" if order_type in ("SL", "SL-M") else "OPEN"
            self._record(order, resting, exchange=True, notify=True)
            self._work(order)
            return order.order_id

    def order_cancel(self, account: Account, variety: str, order_id: str) -> str:
        with self._lock:
            order = self._order(account, order_id)
            self._order_rate_take(account)
            if order.status not in WORKING:
                raise input_error(
                    f"Order cannot be cancelled as it is {order.status.lower()} already."
                )
            self._record(order, "CANCEL PENDING")
            order.cancelled_quantity = order.quantity - order.filled_quantity
            self._record(order, "CANCELLED", exchange=True, notify=True)
            return order.order_id

    def order_book(self, account: Account) -> list[dict[str, Any]]:
        with self._lock:
            return [o.entry() for o in self.orders.values() if o.account is account]

    def order_history(self, account: Account, order_id: str) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._order(account, order_id).history)

    def order_trades(self, account: Account, order_id: str) -> list[dict[str, Any]]:
        with self._lock:
            self._order(account, order_id)
            return [t for t in self.trades if t["order_id"] == order_id]

    def trade_book(self, account: Account) -> list[dict[str, Any]]:
        with self._lock:
            return [t for t in self.trades if self.orders[t["order_id"]].account is account]

    # --- portfolio and funds -------------------------------------------------------------------

    def position_book(self, account: Account) -> dict[str, list[dict[str, Any]]]:
        with self._lock:
            net = [
                book.entry(self.prices[book.instrument.key])
                for (user_id, *_), book in self.positions.items()
                if user_id == account.user_id
            ]
            return {"net": net, "day": [dict(entry) for entry in net]}

    def funds(self, account: Account) -> dict[str, Any]:
        """Kite's ``/user/margins``: the cash, what positions and open orders use, the PnL."""
        with self._lock:
            books = self.position_book(account)["net"]
            realised = sum((b["realised"] for b in books), Decimal(0))
            unrealised = sum((b["unrealised"] for b in books), Decimal(0))
            used = sum(
                (
                    required_margin(b["product"], abs(b["quantity"]) * b["average_price"])
                    for b in books
                ),
                Decimal(0),
            ) + sum(
                (self._order_margin(o) for o in self.orders.values() if o.account is account),
                Decimal(0),
            )
            live = account.cash + realised - used
            equity = {
                "enabled": True,
                "net": live,
                "available": {
                    "adhoc_margin": 0,
                    "cash": account.cash,
                    "opening_balance": account.cash,
                    "live_balance": live,
                    "collateral": 0,
                    "intraday_payin": 0,
                },
                "utilised": {
                    "debits": used,
                    "exposure": 0,
                    "m2m_realised": realised,
                    "m2m_unrealised": unrealised,
                    "option_premium": 0,
                    "payout": 0,
                    "span": used,
                    "holding_sales": 0,
                    "turnover": 0,
                    "liquid_collateral": 0,
                    "stock_collateral": 0,
                    "delivery": 0,
                },
            }
            empty = dict.fromkeys(equity["utilised"], 0)
            commodity = {
                "enabled": False,
                "net": 0,
                "available": dict.fromkeys(equity["available"], 0),
                "utilised": empty,
            }
            return {"equity": equity, "commodity": commodity}

    def margins_for(self, legs: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Kite's ``/margins/orders``: each leg's margin (a flat share of its value) and
        charges."""
        with self._lock:
            answers = []
            for leg in legs:
                exchange, symbol = leg.get("exchange"), leg.get("tradingsymbol")
                instrument = self.instrument(f"{exchange}:{symbol}")
                side = field_choice(leg, "transaction_type", SIDES)
                product = field_choice(leg, "product", PRODUCTS)
                quantity = field_quantity(leg, "quantity", lot=instrument.lot_size)
                price = field_decimal(leg, "price") or self.prices[instrument.key]
                margin = required_margin(product, price * quantity)
                derivative = instrument.kind in ("FUT", "OPT")
                answers.append(
                    {
                        **margin_figures(span=margin if derivative else 0),
                        "type": "equity",
                        "tradingsymbol": instrument.symbol,
                        "exchange": instrument.exchange,
                        "var": 0 if derivative else margin,
                        "leverage": LEVERAGE.get(product, 1),
                        "charges": leg_charges(
                            instrument, side=side, product=product, quantity=quantity, price=price
                        ),
                        "total": margin,
                    }
                )
            return answers

    def basket_margins(self, legs: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
        orders = self.margins_for(legs)
        total = sum((o["total"] for o in orders), Decimal(0))
        charges = charges_sum([o["charges"] for o in orders])
        summary = {**margin_figures(span=total), "type": "", "tradingsymbol": "", "exchange": ""}
        summary.update(var=0, leverage=0, charges=charges_sum([]), total=total)
        return {"initial": summary, "final": dict(summary), "orders": orders, "charges": charges}

    def contract_note(self, orders: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Kite's ``/charges/orders``: each executed order's charges."""
        notes = []
        for leg in orders:
            instrument = self.instrument(f"{leg.get('exchange')}:{leg.get('tradingsymbol')}")
            side = field_choice(leg, "transaction_type", SIDES)
            product = field_choice(leg, "product", PRODUCTS)
            quantity = field_quantity(leg, "quantity", lot=1)
            price = field_decimal(leg, "average_price")
            if price is None or price <= 0:
                raise input_error(f"average_price {leg.get('average_price')}: must be above 0")
            notes.append(
                {
                    "transaction_type": side,
                    "tradingsymbol": instrument.symbol,
                    "exchange": instrument.exchange,
                    "variety": leg.get("variety") or "regular",
                    "product": product,
                    "order_type": leg.get("order_type") or "MARKET",
                    "quantity": quantity,
                    "price": price,
                    "charges": leg_charges(
                        instrument, side=side, product=product, quantity=quantity, price=price
                    ),
                }
            )
        return notes

    # --- inside the lock -----------------------------------------------------------------------

    def _timestamp(self) -> str:
        return self._now().strftime(TIMESTAMP)

    def _order(self, account: Account, order_id: str) -> SandboxOrder:
        order = self.orders.get(order_id)
        if order is None or order.account is not account:
            raise input_error("Couldn't find that `order_id`.")
        return order

    def _order_rate_take(self, account: Account) -> None:
        """Kite's 10 order requests a second per user (place, modify and cancel alike)."""
        now = self._clock()
        times = account.order_times
        while times and now - times[0] >= 1.0:
            times.popleft()
        if len(times) >= ORDERS_PER_SECOND:
            raise KiteError(429, "NetworkException", "Too many requests")
        times.append(now)

    def _record(
        self,
        order: SandboxOrder,
        status: str,
        *,
        message: str | None = None,
        exchange: bool = False,
        notify: bool = False,
    ) -> None:
        order.status, order.status_message = status, message
        if exchange:
            order.exchange_update_timestamp = self._timestamp()
        entry = order.entry()
        order.history.append(entry)
        if notify and self._postback is not None:
            self._postback(order.account, entry)

    def _order_margin(self, order: SandboxOrder) -> Decimal:
        """What the unfilled part of an order blocks (nothing once it stopped working)."""
        if order.status not in WORKING:
            return Decimal(0)
        return self._unfilled_margin(order)

    def _unfilled_margin(self, order: SandboxOrder) -> Decimal:
        price = order.price or order.trigger_price or self.prices[order.instrument.key]
        return required_margin(order.product, price * (order.quantity - order.filled_quantity))

    def _risk_refusal(self, order: SandboxOrder) -> str | None:
        """Why Kite's risk system would reject the order after taking it, if it would."""
        account, instrument = order.account, order.instrument
        if order.product == "CNC" and order.side == "SELL":
            book = self.positions.get(
                (account.user_id, instrument.exchange, instrument.symbol, "CNC")
            )
            held = book.quantity if book else 0
            if held < order.quantity:
                return (
                    f"RMS:Short sell not allowed for CNC: holding {held}, selling {order.quantity}"
                )
        needed = self._unfilled_margin(order)
        available = self.funds(account)["equity"]["net"]  # the order is not working yet
        if needed > available:
            return (
                f"RMS:Margin Exceeds,Required:{needed:.2f}, Available:{available:.2f} "
                f"for entity account-{account.user_id}"
            )
        return None

    def _match(self, instrument: Instrument) -> None:
        for order in list(self.orders.values()):
            if order.instrument is instrument and order.status in ("OPEN", "TRIGGER PENDING"):
                self._work(order)
        self._gtts_trigger(instrument)  # GTTs the price reached (omsproject.kite_sandbox_gtt)

    def _work(self, order: SandboxOrder) -> None:
        """Trigger and fill the order if the instrument's price reaches it."""
        price = self.prices[order.instrument.key]
        buying = order.side == "BUY"
        if order.status == "TRIGGER PENDING":
            triggered = price >= order.trigger_price if buying else price <= order.trigger_price
            if not triggered:
                return
            self._record(order, "OPEN", exchange=True)
        if order.status != "OPEN":
            return
        if order.order_type in ("MARKET", "SL-M"):
            self._fill(order, price)
            return
        if (buying and price <= order.price) or (not buying and price >= order.price):
            self._fill(order, price)  # at the sandbox's price: the limit or better
        elif order.validity == "IOC":
            order.cancelled_quantity = order.quantity - order.filled_quantity
            self._record(order, "CANCELLED", exchange=True, notify=True)

    def _fill(self, order: SandboxOrder, price: Decimal) -> None:
        quantity = order.quantity - order.filled_quantity
        now = self._timestamp()
        self._sequence += 1
        self.trades.append(
            {
                "trade_id": f"{self._sequence:08d}",
                "order_id": order.order_id,
                "exchange": order.instrument.exchange,
                "tradingsymbol": order.instrument.symbol,
                "instrument_token": order.instrument.token,
                "product": order.product,
                "average_price": price,
                "quantity": quantity,
                "exchange_order_id": order.exchange_order_id,
                "transaction_type": order.side,
                "fill_timestamp": now,
                "order_timestamp": now[11:],  # Kite gives the time of day only here
                "exchange_timestamp": now,
            }
        )
        filled_value = order.average_price * order.filled_quantity + price * quantity
        order.filled_quantity += quantity
        order.average_price = filled_value / order.filled_quantity
        key = (order.account.user_id, order.instrument.exchange, order.instrument.symbol)
        book = self.positions.setdefault(
            (*key, order.product), PositionBook(order.instrument, order.product)
        )
        if order.side == "BUY":
            book.buy_quantity += quantity
            book.buy_value += price * quantity
        else:
            book.sell_quantity += quantity
            book.sell_value += price * quantity
        self._record(order, "COMPLETE", exchange=True, notify=True)


def _market_protection(form: Mapping[str, Any], order_type: str) -> int:
    """Mandatory through the API for MARKET and SL-M orders since 1 April 2026."""
    if order_type not in ("MARKET", "SL-M"):
        return field_integer(form, "market_protection", low=AUTOMATIC_PROTECTION, default=0)
    protection = form.get("market_protection")
    if protection in (None, ""):
        raise input_error(
            f"market_protection: mandatory for {order_type} orders "
            "(-1 for automatic, or a percentage from 0 to 100)"
        )
    value = field_integer(form, "market_protection", low=AUTOMATIC_PROTECTION)
    if value > 100:
        raise input_error(f"market_protection {value}: must be -1 or from 0 to 100")
    return value
