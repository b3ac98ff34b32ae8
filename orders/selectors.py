"""Reads of orders, trades and strategies shared by the API, the admin and the commands.

``strategy=None`` means every strategy (staff monitoring); a strategy's own callers always pass
it, so a query can never reach another strategy's rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import Count, Prefetch, Q, QuerySet
from django.utils import timezone

from orders import jobs
from orders.enums import OrderStatus
from orders.models import Order, OrderEvent, Strategy, Trade
from orders.money import to_paisa
from orders.state import CANCELLABLE, MODIFIABLE
from positions.selectors import day_money, positions_of, strategy_metrics
from risk.limits import limits_report
from risk.selectors import gross_exposure, kill_switch_state


def orders_of(*, strategy: Strategy | None) -> QuerySet[Order]:
    """Orders, newest first."""
    orders = Order.objects.all()
    if strategy is not None:
        orders = orders.filter(strategy=strategy)
    return orders.order_by("-created_at", "-id")


def orders_cancellable(*, strategy: Strategy | None) -> QuerySet[Order]:
    """Working orders a cancel may still be asked for (``orders.state.CANCELLABLE``: those
    already being cancelled are not), of one strategy or all."""
    orders = Order.objects.filter(status__in=sorted(CANCELLABLE))
    return orders.filter(strategy=strategy) if strategy is not None else orders


# Orders in flight: the broker's word on them is awaited, and a job settles each (orders_sweep
# gives one that has none its job again): being sent (SUBMITTED, no broker id yet), in doubt
# (UNKNOWN), being cancelled (CANCEL_PENDING) or with a modification pending.
# The first condition alone (every status is a working one) lets PostgreSQL read the partial
# index of working orders, not the whole table, every minute.
IN_FLIGHT = Q(
    status__in=sorted({OrderStatus.SUBMITTED, OrderStatus.UNKNOWN, OrderStatus.CANCEL_PENDING})
    + sorted(MODIFIABLE)
) & (
    Q(status=OrderStatus.SUBMITTED, broker_order_id__isnull=True)
    | Q(status=OrderStatus.SUBMITTED, broker_order_id="")
    | Q(status__in=[OrderStatus.UNKNOWN, OrderStatus.CANCEL_PENDING])
    | Q(metadata__has_key="pending_modification", status__in=sorted(MODIFIABLE))
)


def orders_in_flight() -> QuerySet[Order]:
    """Orders waiting for the broker's word, each annotated ``job_waiting``: whether one of
    its jobs is queued or running."""
    return Order.objects.filter(IN_FLIGHT).annotate(job_waiting=jobs.job_waiting())


@dataclass(frozen=True)
class InFlightHealth:
    in_flight: int  # orders waiting for the broker's word
    unattended: int  # unchanged for OMS_ORDER_RESUME_SECONDS with no job: the sweep is behind
    stuck: int  # unchanged for OMS_ORDER_STUCK_SECONDS: each needs a person


def orders_in_flight_health(*, now=None) -> InFlightHealth:
    """What the health check shows of orders in flight, in one query: any ``unattended`` or
    ``stuck`` means broker trouble the sweep has not (yet) settled."""
    now = now or timezone.now()
    resume = now - timedelta(seconds=settings.OMS_ORDER_RESUME_SECONDS)
    stuck = now - timedelta(seconds=settings.OMS_ORDER_STUCK_SECONDS)
    counts = orders_in_flight().aggregate(
        in_flight=Count("pk"),
        unattended=Count("pk", filter=Q(updated_at__lte=resume, job_waiting=False)),
        stuck=Count("pk", filter=Q(updated_at__lte=stuck)),
    )
    return InFlightHealth(**counts)


def order_with_history(*, strategy: Strategy | None) -> QuerySet[Order]:
    """Orders with their events (oldest first) and trades (in execution order) prefetched."""
    return orders_of(strategy=strategy).prefetch_related(
        Prefetch("events", queryset=OrderEvent.objects.order_by("created_at", "id")),
        Prefetch("trades", queryset=Trade.objects.order_by("executed_at", "id")),
    )


def trades_of(*, strategy: Strategy | None) -> QuerySet[Trade]:
    """Fills, most recent first."""
    trades = Trade.objects.all()
    if strategy is not None:
        trades = trades.filter(strategy=strategy)
    return trades.order_by("-executed_at", "-id")


@dataclass(frozen=True)
class StrategyOverview:
    """What a strategy (or staff watching it) needs to know about it right now."""

    strategy: Strategy
    limits: dict[str, Any]
    limits_in_force: tuple[Any, ...]  # risk.limits.LimitInForce: value, levels, sources, off
    limit_warnings: list[str]
    kill_switch: str
    today: dict[str, Any]
    open_positions: int
    working_orders: int
    gross_exposure: Decimal  # what max_strategy_exposure is checked against


def strategy_overview(*, strategy: Strategy, today: date | None = None) -> StrategyOverview:
    """The strategy's status and mode, the limits in force (the strictest of the global, the
    strategy's and its config's; each with its source, and a warning for each that is off),
    today's figures (IST day) and the kill switch in force.

    Today's figures are the one definition of the day's money (positions.selectors.day_money,
    the figure the daily loss limit is checked against): gross realized by today's fills, the
    charges (with the DP charge), net realized = gross - charges, and the open positions'
    unrealized PnL; round trips won and lost are the positions closed today.
    """
    today = today or timezone.localdate()
    money = day_money(strategy=strategy, day=today)
    metrics = strategy_metrics(strategy=strategy, date_from=today, date_to=today)
    working = Order.objects.filter(strategy=strategy, status__in=sorted(OrderStatus.active()))
    limits = limits_report(strategy)
    return StrategyOverview(
        strategy=strategy,
        limits=limits.limits.as_dict(),
        limits_in_force=limits.in_force,
        limit_warnings=limits.warnings,
        kill_switch=str(kill_switch_state(strategy=strategy)),
        today={
            "date": today,
            "gross_realized_pnl": money.gross_realized,
            "charges": money.charges,
            "realized_pnl": money.net_realized,
            "unrealized_pnl": money.unrealized,
            "net_pnl": money.total,
            "trades": money.trades,
            "winning_trades": metrics["winning_trades"],
            "losing_trades": metrics["losing_trades"],
            "turnover": money.turnover,
        },
        open_positions=positions_of(strategy=strategy).count(),
        working_orders=working.count(),
        gross_exposure=to_paisa(gross_exposure(strategy)),
    )


@dataclass(frozen=True)
class WebhooksHealth:
    endpoints: int  # every endpoint, active or paused
    paused: int
    failing: int  # active endpoints whose last try failed
    failing_since: Any  # the oldest such failure (datetime), or None
    undelivered: int  # events after the cursors of the active endpoints

    @property
    def ok(self) -> bool:
        return not self.paused and not self.failing


def webhooks_health() -> WebhooksHealth:
    """What the health view shows of the webhooks, in one statement (events are counted as
    numbered so far: the feed's sequencer numbers them as it reads)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*), count(*) FILTER (WHERE state = 'PAUSED'),"
            " count(*) FILTER (WHERE state = 'ACTIVE' AND failing_since IS NOT NULL),"
            " min(failing_since) FILTER (WHERE state = 'ACTIVE'),"
            " coalesce(sum(waiting.events) FILTER (WHERE state = 'ACTIVE'), 0)"
            " FROM webhook_endpoints endpoint CROSS JOIN LATERAL ("
            "   SELECT count(*) AS events FROM strategy_events event"
            "   WHERE event.strategy_id = endpoint.strategy_id"
            "   AND event.seq > endpoint.delivered_seq) waiting"
        )
        endpoints, paused, failing, failing_since, undelivered = cursor.fetchone()
    return WebhooksHealth(endpoints, paused, failing, failing_since, int(undelivered))
