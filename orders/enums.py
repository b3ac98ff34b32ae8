"""The order vocabulary shared by models, services, the API and the broker adapters."""

from django.db import models


class OrderStatus(models.TextChoices):
    PENDING = "PENDING", "Pending (recorded, not yet sent)"
    SUBMITTED = "SUBMITTED", "Submitted (in flight)"
    UNKNOWN = "UNKNOWN", "Unknown (broker did not answer)"
    OPEN = "OPEN", "Open"
    TRIGGER_PENDING = "TRIGGER_PENDING", "Trigger pending"
    PARTIALLY_FILLED = "PARTIALLY_FILLED", "Partially filled"
    CANCEL_PENDING = "CANCEL_PENDING", "Cancel pending"
    FILLED = "FILLED", "Filled"
    CANCELLED = "CANCELLED", "Cancelled"
    REJECTED = "REJECTED", "Rejected"
    EXPIRED = "EXPIRED", "Expired"

    @classmethod
    def terminal(cls) -> frozenset["OrderStatus"]:
        return frozenset({cls.FILLED, cls.CANCELLED, cls.REJECTED, cls.EXPIRED})

    @classmethod
    def active(cls) -> frozenset["OrderStatus"]:
        return frozenset(set(cls) - cls.terminal())


class OrderType(models.TextChoices):
    MARKET = "MARKET", "Market"
    LIMIT = "LIMIT", "Limit"
    SL = "SL", "Stop-loss limit"
    SL_M = "SL-M", "Stop-loss market"


class OrderSide(models.TextChoices):
    BUY = "BUY", "Buy"
    SELL = "SELL", "Sell"

    @property
    def sign(self) -> int:
        return 1 if self == OrderSide.BUY else -1


class Product(models.TextChoices):
    MIS = "MIS", "Intraday (MIS)"
    CNC = "CNC", "Delivery (CNC)"
    NRML = "NRML", "Carry-forward F&O (NRML)"


class Validity(models.TextChoices):
    DAY = "DAY", "Day"
    IOC = "IOC", "Immediate or cancel"


class Exchange(models.TextChoices):
    NSE = "NSE", "NSE"
    BSE = "BSE", "BSE"
    NFO = "NFO", "NSE F&O"
    BFO = "BFO", "BSE F&O"


class Segment(models.TextChoices):
    EQ = "EQ", "Equity"
    FUT = "FUT", "Futures"
    OPT = "OPT", "Options"


class EventSource(models.TextChoices):
    API = "API", "Strategy API"
    ADMIN = "ADMIN", "Admin"
    BROKER = "BROKER", "Broker"
    SYSTEM = "SYSTEM", "System"


class EventKind(models.TextChoices):
    TRANSITION = "TRANSITION", "Status change"
    FILL = "FILL", "Fill"
    MODIFY = "MODIFY", "Modification"
    REFUSED = "REFUSED", "Refused transition"
    NOTE = "NOTE", "Note"


class TradeKind(models.TextChoices):
    """A fill executed at the broker, or an adjustment that settles a reconciliation issue
    (the only other way a position's quantity may change)."""

    FILL = "FILL", "Fill"
    ADJUSTMENT = "ADJUSTMENT", "Adjustment"


class StrategyStatus(models.TextChoices):
    ACTIVE = "ACTIVE", "Active"
    INACTIVE = "INACTIVE", "Inactive"
    PAUSED = "PAUSED", "Paused"
    ERROR = "ERROR", "Error"


class StrategyMode(models.TextChoices):
    PAPER = "PAPER", "Paper"
    LIVE = "LIVE", "Live"


class PausedBy(models.TextChoices):
    """Who paused a strategy: the strategy itself (it may resume) or staff (only staff may)."""

    STRATEGY = "STRATEGY", "The strategy itself"
    STAFF = "STAFF", "Staff"


class StrategyEventKind(models.TextChoices):
    """What a strategy's event feed (and its webhooks) carries: table ``strategy_events``."""

    ORDER_STATUS = "order.status", "Order status change"
    ORDER_FILL = "order.fill", "Order fill"
    ORDER_MODIFIED = "order.modified", "Order modified"
    ORDER_REFUSED = "order.refused", "Order change refused"
    KILL_SWITCH = "kill_switch", "Kill switch change"
    STRATEGY_STATUS = "strategy.status", "Strategy status change"


class ProtectionMode(models.TextChoices):
    """Where a strategy's stop-loss / take-profit live: the OMS monitor only, a GTT OCO held at
    the broker (which survives the OMS being down), or both (the OMS monitor as second line)."""

    OMS = "OMS", "OMS only"
    BROKER = "BROKER", "Broker-held (GTT)"
    BOTH = "BOTH", "Both"


class Variety(models.TextChoices):
    """Kite's order varieties the OMS sends: a plain order, an after-market order (queued for
    the next session) and an iceberg (the exchange works it leg by leg)."""

    REGULAR = "regular", "Regular"
    AMO = "amo", "After-market (AMO)"
    ICEBERG = "iceberg", "Iceberg"
