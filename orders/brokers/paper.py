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
from dataclasses import dataclass, replace
from decimal import ROUND_HALF_UP, Decimal
from itertools import pairwise

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q, Sum
from django.utils import timezone

from orders.brokers.base import (
    BrokerFill,
    BrokerGtt,
    BrokerHolding,
    BrokerOrderUpdate,
    BrokerPosition,
    BrokerRejected,
    BrokerTimeout,
    GttLeg,
    GttRequest,
    PlaceAck,
)
from orders.enums import OrderSide, OrderStatus, OrderType, Product, Segment, Validity, Variety
from orders.models import Order, PaperGtt, PaperOrder, PaperTrade, Strategy
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
            "symbol",
            "exchange",
            "side",
            named=True,
        )
        # Naming the instrument and side, as Kite's order book does: reconciliation shows them
        # for an order it does not know.
        return [
            replace(
                self._update(row, fills.get(row.id, ())),
                symbol=row.symbol,
                exchange=row.exchange,
                side=row.side,
            )
            for row in paper_orders
        ]

    def positions(self) -> list[BrokerPosition]:
        """Net positions per instrument across every paper strategy, as one Kite account nets.
        CNC trades of earlier days are not here: like Kite's, they are holdings()."""
        rows = (
            PaperTrade.objects.exclude(_earlier_delivery())
            .values("paper_order__symbol", "paper_order__exchange", "paper_order__product")
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
        updates.extend(cls.gtts_on_price(symbol, exchange, last_price, strategy=strategy))
        return updates

    # --- GTTs (orders.models_gtt.PaperGtt): Kite's two-leg OCO and single triggers ------------

    def place_gtt(self, request: GttRequest) -> str:
        if self.fault == "gtt_reject":
            raise BrokerRejected("paper broker: simulated GTT rejection")
        gtt = PaperGtt.objects.create(
            strategy=self.strategy,
            trigger_type=request.trigger_type,
            symbol=request.symbol,
            exchange=request.exchange,
            product=request.product,
            trigger_values=[str(value) for value in request.trigger_values],
            last_price=request.last_price,
            legs=[_gtt_leg_json(leg) for leg in request.legs],
        )
        return str(gtt.pk)

    def modify_gtt(self, trigger_id: str, request: GttRequest) -> None:
        with transaction.atomic():
            gtt = PaperGtt.objects.select_for_update().filter(pk=int(trigger_id)).first()
            if gtt is None or gtt.status != "active":
                raise BrokerRejected(f"GTT {trigger_id} is {gtt.status if gtt else 'unknown'}")
            gtt.trigger_type = request.trigger_type
            gtt.trigger_values = [str(value) for value in request.trigger_values]
            gtt.last_price = request.last_price
            gtt.legs = [_gtt_leg_json(leg) for leg in request.legs]
            gtt.save()

    def delete_gtt(self, trigger_id: str) -> None:
        with transaction.atomic():
            gtt = PaperGtt.objects.select_for_update().filter(pk=int(trigger_id)).first()
            if gtt is None or gtt.status != "active":
                raise BrokerRejected(f"GTT {trigger_id} is {gtt.status if gtt else 'unknown'}")
            gtt.status = "deleted"
            gtt.save()

    def gtts(self) -> list[BrokerGtt]:
        """Every paper GTT, as Kite lists every GTT of the account."""
        return [_broker_gtt(gtt) for gtt in PaperGtt.objects.order_by("pk")]

    @classmethod
    def gtts_on_price(cls, symbol, exchange, last_price: Decimal, *, strategy=None) -> list:
        """Trigger the active GTTs on an instrument that ``last_price`` reaches (for the same
        strategies as on_price's matching): the GTT becomes triggered, its leg is placed as a
        LIMIT paper order (tag ``GTT<id>``, the other leg of an OCO goes with the trigger) and
        matched at once. Returns that order's reports (the OMS adopts it: positions.protection).
        """
        active = PaperGtt.objects.filter(symbol=symbol, exchange=exchange, status="active")
        active = active.annotate(own_price=OwnPrice("strategy_id", "symbol", "exchange"))
        if strategy is None:
            active = active.filter(own_price__isnull=True)
        else:
            active = active.filter(strategy=strategy, own_price__isnull=False)
        updates = []
        for gtt_id in active.order_by("pk").values_list("pk", flat=True):
            with transaction.atomic():
                gtt = PaperGtt.objects.select_for_update().get(pk=gtt_id)
                leg = gtt_leg_hit(gtt, last_price) if gtt.status == "active" else None
                if leg is None:
                    continue
                broker = cls(gtt.strategy)
                paper_order = PaperOrder.objects.create(
                    strategy=gtt.strategy,
                    tag=f"GTT{gtt.pk}",
                    broker_order_id=f"PG{gtt.pk:012d}",
                    symbol=gtt.symbol,
                    exchange=gtt.exchange,
                    product=gtt.product,
                    side=gtt.legs[leg]["transaction_type"],
                    order_type=OrderType.LIMIT,
                    validity=Validity.DAY,
                    quantity=gtt.legs[leg]["quantity"],
                    price=Decimal(gtt.legs[leg]["price"]),
                    status="OPEN",
                )
                gtt.legs[leg]["result"] = {
                    "triggered_at": str(last_price),
                    "order_result": {"status": "success", "order_id": paper_order.broker_order_id},
                }
                gtt.status = "triggered"
                gtt.save()
                updates.append(broker._update(paper_order))
                updates.extend(broker._deliver(broker._try_match(paper_order, last_price)))
        return updates

    # --- holdings --------------------------------------------------------------------------

    def holdings(self) -> list[BrokerHolding]:
        """Delivery (CNC) shares from earlier days' paper trades, netted per instrument across
        every paper strategy, as Kite's holdings hold them (all settled: no T+1 part); the
        average is that of the buys. Today's CNC trades are in positions()."""
        rows = (
            PaperTrade.objects.filter(_earlier_delivery())
            .values("paper_order__symbol", "paper_order__exchange")
            .annotate(
                bought=Sum("quantity", filter=_side(OrderSide.BUY)),
                sold=Sum("quantity", filter=_side(OrderSide.SELL)),
                bought_value=Sum(F("quantity") * F("price"), filter=_side(OrderSide.BUY)),
            )
            .order_by("paper_order__symbol", "paper_order__exchange")
        )
        holdings = []
        for row in rows:
            quantity = (row["bought"] or 0) - (row["sold"] or 0)
            if quantity == 0:
                continue
            average = row["bought_value"] / row["bought"] if row["bought"] else None
            holdings.append(
                BrokerHolding(
                    symbol=row["paper_order__symbol"],
                    exchange=row["paper_order__exchange"],
                    quantity=quantity,
                    average_price=average
                    and average.quantize(Decimal("0.000001"), rounding=ROUND_HALF_UP),
                )
            )
        return holdings


def _side(side: OrderSide) -> Q:
    return Q(paper_order__side=side)


def _earlier_delivery() -> Q:
    """Paper trades of CNC orders executed before today (IST): holdings, not positions."""
    today = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    return Q(paper_order__product=Product.CNC, executed_at__lt=today)


def gtt_leg_hit(gtt: PaperGtt, last_price: Decimal) -> int | None:
    """Which leg of a GTT ``last_price`` triggers, if any (pure). Two-leg: the lower trigger
    at or below it, the upper at or above. Single: the trigger crossed from the side of the
    price the GTT was placed at."""
    values = [Decimal(value) for value in gtt.trigger_values]
    if len(values) == 2:
        if last_price <= values[0]:
            return 0
        return 1 if last_price >= values[1] else None
    below = gtt.last_price > values[0]
    hit = last_price <= values[0] if below else last_price >= values[0]
    return 0 if hit else None


def _gtt_leg_json(leg: GttLeg) -> dict:
    return {
        "transaction_type": leg.side,
        "quantity": leg.quantity,
        "price": str(leg.price),
        "order_type": "LIMIT",
        "result": None,
    }


def _broker_gtt(gtt: PaperGtt) -> BrokerGtt:
    legs = []
    for leg in gtt.legs:
        result = leg.get("result")
        legs.append(
            GttLeg(
                side=leg["transaction_type"],
                quantity=leg["quantity"],
                price=Decimal(leg["price"]),
                order_id=(result or {}).get("order_result", {}).get("order_id", ""),
                triggered=result is not None,
            )
        )
    return BrokerGtt(
        trigger_id=str(gtt.pk),
        status=gtt.status,
        symbol=gtt.symbol,
        exchange=gtt.exchange,
        trigger_values=tuple(Decimal(value) for value in gtt.trigger_values),
        legs=tuple(legs),
    )


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
