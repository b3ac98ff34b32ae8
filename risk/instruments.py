"""Loading the instrument master from a Kite instruments CSV: an all-or-nothing upsert."""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation

from django.db import transaction

from risk.models import Instrument, InstrumentType

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
            update_fields=[
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
            ],
        )
    return LoadResult(created=created, updated=len(parsed) - created, total=len(parsed))
