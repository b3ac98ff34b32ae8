"""Risk controls: the kill switch log, limits, the instrument master, holidays, PnL snapshots."""

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Q
from django.db.models.functions import Now
from django.utils import timezone

from omsproject import money_format
from omsproject.pg import append_only_triggers, choices_check
from orders.models import Strategy


class KillSwitchState(models.TextChoices):
    ACTIVE = "ACTIVE", "Active (trading allowed)"
    REDUCING = "REDUCING", "Reducing (only orders that shrink a position)"
    HALTED = "HALTED", "Halted (nothing passes)"

    @property
    def severity(self) -> int:
        """The one order of the states: ACTIVE < REDUCING < HALTED (the stricter wins)."""
        return list(KillSwitchState).index(self)


class KillSwitchScope(models.TextChoices):
    GLOBAL = "GLOBAL", "Global"
    STRATEGY = "STRATEGY", "Strategy"


class ActorType(models.TextChoices):
    PERSON = "PERSON", "Person"
    RULE = "RULE", "Automatic rule"


class KillSwitchEvent(models.Model):
    """One change of the kill switch, by a person or a named automatic rule, with its reason.

    The latest change of a switch is its row with the highest ``id``: ids are taken under the
    kill switch's exclusive advisory lock (kill_switch_set takes it, and a trigger takes it for
    any other INSERT before the id is drawn), so they follow the order the changes commit in.
    ``created_at`` is the database's clock at the insert, for people to read; no process's
    clock orders anything (risk migration 0007: ``v_kill_switch_current``).
    """

    state = models.CharField(max_length=8, choices=KillSwitchState.choices)
    scope = models.CharField(max_length=8, choices=KillSwitchScope.choices)
    strategy = models.ForeignKey(
        Strategy, null=True, blank=True, on_delete=models.PROTECT, related_name="kill_switch_events"
    )
    reason = models.TextField()
    actor = models.CharField(max_length=150)
    actor_type = models.CharField(max_length=6, choices=ActorType.choices, default=ActorType.PERSON)
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(db_default=Now())

    class Meta:
        db_table = "kill_switch_events"
        ordering = ["-id"]
        constraints = [
            choices_check("state", KillSwitchState, "kill_switch_state_valid"),
            choices_check("scope", KillSwitchScope, "kill_switch_scope_valid"),
            choices_check("actor_type", ActorType, "kill_switch_actor_type_valid"),
            models.CheckConstraint(
                condition=Q(scope=KillSwitchScope.GLOBAL, strategy__isnull=True)
                | Q(scope=KillSwitchScope.STRATEGY, strategy__isnull=False),
                name="kill_switch_scope_matches_strategy",
            ),
            models.CheckConstraint(condition=~Q(reason=""), name="kill_switch_reason_required"),
            models.CheckConstraint(condition=~Q(actor=""), name="kill_switch_actor_required"),
            # Only a person may lift the switch.
            models.CheckConstraint(
                condition=~Q(state=KillSwitchState.ACTIVE) | Q(actor_type=ActorType.PERSON),
                name="kill_switch_resume_by_person",
            ),
        ]
        indexes = [models.Index(fields=["scope", "strategy", "-id"], name="kill_switch_latest_idx")]
        permissions = [
            ("change_kill_switch", "Can set the kill switch and flatten positions"),
            # The audit lists' CSV (omsproject/admin_audit.py): order events, kill switch
            # events, reconciliation issues, the admin's change log, strategy events.
            ("export_audit", "Can export the audit lists to CSV"),
        ]
        triggers = append_only_triggers()

    def __str__(self) -> str:
        where = self.strategy or "global"
        return f"{self.state} ({where}) by {self.actor}"


class RateBucket(models.Model):
    """A token bucket in the database, so that every web process and worker shares one rate.

    ``tokens`` is the balance at ``updated_at``; the refill since then is added on the next take,
    measured with the database's clock. Spent only by ``risk.ratelimit.take_token``, in one
    statement. ``last_take_granted`` is how that statement reports its decision to the caller
    (its RETURNING clause sees only the new row, and a refused take and a granted one can leave
    the same balance).
    """

    key = models.CharField(max_length=100, unique=True)
    tokens = models.DecimalField(max_digits=14, decimal_places=6)
    capacity = models.PositiveIntegerField()
    refill_per_second = models.DecimalField(max_digits=14, decimal_places=6)
    last_take_granted = models.BooleanField(default=True)
    # Written by take_token with clock_timestamp(), not by the usual updated_at trigger: that
    # trigger's now() is the transaction's start, which would miscount the refill.
    updated_at = models.DateTimeField()

    class Meta:
        db_table = "rate_buckets"
        constraints = [
            models.CheckConstraint(condition=Q(capacity__gte=1), name="rate_bucket_capacity_min"),
            models.CheckConstraint(
                condition=Q(refill_per_second__gt=0), name="rate_bucket_refill_positive"
            ),
            models.CheckConstraint(
                condition=Q(tokens__gte=0) & Q(tokens__lte=models.F("capacity")),
                name="rate_bucket_tokens_within_capacity",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.key}: {self.tokens} of {self.capacity}"


class RateWindow(models.Model):
    """A sliding window of requests in the database: the send times of a key's latest requests,
    oldest first, as many as its largest limit. A request is let through only when, for each
    (limit, seconds) of the caller, fewer than ``limit`` of them fall within the last
    ``seconds``: so no window of that length, wherever it starts, ever holds more (a token
    bucket lets a full bucket and its refill through within one second). Taken only by
    ``risk.ratelimit.take_slot``, in one statement, under the row's lock.
    """

    key = models.CharField(max_length=100, unique=True)
    sent_at = ArrayField(models.DateTimeField())
    last_take_granted = models.BooleanField(default=True)
    wait_seconds = models.DecimalField(max_digits=14, decimal_places=6, default=0)
    updated_at = models.DateTimeField()

    class Meta:
        db_table = "rate_windows"
        constraints = [
            models.CheckConstraint(
                condition=Q(wait_seconds__gte=0), name="rate_window_wait_not_negative"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.key}: {len(self.sent_at)} recent requests"


class InstrumentType(models.TextChoices):
    EQ = "EQ", "Equity"
    FUT = "FUT", "Future"
    CE = "CE", "Call option"
    PE = "PE", "Put option"


class Instrument(models.Model):
    """One row of the broker's instrument master (Kite's instruments CSV)."""

    instrument_token = models.BigIntegerField(unique=True)
    exchange_token = models.BigIntegerField(null=True, blank=True)
    tradingsymbol = models.CharField(max_length=50)
    name = models.CharField(max_length=100, blank=True)
    exchange = models.CharField(max_length=5)
    segment = models.CharField(max_length=10)
    instrument_type = models.CharField(max_length=3, choices=InstrumentType.choices)
    expiry = models.DateField(null=True, blank=True)
    strike = models.DecimalField(max_digits=14, decimal_places=4, default=0)
    tick_size = models.DecimalField(max_digits=10, decimal_places=4)
    lot_size = models.PositiveIntegerField()
    freeze_quantity = models.PositiveIntegerField(
        null=True, blank=True, help_text="Largest quantity in one order (NSE freeze limit)."
    )
    tradable = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "instruments"
        ordering = ["exchange", "tradingsymbol"]
        constraints = [
            models.UniqueConstraint(
                fields=["tradingsymbol", "exchange"], name="instrument_symbol_unique"
            ),
            models.CheckConstraint(condition=Q(tick_size__gt=0), name="instrument_tick_positive"),
            models.CheckConstraint(condition=Q(lot_size__gte=1), name="instrument_lot_positive"),
            choices_check("instrument_type", InstrumentType, "instrument_type_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.exchange}:{self.tradingsymbol}"

    @property
    def is_option(self) -> bool:
        return self.instrument_type in (InstrumentType.CE, InstrumentType.PE)


class MarketHoliday(models.Model):
    """A day the exchange is closed that the calendar package does not know (staff-maintained)."""

    date = models.DateField(unique=True)
    description = models.CharField(max_length=200)
    created_by = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "market_holidays"
        ordering = ["-date"]

    def __str__(self) -> str:
        return f"{self.date} {self.description}"


class RiskLimit(models.Model):
    """Pre-trade limits: one global row (strategy NULL) and optional rows per strategy.

    A blank field means "no limit at this level". The limit in force is the strictest of the
    global row, the strategy's row and the strategy's JSON config ``limits`` (which may only
    tighten).
    """

    strategy = models.ForeignKey(
        Strategy, null=True, blank=True, on_delete=models.PROTECT, related_name="risk_limits"
    )
    max_order_quantity = models.PositiveIntegerField(null=True, blank=True)
    max_order_value = models.DecimalField(max_digits=18, decimal_places=2, null=True, blank=True)
    max_position_quantity = models.PositiveIntegerField(
        null=True, blank=True, help_text="Largest open position in one instrument (shares/units)."
    )
    max_strategy_exposure = models.DecimalField(
        max_digits=18,
        decimal_places=2,
        null=True,
        blank=True,
        help_text="Gross exposure of the strategy's open positions and open orders.",
    )
    max_total_exposure = models.DecimalField(
        max_digits=18,
        decimal_places=2,
        null=True,
        blank=True,
        help_text="Gross exposure of all strategies together (global row only).",
    )
    max_open_orders = models.PositiveIntegerField(null=True, blank=True)
    price_band_percent = models.DecimalField(
        max_digits=6,
        decimal_places=2,
        null=True,
        blank=True,
        help_text="A LIMIT price further than this from the last price is refused.",
    )
    orders_per_second = models.PositiveIntegerField(null=True, blank=True)
    daily_loss_limit = models.DecimalField(max_digits=18, decimal_places=2, null=True, blank=True)
    drawdown_limit = models.DecimalField(
        max_digits=18,
        decimal_places=2,
        null=True,
        blank=True,
        help_text="Halt when the day's PnL falls this far below the day's peak.",
    )
    rejection_burst = models.PositiveIntegerField(
        null=True, blank=True, help_text="Halt after this many broker rejections..."
    )
    rejection_window_seconds = models.PositiveIntegerField(default=60)
    halt_on_critical_issue = models.BooleanField(
        default=True, help_text="Halt when reconciliation finds a CRITICAL issue."
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "risk_limits"
        constraints = [
            # One row per strategy and one global row (NULL counts as a value here).
            models.UniqueConstraint(
                fields=["strategy"], nulls_distinct=False, name="risk_limit_one_per_scope"
            ),
            models.CheckConstraint(
                condition=Q(price_band_percent__isnull=True) | Q(price_band_percent__gt=0),
                name="risk_limit_band_positive",
            ),
            models.CheckConstraint(
                condition=Q(daily_loss_limit__isnull=True) | Q(daily_loss_limit__gt=0),
                name="risk_limit_loss_positive",
            ),
            models.CheckConstraint(
                condition=Q(drawdown_limit__isnull=True) | Q(drawdown_limit__gt=0),
                name="risk_limit_drawdown_positive",
            ),
        ]

    def __str__(self) -> str:
        return f"limits: {self.strategy or 'global'}"


class PnlSnapshot(models.Model):
    """Intraday PnL sampled by the risk monitor: the day's peak, drawdown and the chart."""

    strategy = models.ForeignKey(
        Strategy, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    taken_at = models.DateTimeField()
    realized_pnl = models.DecimalField(max_digits=18, decimal_places=2)
    unrealized_pnl = models.DecimalField(max_digits=18, decimal_places=2)
    total_pnl = models.DecimalField(max_digits=18, decimal_places=2)

    class Meta:
        db_table = "pnl_snapshots"
        verbose_name = "PnL snapshot"
        ordering = ["taken_at"]
        indexes = [models.Index(fields=["strategy", "taken_at"], name="pnl_snapshot_idx")]
        constraints = [
            models.CheckConstraint(
                condition=Q(total_pnl=models.F("realized_pnl") + models.F("unrealized_pnl")),
                name="pnl_snapshot_total",
            )
        ]

    def __str__(self) -> str:
        taken = timezone.localtime(self.taken_at).strftime("%d %b %Y %H:%M")
        scope = self.strategy or "All strategies"
        return f"{scope} at {taken}: {money_format.amount(self.total_pnl, signed=True)}"


class MarginCache(models.Model):
    """An account's available funds at the broker, fetched at most once every
    OMS_MARGIN_CACHE_SECONDS, less the margin of the orders let through since (``reserved``).

    Shared by every process: the pre-trade margin check (orders.services.margins) reads and
    reserves under this row's lock, in a short transaction with no broker call inside.
    """

    account_key = models.CharField(max_length=100)
    segment = models.CharField(max_length=20)
    available = models.DecimalField(max_digits=18, decimal_places=2)
    reserved = models.DecimalField(max_digits=18, decimal_places=2, default=0)
    fetched_at = models.DateTimeField()

    class Meta:
        db_table = "broker_margin_cache"
        constraints = [
            models.UniqueConstraint(
                fields=["account_key", "segment"], name="margin_cache_account_segment_unique"
            ),
            models.CheckConstraint(condition=Q(reserved__gte=0), name="margin_cache_reserved"),
        ]

    def __str__(self) -> str:
        return f"{self.account_key} {self.segment}: {self.available} less {self.reserved}"

    @property
    def remaining(self):
        return self.available - self.reserved


class InstrumentRefresh(models.Model):
    """One load of the instrument master (the morning refresh from Kite, or a file): what
    changed. ``details`` lists the instruments added, removed and changed (at most
    risk.instruments.DETAIL_LIMIT of each)."""

    source = models.CharField(max_length=20)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    total = models.PositiveIntegerField(default=0)
    added = models.PositiveIntegerField(default=0)
    removed = models.PositiveIntegerField(default=0)
    lot_size_changed = models.PositiveIntegerField(default=0)
    tick_size_changed = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        db_table = "instrument_refreshes"
        ordering = ["-started_at"]
        verbose_name_plural = "instrument refreshes"

    def __str__(self) -> str:
        return f"{self.source} {self.started_at:%Y-%m-%d %H:%M}"

    @property
    def succeeded(self) -> bool:
        return self.finished_at is not None and not self.error


class AdminAction(models.TextChoices):
    STRATEGY_STATUS = "STRATEGY_STATUS", "Strategy status"
    STRATEGY_MODE = "STRATEGY_MODE", "Strategy mode"
    STRATEGY_SETTINGS = "STRATEGY_SETTINGS", "Strategy settings"
    LIMIT_ADD = "LIMIT_ADD", "Limit set"
    LIMIT_CHANGE = "LIMIT_CHANGE", "Limit changed"
    KEY_REVOKE = "KEY_REVOKE", "API key revoked"


class AdminChange(models.Model):
    """One controlled change made by a person in the back office (a strategy paused or resumed,
    a limit changed, a key revoked): who, when, on what, why, and each field's old and new
    value (``changes``: {field: [old, new]}, decimals and choices as strings).

    Written by the service that makes the change, in the same transaction (risk.audit). The
    reason is required (a check constraint) and the table is append-only (triggers).
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(db_default=Now())
    content_type = models.ForeignKey(ContentType, on_delete=models.PROTECT, related_name="+")
    object_id = models.CharField(max_length=64)
    object_label = models.CharField(max_length=200)
    action = models.CharField(max_length=20, choices=AdminAction.choices)
    reason = models.TextField()
    changes = models.JSONField(default=dict, blank=True)

    class Meta:
        db_table = "admin_changes"
        ordering = ["-id"]
        verbose_name = "admin change"
        constraints = [
            choices_check("action", AdminAction, "admin_change_action_valid"),
            # Blank or only spaces: every controlled change says why.
            models.CheckConstraint(
                condition=Q(reason__regex=r"[^[:space:]]"), name="admin_change_reason_required"
            ),
            models.CheckConstraint(
                condition=~Q(object_label=""), name="admin_change_object_label_set"
            ),
        ]
        indexes = [
            models.Index(
                fields=["content_type", "object_id", "-id"], name="admin_change_object_idx"
            ),
        ]
        triggers = append_only_triggers()

    def __str__(self) -> str:
        return f"{self.get_action_display()}: {self.object_label}"
