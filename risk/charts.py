"""The dashboard's intraday PnL chart as SVG geometry: pure arithmetic, no database, no library.

The admin draws the result in an inline ``<svg>`` (no JavaScript, no build step). The whole
desk's series is drawn thick and dark; each strategy's in a colour of its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.utils import timezone

from omsproject import money_format

PALETTE = ("#2563eb", "#d97706", "#059669", "#7c3aed", "#db2777", "#0891b2", "#65a30d", "#9f1239")
DESK_COLOR = "#111827"
MAX_POINTS = 400  # per line: a day of one-minute snapshots is 375


@dataclass(frozen=True)
class Tick:
    at: float
    label: str


@dataclass(frozen=True)
class Line:
    label: str
    points: str  # the ``points`` of an SVG polyline
    color: str
    width: float
    last: Decimal
    last_x: float
    last_y: float
    legend_y: float


@dataclass(frozen=True)
class PnlChart:
    width: int
    height: int
    left: float
    top: float
    right: float
    bottom: float
    lines: tuple[Line, ...]
    y_ticks: tuple[Tick, ...]
    x_ticks: tuple[Tick, ...]
    zero_y: float


def nice_step(span: Decimal, ticks: int = 5) -> Decimal:
    """A round step (1, 2 or 5 times a power of ten) giving about ``ticks`` intervals."""
    if span <= 0:
        return Decimal(1)
    raw = span / ticks
    magnitude = Decimal(10) ** (raw.adjusted())
    for factor in (1, 2, 5, 10):
        if raw <= magnitude * factor:
            return magnitude * factor
    return magnitude * 10  # pragma: no cover - the loop always returns


def compact_inr(amount: Decimal) -> str:
    """An axis label: ₹45,000, ₹1.50 L (lakh), ₹2.00 Cr (crore): ``money_format.compact``."""
    return money_format.compact(amount)


def _thin(points: Sequence, limit: int = MAX_POINTS) -> list:
    if len(points) <= limit:
        return list(points)
    step = len(points) / (limit - 1)
    kept = [points[int(i * step)] for i in range(limit - 1)]
    return [*kept, points[-1]]


def pnl_chart(
    series: Sequence[tuple[str, Sequence[tuple[datetime, Decimal]]]],
    *,
    start: datetime,
    end: datetime,
    width: int = 1360,
    height: int = 300,
    desk_label: str = "All strategies",
) -> PnlChart | None:
    """Lay out PnL lines over ``start``..``end``; None when there is nothing to draw.

    The value axis always shows zero (a desk reads PnL against flat) and is padded to round
    steps; the time axis is labelled on the hour, in IST.
    """
    series = [(label, _thin(points)) for label, points in series if points]
    if not series or end <= start:
        return None
    left, right, top, bottom = 64.0, width - 190.0, 12.0, height - 28.0
    values = [v for _, points in series for _, v in points] + [Decimal(0)]
    low, high = min(values), max(values)
    step = nice_step(high - low or Decimal(100))
    low = (low / step).to_integral_value(rounding="ROUND_FLOOR") * step
    high = (high / step).to_integral_value(rounding="ROUND_CEILING") * step
    if high == low:
        high = low + step
    seconds = (end - start).total_seconds()

    def x(moment: datetime) -> float:
        return round(left + (moment - start).total_seconds() / seconds * (right - left), 1)

    def y(value: Decimal) -> float:
        return round(bottom - float((value - low) / (high - low)) * (bottom - top), 1)

    lines = []
    colors = iter(PALETTE * len(series))
    for row, (label, points) in enumerate(series):
        desk = label == desk_label
        color = DESK_COLOR if desk else next(colors)
        last_at, last = points[-1]
        lines.append(
            Line(
                label=label,
                points=" ".join(f"{x(at)},{y(v)}" for at, v in points),
                color=color,
                width=2.5 if desk else 1.5,
                last=last,
                last_x=x(last_at),
                last_y=y(last),
                legend_y=top + 8 + 16 * row,
            )
        )
    y_ticks = []
    value = low
    while value <= high:
        y_ticks.append(Tick(at=y(value), label=compact_inr(value)))
        value += step
    local_start = timezone.localtime(start)
    hour = local_start.replace(minute=0, second=0, microsecond=0)
    if hour < local_start:
        hour += timedelta(hours=1)
    x_ticks = []
    every = max(1, round(seconds / 3600 / 8))  # at most about eight labels
    while hour <= end:
        x_ticks.append(Tick(at=x(hour), label=hour.strftime("%H:%M")))
        hour += timedelta(hours=every)
    return PnlChart(
        width=width,
        height=height,
        left=left,
        top=top,
        right=right,
        bottom=bottom,
        lines=tuple(lines),
        y_ticks=tuple(y_ticks),
        x_ticks=tuple(x_ticks),
        zero_y=y(Decimal(0)),
    )


def session_window(day: datetime, points: Sequence[datetime]) -> tuple[datetime, datetime]:
    """The chart's time span: the day's trading session (09:15 to 15:30 IST), widened to take
    in every snapshot (paper strategies may trade at any hour)."""
    local = timezone.localtime(day)
    open_ = local.replace(hour=9, minute=15, second=0, microsecond=0)
    close = local.replace(hour=15, minute=30, second=0, microsecond=0)
    return min([open_, *points]), max([close, *points])
