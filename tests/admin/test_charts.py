"""The dashboard's PnL chart geometry (risk.charts): pure, no database."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from risk.charts import MAX_POINTS, compact_inr, nice_step, pnl_chart, session_window

IST = ZoneInfo("Asia/Kolkata")
OPEN = datetime(2026, 11, 24, 9, 15, tzinfo=IST)
CLOSE = datetime(2026, 11, 24, 15, 30, tzinfo=IST)
MINUS = "\N{MINUS SIGN}"


@pytest.mark.parametrize(
    ("span", "step"), [("100", "20"), ("1234", "500"), ("7", "2"), ("0", "1"), ("95000", "20000")]
)
def test_nice_steps(span, step):
    assert nice_step(Decimal(span)) == Decimal(step)


@pytest.mark.parametrize(
    ("amount", "label"),
    [
        ("500", "₹500"),
        ("12500", "₹12,500"),
        ("150000", "₹1.50 L"),
        ("1234567", "₹12.35 L"),
        ("-25000000", f"{MINUS}₹2.50 Cr"),
        ("0", "₹0"),
    ],
)
def test_compact_rupees(amount, label):
    assert compact_inr(Decimal(amount)) == label


def series(values, *, every=timedelta(minutes=5)):
    return [(OPEN + i * every, Decimal(v)) for i, v in enumerate(values)]


def test_lines_sit_on_a_scale_that_shows_zero():
    chart = pnl_chart(
        [("All strategies", series(["100", "250", "400"])), ("Momentum", series(["50", "60"]))],
        start=OPEN,
        end=CLOSE,
    )

    desk, momentum = chart.lines
    assert (desk.width, desk.color) == (2.5, "#111827")
    assert momentum.width == 1.5 and momentum.color != desk.color
    assert chart.top <= chart.zero_y <= chart.bottom
    assert chart.y_ticks[0].label == "₹0"  # the axis starts at zero, not at the lowest value
    xs = [float(p.split(",")[0]) for p in desk.points.split()]
    assert xs == sorted(xs) and chart.left <= xs[0] and xs[-1] <= chart.right
    assert desk.last == Decimal("400") and desk.last_y < chart.zero_y  # a gain is above zero
    assert [t.label for t in chart.x_ticks][:2] == ["10:00", "11:00"]


def test_a_loss_is_below_zero_and_long_days_are_thinned():
    values = [str(-i) for i in range(1000)]
    chart = pnl_chart(
        [("All strategies", series(values, every=timedelta(seconds=20)))], start=OPEN, end=CLOSE
    )

    (line,) = chart.lines
    assert len(line.points.split()) == MAX_POINTS
    assert line.last == Decimal("-999") and line.last_y > chart.zero_y


def test_nothing_to_draw():
    assert pnl_chart([("All strategies", [])], start=OPEN, end=CLOSE) is None
    assert pnl_chart([], start=OPEN, end=CLOSE) is None


def test_the_window_is_the_session_widened_to_the_snapshots():
    early = datetime(2026, 11, 24, 8, 0, tzinfo=IST)
    late = datetime(2026, 11, 24, 18, 0, tzinfo=IST)

    assert session_window(OPEN, []) == (OPEN, CLOSE)
    assert session_window(OPEN, [early, late]) == (early, late)
