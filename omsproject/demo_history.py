"""A bulk demo history written with PostgreSQL COPY: ``manage.py seed_demo --orders N``.

Rows are written with COPY, never through the services: a million orders through order_place
would take hours. So the rows are built to be what the services would have left behind, and
the database checks them as it checks any row: every CHECK constraint, the foreign keys, the
trades trigger (which recomputes gross, total and net from the components given here, to the
same values). Each order is one side of a round trip (an entry and its exit, same strategy,
instrument and quantity, filled in three parts at prices on the tick), so the history leaves
no open position, and each round trip writes its closed position; the strategies' counters
move by exactly what the new rows add, so strategy_counters_check still agrees. Charges come
from orders.charges (cumulative attribution per fill) for a few hundred round-trip shapes,
computed once per rate card and reused: that reuse is what makes the load fast.

Bulk orders are told apart by their client_order_id, ``bulk-<index>``: a run adds only the
bulk orders missing up to its target, so a second run with the same target adds nothing.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from django.db import connection, transaction
from django.utils import timezone

from orders.brokers.paper import equity_tick_size
from orders.charges import attribute_fill_charges, rate_card_for
from positions.pnl import to_paisa

BULK_PREFIX = "bulk-"
BULK_CHUNK = 50_000
NO_FILL_EVERY = 25  # one round trip in 25 never trades: a cancelled entry, a rejected exit
QUANTITIES = (10, 25, 60)
PRICE_STEPS = (-6, -2, 3, 8)  # ticks away from the demo price
SESSION_START = 9 * 3600 + 15 * 60  # 09:15 IST, in seconds
SESSION_SPAN = 5 * 3600 + 30 * 60  # entries until 14:45; exits within 10 minutes after
NULL = "\\N"

ORDER_COLUMNS = (
    "id, strategy_id, client_order_id, broker_tag, broker_order_id, symbol, exchange, segment, "
    "side, quantity, order_type, price, trigger_price, product, validity, status, "
    "filled_quantity, average_price, stop_loss, take_profit, tag, status_message, "
    "request_fingerprint, modification_count, metadata, created_at, submitted_at, "
    "acknowledged_at, last_fill_at, filled_at, cancel_requested_at, cancelled_at, rejected_at, "
    "expired_at, updated_at"
)
TRADE_COLUMNS = (
    "order_id, strategy_id, trade_id, symbol, exchange, product, side, quantity, price, "
    "gross_value, brokerage, stt, exchange_charges, sebi_charges, stamp_duty, gst, "
    "total_charges, net_value, realized_pnl, executed_at, created_at"
)
EVENT_COLUMNS = "order_id, kind, from_status, to_status, source, reason, actor, details, created_at"
POSITION_COLUMNS = (
    "strategy_id, symbol, exchange, product, quantity, average_price, realized_pnl, "
    "unrealized_pnl, last_price, peak_pnl, max_drawdown, opened_at, closed_at, created_at, "
    "updated_at"
)
# "HH:MM:SS" for every second of a day: timestamps are strings glued together, not datetimes.
_CLOCK = [f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}" for s in range(86400)]


@dataclass(frozen=True)
class _Leg:
    """One order of a round-trip shape, with its fills' COPY columns ready."""

    side: str
    order_type: str
    limit: str  # the LIMIT price, or NULL for a MARKET order
    average: str
    fills: tuple[str, ...]  # "quantity\tprice\tgross\t...\tnet" per fill
    value: Decimal
    charges: Decimal


@dataclass(frozen=True)
class _RoundTrip:
    symbol: str
    product: str
    quantity: int
    entry: _Leg
    exit: _Leg
    realized: Decimal
    last_price: str


@dataclass
class BulkResult:
    target: int
    existing: int
    added_orders: int = 0
    added_trades: int = 0
    added_events: int = 0
    added_positions: int = 0
    seconds: float = 0.0

    @property
    def orders_per_second(self) -> float:
        return self.added_orders / self.seconds if self.seconds else 0.0

    def summary(self) -> str:
        if not self.added_orders:
            return f"bulk history: {self.existing} bulk orders already, nothing to add"
        return (
            f"bulk history: {self.added_orders} orders, {self.added_trades} trades, "
            f"{self.added_events} events, {self.added_positions} closed positions added in "
            f"{self.seconds:.1f} s ({self.orders_per_second:,.0f} orders/s); "
            f"{self.existing + self.added_orders} bulk orders in all"
        )


def _leg(side, product, day, quantity, prices, order_type, closes=None) -> _Leg:
    """An order filled in three parts at ``prices``; charges attributed cumulatively. With
    ``closes`` (the entry leg it closes), each fill carries what its reduction realized, the
    last one the rest of the round trip's cash flow (as the ledger books it)."""
    parts = (quantity // 3, quantity // 3, quantity - 2 * (quantity // 3))
    previous, fills, value, charges, booked = [], [], Decimal(0), Decimal(0), Decimal(0)
    for part, price in zip(parts, prices, strict=True):
        share = attribute_fill_charges(
            side,
            product,
            exchange="NSE",
            segment="EQ",
            on=day,
            previous_fills=previous,
            fill_quantity=part,
            fill_price=price,
        )
        gross = part * price
        net = gross + share.total if side == "BUY" else gross - share.total
        realized = Decimal("0.00")
        if closes is not None:
            direction = 1 if side == "SELL" else -1
            if len(fills) < len(parts) - 1:
                realized = to_paisa((price - Decimal(closes.average)) * part * direction)
            else:
                flow = (value + gross - closes.value) * direction
                realized = flow - booked
        booked += realized
        fills.append(
            f"{part}\t{price}\t{gross}\t{share.brokerage}\t{share.stt}\t"
            f"{share.exchange_charges}\t{share.sebi_charges}\t{share.stamp_duty}\t"
            f"{share.gst}\t{share.total}\t{net}\t{realized}"
        )
        previous.append((part, price))
        value += gross
        charges += share.total
    average = (value / quantity).quantize(Decimal("0.000001"))
    # A LIMIT order's price is one its fills respect: at or above them to buy, below to sell.
    limit = str(max(prices) if side == "BUY" else min(prices)) if order_type == "LIMIT" else NULL
    return _Leg(side, order_type, limit, str(average), tuple(fills), value, charges)


def _round_trips(day: date, prices) -> list[_RoundTrip]:
    """Every round-trip shape, with the charges of ``day``'s rate card."""
    shapes = []
    for symbol, _, base in prices:
        base = Decimal(base)
        tick = equity_tick_size(base)
        for product in ("MIS", "CNC"):
            # Delivery cannot be sold short: CNC trips are long only.
            for entry_side in ("BUY", "SELL") if product == "MIS" else ("BUY",):
                exit_side = "SELL" if entry_side == "BUY" else "BUY"
                for quantity in QUANTITIES:
                    for step in PRICE_STEPS:
                        entry_price = base + step * tick
                        entry_prices = (entry_price, entry_price + tick, entry_price)
                        move = (step + 5) * tick  # some trips win, some lose
                        exit_price = entry_price + (move if step % 2 == 0 else -move)
                        exit_prices = (exit_price, exit_price, exit_price - tick)
                        entry = _leg(entry_side, product, day, quantity, entry_prices, "LIMIT")
                        exit_ = _leg(
                            exit_side, product, day, quantity, exit_prices, "MARKET", entry
                        )
                        long_value = entry.value if entry_side == "BUY" else exit_.value
                        short_value = exit_.value if entry_side == "BUY" else entry.value
                        shapes.append(
                            _RoundTrip(
                                symbol,
                                product,
                                quantity,
                                entry,
                                exit_,
                                realized=short_value - long_value,
                                last_price=str(exit_prices[-1]),
                            )
                        )
    return shapes


def _history_days(count: int, today: date) -> list[date]:
    """The ``count`` weekdays before ``today``, oldest first."""
    days, day = [], today
    while len(days) < count:
        day -= timedelta(days=1)
        if day.weekday() < 5:
            days.append(day)
    return days[::-1]


def _bulk_indexes(target: int) -> set[int]:
    """The indexes below ``target`` of the bulk orders already written."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT substr(client_order_id, %s)::bigint FROM orders WHERE client_order_id LIKE %s",
            [len(BULK_PREFIX) + 1, BULK_PREFIX + "%"],
        )
        return {index for (index,) in cursor.fetchall() if index < target}


def _missing_chunks(present: set[int], target: int, size: int) -> list[tuple[int, int]]:
    """[begin, end) ranges of the missing indexes, cut at multiples of ``size`` (even), so that
    a round trip (indexes 2k and 2k+1) never straddles two transactions."""
    chunks, begin = [], None
    for index in range(target + 1):
        boundary = index % size == 0 or index == target
        if begin is not None and (boundary or index in present):
            chunks.append((begin, index))
            begin = None
        if begin is None and index < target and index not in present:
            begin = index
    return chunks


def _reserve_order_ids(count: int) -> int:
    """The first of ``count`` consecutive order ids no other insert can take."""
    with transaction.atomic(), connection.cursor() as cursor:
        # Inserts into orders wait for this lock, so no other nextval lands inside the block.
        cursor.execute("LOCK TABLE orders IN SHARE ROW EXCLUSIVE MODE")
        cursor.execute(
            "SELECT setval(pg_get_serial_sequence('orders', 'id'), "
            "nextval(pg_get_serial_sequence('orders', 'id')) + %s - 1)",
            [count],
        )
        last = cursor.fetchone()[0]
    return last - count + 1


@dataclass
class _Chunk:
    begin: int  # the index of the first order, whose id is first_id
    first_id: int
    counters: dict[int, list]  # strategy id -> [trades, wins, losses, pnl]
    orders: list[str] = field(default_factory=list)
    trades: list[str] = field(default_factory=list)
    events: list[str] = field(default_factory=list)
    positions: list[str] = field(default_factory=list)


class _Generator:
    """Builds the COPY rows of bulk orders, each a pure function of its index."""

    def __init__(self, strategies, prices, days: list[date]):
        self.strategy_ids = [s.pk for s in strategies]
        self.days = days
        self.day_text = [d.isoformat() for d in days]
        cards = {d: rate_card_for(d).effective_from for d in days}
        shapes_by_card = {card: _round_trips(day, prices) for day, card in reversed(cards.items())}
        self.shapes = [shapes_by_card[cards[d]] for d in days]
        self.now = timezone.now().isoformat()

    def chunk(self, begin: int, end: int, first_id: int) -> _Chunk:
        """Rows of bulk orders with index in [begin, end), order ids from ``first_id``."""
        out = _Chunk(begin, first_id, {pk: [0, 0, 0, Decimal(0)] for pk in self.strategy_ids})
        index = begin
        if index % 2 and index < end:
            # The exit of a round trip whose entry an earlier run wrote alone: rejected.
            self._unfilled(out, index, index // 2, exit_leg=True)
            index += 1
        while index < end:
            trip = index // 2
            if index + 1 == end or trip % NO_FILL_EVERY == NO_FILL_EVERY - 1:
                self._unfilled(out, index, trip, exit_leg=False)
                if index + 1 < end:
                    self._unfilled(out, index + 1, trip, exit_leg=True)
            else:
                self._round_trip(out, index, trip)
            index += 2
        return out

    def _where(self, trip: int):
        strategy_id = self.strategy_ids[trip % len(self.strategy_ids)]
        day = (trip // 7) % len(self.days)
        shapes = self.shapes[day]
        shape = shapes[(trip * 37 + trip // len(shapes)) % len(shapes)]
        second = SESSION_START + (trip * 7919) % SESSION_SPAN
        return strategy_id, self.day_text[day], shape, second

    def _order(self, out, index, strategy_id, day, shape, leg, status, second, filled, **stamps):
        order_id = out.first_id + index - out.begin
        at = f"{day} {_CLOCK[second]}+05:30"

        def stamp(name):
            offset = stamps.get(name)
            return NULL if offset is None else f"{day} {_CLOCK[second + offset]}+05:30"

        broker_id = NULL if status == "REJECTED" else f"BLK{order_id:012d}"
        message = "refused by the pre-trade checks (demo)" if status == "REJECTED" else ""
        out.orders.append(
            f"{order_id}\t{strategy_id}\t{BULK_PREFIX}{index:09d}\tBLK{order_id:017d}\t"
            f"{broker_id}\t{shape.symbol}\tNSE\tEQ\t{leg.side}\t{shape.quantity}\t"
            f"{leg.order_type}\t{leg.limit}\t{NULL}\t{shape.product}\tDAY\t{status}\t"
            f"{shape.quantity if filled else 0}\t{leg.average if filled else NULL}\t"
            f"{NULL}\t{NULL}\tbulk\t{message}\t\t0\t"
            '{"actor": "seed_demo", "bulk": true}\t'
            f"{at}\t{stamp('submitted_at')}\t{stamp('acknowledged_at')}\t"
            f"{stamp('last_fill_at')}\t{stamp('filled_at')}\t{stamp('cancel_requested_at')}\t"
            f"{stamp('cancelled_at')}\t{stamp('rejected_at')}\t{NULL}\t{self.now}\n"
        )
        out.events.append(
            f"{order_id}\tTRANSITION\t\tPENDING\tSYSTEM\torder received\tseed_demo\t{{}}\t{at}\n"
        )
        final = stamp("filled_at") if filled else stamp("cancelled_at")
        if status == "REJECTED":
            final = at
        out.events.append(
            f"{order_id}\tTRANSITION\tPENDING\t{status}\tSYSTEM\tbulk demo history: "
            f"{len(leg.fills) if filled else 0} fills\tseed_demo\t{{}}\t{final}\n"
        )
        if filled:
            for number, fill in enumerate(leg.fills, start=1):
                executed = f"{day} {_CLOCK[second + number]}+05:30"
                out.trades.append(
                    f"{order_id}\t{strategy_id}\tBLK{order_id}-{number}\t{shape.symbol}\tNSE\t"
                    f"{shape.product}\t{leg.side}\t{fill}\t{executed}\t{self.now}\n"
                )
            counters = out.counters[strategy_id]
            counters[0] += len(leg.fills)
            counters[3] -= leg.charges

    def _round_trip(self, out, index, trip):
        strategy_id, day, shape, second = self._where(trip)
        done = {"submitted_at": 0, "acknowledged_at": 0, "last_fill_at": 3, "filled_at": 3}
        self._order(
            out, index, strategy_id, day, shape, shape.entry, "FILLED", second, True, **done
        )
        exit_second = second + 60 + trip % 540
        self._order(
            out, index + 1, strategy_id, day, shape, shape.exit, "FILLED", exit_second, True, **done
        )
        opened = f"{day} {_CLOCK[second + 3]}+05:30"
        closed = f"{day} {_CLOCK[exit_second + 3]}+05:30"
        out.positions.append(
            f"{strategy_id}\t{shape.symbol}\tNSE\t{shape.product}\t0\t{shape.entry.average}\t"
            f"{shape.realized}\t0\t{shape.last_price}\t{max(shape.realized, Decimal(0))}\t0\t"
            f"{opened}\t{closed}\t{self.now}\t{self.now}\n"
        )
        counters = out.counters[strategy_id]
        counters[1] += shape.realized > 0
        counters[2] += shape.realized < 0
        counters[3] += shape.realized

    def _unfilled(self, out, index, trip, *, exit_leg: bool):
        strategy_id, day, shape, second = self._where(trip)
        if exit_leg:
            self._order(
                out,
                index,
                strategy_id,
                day,
                shape,
                shape.exit,
                "REJECTED",
                second,
                False,
                rejected_at=0,
            )
        else:
            # A LIMIT entry the market never reached, cancelled two minutes later.
            self._order(
                out,
                index,
                strategy_id,
                day,
                shape,
                shape.entry,
                "CANCELLED",
                second,
                False,
                submitted_at=0,
                acknowledged_at=0,
                cancel_requested_at=120,
                cancelled_at=121,
            )


def _copy(cursor, table: str, columns: str, rows: list[str]) -> None:
    if not rows:
        return
    with cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        for begin in range(0, len(rows), 20_000):
            copy.write("".join(rows[begin : begin + 20_000]))


def _load_chunk(generator: _Generator, begin: int, end: int, first_id: int) -> _Chunk:
    """One transaction: a chunk's orders, events, trades, closed positions and counters."""
    rows = generator.chunk(begin, end, first_id)
    with transaction.atomic(), connection.cursor() as cursor:
        # pgtrigger's triggers read this setting in a block that catches the error raised
        # when it is not defined: an exception per row, which makes COPY 10x slower.
        cursor.execute("SET LOCAL pgtrigger.ignore = '{}'")
        _copy(cursor, "orders", ORDER_COLUMNS, rows.orders)
        _copy(cursor, "order_events", EVENT_COLUMNS, rows.events)
        _copy(cursor, "trades", TRADE_COLUMNS, rows.trades)
        _copy(cursor, "positions", POSITION_COLUMNS, rows.positions)
        for strategy_id, (trades, wins, losses, pnl) in sorted(rows.counters.items()):
            if trades or wins or losses:
                cursor.execute(
                    "UPDATE strategies SET total_trades = total_trades + %s, "
                    "winning_trades = winning_trades + %s, "
                    "losing_trades = losing_trades + %s, total_pnl = total_pnl + %s "
                    "WHERE id = %s",
                    [trades, wins, losses, pnl, strategy_id],
                )
    return rows


def bulk_history_load(
    *,
    target: int,
    strategies,
    prices,
    days: int = 20,
    chunk: int = BULK_CHUNK,
    progress=None,
) -> BulkResult:
    """Make the database hold ``target`` bulk orders (client ids ``bulk-<index>``), adding only
    the missing ones: a second run with the same target adds nothing. ``strategies``: the paper
    strategies that trade, in turn; ``prices``: (symbol, exchange, price) of the instruments
    traded, near which fills are made; ``days``: weekdays before today the history spans.

    Each chunk of orders, with its trades, events, closed positions and the strategies'
    counters, is one transaction: an interrupted load keeps whole chunks, and the next run
    writes the missing ones. (Loading chunks on two connections at once was measured no
    faster: the database's work, not Python's, sets the pace.)
    """
    if not strategies:
        raise ValueError("strategies: at least one paper strategy is needed")
    if chunk < 2:
        raise ValueError(f"chunk {chunk}: must be at least 2")
    began = time.perf_counter()
    present = _bulk_indexes(target)
    result = BulkResult(target=target, existing=len(present))
    chunks = _missing_chunks(present, target, chunk - chunk % 2)
    missing = sum(end - begin for begin, end in chunks)
    if not missing:
        return result
    next_id = _reserve_order_ids(missing)
    generator = _Generator(strategies, prices, _history_days(days, timezone.localdate()))
    for begin, end in chunks:
        rows = _load_chunk(generator, begin, end, next_id)
        next_id += end - begin
        result.added_orders += end - begin
        result.added_trades += len(rows.trades)
        result.added_events += len(rows.events)
        result.added_positions += len(rows.positions)
        result.seconds = time.perf_counter() - began
        if progress:
            progress(
                f"  {result.added_orders:,}/{missing:,} orders "
                f"({result.orders_per_second:,.0f} orders/s)"
            )
    return result
