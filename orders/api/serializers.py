"""What goes in and out of the orders API. Money is a decimal string both ways
(omsproject.api.fields)."""

from __future__ import annotations

import math

from django.conf import settings
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from omsproject.api.fields import (
    AveragePriceField,
    FieldsOnce,
    FieldsOnceSerializer,
    MoneyField,
)
from orders.domain import CLIENT_ID_RE, MAX_PRICE, MAX_QUANTITY, SYMBOL_RE
from orders.enums import (
    Exchange,
    OrderSide,
    OrderStatus,
    OrderType,
    PausedBy,
    Product,
    ProtectionMode,
    StrategyEventKind,
    StrategyMode,
    StrategyStatus,
    Validity,
    Variety,
)
from orders.event_feed import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, MAX_WAIT
from orders.models import Order, OrderEvent, Trade
from orders.money import PAISA
from orders.services.strategies import MAX_REASON_LENGTH
from orders.varieties import ICEBERG_MAX_LEGS, ICEBERG_MIN_LEGS
from positions.selectors import posted_prices_refusals


class PriceField(MoneyField):
    """A price: positive, to the paisa, at most the domain's maximum."""

    def __init__(self, **kwargs):
        kwargs.setdefault("min_value", PAISA)
        kwargs.setdefault("max_value", MAX_PRICE)
        super().__init__(**kwargs)


class ModificationSerializer(serializers.Serializer):
    """A modification sent to the broker and not yet confirmed."""

    quantity = serializers.IntegerField()
    price = MoneyField(allow_null=True)
    trigger_price = MoneyField(allow_null=True)
    order_type = serializers.ChoiceField(choices=OrderType.choices)


class OrderSerializer(FieldsOnceSerializer):
    """An order as the strategy sees it (what it asked, and what the broker decided)."""

    price = MoneyField(read_only=True, allow_null=True)
    trigger_price = MoneyField(read_only=True, allow_null=True)
    stop_loss = MoneyField(read_only=True, allow_null=True)
    take_profit = MoneyField(read_only=True, allow_null=True)
    average_price = AveragePriceField(read_only=True, allow_null=True)
    remaining_quantity = serializers.IntegerField(read_only=True)
    pending_modification = serializers.SerializerMethodField()
    checks = serializers.SerializerMethodField()

    class Meta:
        model = Order
        fields = (
            "id",
            "strategy",
            "client_order_id",
            "broker_order_id",
            "symbol",
            "exchange",
            "segment",
            "side",
            "quantity",
            "order_type",
            "price",
            "trigger_price",
            "product",
            "validity",
            "variety",
            "iceberg_legs",
            "iceberg_quantity",
            "basket",
            "parent",
            "checks",
            "status",
            "filled_quantity",
            "remaining_quantity",
            "average_price",
            "stop_loss",
            "take_profit",
            "tag",
            "status_message",
            "modification_count",
            "pending_modification",
            "created_at",
            "updated_at",
            "submitted_at",
            "acknowledged_at",
            "last_fill_at",
            "filled_at",
            "cancel_requested_at",
            "cancelled_at",
            "rejected_at",
            "expired_at",
        )
        read_only_fields = fields

    @extend_schema_field(ModificationSerializer(allow_null=True))
    def get_pending_modification(self, order: Order):
        return (order.metadata or {}).get("pending_modification")

    @extend_schema_field(
        serializers.DictField(
            child=serializers.ListField(child=serializers.CharField()), allow_null=True
        )
    )
    def get_checks(self, order: Order):
        """An AMO's pre-trade checks: those run when placed ("now") and those left to the
        next session ("at_open"); null for other orders (every check ran when placed)."""
        return (order.metadata or {}).get("checks")


class OrderEventSerializer(FieldsOnceSerializer):
    """One step of an order's history; the first event has no ``from_status`` ("")."""

    from_status = serializers.ChoiceField(
        choices=OrderStatus.choices, allow_blank=True, read_only=True
    )

    class Meta:
        model = OrderEvent
        fields = (
            "id",
            "kind",
            "from_status",
            "to_status",
            "source",
            "reason",
            "actor",
            "details",
            "created_at",
        )
        read_only_fields = fields


class TradeSerializer(FieldsOnceSerializer):
    """One fill with Zerodha's charges, to the paisa."""

    price = MoneyField(read_only=True)
    gross_value = MoneyField(read_only=True, max_digits=18)
    brokerage = MoneyField(read_only=True, max_digits=18)
    stt = MoneyField(read_only=True, max_digits=18)
    exchange_charges = MoneyField(read_only=True, max_digits=18)
    sebi_charges = MoneyField(read_only=True, max_digits=18)
    stamp_duty = MoneyField(read_only=True, max_digits=18)
    gst = MoneyField(read_only=True, max_digits=18)
    total_charges = MoneyField(read_only=True, max_digits=18)
    net_value = MoneyField(read_only=True, max_digits=18)

    class Meta:
        model = Trade
        fields = (
            "id",
            "order",
            "trade_id",
            "symbol",
            "exchange",
            "product",
            "side",
            "quantity",
            "price",
            *Trade.VALUE_FIELDS,
            "executed_at",
        )
        read_only_fields = fields


class OrderDetailSerializer(OrderSerializer):
    """An order with its history (oldest event first) and its fills."""

    events = OrderEventSerializer(many=True, read_only=True)
    trades = TradeSerializer(many=True, read_only=True)

    class Meta(OrderSerializer.Meta):
        fields = (*OrderSerializer.Meta.fields, "events", "trades")
        read_only_fields = fields


class OrderPlaceSerializer(FieldsOnce, serializers.Serializer):
    """A new order. Sending the same ``client_order_id`` again replays; it never places twice."""

    client_order_id = serializers.RegexField(
        CLIENT_ID_RE,
        max_length=64,
        help_text="Your id for the order, unique per strategy (1-64 of A-Z a-z 0-9 _ - : .). "
        "It makes the request idempotent.",
    )
    symbol = serializers.RegexField(
        SYMBOL_RE, max_length=50, help_text="Kite tradingsymbol, upper case, e.g. RELIANCE."
    )
    exchange = serializers.ChoiceField(choices=Exchange.choices, default=Exchange.NSE)
    side = serializers.ChoiceField(choices=OrderSide.choices)
    quantity = serializers.IntegerField(min_value=1, max_value=MAX_QUANTITY)
    order_type = serializers.ChoiceField(choices=OrderType.choices)
    price = PriceField(
        required=False, allow_null=True, help_text="Required for LIMIT and SL; none for others."
    )
    trigger_price = PriceField(
        required=False, allow_null=True, help_text="Required for SL and SL-M; none for others."
    )
    product = serializers.ChoiceField(choices=Product.choices)
    validity = serializers.ChoiceField(choices=Validity.choices, default=Validity.DAY)
    stop_loss = PriceField(
        required=False, allow_null=True, help_text="Closes the position at this price."
    )
    take_profit = PriceField(
        required=False, allow_null=True, help_text="Closes the position at this price."
    )
    tag = serializers.CharField(required=False, allow_blank=True, max_length=64, default="")
    variety = serializers.ChoiceField(
        choices=Variety.choices,
        default=Variety.REGULAR,
        help_text="regular; amo (outside market hours, for the next session); iceberg (with "
        "iceberg_legs and iceberg_quantity).",
    )
    iceberg_legs = serializers.IntegerField(
        required=False,
        allow_null=True,
        min_value=ICEBERG_MIN_LEGS,
        max_value=ICEBERG_MAX_LEGS,
        help_text="Iceberg only: how many legs (2-50).",
    )
    iceberg_quantity = serializers.IntegerField(
        required=False,
        allow_null=True,
        min_value=1,
        max_value=MAX_QUANTITY,
        help_text="Iceberg only: each leg's quantity (quantity / legs, rounded up; within the "
        "freeze quantity).",
    )


class OrderModifySerializer(serializers.Serializer):
    """A change to a working order; what is left out keeps its value."""

    quantity = serializers.IntegerField(required=False, min_value=1, max_value=MAX_QUANTITY)
    price = PriceField(required=False)
    trigger_price = PriceField(required=False)
    order_type = serializers.ChoiceField(choices=OrderType.choices, required=False)

    def validate(self, attrs):
        if not attrs:
            raise serializers.ValidationError(
                "a modification needs at least one of quantity, price, trigger_price, order_type"
            )
        return attrs


class OrderCancelSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, max_length=200, default="")


class PriceTickSerializer(serializers.Serializer):
    symbol = serializers.RegexField(SYMBOL_RE, max_length=50)
    exchange = serializers.ChoiceField(choices=Exchange.choices)
    price = PriceField()


class PricesSerializer(serializers.Serializer):
    """Last traded prices a PAPER strategy posts for its own paper fills, checks and marks.

    Each is positive, finite and to the paisa (PriceField), of an instrument in the master, on
    its tick, and within OMS_PAPER_PRICE_BAND_PERCENT of the shared market price when one is
    known (``posted_prices_refusals``).
    """

    prices = PriceTickSerializer(many=True, allow_empty=False, max_length=1000)

    def validate(self, attrs):
        refusals = posted_prices_refusals(
            [(tick["symbol"], tick["exchange"], tick["price"]) for tick in attrs["prices"]],
            band_percent=settings.OMS_PAPER_PRICE_BAND_PERCENT,
        )
        if refusals:
            raise serializers.ValidationError({"prices": {str(i): r for i, r in refusals.items()}})
        return attrs


class PricesAcceptedSerializer(serializers.Serializer):
    accepted = serializers.IntegerField(help_text="How many prices were queued.")


class DayFiguresSerializer(serializers.Serializer):
    """Today (IST): PnL as the daily loss limit sees it, and the day's fills."""

    date = serializers.DateField()
    gross_realized_pnl = MoneyField(
        max_digits=18, help_text="Gross: what today's fills realized (each reduction, on its day)."
    )
    charges = MoneyField(max_digits=18, help_text="Today's fills' charges and the DP charge.")
    realized_pnl = MoneyField(max_digits=18, help_text="Net: gross_realized_pnl - charges.")
    unrealized_pnl = MoneyField(
        max_digits=18, help_text="Open positions at their marks (gross of exit charges)."
    )
    net_pnl = MoneyField(
        max_digits=18, help_text="realized_pnl + unrealized_pnl: what the daily loss limit sees."
    )
    turnover = MoneyField(max_digits=18)
    trades = serializers.IntegerField()
    winning_trades = serializers.IntegerField()
    losing_trades = serializers.IntegerField()


class LimitInForceSerializer(serializers.Serializer):
    """One pre-trade limit as it applies to the strategy, and where its value comes from."""

    limit = serializers.CharField(source="name")
    label = serializers.CharField()
    value = serializers.CharField(
        allow_null=True, help_text="The value in force (a decimal string); null: the limit is off."
    )
    sources = serializers.ListField(
        child=serializers.ChoiceField(choices=["global", "strategy", "config", "setting"]),
        help_text="The levels whose value is in force: the global row, the strategy's row, its "
        "config's limits, or (order rate only) the OMS_ORDERS_PER_SECOND default.",
    )
    levels = serializers.DictField(
        child=serializers.CharField(allow_null=True),
        help_text="Each level's own value (global, strategy, config); null: not set there.",
    )
    off = serializers.BooleanField()
    warning = serializers.CharField(allow_null=True)


class StrategyOverviewSerializer(serializers.Serializer):
    """The calling strategy: status, mode, limits, today's PnL and the kill switch in force."""

    id = serializers.IntegerField(source="strategy.pk")
    name = serializers.CharField(source="strategy.name")
    status = serializers.ChoiceField(source="strategy.status", choices=StrategyStatus.choices)
    paused_by = serializers.ChoiceField(
        source="strategy.paused_by",
        choices=PausedBy.choices,
        allow_blank=True,
        help_text="Who paused it (blank unless PAUSED): a strategy resumes only its own pause.",
    )
    status_reason = serializers.CharField(
        source="strategy.status_reason", help_text="Why the status last changed."
    )
    mode = serializers.ChoiceField(source="strategy.mode", choices=StrategyMode.choices)
    protection_mode = serializers.ChoiceField(
        source="strategy.protection_mode",
        choices=ProtectionMode.choices,
        help_text="Where its positions' stop-loss / take-profit live: OMS (the OMS monitor), "
        "BROKER (a GTT OCO held at the broker) or BOTH. Set by staff in the admin.",
    )
    limits = serializers.DictField(
        help_text="The pre-trade limits in force: the strictest of the global limits, the "
        "strategy's and its config's; null means no limit."
    )
    limits_in_force = LimitInForceSerializer(
        many=True, help_text="Every limit: its value in force, where it comes from, off or not."
    )
    limit_warnings = serializers.ListField(
        child=serializers.CharField(),
        help_text="One line per limit that is off (and if no global limits row exists).",
    )
    config = serializers.JSONField(source="strategy.config")
    kill_switch = serializers.ChoiceField(
        choices=["ACTIVE", "REDUCING", "HALTED"],
        help_text="The stricter of the global switch and this strategy's.",
    )
    today = DayFiguresSerializer()
    open_positions = serializers.IntegerField()
    working_orders = serializers.IntegerField()
    gross_exposure = MoneyField(
        max_digits=18,
        help_text="Open positions at cost (|quantity| x average price) plus the unfilled part of "
        "working orders at their price: the figure max_strategy_exposure is checked against, "
        "as the dashboard shows it.",
    )
    total_trades = serializers.IntegerField(source="strategy.total_trades")
    winning_trades = serializers.IntegerField(source="strategy.winning_trades")
    losing_trades = serializers.IntegerField(source="strategy.losing_trades")
    win_rate = MoneyField(source="strategy.win_rate", max_digits=5)
    total_pnl = MoneyField(source="strategy.total_pnl", max_digits=18)


class StrategySteerSerializer(serializers.Serializer):
    """A strategy pausing or resuming itself."""

    status = serializers.ChoiceField(
        choices=[StrategyStatus.PAUSED, StrategyStatus.ACTIVE],
        help_text="PAUSED, or ACTIVE to lift a pause the strategy made itself.",
    )
    reason = serializers.CharField(
        max_length=MAX_REASON_LENGTH, help_text="Why; recorded with the strategy.status event."
    )


class EventQuerySerializer(serializers.Serializer):
    """The event feed's query: a cursor, a page size and how long to wait for news."""

    after = serializers.IntegerField(
        min_value=0,
        max_value=2**63 - 1,
        default=0,
        help_text="The cursor: events with an id above it (the last id seen; 0 for all).",
    )
    page_size = serializers.IntegerField(
        min_value=1, max_value=MAX_PAGE_SIZE, default=DEFAULT_PAGE_SIZE
    )
    wait = serializers.FloatField(
        min_value=0,
        max_value=MAX_WAIT,
        default=0,
        help_text=f"Seconds (0..{MAX_WAIT}) to wait when nothing is newer than after.",
    )

    def validate_wait(self, wait: float) -> float:
        if not math.isfinite(wait):
            raise serializers.ValidationError(f"wait {wait}: must be a number of seconds, 0..30")
        return wait


class StrategyEventSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="seq", help_text="The event's place in the feed.")
    kind = serializers.ChoiceField(choices=StrategyEventKind.choices)
    order_id = serializers.IntegerField(allow_null=True)
    client_order_id = serializers.CharField(allow_null=True)
    created_at = serializers.DateTimeField()
    data = serializers.JSONField(
        source="payload", help_text="What happened; amounts as decimal strings."
    )


class EventPageSerializer(serializers.Serializer):
    events = StrategyEventSerializer(many=True)
    next_after = serializers.IntegerField(
        help_text="The cursor for the next call: the last id here, or after when empty."
    )
