"""The paper broker: a simulated exchange with its own order book (paper_orders, paper_trades).

It fills MARKET orders at the last known price, LIMIT orders when the price crosses, triggers
SL and SL-M orders, can fill in parts, and rejects what an exchange would. Its fills reach the
OMS through the same path as the real broker's (order_updates_apply -> fill_apply), so
charges and positions are identical. Deterministic: part sizes come from a generator seeded
by OMS_PAPER_SEED and the order, never from the clock.

Fault switches for tests live in the strategy's config, so every process sees them:
``config["paper"] = {"fault": "timeout_before_send" | "timeout_after_send" | "reject" |
"duplicate_reports" | "reverse_reports" | "delay_reports", "fill_parts": 3,
"place_delay_seconds": 3}``. ``place_delay_seconds`` (at most 30) holds place() that long after
the order is recorded, before the answer: a broker that has the order while its answer is
still on the way, the window in which a worker killed mid-submit leaves it (tests/reliability).

An order sent again under a tag the exchange already holds is logged as a warning: a real
broker would now hold two orders, so the OMS must never do it.
"""

from __future__ import annotations

import logging
import random
import time
from collections import defaultdict
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from itertools import pairwise

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q, Sum
from django.utils import timezone

from orders.brokers.base import (
    BrokerFill,
    BrokerOrderUpdate,
    BrokerPosition,
    BrokerRejected,
    BrokerTimeout,
    PlaceAck,
)
from orders.enums import OrderSide, OrderStatus, OrderType, Segment, Validity, Variety
from orders.models import Order, PaperOrder, PaperTrade, Strategy
from orders.money import PAISA
from orders.varieties import iceberg_leg_quantities
from positions.models import OwnPrice
from positions.selectors import last_price as strategy_last_price
from risk import calendar

logger = logging.getLogger("oms.brokers.paper")

WORKING = ("OPEN", "TRIGGER PENDING")
# An after-market order the paper exchange holds until its clock's next open (Kite's word).
AMO_QUEUED = "AMO REQ RECEIVED"
CANCELLABLE = (*WORKING, AMO_QUEUED)
MAX_PLACE_DELAY_SECONDS = 30.0
KITE_TO_OMS = {
    "OPEN": OrderStatus.OPEN,
    "TRIGGER PENDING": OrderStatus.TRIGGER_PENDING,
    "COMPLETE": OrderStatus.FILLED,
    "CANCELLED": OrderStatus.CANCELLED,
    "REJECTED": OrderStatus.REJECTED,
    AMO_QUEUED: OrderStatus.OPEN,  # working, for the OMS: accepted, waiting for the open
}


def equity_tick_size(price: Decimal) -> Decimal:
    """NSE's price-based tick for equity and stock futures (from 15 Apr 2025)."""
    for limit, tick in (
        (Decimal(250), Decimal("0.01")),
        (Decimal(1000), Decimal("0.05")),
        (Decimal(5000), Decimal("0.10")),
        (Decimal(10000), Decimal("0.50")),
        (Decimal(20000), Decimal("1.00")),
    ):
        if price < limit:
            return tick
    return Decimal("5.00")


def tick_size_for(segment: str, price: Decimal) -> Decimal:
    return Decimal("0.05") if segment == Segment.OPT else equity_tick_size(price)


@dataclass(frozen=True)
class Match:
    price: Decimal
    triggered: bool


def match(
    *,
    side: str,
    order_type: str,
    price: Decimal | None,
    trigger_price: Decimal | None,
    triggered: bool,
    last_price: Decimal | None,
) -> Match | None:
    """Whether a working order executes at ``last_price``, and at what price (pure)."""
    if last_price is None:
        return None
    buy = side == OrderSide.BUY
    if order_type in (OrderType.SL, OrderType.SL_M) and not triggered:
        hit = last_price >= trigger_price if buy else last_price <= trigger_price
        if not hit:
            return None
        triggered = True
    if order_type in (OrderType.MARKET, OrderType.SL_M):
        return Match(last_price, triggered)
    crosses = last_price <= price if buy else last_price >= price
    if crosses:
        return Match(min(price, last_price) if buy else max(price, last_price), triggered)
    return Match(None, triggered) if triggered else None


def split_quantity(quantity: int, parts: int, rng: random.Random) -> list[int]:
    """Split a quantity into at most ``parts`` positive pieces."""
    parts = max(1, min(parts, quantity))
    if parts == 1:
        return [quantity]
    cuts = sorted(rng.sample(range(1, quantity), parts - 1))
    bounds = [0, *cuts, quantity]
    return [b - a for a, b in pairwise(bounds)]


class PaperBroker:
    name = "paper"
    confirms_modifications = False  # modify returns the modified order's report

    def __init__(self, strategy):
        self.strategy = strategy
        self.options = (strategy.config or {}).get("paper", {})

    # --- helpers ---------------------------------------------------------------------------

    @property
    def fault(self) -> str:
        return self.options.get("fault", "")

    def _rng(self, paper_order: PaperOrder) -> random.Random:
        return random.Random(f"{settings.OMS_PAPER_SEED}:{paper_order.broker_order_id}")

    def _last_price(self, symbol: str, exchange: str) -> Decimal | None:
        """The price this strategy's orders fill at: its own posted one (a PAPER strategy
        that posted one), else the shared market price (``oms_last_price``)."""
        return strategy_last_price(strategy=self.strategy, symbol=symbol, exchange=exchange)

    def _update(self, paper_order: PaperOrder, fills=()) -> BrokerOrderUpdate:
        return BrokerOrderUpdate(
            broker_order_id=paper_order.broker_order_id,
            tag=paper_order.tag,
            status=KITE_TO_OMS[paper_order.status],
            filled_quantity=paper_order.filled_quantity,
            average_price=paper_order.average_price,
            message=paper_order.message,
            fills=tuple(fills),
            timestamp=timezone.now(),
            raw_status=paper_order.status,
        )

    def _deliver(self, updates: list[BrokerOrderUpdate]) -> tuple[BrokerOrderUpdate, ...]:
        """Apply the configured reporting faults to a batch of reports."""
        if self.fault == "duplicate_reports":
            return tuple(u for u in updates for _ in range(2))
        if self.fault == "reverse_reports":
            return tuple(reversed(updates))
        return tuple(updates)

    def _execute(self, paper_order: PaperOrder, fill_price: Decimal) -> list[BrokerOrderUpdate]:
        """Fill the remaining quantity of a locked paper order, in parts when configured."""
        remaining = paper_order.quantity - paper_order.filled_quantity
        parts = _iceberg_legs_left(paper_order) or split_quantity(
            remaining, int(self.options.get("fill_parts", 1)), self._rng(paper_order)
        )
        updates = []
        for piece in parts:
            sequence = PaperTrade.objects.filter(paper_order=paper_order).count() + 1
            trade = PaperTrade.objects.create(
                paper_order=paper_order,
                trade_id=f"{paper_order.broker_order_id}-T{sequence}",
                quantity=piece,
                price=fill_price,
                executed_at=timezone.now(),
            )
            before = paper_order.filled_quantity
            value = (paper_order.average_price or Decimal(0)) * before + fill_price * piece
            paper_order.filled_quantity = before + piece
            paper_order.average_price = (value / paper_order.filled_quantity).quantize(
                Decimal("0.000001"), rounding=ROUND_HALF_UP
            )
            if paper_order.filled_quantity == paper_order.quantity:
                paper_order.status = "COMPLETE"
            paper_order.save()
            fill = BrokerFill(trade.trade_id, trade.quantity, trade.price, trade.executed_at)
            updates.append(self._update(paper_order, [fill]))
        return updates

    def _try_match(self, paper_order: PaperOrder, last_price: Decimal | None) -> list:
        result = match(
            side=paper_order.side,
            order_type=paper_order.order_type,
            price=paper_order.price,
            trigger_price=paper_order.trigger_price,
            triggered=paper_order.triggered,
            last_price=last_price,
        )
        updates = []
        if result and result.triggered and not paper_order.triggered:
            paper_order.triggered = True
            paper_order.status = "OPEN"
            paper_order.save()
            updates.append(self._update(paper_order))
        if result and result.price is not None:
            updates.extend(self._execute(paper_order, result.price))
        return updates

    # --- the Broker interface --------------------------------------------------------------

    def place(self, order: Order) -> PlaceAck:
        if self.fault == "timeout_before_send":
            raise BrokerTimeout("paper broker: simulated timeout (order not received)")
        if self.fault == "reject":
            raise BrokerRejected("paper broker: simulated rejection")
        for name in ("price", "trigger_price"):
            value = getattr(order, name)
            if value is not None:
                tick = tick_size_for(order.segment, value)
                if value % tick:
                    raise BrokerRejected(
                        f"{name} {value.quantize(PAISA)} is not a multiple of the tick size {tick}"
                    )
        if order.segment == Segment.OPT and order.order_type == OrderType.SL_M:
            raise BrokerRejected("SL-M orders are not allowed for options")
        with transaction.atomic():
            paper_order, created = PaperOrder.objects.get_or_create(
                tag=order.broker_tag,
                defaults={
                    "strategy_id": order.strategy_id,
                    "broker_order_id": f"PB{order.pk:012d}",
                    "symbol": order.symbol,
                    "exchange": order.exchange,
                    "product": order.product,
                    "side": order.side,
                    "order_type": order.order_type,
                    "validity": order.validity,
                    "quantity": order.quantity,
                    "price": order.price,
                    "trigger_price": order.trigger_price,
                    "status": _first_status(order),
                },
            )
            paper_order = PaperOrder.objects.select_for_update().get(pk=paper_order.pk)
            updates = [self._update(paper_order)]
            if paper_order.status in WORKING:
                updates += self._try_match(
                    paper_order, self._last_price(order.symbol, order.exchange)
                )
            if order.validity == Validity.IOC and paper_order.status in WORKING:
                paper_order.status = "CANCELLED"
                paper_order.message = "IOC: unfilled quantity cancelled"
                paper_order.save()
                updates.append(self._update(paper_order))
        if not created:
            logger.warning(
                "paper broker: order %s sent again under tag %s (a real broker would now hold "
                "two orders)",
                order.pk,
                order.broker_tag,
            )
        if delay := min(float(self.options.get("place_delay_seconds", 0)), MAX_PLACE_DELAY_SECONDS):
            logger.warning(
                "paper broker: order %s recorded; holding the answer %.1f s (place_delay_seconds)",
                order.pk,
                delay,
            )
            time.sleep(delay)
        if self.fault == "timeout_after_send":
            raise BrokerTimeout("paper broker: simulated timeout (order received)")
        return PlaceAck(paper_order.broker_order_id, self._deliver(updates))

    def modify(self, order, *, quantity, price, trigger_price, order_type):
        with transaction.atomic():
            paper_order = PaperOrder.objects.select_for_update().get(
                broker_order_id=order.broker_order_id
            )
            if paper_order.status not in WORKING:
                raise BrokerRejected(f"order is {paper_order.status}: cannot be modified")
            if quantity <= paper_order.filled_quantity:
                raise BrokerRejected("quantity must exceed the filled quantity")
            paper_order.quantity = quantity
            paper_order.price = price
            paper_order.trigger_price = trigger_price
            paper_order.order_type = order_type
            paper_order.save()
            updates = [self._update(paper_order)]
            updates += self._try_match(
                paper_order, self._last_price(paper_order.symbol, paper_order.exchange)
            )
        return self._deliver(updates)

    def cancel(self, order):
        with transaction.atomic():
            paper_order = PaperOrder.objects.select_for_update().get(
                broker_order_id=order.broker_order_id
            )
            if paper_order.status not in CANCELLABLE:
                raise BrokerRejected(f"order is {paper_order.status}: cannot be cancelled")
            paper_order.status = "CANCELLED"
            paper_order.message = "cancelled on request"
            paper_order.save()
        return self._deliver([self._update(paper_order)])

    def cancel_many(self, orders) -> tuple[tuple[BrokerOrderUpdate, ...], list]:
        """Cancel the working ones of these orders in one statement (a kill switch's HALT);
        returns their reports and the orders it did not cancel, for ``cancel`` to refuse."""
        with transaction.atomic():
            cancelled = list(
                PaperOrder.objects.select_for_update()
                .filter(
                    broker_order_id__in=[o.broker_order_id for o in orders],
                    status__in=CANCELLABLE,
                )
                .order_by("pk")
            )
            now = timezone.now()
            PaperOrder.objects.filter(pk__in=[p.pk for p in cancelled]).update(
                status="CANCELLED", message="cancelled on request", updated_at=now
            )
        for paper_order in cancelled:
            paper_order.status, paper_order.message = "CANCELLED", "cancelled on request"
        done = {paper_order.broker_order_id for paper_order in cancelled}
        refused = [order for order in orders if order.broker_order_id not in done]
        return self._deliver([self._update(p) for p in cancelled]), refused

    def expire_day_orders(self) -> tuple[BrokerOrderUpdate, ...]:
        """At the close the exchange cancels every working DAY order of this strategy."""
        updates = []
        with transaction.atomic():
            for paper_order in PaperOrder.objects.select_for_update().filter(
                strategy=self.strategy, status__in=WORKING, validity=Validity.DAY
            ):
                paper_order.status = "CANCELLED"
                paper_order.message = "expired at market close"
                paper_order.save()
                update = self._update(paper_order)
                updates.append(
                    BrokerOrderUpdate(**{**update.__dict__, "status": OrderStatus.EXPIRED})
                )
        return tuple(updates)

    def find_by_tag(self, tag: str) -> BrokerOrderUpdate | None:
        paper_order = PaperOrder.objects.filter(tag=tag).first()
        if paper_order is None:
            return None
        return self._with_fills(paper_order)

    def _with_fills(self, paper_order: PaperOrder) -> BrokerOrderUpdate:
        fills = [
            BrokerFill(t.trade_id, t.quantity, t.price, t.executed_at)
            for t in paper_order.trades.order_by("id")
        ]
        return self._update(paper_order, fills)

    def order_status(self, order) -> BrokerOrderUpdate | None:
        if order.broker_order_id:
            paper_order = PaperOrder.objects.filter(broker_order_id=order.broker_order_id).first()
            return self._with_fills(paper_order) if paper_order else None
        return self.find_by_tag(order.broker_tag)

    def orders(self) -> list[BrokerOrderUpdate]:
        """Every paper strategy's orders with their fills, as one Kite account's order book
        holds every order of the account (positions() nets across them the same way). Two
        queries, not one per order: reconciliation reads thousands."""
        fills: dict[int, list[BrokerFill]] = defaultdict(list)
        trades = PaperTrade.objects.order_by("id").values_list(
            "paper_order_id", "trade_id", "quantity", "price", "executed_at"
        )
        for paper_order_id, *fill in trades:
            fills[paper_order_id].append(BrokerFill(*fill))
        paper_orders = PaperOrder.objects.order_by("id").values_list(
            "id",
            "broker_order_id",
            "tag",
            "status",
            "filled_quantity",
            "average_price",
            "message",
            named=True,
        )
        return [self._update(row, fills.get(row.id, ())) for row in paper_orders]

    def positions(self) -> list[BrokerPosition]:
        """Net positions per instrument across every paper strategy, as one Kite account nets."""
        rows = (
            PaperTrade.objects.values(
                "paper_order__symbol", "paper_order__exchange", "paper_order__product"
            )
            .annotate(
                bought=Sum("quantity", filter=_side(OrderSide.BUY)),
                sold=Sum("quantity", filter=_side(OrderSide.SELL)),
                bought_value=Sum(F("quantity") * F("price"), filter=_side(OrderSide.BUY)),
                sold_value=Sum(F("quantity") * F("price"), filter=_side(OrderSide.SELL)),
            )
            .order_by("paper_order__symbol")
        )
        positions = []
        for row in rows:
            quantity = (row["bought"] or 0) - (row["sold"] or 0)
            # Like Kite's net position: the average of the side that is open.
            if quantity > 0:
                average = row["bought_value"] / row["bought"]
            elif quantity < 0:
                average = row["sold_value"] / row["sold"]
            else:
                average = Decimal(0)
            positions.append(
                BrokerPosition(
                    symbol=row["paper_order__symbol"],
                    exchange=row["paper_order__exchange"],
                    product=row["paper_order__product"],
                    quantity=quantity,
                    average_price=average.quantize(Decimal("0.000001"), rounding=ROUND_HALF_UP),
                )
            )
        return positions

    # --- the price feed --------------------------------------------------------------------

    @classmethod
    def on_price(cls, symbol: str, exchange: str, last_price: Decimal, *, strategy=None) -> list:
        """Match the working paper orders on an instrument against a feed's new last price:
        the shared feed's (``strategy`` None) orders of every strategy that sees the shared
        price; a PAPER strategy's own feed only that strategy's orders, where it sees its own
        price (``oms_own_price``: one feed never fills at another's price). Returns the
        resulting reports, to be applied with order_updates_apply.
        """
        updates = []
        # After-market orders join the book at the first price of the session (its clock).
        statuses = (*WORKING, AMO_QUEUED) if calendar.market_is_open() else WORKING
        working = (
            PaperOrder.objects.filter(symbol=symbol, exchange=exchange, status__in=statuses)
            .annotate(own_price=OwnPrice("strategy_id", "symbol", "exchange"))
            .order_by("id")
        )
        if strategy is None:
            working = working.filter(own_price__isnull=True)
        else:
            working = working.filter(strategy=strategy, own_price__isnull=False)
        for paper_order_id, strategy_id in working.values_list("pk", "strategy_id"):
            broker = cls(Strategy.objects.get(pk=strategy_id))
            with transaction.atomic():
                paper_order = PaperOrder.objects.select_for_update().get(pk=paper_order_id)
                if paper_order.status == AMO_QUEUED:
                    paper_order.status = "TRIGGER PENDING" if paper_order.trigger_price else "OPEN"
                    paper_order.message = "after-market order released at the open"
                    paper_order.save()
                    updates.extend(broker._deliver([broker._update(paper_order)]))
                if paper_order.status in WORKING:
                    updates.extend(broker._deliver(broker._try_match(paper_order, last_price)))
        return updates


def _side(side: OrderSide) -> Q:
    return Q(paper_order__side=side)


def _first_status(order: Order) -> str:
    """An AMO outside the session waits for the open; any other order is working at once."""
    if order.variety == Variety.AMO and not calendar.market_is_open():
        return AMO_QUEUED
    return "TRIGGER PENDING" if order.trigger_price else "OPEN"


def _iceberg_legs_left(paper_order: PaperOrder) -> list[int]:
    """An iceberg's legs still to fill, as the exchange works them (one after the other, each
    its own execution); [] for any other order."""
    terms = (
        Order.objects.filter(broker_tag=paper_order.tag, variety=Variety.ICEBERG)
        .values_list("iceberg_legs", "iceberg_quantity")
        .first()
    )
    if terms is None:
        return []
    left, done = [], paper_order.filled_quantity
    for leg in iceberg_leg_quantities(paper_order.quantity, *terms):
        taken = min(leg, done)
        done -= taken
        if leg > taken:
            left.append(leg - taken)
    return left
