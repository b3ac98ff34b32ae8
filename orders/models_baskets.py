"""Orders placed together: a basket (several legs, one request) and a sliced parent (one
quantity above the freeze quantity, cut into child orders). Neither is an order at the broker:
its orders are, each of them linked here (orders.Order.basket / .parent).

Imported by orders.models (the app's models module) and importing nothing of it: the strategy
is named by its label. The services are orders.services.baskets and orders.services.slicing.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from omsproject.pg import choices_check, on_paisa_check
from orders.enums import Exchange, OrderSide, OrderType, Product, Validity

PRICE = {"max_digits": 14, "decimal_places": 4}


class Basket(models.Model):
    """Several orders asked for in one request: checked all together (one refused leg refuses
    them all, nothing written), then each leg lives its own life. Idempotent on
    (strategy, client_basket_id)."""

    strategy = models.ForeignKey(
        "orders.Strategy", on_delete=models.PROTECT, related_name="baskets", db_index=False
    )
    client_basket_id = models.CharField(max_length=64)
    request_fingerprint = models.CharField(max_length=64)
    margin_required = models.DecimalField(
        max_digits=18,
        decimal_places=2,
        null=True,
        blank=True,
        help_text="The broker's margin for the basket as a whole (LIVE strategies).",
    )
    actor = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "baskets"
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["strategy", "client_basket_id"], name="basket_client_id_unique"
            ),
            models.CheckConstraint(condition=~Q(client_basket_id=""), name="basket_client_id_set"),
        ]

    def __str__(self) -> str:
        return f"basket #{self.pk} {self.client_basket_id}"


class OrderParent(models.Model):
    """One order's request whose quantity is above the instrument's freeze quantity, sent as
    child orders within it (no broker order of its own). Its status, filled quantity and
    average price are its children's, derived when read (orders.selectors.parent_summary):
    never stored, so never stale. Positions move by the children's fills only."""

    strategy = models.ForeignKey(
        "orders.Strategy", on_delete=models.PROTECT, related_name="order_parents", db_index=False
    )
    client_order_id = models.CharField(max_length=64)
    request_fingerprint = models.CharField(max_length=64)
    symbol = models.CharField(max_length=50)
    exchange = models.CharField(max_length=5, choices=Exchange.choices)
    side = models.CharField(max_length=4, choices=OrderSide.choices)
    quantity = models.PositiveIntegerField()
    order_type = models.CharField(max_length=6, choices=OrderType.choices)
    price = models.DecimalField(**PRICE, null=True, blank=True)
    trigger_price = models.DecimalField(**PRICE, null=True, blank=True)
    product = models.CharField(max_length=4, choices=Product.choices)
    validity = models.CharField(max_length=3, choices=Validity.choices)
    freeze_quantity = models.PositiveIntegerField(help_text="The largest child it was cut into.")
    cancel_requested_at = models.DateTimeField(null=True, blank=True)
    actor = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "order_parents"
        verbose_name = "sliced order"
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["strategy", "client_order_id"], name="order_parent_client_id_unique"
            ),
            models.CheckConstraint(
                condition=Q(quantity__gt=models.F("freeze_quantity")),
                name="order_parent_above_freeze",
            ),
            on_paisa_check("price", "order_parent_price_on_paisa"),
            on_paisa_check("trigger_price", "order_parent_trigger_on_paisa"),
            choices_check("side", OrderSide, "order_parent_side_valid"),
            choices_check("order_type", OrderType, "order_parent_type_valid"),
        ]

    def __str__(self) -> str:
        return f"parent #{self.pk} {self.side} {self.quantity} {self.symbol}"
