"""The paper exchange's own books (orders.brokers.paper): its orders and trades, apart from
ours, as a simulated exchange knows them. Imported by orders.models so that Django finds them."""

from __future__ import annotations

from django.db import models
from django.db.models import F, Q

from orders.models import AVERAGE, PRICE, Strategy


class PaperOrder(models.Model):
    """The paper broker's own order book: what a simulated exchange knows, apart from ours."""

    strategy = models.ForeignKey(Strategy, on_delete=models.PROTECT, related_name="+")
    tag = models.CharField(max_length=20, unique=True)
    broker_order_id = models.CharField(max_length=64, unique=True)
    symbol = models.CharField(max_length=50)
    exchange = models.CharField(max_length=5)
    product = models.CharField(max_length=4)
    side = models.CharField(max_length=4)
    order_type = models.CharField(max_length=6)
    validity = models.CharField(max_length=3)
    quantity = models.PositiveIntegerField()
    price = models.DecimalField(**PRICE, null=True, blank=True)
    trigger_price = models.DecimalField(**PRICE, null=True, blank=True)
    status = models.CharField(max_length=20, help_text="Kite's status words.")
    triggered = models.BooleanField(default=False)
    filled_quantity = models.PositiveIntegerField(default=0)
    average_price = models.DecimalField(**AVERAGE, null=True, blank=True)
    message = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "paper_orders"
        constraints = [
            models.CheckConstraint(
                condition=Q(filled_quantity__lte=F("quantity")), name="paper_order_not_overfilled"
            )
        ]
        indexes = [
            models.Index(
                fields=["symbol", "exchange"],
                condition=Q(status__in=["OPEN", "TRIGGER PENDING"]),
                name="paper_order_working_idx",
            )
        ]

    def __str__(self) -> str:
        return f"{self.broker_order_id} {self.status}"


class PaperTrade(models.Model):
    paper_order = models.ForeignKey(PaperOrder, on_delete=models.PROTECT, related_name="trades")
    trade_id = models.CharField(max_length=64, unique=True)
    quantity = models.PositiveIntegerField()
    price = models.DecimalField(**PRICE)
    executed_at = models.DateTimeField()

    class Meta:
        db_table = "paper_trades"

    def __str__(self) -> str:
        return f"{self.trade_id} {self.quantity} @ {self.price}"
