"""Expiring DAY orders after the market's close (a periodic job runs this every minute)."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from orders.brokers.paper import PaperBroker
from orders.enums import EventSource, OrderStatus, StrategyMode, Validity
from orders.models import Order, Strategy
from orders.services.broker_reports import order_updates_apply
from orders.services.events import order_locked, order_transition


def orders_expire(*, now: datetime | None = None) -> int:
    """Expire DAY orders still working after the market close (idempotent; safe every minute).

    Paper orders are expired at the paper exchange and the reports applied; orders that never
    reached a broker expire here. Live orders are expired by the broker, which reports it.
    Returns how many of the orders due are now EXPIRED, however they got there.
    """
    now = timezone.localtime(now or timezone.now())
    close = time.fromisoformat(settings.OMS_MARKET_CLOSE)
    cutoff = now.replace(hour=close.hour, minute=close.minute, second=0, microsecond=0)
    if now < cutoff:
        cutoff -= timedelta(days=1)
    due = Order.objects.filter(
        status__in=OrderStatus.active(), validity=Validity.DAY, created_at__lt=cutoff
    )
    due_ids = list(due.values_list("pk", flat=True))
    paper_strategies = Strategy.objects.filter(
        mode=StrategyMode.PAPER, pk__in=due.values("strategy_id")
    )
    for strategy in paper_strategies:
        updates = PaperBroker(strategy).expire_day_orders()
        order_updates_apply(updates, source=EventSource.BROKER)
    for order_id in due.exclude(strategy__mode=StrategyMode.LIVE).values_list("pk", flat=True):
        with transaction.atomic():
            order = order_locked(order_id)
            if order.is_active:
                order_transition(
                    order,
                    target=OrderStatus.EXPIRED,
                    source=EventSource.SYSTEM,
                    reason="DAY order expired at market close",
                )
    # Paper orders were expired by the paper exchange's reports, the rest here: count both.
    return Order.objects.filter(pk__in=due_ids, status=OrderStatus.EXPIRED).count()
