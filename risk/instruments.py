"""The instrument master: loaded from a Kite instruments CSV (``manage.py load_instruments``, an
all-or-nothing upsert), and refreshed every morning from Kite's instruments dump
(``instruments_refresh``), with a summary of what changed kept in InstrumentRefresh."""

from __future__ import annotations

import csv
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation

from django.db import transaction
from django.utils import timezone

from orders.brokers import BrokerError, BrokerUnavailable, KiteBroker
from orders.enums import Exchange
from orders.models import BrokerAccount
from risk.models import Instrument, InstrumentRefresh, InstrumentType

logger = logging.getLogger("oms.instruments")

KITE_COLUMNS = (
    "instrument_token",
    "exchange_token",
    "tradingsymbol",
    "name",
    "last_price",
    "expiry",
    "strike",
    "tick_size",
    "lot_size",
    "instrument_type",
    "segment",
    "exchange",
)
# NSE's freeze quantities for index derivatives (largest single order); others have none.
FREEZE_QUANTITY = {"NIFTY": 1800, "BANKNIFTY": 600, "FINNIFTY": 1800, "MIDCPNIFTY": 2800}
BATCH = 2000
UPSERTED_FIELDS = [
    "instrument_token",
    "exchange_token",
    "name",
    "segment",
    "instrument_type",
    "expiry",
    "strike",
    "tick_size",
    "lot_size",
    "freeze_quantity",
    "tradable",
    "updated_at",
]


class InstrumentFileError(ValueError):
    """A malformed instruments file; the message names the line and the column."""


@dataclass(frozen=True)
class LoadResult:
    created: int
    updated: int
    total: int


def _parse(line: int, row: dict[str, str]) -> Instrument:
    def fail(column: str, rule: str) -> InstrumentFileError:
        return InstrumentFileError(f"line {line}: {column} {row.get(column)!r}: {rule}")

    try:
        token = int(row["instrument_token"])
    except (TypeError, ValueError):
        raise fail("instrument_token", "must be a whole number") from None
    symbol = (row.get("tradingsymbol") or "").strip()
    if not symbol:
        raise fail("tradingsymbol", "must not be empty")
    try:
        tick = Decimal(row["tick_size"])
    except (InvalidOperation, TypeError):
        raise fail("tick_size", "must be a decimal number") from None
    if not tick.is_finite() or tick <= 0:
        raise fail("tick_size", "must be greater than 0")
    try:
        strike = Decimal(row.get("strike") or "0")
    except InvalidOperation:
        raise fail("strike", "must be a decimal number") from None
    try:
        lot = int(row["lot_size"])
    except (TypeError, ValueError):
        raise fail("lot_size", "must be a whole number") from None
    if lot < 1:
        raise fail("lot_size", "must be at least 1")
    kind = (row.get("instrument_type") or "").strip().upper()
    if kind not in InstrumentType.values:
        raise fail("instrument_type", f"must be one of {', '.join(InstrumentType.values)}")
    expiry = None
    if row.get("expiry"):
        try:
            expiry = date.fromisoformat(row["expiry"])
        except ValueError:
            raise fail("expiry", "must be a date YYYY-MM-DD") from None
    exchange = (row.get("exchange") or "").strip().upper()
    if not exchange:
        raise fail("exchange", "must not be empty")
    name = (row.get("name") or "").strip()
    exchange_token = row.get("exchange_token")
    return Instrument(
        instrument_token=token,
        exchange_token=int(exchange_token) if (exchange_token or "").isdigit() else None,
        tradingsymbol=symbol,
        name=name,
        exchange=exchange,
        segment=(row.get("segment") or "").strip(),
        instrument_type=kind,
        expiry=expiry,
        strike=strike,
        tick_size=tick,
        lot_size=lot,
        freeze_quantity=FREEZE_QUANTITY.get(name) if kind != InstrumentType.EQ else None,
        tradable=True,
    )


def instruments_load(
    lines: Iterable[str], *, progress: Callable[[int], None] | None = None
) -> LoadResult:
    """Upsert every instrument of a Kite instruments CSV, or nothing if any line is bad.

    Rows are matched on (tradingsymbol, exchange). Raises InstrumentFileError naming the line.
    """
    reader = csv.DictReader(lines)
    missing = [c for c in KITE_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise InstrumentFileError(f"line 1: header lacks the columns {', '.join(missing)}")
    parsed: dict[tuple[str, str], Instrument] = {}
    token_lines: dict[int, int] = {}
    for rows, row in enumerate(reader, start=1):
        # The reader's own line count: right past blank lines and quoted line breaks.
        line = reader.line_num
        instrument = _parse(line, row)
        seen_on = token_lines.setdefault(instrument.instrument_token, line)
        if seen_on != line:
            raise InstrumentFileError(
                f"line {line}: instrument_token {instrument.instrument_token}: "
                f"already on line {seen_on}"
            )
        parsed[(instrument.tradingsymbol, instrument.exchange)] = instrument
        if progress and rows % BATCH == 0:
            progress(rows)
    existing = set(Instrument.objects.values_list("tradingsymbol", "exchange"))
    created = sum(1 for key in parsed if key not in existing)
    with transaction.atomic():
        Instrument.objects.bulk_create(
            parsed.values(),
            batch_size=BATCH,
            update_conflicts=True,
            unique_fields=["tradingsymbol", "exchange"],
            update_fields=UPSERTED_FIELDS,
        )
    return LoadResult(created=created, updated=len(parsed) - created, total=len(parsed))


# --- the morning refresh from the broker's dump ---------------------------------------------

# The dump lists every exchange Kite serves; the OMS trades these. Indices (segment INDICES)
# are not tradable and carry no tick or lot size.
TRADED_EXCHANGES = frozenset(Exchange.values)
SKIPPED_SEGMENTS = frozenset({"INDICES"})
DETAIL_LIMIT = 200  # instruments listed per kind of change in a refresh's details


def dump_broker() -> KiteBroker | None:
    """Kite through any active account with a session today (the dump is the same for every
    account); None when no account has one."""
    for account in BrokerAccount.objects.filter(is_active=True).order_by("pk"):
        try:
            return KiteBroker.for_account(account)
        except BrokerUnavailable:
            continue
    return None


def _key(instrument) -> str:
    return f"{instrument.exchange}:{instrument.tradingsymbol}"


def instruments_refresh(broker) -> InstrumentRefresh:
    """Refresh the instrument master from ``broker``'s dump (KiteBroker.instrument_rows) and
    keep what changed: instruments added, removed (no longer in the dump: expired contracts,
    delisted scrips), lot size and tick size changes.

    The broker is asked with no transaction open; the master is then changed in one
    transaction, all or nothing, with its InstrumentRefresh row. An instrument gone from the
    dump stays in the master, not tradable (a position in it still finds its lot size); its
    row is deleted only when the dump gives its instrument_token to another instrument (Kite
    reuses the tokens of expired contracts). A failed refresh (the broker, a bad row) changes
    nothing and is recorded with its error.
    """
    refresh = InstrumentRefresh(source="kite", started_at=timezone.now())
    try:
        rows = broker.instrument_rows()
        _refresh_apply(refresh, rows)
    except (BrokerError, InstrumentFileError) as error:
        refresh.error = str(error)
        refresh.finished_at = timezone.now()
        refresh.save()
        logger.error("instrument refresh failed, the master is unchanged: %s", error)
        return refresh
    logger.info("instrument refresh: %s", refresh_summary(refresh))
    return refresh


def refresh_summary(refresh: InstrumentRefresh) -> str:
    if refresh.error:
        return f"failed: {refresh.error}"
    return (
        f"{refresh.total} instruments: {refresh.added} added, {refresh.removed} removed, "
        f"{refresh.lot_size_changed} lot size and {refresh.tick_size_changed} tick size changes"
    )


def _traded(rows: Iterable[Mapping[str, str]]) -> dict[tuple[str, str], Instrument]:
    parsed: dict[tuple[str, str], Instrument] = {}
    for line, row in enumerate(rows, start=2):  # line 1 of the dump is its header
        exchange = (row.get("exchange") or "").strip().upper()
        if exchange not in TRADED_EXCHANGES or (row.get("segment") or "") in SKIPPED_SEGMENTS:
            continue
        instrument = _parse(line, row)
        parsed[(instrument.tradingsymbol, instrument.exchange)] = instrument
    if not parsed:
        raise InstrumentFileError("the dump lists no instrument of a traded exchange")
    return parsed


def _refresh_apply(refresh: InstrumentRefresh, rows: list[Mapping[str, str]]) -> None:
    incoming = _traded(rows)
    with transaction.atomic():
        current = {
            (i.tradingsymbol, i.exchange): i
            for i in Instrument.objects.filter(exchange__in={e for _, e in incoming})
        }
        added = [i for key, i in incoming.items() if key not in current]
        gone = [i for key, i in current.items() if key not in incoming and i.tradable]
        lots, ticks = [], []
        for key, new in incoming.items():
            old = current.get(key)
            if old is None:
                continue
            if old.lot_size != new.lot_size:
                lots.append({"instrument": _key(new), "from": old.lot_size, "to": new.lot_size})
            if old.tick_size != new.tick_size:
                ticks.append(
                    {
                        "instrument": _key(new),
                        "from": str(old.tick_size.normalize()),
                        "to": str(new.tick_size.normalize()),
                    }
                )
        # A token the dump gives to another instrument frees it first (the unique index).
        claimed = {i.instrument_token: key for key, i in incoming.items()}
        stale = [
            i.pk
            for key, i in current.items()
            if key not in incoming and claimed.get(i.instrument_token, key) != key
        ]
        Instrument.objects.filter(pk__in=stale).delete()
        Instrument.objects.filter(pk__in=[i.pk for i in gone]).update(
            tradable=False, updated_at=timezone.now()
        )
        Instrument.objects.bulk_create(
            incoming.values(),
            batch_size=BATCH,
            update_conflicts=True,
            unique_fields=["tradingsymbol", "exchange"],
            update_fields=UPSERTED_FIELDS,
        )
        today = timezone.localdate()
        refresh.total = len(incoming)
        refresh.added = len(added)
        refresh.removed = len(gone)
        refresh.lot_size_changed = len(lots)
        refresh.tick_size_changed = len(ticks)
        refresh.details = {
            "added": sorted(_key(i) for i in added)[:DETAIL_LIMIT],
            "removed": [
                {"instrument": _key(i), "expired": bool(i.expiry and i.expiry < today)}
                for i in sorted(gone, key=_key)[:DETAIL_LIMIT]
            ],
            "lot_size": lots[:DETAIL_LIMIT],
            "tick_size": ticks[:DETAIL_LIMIT],
        }
        refresh.finished_at = timezone.now()
        refresh.save()
