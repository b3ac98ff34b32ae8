"""What a strategy asks for (OrderRequest) and what the OMS answers (OrderResult).

Pure Python: an OrderRequest validates itself on construction and reports every bad field at
once, each message naming the field and the rule ("quantity 0: must be at least 1").
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from orders.enums import (
    Exchange,
    OrderSide,
    OrderStatus,
    OrderType,
    Product,
    Segment,
    Validity,
    Variety,
)
from orders.money import on_paisa, to_paisa
from orders.varieties import iceberg_errors

SYMBOL_RE = re.compile(r"^[A-Z0-9][A-Z0-9&_\-.]{0,49}$")
CLIENT_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-:.]{0,63}$")
MAX_QUANTITY = 10_000_000
MAX_PRICE = Decimal("9999999999.99")
DERIVATIVE_EXCHANGES = {Exchange.NFO, Exchange.BFO}


class OrderRequestError(ValueError):
    """A request that cannot be an order; ``errors`` maps each bad field to its rule."""

    def __init__(self, errors: dict[str, str]):
        self.errors = errors
        super().__init__("; ".join(errors.values()))


def _choice(errors: dict[str, str], name: str, value: Any, choices: type) -> Any:
    raw = getattr(value, "value", value)
    if isinstance(raw, str) and raw.upper() in choices.values:
        return choices(raw.upper())
    allowed = ", ".join(choices.values)
    errors[name] = f"{name} {raw!r}: must be one of {allowed}"
    return None


def parse_price(errors: dict[str, str], name: str, value: Any) -> Decimal | None:
    """A positive amount on the paisa, from a Decimal, an int or a decimal string; never a float."""
    if value is None or value == "":
        return None
    if isinstance(value, float | bool):
        errors[name] = (
            f"{name} {value!r}: must be a decimal string or Decimal, not {type(value).__name__}"
        )
        return None
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        errors[name] = f"{name} {value!r}: must be a decimal number"
        return None
    if not amount.is_finite() or amount <= 0:
        errors[name] = f"{name} {value}: must be greater than 0"
    elif amount > MAX_PRICE:
        errors[name] = f"{name} {value}: must be at most {MAX_PRICE}"
    elif not on_paisa(amount):
        errors[name] = f"{name} {value}: must be a whole number of paise (2 decimals at most)"
    else:
        return to_paisa(amount)  # exact: 100 is 100.00
    return None


def segment_for(exchange: Exchange, symbol: str) -> Segment:
    """Equity on NSE/BSE; on NFO/BFO an option when the symbol ends in CE/PE, else a future."""
    if exchange not in DERIVATIVE_EXCHANGES:
        return Segment.EQ
    return Segment.OPT if symbol.endswith(("CE", "PE")) else Segment.FUT


@dataclass(frozen=True)
class OrderRequest:
    """A strategy's request to trade, validated on construction."""

    strategy_id: int
    client_order_id: str
    symbol: str
    side: OrderSide
    quantity: int
    order_type: OrderType
    product: Product
    exchange: Exchange = Exchange.NSE
    validity: Validity = Validity.DAY
    price: Decimal | None = None
    trigger_price: Decimal | None = None
    stop_loss: Decimal | None = None
    take_profit: Decimal | None = None
    tag: str = ""
    segment: Segment = field(default=Segment.EQ)
    variety: Variety = Variety.REGULAR
    iceberg_legs: int | None = None
    iceberg_quantity: int | None = None

    def __post_init__(self) -> None:
        errors: dict[str, str] = {}
        set_ = object.__setattr__.__get__(self)

        if not isinstance(self.strategy_id, int) or isinstance(self.strategy_id, bool):
            errors["strategy_id"] = f"strategy_id {self.strategy_id!r}: must be an integer"
        client_id = str(self.client_order_id or "")
        if not CLIENT_ID_RE.match(client_id):
            errors["client_order_id"] = (
                f"client_order_id {client_id!r}: must be 1-64 letters, digits or _-:. "
                "starting with a letter or digit"
            )
        symbol = str(self.symbol or "").strip().upper()
        if not SYMBOL_RE.match(symbol):
            errors["symbol"] = f"symbol {self.symbol!r}: must be a tradingsymbol of 1-50 characters"
        set_("symbol", symbol)
        for name, choices in (
            ("side", OrderSide),
            ("order_type", OrderType),
            ("product", Product),
            ("exchange", Exchange),
            ("validity", Validity),
        ):
            set_(name, _choice(errors, name, getattr(self, name), choices))

        variety = str(getattr(self.variety, "value", self.variety) or "").lower()
        if variety in Variety.values:
            set_("variety", Variety(variety))
        else:
            errors["variety"] = f"variety {self.variety!r}: must be one of " + ", ".join(
                Variety.values
            )
        for name in ("iceberg_legs", "iceberg_quantity"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
                errors[name] = f"{name} {value!r}: must be a whole number"

        quantity = self.quantity
        if isinstance(quantity, str) and quantity.strip().isdigit():
            quantity = int(quantity)
        if not isinstance(quantity, int) or isinstance(quantity, bool):
            errors["quantity"] = f"quantity {self.quantity!r}: must be a whole number"
        elif quantity < 1:
            errors["quantity"] = f"quantity {quantity}: must be at least 1"
        elif quantity > MAX_QUANTITY:
            errors["quantity"] = f"quantity {quantity}: must be at most {MAX_QUANTITY}"
        else:
            set_("quantity", quantity)

        for name in ("price", "trigger_price", "stop_loss", "take_profit"):
            set_(name, parse_price(errors, name, getattr(self, name)))
        if len(self.tag or "") > 64:
            errors["tag"] = f"tag of {len(self.tag)} characters: must be at most 64"
        set_("tag", self.tag or "")

        if not errors:
            self._check_combinations(errors)
        if errors:
            raise OrderRequestError(errors)
        set_("segment", segment_for(self.exchange, self.symbol))

    def _check_combinations(self, errors: dict[str, str]) -> None:
        needs_price = self.order_type in (OrderType.LIMIT, OrderType.SL)
        needs_trigger = self.order_type in (OrderType.SL, OrderType.SL_M)
        if needs_price and self.price is None:
            errors["price"] = f"price missing: a {self.order_type} order needs a price"
        if not needs_price and self.price is not None:
            errors["price"] = f"price {self.price}: a {self.order_type} order takes no price"
        if needs_trigger and self.trigger_price is None:
            errors["trigger_price"] = (
                f"trigger_price missing: a {self.order_type} order needs a trigger price"
            )
        if not needs_trigger and self.trigger_price is not None:
            errors["trigger_price"] = (
                f"trigger_price {self.trigger_price}: a {self.order_type} order takes no trigger"
            )
        if self.order_type == OrderType.SL and self.price and self.trigger_price:
            # A stop-buy triggers on a rise, so its limit must be at or above the trigger.
            if self.side == OrderSide.BUY and self.trigger_price > self.price:
                errors["trigger_price"] = (
                    f"trigger_price {self.trigger_price}: must be at or below price "
                    f"{self.price} for an SL BUY"
                )
            if self.side == OrderSide.SELL and self.trigger_price < self.price:
                errors["trigger_price"] = (
                    f"trigger_price {self.trigger_price}: must be at or above price "
                    f"{self.price} for an SL SELL"
                )
        errors.update(
            iceberg_errors(
                variety=self.variety,
                quantity=self.quantity,
                order_type=self.order_type,
                validity=self.validity,
                legs=self.iceberg_legs,
                leg_quantity=self.iceberg_quantity,
            )
        )
        derivative = self.exchange in DERIVATIVE_EXCHANGES
        if self.product == Product.NRML and not derivative:
            errors["product"] = "product NRML: only for futures and options (NFO, BFO)"
        if self.product == Product.CNC and derivative:
            errors["product"] = f"product CNC: not available on {self.exchange}; use NRML or MIS"
        if self.stop_loss and self.take_profit:
            long = self.side == OrderSide.BUY
            if (long and self.stop_loss >= self.take_profit) or (
                not long and self.stop_loss <= self.take_profit
            ):
                relation = "below" if long else "above"
                errors["stop_loss"] = (
                    f"stop_loss {self.stop_loss}: must be {relation} take_profit "
                    f"{self.take_profit} for a {self.side}"
                )

    def fingerprint(self) -> str:
        """Identifies the request's content, so a replay can be told from a clashing reuse."""
        content = {k: (str(v) if v is not None else None) for k, v in asdict(self).items()}
        content.pop("client_order_id")
        if self.variety == Variety.REGULAR:  # as before varieties: old replays still match
            for name in ("variety", "iceberg_legs", "iceberg_quantity"):
                content.pop(name)
        return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()

    @property
    def signed_quantity(self) -> int:
        return self.quantity * self.side.sign


@dataclass(frozen=True)
class Violation:
    """One reason an order is refused by a pre-trade check. A check against a limit also
    gives the measured ``value`` and the ``limit`` (decimal strings), so a screen can show
    "value vs limit" formatted rather than read them out of the message."""

    code: str
    field: str
    message: str
    value: str = ""
    limit: str = ""

    def as_dict(self) -> dict[str, str]:
        found = {"code": self.code, "field": self.field, "message": self.message}
        if self.value or self.limit:
            found.update(value=self.value, limit=self.limit)
        return found


@dataclass(frozen=True)
class OrderResult:
    """What the OMS answers to a placement: at once, before the broker has seen the order."""

    order_id: int
    client_order_id: str
    status: OrderStatus
    message: str = ""
    replayed: bool = False
    violations: tuple[Violation, ...] = ()
    # The order row as the service left it (its caller need not read it again); not content.
    order: Any = field(default=None, compare=False, repr=False)

    @property
    def accepted(self) -> bool:
        return self.status != OrderStatus.REJECTED
