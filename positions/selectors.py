"""Reads of positions, PnL and reconciliation shared by the API, the admin and the commands."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from django.db import connection
from django.db.models import QuerySet

from orders.models import Strategy
from positions.models import Position


def strategy_metrics(
    *, strategy: Strategy, date_from: date, date_to: date
) -> dict[str, int | Decimal]:
    """A strategy's figures over IST calendar days ``date_from``..``date_to`` (both included).

    Trade counts, turnover and charges come from the trades executed in the range; wins,
    losses and gross PnL from the positions closed in it (see the SQL function's COMMENT).
    """
    if date_from > date_to:
        raise ValueError(f"date_from {date_from}: must not be after date_to {date_to}")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT * FROM strategy_metrics(%s::bigint, %s::date, %s::date)",
            [strategy.pk, date_from, date_to],
        )
        columns = [column.name for column in cursor.description]
        row = cursor.fetchone()
    return dict(zip(columns, row, strict=True))


def positions_of(*, strategy: Strategy | None, status: str = "open") -> QuerySet[Position]:
    """A strategy's (or, with None, every strategy's) positions, newest first.

    ``status``: "open" (the default), "closed" or "all".
    """
    positions = Position.objects.all()
    if strategy is not None:
        positions = positions.filter(strategy=strategy)
    if status == "open":
        positions = positions.filter(closed_at__isnull=True)
    elif status == "closed":
        positions = positions.filter(closed_at__isnull=False)
    return positions.order_by("-opened_at", "-id")
