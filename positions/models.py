"""Positions per strategy and instrument, reconciliation issues, and daily statistics."""

from __future__ import annotations

from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

import pgtrigger
from django.db import models
from django.db.models import F, Func, Q
from django.utils import timezone

from omsproject import money_format
from omsproject.pg import choices_check, on_paisa_check, updated_at_trigger
from orders.enums import Exchange, Product
from orders.models import AVERAGE, MONEY, PRICE, ZERO, Strategy
from positions import pnl


class Position(models.Model):
    """A strategy's net holding in one instrument and product.

    ``quantity`` is signed (long > 0, short < 0). A position that reaches zero is closed
    (``closed_at`` set) and kept; the next fill opens a new row.
    """

    strategy = models.ForeignKey(Strategy, on_delete=models.PROTECT, related_name="positions")
    symbol = models.CharField(max_length=50)
    exchange = models.CharField(max_length=5, choices=Exchange.choices)
    product = models.CharField(max_length=4, choices=Product.choices)
    quantity = models.IntegerField(default=0)
    average_price = models.DecimalField(**AVERAGE, default=ZERO)
    realized_pnl = models.DecimalField(**MONEY, default=ZERO)
    unrealized_pnl = models.DecimalField(**MONEY, default=ZERO)
    last_price = models.DecimalField(**PRICE, null=True, blank=True)
    last_price_at = models.DateTimeField(
        null=True, blank=True, help_text="When the last price (the mark) was seen."
    )
    cash_flow = models.DecimalField(
        **AVERAGE,
        default=ZERO,
        db_default=ZERO,
        help_text="Sells less buys of this position's quantities (its fills at their prices): "
        "when it closes, its realized PnL is exactly this, to the paisa.",
    )
    stop_loss = models.DecimalField(**PRICE, null=True, blank=True)
    take_profit = models.DecimalField(**PRICE, null=True, blank=True)
    highest_price = models.DecimalField(**PRICE, null=True, blank=True)
    lowest_price = models.DecimalField(**PRICE, null=True, blank=True)
    peak_pnl = models.DecimalField(**MONEY, default=ZERO, help_text="Best total PnL seen.")
    max_drawdown = models.DecimalField(**MONEY, default=ZERO)
    exit_order = models.ForeignKey(
        "orders.Order",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="The order placed to close this position (stop-loss, take-profit, square-off).",
    )
    opened_at = models.DateTimeField(default=timezone.now)
    closed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "positions"
        ordering = ["-opened_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["strategy", "symbol", "exchange", "product"],
                condition=Q(closed_at__isnull=True),
                name="position_one_open_per_instrument",
            ),
            models.CheckConstraint(
                condition=Q(closed_at__isnull=True, average_price__gt=0) & ~Q(quantity=0)
                | Q(closed_at__isnull=False, quantity=0),
                name="position_open_iff_nonzero",
            ),
            models.CheckConstraint(
                condition=Q(closed_at__isnull=True) | Q(closed_at__gte=F("opened_at")),
                name="position_closed_after_opened",
            ),
            models.CheckConstraint(
                condition=Q(max_drawdown__gte=0), name="position_drawdown_positive"
            ),
            models.CheckConstraint(
                condition=Q(highest_price__isnull=True)
                | Q(lowest_price__isnull=True)
                | Q(highest_price__gte=F("lowest_price")),
                name="position_extremes_ordered",
            ),
            on_paisa_check("last_price", "position_last_price_on_paisa"),
            on_paisa_check("stop_loss", "position_stop_loss_on_paisa"),
            on_paisa_check("take_profit", "position_take_profit_on_paisa"),
            choices_check("product", Product, "position_product_valid"),
            choices_check("exchange", Exchange, "position_exchange_valid"),
        ]
        indexes = [
            models.Index(
                fields=["strategy", "symbol"],
                condition=Q(closed_at__isnull=True),
                name="position_open_idx",
            ),
            models.Index(fields=["strategy", "-opened_at"], name="position_strategy_idx"),
            # Today's closed positions (risk's day PnL, the dashboard) among years of them.
            models.Index(
                fields=["closed_at"],
                condition=Q(closed_at__isnull=False),
                name="position_closed_idx",
            ),
        ]
        triggers = [updated_at_trigger()]

    def __str__(self) -> str:
        """ "INFY NSE MIS: long 140 @ 1,510.36 (strategy 2)": what a desk calls a position."""
        held = "flat" if self.quantity == 0 else "long" if self.quantity > 0 else "short"
        size = "" if self.quantity == 0 else f" {money_format.quantity(abs(self.quantity))}"
        at = f" @ {money_format.average(self.average_price)}" if self.quantity else ""
        return (
            f"{self.symbol} {self.exchange} {self.product}: {held}{size}{at} "
            f"(strategy {self.strategy_id})"
        )

    @property
    def is_open(self) -> bool:
        return self.closed_at is None and self.quantity != 0

    def calculate_unrealized_pnl(self, price: Decimal) -> Decimal:
        return pnl.unrealized_pnl(self.quantity, self.average_price, price)

    @property
    def total_pnl(self) -> Decimal:
        return self.realized_pnl + self.unrealized_pnl

    def should_trigger_stop_loss(self, price: Decimal) -> bool:
        return pnl.stop_loss_hit(self.quantity, self.stop_loss, price)

    def should_trigger_take_profit(self, price: Decimal) -> bool:
        return pnl.take_profit_hit(self.quantity, self.take_profit, price)

    def mark(self, price: Decimal, *, at: datetime | None = None) -> None:
        """Mark to market in memory: last price (seen ``at``, default now), unrealized PnL,
        extremes and drawdown."""
        self.last_price = price
        self.last_price_at = at or timezone.now()
        self.unrealized_pnl = self.calculate_unrealized_pnl(price) if self.is_open else ZERO
        self.update_price_extremes(price)
        self.peak_pnl, self.max_drawdown = pnl.drawdown(
            self.total_pnl, self.peak_pnl, self.max_drawdown
        )

    def update_price_extremes(self, price: Decimal) -> None:
        self.highest_price = price if self.highest_price is None else max(self.highest_price, price)
        self.lowest_price = price if self.lowest_price is None else min(self.lowest_price, price)


class ProtectionState(models.TextChoices):
    """A broker-held protection's life: asked for (PLACING), held at the broker (ACTIVE), being
    changed (AMENDING) or removed (CANCELLING); then one of the ends."""

    PLACING = "PLACING", "Placing"
    ACTIVE = "ACTIVE", "Active at the broker"
    AMENDING = "AMENDING", "Amending"
    CANCELLING = "CANCELLING", "Cancelling"
    TRIGGERED = "TRIGGERED", "Triggered"
    CANCELLED = "CANCELLED", "Cancelled"
    FAILED = "FAILED", "Failed"

    @classmethod
    def live(cls) -> list[str]:
        return [cls.PLACING, cls.ACTIVE, cls.AMENDING, cls.CANCELLING]


class BrokerProtection(models.Model):
    """A position's stop-loss / take-profit held at the broker as a GTT (two-leg OCO, or single
    when only one level is set): what we asked the broker to hold, its trigger id, its state.

    One live protection per position (a partial unique index). ``quantity``, ``stop_loss`` and
    ``take_profit`` are the terms the broker holds (or is being asked to hold, while PLACING
    or AMENDING). ``exit_order``: the broker's order the GTT placed when it triggered, adopted
    as an OMS exit order of the position (its fills are booked through it, once).
    """

    position = models.ForeignKey(Position, on_delete=models.PROTECT, related_name="protections")
    strategy = models.ForeignKey(Strategy, on_delete=models.PROTECT, related_name="+")
    broker = models.CharField(max_length=10, help_text="The broker that holds it.")
    state = models.CharField(
        max_length=10, choices=ProtectionState.choices, default=ProtectionState.PLACING
    )
    trigger_id = models.CharField(max_length=32, blank=True, default="")
    quantity = models.PositiveIntegerField()
    stop_loss = models.DecimalField(**PRICE, null=True, blank=True)
    take_profit = models.DecimalField(**PRICE, null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    exit_order = models.ForeignKey(
        "orders.Order", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    attempts = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "broker_protections"
        ordering = ["-created_at", "-id"]
        constraints = [
            choices_check("state", ProtectionState, "protection_state_valid"),
            models.UniqueConstraint(
                fields=["position"],
                condition=Q(state__in=ProtectionState.live()),
                name="protection_one_live_per_position",
            ),
            models.UniqueConstraint(
                fields=["broker", "trigger_id"],
                condition=~Q(trigger_id=""),
                name="protection_trigger_unique",
            ),
            models.CheckConstraint(
                condition=Q(stop_loss__isnull=False) | Q(take_profit__isnull=False),
                name="protection_has_a_level",
            ),
            models.CheckConstraint(
                condition=Q(quantity__gt=0), name="protection_quantity_positive"
            ),
            # Held at the broker means a trigger id; an end means an end time.
            models.CheckConstraint(
                condition=~Q(state__in=["ACTIVE", "AMENDING", "TRIGGERED"]) | ~Q(trigger_id=""),
                name="protection_held_has_trigger_id",
            ),
            models.CheckConstraint(
                condition=Q(state__in=ProtectionState.live(), ended_at__isnull=True)
                | (~Q(state__in=ProtectionState.live()) & Q(ended_at__isnull=False)),
                name="protection_ended_iff_final",
            ),
            on_paisa_check("stop_loss", "protection_stop_loss_on_paisa"),
            on_paisa_check("take_profit", "protection_take_profit_on_paisa"),
        ]
        indexes = [
            models.Index(
                fields=["strategy"],
                condition=Q(state__in=ProtectionState.live()),
                name="protection_live_idx",
            )
        ]
        triggers = [updated_at_trigger()]

    def __str__(self) -> str:
        return f"protection {self.pk} of position {self.position_id}: {self.state}"

    @property
    def is_live(self) -> bool:
        return self.state in ProtectionState.live()


class IssueType(models.TextChoices):
    QUANTITY_MISMATCH = "QUANTITY_MISMATCH", "Quantity mismatch"
    PRICE_MISMATCH = "PRICE_MISMATCH", "Average price mismatch"
    MISSING_AT_BROKER = "MISSING_AT_BROKER", "Position missing at broker"
    UNKNOWN_POSITION = "UNKNOWN_POSITION", "Position unknown to us"
    ORDER_STATUS_MISMATCH = "ORDER_STATUS_MISMATCH", "Order status mismatch"
    MISSING_FILL = "MISSING_FILL", "Fill missing"
    CONTRADICTORY_REPORT = "CONTRADICTORY_REPORT", "Broker report contradicts the order"
    UNKNOWN_BROKER_STATUS = "UNKNOWN_BROKER_STATUS", "Broker reports an unknown order status"
    CHARGES_MISMATCH = "CHARGES_MISMATCH", "Charges differ from the contract note"
    # An order in flight (being sent, in doubt, being cancelled or modified) that no job has
    # settled within OMS_ORDER_STUCK_SECONDS: a person takes it from there (orders_sweep).
    ORDER_STUCK = "ORDER_STUCK", "Order stuck in flight: needs a person"
    # Cancel requested, the broker has not confirmed it within OMS_CANCEL_UNCONFIRMED_SECONDS.
    CANCEL_UNCONFIRMED = "CANCEL_UNCONFIRMED", "Cancel not confirmed by the broker"
    # Reconciliation of orders in both directions (positions.reconciliation_orders).
    ORDER_MISSING_AT_BROKER = "ORDER_MISSING_AT_BROKER", "Working order missing at the broker"
    UNKNOWN_BROKER_ORDER = "UNKNOWN_BROKER_ORDER", "Broker order unknown to us"
    EXTRA_FILLS = "EXTRA_FILLS", "More filled here than at the broker"
    # A broker-held protection (GTT) not at the broker as we expect (positions.reconciliation_gtt).
    GTT_MISMATCH = "GTT_MISMATCH", "GTT differs at the broker"


class Severity(models.TextChoices):
    INFO = "INFO", "Info"
    WARNING = "WARNING", "Warning"
    CRITICAL = "CRITICAL", "Critical"

    @property
    def rank(self) -> int:
        return {"INFO": 1, "WARNING": 2, "CRITICAL": 3}[self.value]


class ReconciliationIssue(models.Model):
    """A difference between our book and the broker's, open until resolved by a person or a fix."""

    strategy = models.ForeignKey(
        Strategy, null=True, blank=True, on_delete=models.PROTECT, related_name="issues"
    )
    issue_type = models.CharField(max_length=24, choices=IssueType.choices)
    severity = models.CharField(max_length=8, choices=Severity.choices)
    symbol = models.CharField(max_length=50, blank=True)
    exchange = models.CharField(max_length=5, blank=True)
    product = models.CharField(max_length=4, blank=True)
    order = models.ForeignKey(
        "orders.Order", null=True, blank=True, on_delete=models.PROTECT, related_name="issues"
    )
    internal_quantity = models.IntegerField(null=True, blank=True)
    broker_quantity = models.IntegerField(null=True, blank=True)
    internal_price = models.DecimalField(**AVERAGE, null=True, blank=True)
    broker_price = models.DecimalField(**AVERAGE, null=True, blank=True)
    description = models.TextField(blank=True)
    details = models.JSONField(default=dict, blank=True)
    safe_fix = models.CharField(
        max_length=200,
        blank=True,
        default="",
        db_default="",
        help_text="The fix that is safe without a person (applied when auto-fix is on); blank "
        "when only a person can decide.",
    )
    fingerprint = models.CharField(
        max_length=200, help_text="What the issue is about; one unresolved issue per fingerprint."
    )
    occurrences = models.PositiveIntegerField(default=1)
    resolved = models.BooleanField(default=False)
    resolution = models.TextField(blank=True)
    resolved_by = models.CharField(max_length=150, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    auto_fixed = models.BooleanField(default=False)
    detected_at = models.DateTimeField(default=timezone.now)
    last_seen_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "reconciliation_log"
        ordering = ["resolved", "-detected_at"]
        constraints = [
            choices_check("issue_type", IssueType, "issue_type_valid"),
            choices_check("severity", Severity, "issue_severity_valid"),
            models.CheckConstraint(
                condition=Q(resolved=False, resolved_at__isnull=True)
                | (Q(resolved=True, resolved_at__isnull=False) & ~Q(resolution="")),
                name="issue_resolved_has_when_and_why",
            ),
            models.CheckConstraint(
                condition=Q(auto_fixed=False) | Q(resolved=True),
                name="issue_auto_fixed_is_resolved",
            ),
            models.UniqueConstraint(
                fields=["fingerprint"],
                condition=Q(resolved=False),
                name="issue_one_open_per_fingerprint",
            ),
        ]
        indexes = [
            models.Index(
                fields=["severity", "detected_at"],
                condition=Q(resolved=False),
                name="issue_unresolved_idx",
            ),
        ]
        permissions = [
            ("resolve_critical_issue", "Can resolve or auto-fix CRITICAL reconciliation issues")
        ]
        triggers = [updated_at_trigger()]

    def __str__(self) -> str:
        """ "CRITICAL · Position unknown to us · INFY": the issue in words, not its codes."""
        subject = self.symbol or (f"order {self.order_id}" if self.order_id else "")
        parts = (self.get_severity_display(), self.get_issue_type_display(), subject)
        return " · ".join(part for part in parts if part)

    @property
    def is_critical(self) -> bool:
        return self.severity == Severity.CRITICAL

    def seconds_unresolved(self, now: datetime | None = None) -> Decimal:
        """Seconds since detection, up to resolution (or now, while unresolved)."""
        end = self.resolved_at or now or timezone.now()
        return Decimal((end - self.detected_at).total_seconds())

    def hours_unresolved(self, now: datetime | None = None) -> Decimal:
        """Hours since detection, up to resolution (or now, while unresolved)."""
        seconds = self.seconds_unresolved(now)
        return (seconds / 3600).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


class ReconciliationRun(models.Model):
    """One reconciliation run (positions.reconciliation.reconcile_positions, not a dry run):
    when it ran, for how long, what it compared and found. The health check reads the latest
    to say whether reconciliation keeps to its schedule."""

    strategy = models.ForeignKey(
        Strategy, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField()
    positions_compared = models.PositiveIntegerField(default=0)
    orders_compared = models.PositiveIntegerField(default=0)
    differences = models.PositiveIntegerField(default=0)
    created = models.PositiveIntegerField(default=0)
    resolved = models.PositiveIntegerField(default=0)
    auto_fixed = models.PositiveIntegerField(default=0)
    brokers = models.JSONField(default=list, blank=True)  # the brokers it could read

    class Meta:
        db_table = "reconciliation_runs"
        ordering = ["-finished_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(finished_at__gte=F("started_at")),
                name="reconciliation_run_finishes_after_start",
            ),
        ]
        indexes = [models.Index(fields=["-finished_at"], name="reconciliation_run_latest")]

    def __str__(self) -> str:
        return f"reconciliation {self.finished_at:%Y-%m-%d %H:%M}"


class DailyStats(models.Model):
    """One trading day's figures, globally (strategy NULL) and per strategy."""

    date = models.DateField()
    strategy = models.ForeignKey(
        Strategy, null=True, blank=True, on_delete=models.PROTECT, related_name="daily_stats"
    )
    total_orders = models.PositiveIntegerField(default=0)
    filled_orders = models.PositiveIntegerField(default=0)
    cancelled_orders = models.PositiveIntegerField(default=0)
    rejected_orders = models.PositiveIntegerField(default=0)
    total_trades = models.PositiveIntegerField(default=0)
    winning_trades = models.PositiveIntegerField(default=0)
    losing_trades = models.PositiveIntegerField(default=0)
    gross_pnl = models.DecimalField(**MONEY, default=ZERO)
    total_charges = models.DecimalField(**MONEY, default=ZERO)
    net_pnl = models.DecimalField(**MONEY, default=ZERO)
    turnover = models.DecimalField(**MONEY, default=ZERO)
    max_drawdown = models.DecimalField(**MONEY, default=ZERO)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "daily_stats"
        verbose_name_plural = "daily stats"
        ordering = ["-date", "strategy_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["date", "strategy"],
                condition=Q(strategy__isnull=False),
                name="daily_stats_one_per_strategy_day",
            ),
            models.UniqueConstraint(
                fields=["date"],
                condition=Q(strategy__isnull=True),
                name="daily_stats_one_global_day",
            ),
            models.CheckConstraint(
                condition=Q(net_pnl=F("gross_pnl") - F("total_charges")),
                name="daily_stats_net_is_gross_less_charges",
            ),
            models.CheckConstraint(
                condition=Q(total_charges__gte=0) & Q(turnover__gte=0) & Q(max_drawdown__gte=0),
                name="daily_stats_amounts_positive",
            ),
            models.CheckConstraint(
                condition=Q(
                    total_orders__gte=F("filled_orders")
                    + F("cancelled_orders")
                    + F("rejected_orders")
                ),
                name="daily_stats_order_counts_consistent",
            ),
        ]
        triggers = [updated_at_trigger()]

    def __str__(self) -> str:
        return f"{self.date:%d %b %Y} · {self.strategy or 'All strategies'}"


class MarketPrice(models.Model):
    """The shared last traded price of an instrument: market data or staff, never a strategy.

    Every strategy's checks, paper fills and marks read it, unless a PAPER strategy posted a
    price of its own for the instrument (``StrategyPrice``; the rule: ``LastPrice``).
    """

    symbol = models.CharField(max_length=50)
    exchange = models.CharField(max_length=5, choices=Exchange.choices)
    last_price = models.DecimalField(**PRICE)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "market_prices"
        constraints = [
            models.UniqueConstraint(fields=["symbol", "exchange"], name="market_price_unique"),
            on_paisa_check("last_price", "market_price_on_paisa", nullable=False),
        ]

    def __str__(self) -> str:
        return f"{self.exchange}:{self.symbol} {self.last_price}"


class StrategyPrice(models.Model):
    """A last price a PAPER strategy posted for itself (``POST /api/v1/prices/``).

    It moves that strategy's own paper fills, checks and marks only: no other strategy ever
    reads it (``LastPrice``), and the shared ``market_prices`` never holds it. The database
    refuses a row for a strategy that is not PAPER.
    """

    strategy = models.ForeignKey(Strategy, on_delete=models.CASCADE, related_name="+")
    symbol = models.CharField(max_length=50)
    exchange = models.CharField(max_length=5, choices=Exchange.choices)
    last_price = models.DecimalField(**PRICE)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "strategy_prices"
        constraints = [
            models.UniqueConstraint(
                fields=["strategy", "symbol", "exchange"], name="strategy_price_unique"
            ),
            on_paisa_check("last_price", "strategy_price_on_paisa", nullable=False),
        ]
        triggers = [
            pgtrigger.Trigger(
                name="paper_strategies_only",
                when=pgtrigger.Before,
                operation=pgtrigger.Insert | pgtrigger.Update,
                func="""
                IF NOT EXISTS (SELECT FROM strategies
                                WHERE id = NEW.strategy_id AND mode = 'PAPER') THEN
                    RAISE EXCEPTION 'strategy %: only a PAPER strategy posts its own prices',
                        NEW.strategy_id USING ERRCODE = 'check_violation';
                END IF;
                RETURN NEW;
                """,
            ),
        ]

    def __str__(self) -> str:
        return f"{self.exchange}:{self.symbol} {self.last_price} (strategy {self.strategy_id})"


class OwnPrice(Func):
    """``oms_own_price(strategy_id, symbol, exchange)``: the price the strategy posted for
    itself and sees, or NULL (a LIVE strategy, or none posted). positions migration 0006."""

    function = "oms_own_price"
    output_field = models.DecimalField(**PRICE)


class LastPrice(Func):
    """``oms_last_price(strategy_id, symbol, exchange)``: the last price a strategy's checks,
    paper fills and marks see, its own price or else the shared market price (positions
    migration 0006, the one definition)."""

    function = "oms_last_price"
    output_field = models.DecimalField(**PRICE)


class ActivePosition(models.Model):
    """Read-only: open positions with their strategy's name and value (``v_active_positions``).

    ``position_value`` is ``abs(quantity) * coalesce(last_price, average_price)`` to the paisa:
    what the position is worth now. Not the gross exposure the limits check (at cost, working
    orders included: risk.selectors.gross_exposure).
    """

    id = models.BigIntegerField(primary_key=True)
    strategy = models.ForeignKey(Strategy, on_delete=models.DO_NOTHING, related_name="+")
    strategy_name = models.CharField(max_length=100)
    symbol = models.CharField(max_length=50)
    exchange = models.CharField(max_length=5, choices=Exchange.choices)
    product = models.CharField(max_length=4, choices=Product.choices)
    quantity = models.IntegerField()
    average_price = models.DecimalField(**AVERAGE)
    last_price = models.DecimalField(**PRICE, null=True)
    realized_pnl = models.DecimalField(**MONEY)
    unrealized_pnl = models.DecimalField(**MONEY)
    total_pnl = models.DecimalField(**MONEY)
    stop_loss = models.DecimalField(**PRICE, null=True)
    take_profit = models.DecimalField(**PRICE, null=True)
    position_value = models.DecimalField(**MONEY)
    opened_at = models.DateTimeField()

    class Meta:
        managed = False
        db_table = "v_active_positions"
        ordering = ["-opened_at", "-id"]

    def __str__(self) -> str:
        return f"{self.strategy_name}:{self.symbol} {self.quantity:+d} @ {self.average_price}"


class OpenReconciliationIssue(models.Model):
    """Read-only: unresolved reconciliation issues (``v_reconciliation_issues``).

    Order by ``-severity_rank`` (CRITICAL 3, WARNING 2, INFO 1), then ``detected_at``: a view's
    own ORDER BY does not survive an outer query.
    """

    id = models.BigIntegerField(primary_key=True)
    strategy = models.ForeignKey(Strategy, null=True, on_delete=models.DO_NOTHING, related_name="+")
    strategy_name = models.CharField(max_length=100, null=True)
    issue_type = models.CharField(max_length=24, choices=IssueType.choices)
    severity = models.CharField(max_length=8, choices=Severity.choices)
    severity_rank = models.SmallIntegerField()
    symbol = models.CharField(max_length=50)
    exchange = models.CharField(max_length=5)
    product = models.CharField(max_length=4)
    order = models.ForeignKey(
        "orders.Order", null=True, on_delete=models.DO_NOTHING, related_name="+"
    )
    internal_quantity = models.IntegerField(null=True)
    broker_quantity = models.IntegerField(null=True)
    internal_price = models.DecimalField(**AVERAGE, null=True)
    broker_price = models.DecimalField(**AVERAGE, null=True)
    description = models.TextField()
    details = models.JSONField()
    fingerprint = models.CharField(max_length=200)
    occurrences = models.PositiveIntegerField()
    detected_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()
    hours_unresolved = models.DecimalField(max_digits=12, decimal_places=1)

    class Meta:
        managed = False
        db_table = "v_reconciliation_issues"
        ordering = ["-severity_rank", "detected_at", "id"]

    def __str__(self) -> str:
        return f"{self.severity} {self.issue_type} {self.symbol}"
