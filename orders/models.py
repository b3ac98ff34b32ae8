"""Strategies, orders, their append-only history, and the fills (trades) that execute them."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

import pgtrigger
from django.db import models
from django.db.models import F, Q

from omsproject import money_format
from omsproject.pg import append_only_triggers, choices_check, on_paisa_check, updated_at_trigger
from orders.enums import (
    EventKind,
    EventSource,
    Exchange,
    OrderSide,
    OrderStatus,
    OrderType,
    PausedBy,
    Product,
    ProtectionMode,
    Segment,
    StrategyMode,
    StrategyStatus,
    TradeKind,
    Validity,
    Variety,
)
from orders.models_accounts import BrokerAccount
from orders.money import to_paisa
from orders.varieties import variety_constraints

PRICE = {"max_digits": 14, "decimal_places": 4}  # checked to the paisa by a constraint
AVERAGE = {"max_digits": 20, "decimal_places": 6}  # weighted averages are not on the paisa
MONEY = {"max_digits": 18, "decimal_places": 2}
ZERO = Decimal("0")


class Strategy(models.Model):
    """A program (or a person, for "Manual Trading") that sends orders; owns its positions."""

    name = models.CharField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    status = models.CharField(
        max_length=10, choices=StrategyStatus.choices, default=StrategyStatus.ACTIVE
    )
    # Who paused it (blank unless PAUSED): the strategy may lift only its own pause. (Database
    # defaults: rows written around the ORM get them too.)
    paused_by = models.CharField(
        max_length=8, choices=PausedBy.choices, blank=True, default="", db_default=""
    )
    status_reason = models.TextField(
        blank=True, default="", db_default="", help_text="Why the status last changed."
    )
    status_actor = models.CharField(max_length=150, blank=True, default="", db_default="")
    mode = models.CharField(max_length=5, choices=StrategyMode.choices, default=StrategyMode.PAPER)
    # The Kite account a LIVE strategy's orders go through (PAPER strategies need none).
    broker_account = models.ForeignKey(
        BrokerAccount,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="strategies",
    )
    config = models.JSONField(default=dict, blank=True)
    protection_mode = models.CharField(
        max_length=6,
        choices=ProtectionMode.choices,
        default=ProtectionMode.OMS,
        db_default=ProtectionMode.OMS,
        help_text="Where its positions' stop-loss / take-profit live: the OMS monitor, a GTT "
        "OCO held at the broker, or both.",
    )
    total_trades = models.PositiveIntegerField(default=0)
    winning_trades = models.PositiveIntegerField(default=0)
    losing_trades = models.PositiveIntegerField(default=0)
    total_pnl = models.DecimalField(**MONEY, default=ZERO)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "strategies"
        verbose_name_plural = "strategies"
        ordering = ["name"]
        constraints = [
            choices_check("status", StrategyStatus, "strategy_status_valid"),
            choices_check("mode", StrategyMode, "strategy_mode_valid"),
            choices_check("protection_mode", ProtectionMode, "strategy_protection_mode_valid"),
            models.CheckConstraint(
                condition=Q(winning_trades__gte=0)
                & Q(losing_trades__gte=0)
                & Q(total_trades__gte=F("winning_trades") + F("losing_trades")),
                name="strategy_counters_consistent",
            ),
            models.CheckConstraint(condition=~Q(name=""), name="strategy_name_not_blank"),
            models.CheckConstraint(
                condition=Q(status=StrategyStatus.PAUSED, paused_by__in=PausedBy.values)
                | ~Q(status=StrategyStatus.PAUSED) & Q(paused_by=""),
                name="strategy_paused_by_iff_paused",
            ),
        ]
        triggers = [
            updated_at_trigger(),
            # A pause nobody claimed (the admin, psql) is staff's: the strategy cannot lift it.
            pgtrigger.Trigger(
                name="paused_by_default",
                when=pgtrigger.Before,
                operation=pgtrigger.Insert | pgtrigger.Update,
                func="NEW.paused_by := CASE WHEN NEW.status <> 'PAUSED' THEN '' "
                "ELSE COALESCE(NULLIF(NEW.paused_by, ''), 'STAFF') END; RETURN NEW;",
            ),
            # A desk with one Kite account need not pick it: a LIVE strategy without an account
            # trades through the only active one. With none or several, it stays without, and
            # its orders are refused (broker_account_missing) until staff choose one.
            pgtrigger.Trigger(
                name="live_takes_only_account",
                when=pgtrigger.Before,
                operation=pgtrigger.Insert | pgtrigger.Update,
                func="""
                IF NEW.mode = 'LIVE' AND NEW.broker_account_id IS NULL THEN
                    SELECT CASE WHEN count(*) = 1 THEN min(id) END INTO NEW.broker_account_id
                      FROM broker_accounts WHERE is_active;
                END IF;
                RETURN NEW;
                """,
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def win_rate(self) -> Decimal:
        """Winning round trips as a percentage of decided ones (0 when none is decided)."""
        decided = self.winning_trades + self.losing_trades
        if not decided:
            return ZERO
        return to_paisa(Decimal(self.winning_trades) * 100 / decided)

    @property
    def is_active(self) -> bool:
        return self.status == StrategyStatus.ACTIVE

    @property
    def is_live(self) -> bool:
        return self.mode == StrategyMode.LIVE


class Order(models.Model):
    """One order from its request to its last fill; the broker decides the fields it reports."""

    # Indexed by order_strategy_created_idx and the (strategy, client_order_id) unique key.
    strategy = models.ForeignKey(
        Strategy, on_delete=models.PROTECT, related_name="orders", db_index=False
    )
    client_order_id = models.CharField(max_length=64)
    # Unique by a constraint of its own (in Meta): unique=True would add a second, "LIKE"
    # index that every placement pays for and no query uses.
    broker_tag = models.CharField(
        max_length=20, help_text="Our reference, sent to the broker as its tag."
    )
    broker_order_id = models.CharField(max_length=64, null=True, blank=True)
    symbol = models.CharField(max_length=50)
    exchange = models.CharField(max_length=5, choices=Exchange.choices, default=Exchange.NSE)
    segment = models.CharField(max_length=3, choices=Segment.choices, default=Segment.EQ)
    side = models.CharField(max_length=4, choices=OrderSide.choices)
    quantity = models.PositiveIntegerField()
    order_type = models.CharField(max_length=6, choices=OrderType.choices)
    price = models.DecimalField(**PRICE, null=True, blank=True)
    trigger_price = models.DecimalField(**PRICE, null=True, blank=True)
    product = models.CharField(max_length=4, choices=Product.choices)
    validity = models.CharField(max_length=3, choices=Validity.choices, default=Validity.DAY)
    status = models.CharField(
        max_length=16, choices=OrderStatus.choices, default=OrderStatus.PENDING
    )
    filled_quantity = models.PositiveIntegerField(default=0)
    average_price = models.DecimalField(**AVERAGE, null=True, blank=True)
    stop_loss = models.DecimalField(**PRICE, null=True, blank=True)
    take_profit = models.DecimalField(**PRICE, null=True, blank=True)
    tag = models.CharField(max_length=64, blank=True)
    status_message = models.TextField(blank=True)
    request_fingerprint = models.CharField(
        max_length=64,
        blank=True,
        help_text="SHA-256 of the request, to tell a replay from a clash.",
    )
    modification_count = models.PositiveSmallIntegerField(default=0)
    metadata = models.JSONField(default=dict, blank=True)
    # An exit (positions.exits.position_close, its one owner): the position it closes and the
    # exit it belongs to (its slices share it). One exit works per position at a time: the
    # trigger oms_one_exit_per_position (orders migration 0012) refuses a second.
    closes_position = models.ForeignKey(
        "positions.Position",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="exit_orders",
        db_index=False,  # the partial index order_closes_position_idx
        help_text="The position this order closes (an exit).",
    )
    exit_key = models.CharField(
        max_length=64,
        blank=True,
        db_default="",  # rows written around the ORM (COPY) are no exit
        help_text="The exit this order is part of (its slices share it).",
    )
    # Kite's variety (orders.varieties: the iceberg's rules), and the basket or sliced parent
    # the order was placed in (orders.models_baskets).
    variety = models.CharField(
        max_length=7, choices=Variety.choices, default=Variety.REGULAR, db_default="regular"
    )
    iceberg_legs = models.PositiveSmallIntegerField(null=True, blank=True)
    iceberg_quantity = models.PositiveIntegerField(null=True, blank=True)
    basket = models.ForeignKey(
        "orders.Basket", null=True, blank=True, on_delete=models.PROTECT, related_name="orders"
    )
    parent = models.ForeignKey(
        "orders.OrderParent",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="children",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    last_fill_at = models.DateTimeField(null=True, blank=True)
    filled_at = models.DateTimeField(null=True, blank=True)
    cancel_requested_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    rejected_at = models.DateTimeField(null=True, blank=True)
    expired_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "orders"
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["broker_tag"], name="orders_broker_tag_key"),
            models.UniqueConstraint(
                fields=["strategy", "client_order_id"], name="order_client_id_unique_per_strategy"
            ),
            models.UniqueConstraint(
                fields=["broker_order_id"],
                condition=Q(broker_order_id__isnull=False),
                name="order_broker_order_id_unique",
            ),
            models.CheckConstraint(condition=Q(quantity__gt=0), name="order_quantity_positive"),
            models.CheckConstraint(
                condition=Q(filled_quantity__gte=0) & Q(filled_quantity__lte=F("quantity")),
                name="order_filled_within_quantity",
            ),
            models.CheckConstraint(
                condition=Q(closes_position__isnull=True, exit_key="")
                | Q(closes_position__isnull=False) & ~Q(exit_key=""),
                name="order_exit_has_its_key",
            ),
            on_paisa_check("price", "order_price_on_paisa"),
            on_paisa_check("trigger_price", "order_trigger_price_on_paisa"),
            on_paisa_check("stop_loss", "order_stop_loss_on_paisa"),
            on_paisa_check("take_profit", "order_take_profit_on_paisa"),
            models.CheckConstraint(
                condition=Q(order_type__in=[OrderType.MARKET, OrderType.SL_M], price__isnull=True)
                | Q(order_type__in=[OrderType.LIMIT, OrderType.SL], price__isnull=False),
                name="order_price_matches_type",
            ),
            models.CheckConstraint(
                condition=Q(
                    order_type__in=[OrderType.MARKET, OrderType.LIMIT], trigger_price__isnull=True
                )
                | Q(order_type__in=[OrderType.SL, OrderType.SL_M], trigger_price__isnull=False),
                name="order_trigger_matches_type",
            ),
            models.CheckConstraint(
                condition=Q(filled_quantity=0, average_price__isnull=True)
                # NULL > 0 is NULL, which a CHECK lets pass: say "not null" explicitly.
                | Q(filled_quantity__gt=0, average_price__isnull=False, average_price__gt=0),
                name="order_average_price_iff_filled",
            ),
            models.CheckConstraint(
                condition=~Q(status=OrderStatus.FILLED) | Q(filled_quantity=F("quantity")),
                name="order_filled_status_means_complete",
            ),
            models.CheckConstraint(
                condition=~Q(status=OrderStatus.PENDING)
                | Q(filled_quantity=0, broker_order_id__isnull=True),
                name="order_pending_not_at_broker",
            ),
            models.CheckConstraint(condition=~Q(client_order_id=""), name="order_client_id_set"),
            models.CheckConstraint(condition=~Q(symbol=""), name="order_symbol_set"),
            choices_check("status", OrderStatus, "order_status_valid"),
            choices_check("side", OrderSide, "order_side_valid"),
            choices_check("order_type", OrderType, "order_type_valid"),
            choices_check("product", Product, "order_product_valid"),
            choices_check("validity", Validity, "order_validity_valid"),
            choices_check("exchange", Exchange, "order_exchange_valid"),
            choices_check("segment", Segment, "order_segment_valid"),
            *variety_constraints(),
        ]
        indexes = [
            models.Index(fields=["strategy", "-created_at"], name="order_strategy_created_idx"),
            models.Index(fields=["-created_at", "-id"], name="order_created_idx"),
            models.Index(
                fields=["status", "strategy"],
                condition=Q(status__in=sorted(OrderStatus.active())),
                name="order_active_idx",
            ),
            models.Index(fields=["symbol", "exchange"], name="order_symbol_idx"),
            models.Index(
                fields=["closes_position"],
                condition=Q(closes_position__isnull=False),
                name="order_closes_position_idx",
            ),
            # The admin's order list on millions of rows: a status filter in date order, and
            # the search by client order id (the unique index leads with the strategy).
            models.Index(fields=["status", "-created_at", "-id"], name="order_status_created_idx"),
            models.Index(fields=["client_order_id"], name="order_client_order_id_idx"),
        ]
        permissions = [("cancel_order", "Can cancel working orders from the admin")]
        triggers = [updated_at_trigger()]

    def __str__(self) -> str:
        return (
            f"#{self.pk} {self.side} {money_format.quantity(self.quantity)} {self.symbol} "
            f"{self.status}"
        )

    @property
    def is_active(self) -> bool:
        return self.status in OrderStatus.active()

    @property
    def remaining_quantity(self) -> int:
        return self.quantity - self.filled_quantity


class OrderEvent(models.Model):
    """Append-only history of an order: every status change, fill, modification and refusal."""

    # Indexed by order_event_order_idx (order, created_at).
    order = models.ForeignKey(
        Order, on_delete=models.PROTECT, related_name="events", db_index=False
    )
    kind = models.CharField(max_length=10, choices=EventKind.choices, default=EventKind.TRANSITION)
    from_status = models.CharField(max_length=16, choices=OrderStatus.choices, blank=True)
    to_status = models.CharField(max_length=16, choices=OrderStatus.choices)
    source = models.CharField(max_length=6, choices=EventSource.choices)
    reason = models.TextField(blank=True)
    actor = models.CharField(max_length=150, blank=True)
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "order_events"
        ordering = ["created_at", "id"]
        constraints = [
            choices_check("kind", EventKind, "order_event_kind_valid"),
            choices_check("source", EventSource, "order_event_source_valid"),
            choices_check("to_status", OrderStatus, "order_event_to_status_valid"),
            models.CheckConstraint(
                condition=Q(from_status="") | Q(from_status__in=OrderStatus.values),
                name="order_event_from_status_valid",
            ),
        ]
        indexes = [
            models.Index(fields=["order", "created_at"], name="order_event_order_idx"),
            # The audit list, newest first: all, a day range, one person's.
            models.Index(fields=["created_at", "id"], name="order_event_created_idx"),
            models.Index(fields=["actor", "created_at", "id"], name="order_event_actor_idx"),
        ]
        triggers = append_only_triggers()

    def __str__(self) -> str:
        return f"{self.kind} {self.from_status or '-'} -> {self.to_status}"


class Trade(models.Model):
    """One fill. Its values are computed by the database, and it is never changed afterwards.

    Every change of a position's quantity is a row here: a fill of an order (kind FILL), or an
    adjustment (kind ADJUSTMENT: no order, no charges) that settles a reconciliation issue.
    ``realized_pnl`` is what the row's reduction of its position realized, booked on the day
    of ``executed_at`` (README, *Money*).
    """

    # The fill's value and Zerodha's charges, in the order every listing shows them.
    VALUE_FIELDS = (
        "gross_value",
        "brokerage",
        "stt",
        "exchange_charges",
        "sebi_charges",
        "stamp_duty",
        "gst",
        "total_charges",
        "net_value",
    )

    # Indexed by trade_order_idx and trade_strategy_idx, which lead with these columns.
    order = models.ForeignKey(
        Order,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="trades",
        db_index=False,
    )
    strategy = models.ForeignKey(
        Strategy, on_delete=models.PROTECT, related_name="trades", db_index=False
    )
    kind = models.CharField(
        max_length=10, choices=TradeKind.choices, default=TradeKind.FILL, db_default=TradeKind.FILL
    )
    trade_id = models.CharField(max_length=64, unique=True, help_text="The broker's trade id.")
    symbol = models.CharField(max_length=50)
    exchange = models.CharField(max_length=5, choices=Exchange.choices)
    product = models.CharField(max_length=4, choices=Product.choices)
    side = models.CharField(max_length=4, choices=OrderSide.choices)
    quantity = models.PositiveIntegerField()
    price = models.DecimalField(**PRICE)
    gross_value = models.DecimalField(**MONEY, default=ZERO)
    brokerage = models.DecimalField(**MONEY, default=ZERO)
    stt = models.DecimalField(**MONEY, default=ZERO)
    exchange_charges = models.DecimalField(**MONEY, default=ZERO)
    sebi_charges = models.DecimalField(**MONEY, default=ZERO)
    stamp_duty = models.DecimalField(**MONEY, default=ZERO)
    gst = models.DecimalField(**MONEY, default=ZERO)
    total_charges = models.DecimalField(**MONEY, default=ZERO)
    net_value = models.DecimalField(
        **MONEY, default=ZERO, help_text="Cash moved: value plus charges on a buy, minus on a sell."
    )
    realized_pnl = models.DecimalField(
        **MONEY,
        default=ZERO,
        db_default=ZERO,
        help_text="Gross PnL this fill's reduction realized (0 for an add), on its day.",
    )
    issue = models.ForeignKey(
        "positions.ReconciliationIssue",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="adjustments",
        help_text="The reconciliation issue an adjustment settles.",
    )
    reason = models.TextField(blank=True, db_default="", default="")
    executed_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "trades"
        ordering = ["-executed_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gt=0), name="trade_quantity_positive"),
            on_paisa_check("price", "trade_price_on_paisa", nullable=False),
            models.CheckConstraint(
                condition=Q(gross_value=F("quantity") * F("price")), name="trade_gross_value_exact"
            ),
            models.CheckConstraint(
                condition=Q(
                    total_charges=F("brokerage")
                    + F("stt")
                    + F("exchange_charges")
                    + F("sebi_charges")
                    + F("stamp_duty")
                    + F("gst")
                ),
                name="trade_total_charges_sum",
            ),
            models.CheckConstraint(
                condition=Q(side=OrderSide.BUY, net_value=F("gross_value") + F("total_charges"))
                | Q(side=OrderSide.SELL, net_value=F("gross_value") - F("total_charges")),
                name="trade_net_value_exact",
            ),
            models.CheckConstraint(
                condition=Q(brokerage__gte=0)
                & Q(stt__gte=0)
                & Q(exchange_charges__gte=0)
                & Q(sebi_charges__gte=0)
                & Q(stamp_duty__gte=0)
                & Q(gst__gte=0),
                name="trade_charges_not_negative",
            ),
            models.CheckConstraint(
                condition=Q(kind=TradeKind.FILL, order__isnull=False, issue__isnull=True)
                | (
                    Q(
                        kind=TradeKind.ADJUSTMENT,
                        order__isnull=True,
                        issue__isnull=False,
                        total_charges=0,
                    )
                    & ~Q(reason="")
                ),
                name="trade_fill_has_order_adjustment_has_issue",
            ),
            choices_check("kind", TradeKind, "trade_kind_valid"),
            choices_check("side", OrderSide, "trade_side_valid"),
            choices_check("product", Product, "trade_product_valid"),
            choices_check("exchange", Exchange, "trade_exchange_valid"),
        ]
        indexes = [
            models.Index(fields=["order", "executed_at"], name="trade_order_idx"),
            models.Index(fields=["strategy", "-executed_at"], name="trade_strategy_idx"),
            models.Index(fields=["-executed_at", "-id"], name="trade_executed_idx"),
        ]
        triggers = [
            *append_only_triggers(),
            # Values come from the database, so a direct INSERT is as right as the ORM's.
            pgtrigger.Trigger(
                name="compute_values",
                when=pgtrigger.Before,
                operation=pgtrigger.Insert,
                func="""
                NEW.gross_value := NEW.quantity * NEW.price;
                NEW.total_charges := NEW.brokerage + NEW.stt + NEW.exchange_charges
                    + NEW.sebi_charges + NEW.stamp_duty + NEW.gst;
                NEW.net_value := CASE WHEN NEW.side = 'BUY'
                    THEN NEW.gross_value + NEW.total_charges
                    ELSE NEW.gross_value - NEW.total_charges END;
                RETURN NEW;
                """,
            ),
        ]

    def __str__(self) -> str:
        return (
            f"{self.trade_id} {self.side} {money_format.quantity(self.quantity)} {self.symbol} "
            f"@ {money_format.price(self.price)}"
        )

    @property
    def charges_percentage(self) -> Decimal:
        """Charges as a percentage of the fill's value (0 for a zero value)."""
        if not self.gross_value:
            return ZERO
        return (self.total_charges * 100 / self.gross_value).quantize(
            Decimal("0.0001"), rounding=ROUND_HALF_UP
        )


class TodayOrder(models.Model):
    """Read-only: the orders created since midnight IST, with their strategy's name.

    Backed by the view ``v_today_orders`` (orders/migrations/0002_views_functions.py).
    """

    id = models.BigIntegerField(primary_key=True)
    strategy = models.ForeignKey(Strategy, on_delete=models.DO_NOTHING, related_name="+")
    strategy_name = models.CharField(max_length=100)
    client_order_id = models.CharField(max_length=64)
    broker_tag = models.CharField(max_length=20)
    broker_order_id = models.CharField(max_length=64, null=True)
    symbol = models.CharField(max_length=50)
    exchange = models.CharField(max_length=5, choices=Exchange.choices)
    segment = models.CharField(max_length=3, choices=Segment.choices)
    side = models.CharField(max_length=4, choices=OrderSide.choices)
    quantity = models.PositiveIntegerField()
    filled_quantity = models.PositiveIntegerField()
    remaining_quantity = models.PositiveIntegerField()
    order_type = models.CharField(max_length=6, choices=OrderType.choices)
    price = models.DecimalField(**PRICE, null=True)
    trigger_price = models.DecimalField(**PRICE, null=True)
    average_price = models.DecimalField(**AVERAGE, null=True)
    product = models.CharField(max_length=4, choices=Product.choices)
    validity = models.CharField(max_length=3, choices=Validity.choices)
    status = models.CharField(max_length=16, choices=OrderStatus.choices)
    stop_loss = models.DecimalField(**PRICE, null=True)
    take_profit = models.DecimalField(**PRICE, null=True)
    tag = models.CharField(max_length=64)
    status_message = models.TextField()
    modification_count = models.PositiveSmallIntegerField()
    created_at = models.DateTimeField()
    submitted_at = models.DateTimeField(null=True)
    acknowledged_at = models.DateTimeField(null=True)
    last_fill_at = models.DateTimeField(null=True)
    filled_at = models.DateTimeField(null=True)
    cancelled_at = models.DateTimeField(null=True)
    rejected_at = models.DateTimeField(null=True)
    updated_at = models.DateTimeField()

    class Meta:
        managed = False
        db_table = "v_today_orders"
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return (
            f"#{self.pk} {self.side} {money_format.quantity(self.quantity)} {self.symbol} "
            f"{self.status}"
        )


class StrategyApiKey(models.Model):
    """A strategy's credential for the API. Only the key's SHA-256 is kept; the key is shown once.

    Keys look like ``oms_<prefix>_<secret>``; ``prefix`` identifies a key in lists and logs
    without revealing it. A revoked key stays (who used what, when), and never works again.
    """

    strategy = models.ForeignKey(Strategy, on_delete=models.PROTECT, related_name="api_keys")
    name = models.CharField(max_length=100, help_text="What the key is for, e.g. 'prod runner'.")
    prefix = models.CharField(max_length=8, help_text="The key's public part, shown in lists.")
    key_hash = models.CharField(max_length=64, unique=True, help_text="SHA-256 of the key, hex.")
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.CharField(max_length=150, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.CharField(max_length=150, blank=True)

    class Meta:
        db_table = "strategy_api_keys"
        verbose_name = "strategy API key"
        ordering = ["strategy_id", "-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(key_hash__regex=r"^[0-9a-f]{64}$"), name="api_key_hash_is_sha256"
            ),
            models.CheckConstraint(
                condition=Q(prefix__regex=r"^[0-9a-f]{8}$"), name="api_key_prefix_format"
            ),
            models.CheckConstraint(condition=~Q(name=""), name="api_key_name_set"),
            models.CheckConstraint(
                condition=Q(revoked_at__isnull=True) | Q(revoked_at__gte=F("created_at")),
                name="api_key_revoked_after_created",
            ),
            # Two live keys of one strategy are told apart by name.
            models.UniqueConstraint(
                fields=["strategy", "name"],
                condition=Q(revoked_at__isnull=True),
                name="api_key_live_name_unique_per_strategy",
            ),
        ]
        indexes = [models.Index(fields=["prefix"], name="api_key_prefix_idx")]

    def __str__(self) -> str:
        return f"{self.strategy} / {self.name} (oms_{self.prefix}_…)"

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None


# Baskets and sliced parents live in their own module; imported here so that Django finds them.
from orders.models_baskets import Basket, OrderParent  # noqa: E402, F401

# The strategies' event log, likewise (orders.models_events).
from orders.models_events import StrategyEvent as StrategyEvent  # noqa: E402

# The paper broker's GTTs, likewise (orders.models_gtt).
from orders.models_gtt import PaperGtt  # noqa: E402, F401

# The paper exchange's own order book and trades, likewise (orders.models_paper).
from orders.models_paper import PaperOrder, PaperTrade  # noqa: E402, F401

# Webhooks' endpoints and delivery log, likewise (orders.models_webhooks).
from orders.models_webhooks import WebhookDelivery, WebhookEndpoint  # noqa: E402, F401
