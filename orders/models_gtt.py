"""The paper broker's GTTs (``paper_gtts``): the triggers a simulated Kite holds for the OMS,
apart from ours (positions.models.BrokerProtection), as Kite's GTT book is apart from the OMS."""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from orders.models import PRICE, Strategy

GTT_STATUSES = ("active", "triggered", "disabled", "expired", "cancelled", "rejected", "deleted")


class PaperGtt(models.Model):
    """One GTT of the paper broker, in Kite's words: ``trigger_type`` single or two-leg,
    ``trigger_values`` (ascending, decimal strings), ``legs`` (one order per trigger value:
    transaction_type, quantity, price, product, order_type LIMIT, and once triggered
    ``result`` with the order placed). Its id is the trigger id."""

    strategy = models.ForeignKey(Strategy, on_delete=models.PROTECT, related_name="+")
    trigger_type = models.CharField(max_length=8)
    symbol = models.CharField(max_length=50)
    exchange = models.CharField(max_length=5)
    product = models.CharField(max_length=4)
    trigger_values = models.JSONField()
    last_price = models.DecimalField(**PRICE)
    legs = models.JSONField()
    status = models.CharField(max_length=10, default="active")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "paper_gtts"
        constraints = [
            models.CheckConstraint(
                condition=Q(trigger_type__in=["single", "two-leg"]), name="paper_gtt_type_valid"
            ),
            models.CheckConstraint(
                condition=Q(status__in=GTT_STATUSES), name="paper_gtt_status_valid"
            ),
        ]
        indexes = [
            models.Index(
                fields=["symbol", "exchange"],
                condition=Q(status="active"),
                name="paper_gtt_active_idx",
            )
        ]

    def __str__(self) -> str:
        return f"GTT {self.pk} {self.symbol} {self.status}"
