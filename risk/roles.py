"""The back office's roles: which Django permissions each group of people holds.

Synced by the data migration ``risk/0005_roles`` and by ``manage.py create_roles`` (after a
change here), through ``risk.services.roles_sync``. Permissions are "app_label.codename".
Nobody may delete orders, trades, order events or kill switch events: no role holds those
permissions, and the admin refuses them to superusers too.
"""

VIEWED = (
    "orders.strategy",
    "orders.order",
    "orders.orderevent",
    "orders.trade",
    "orders.strategyapikey",
    "positions.position",
    "positions.reconciliationissue",
    "positions.dailystats",
    "positions.marketprice",
    "risk.killswitchevent",
    "risk.risklimit",
    "risk.instrument",
    "risk.marketholiday",
    "risk.pnlsnapshot",
)

# The broker accounts (risk migration 0012; the migrations before it sync the roles without).
BROKER_ACCOUNTS_SEEN = frozenset({"orders.view_brokeraccount"})
BROKER_ACCOUNTS_CONNECTED = frozenset({"orders.connect_brokeraccount"})
BROKER_ACCOUNTS = BROKER_ACCOUNTS_SEEN | BROKER_ACCOUNTS_CONNECTED
# The instrument master's morning refreshes (risk migration 0015).
INSTRUMENT_REFRESHES_SEEN = frozenset({"risk.view_instrumentrefresh"})
# Webhooks (risk migration roles_webhooks): everyone reads the endpoints (never a secret) and
# the delivery log; risk officers add, change, pause, resume and retry endpoints.
WEBHOOKS_SEEN = frozenset({"orders.view_webhookendpoint", "orders.view_webhookdelivery"})
WEBHOOKS_MANAGED = frozenset({"orders.add_webhookendpoint", "orders.change_webhookendpoint"})
WEBHOOKS = WEBHOOKS_SEEN | WEBHOOKS_MANAGED

# Baskets and sliced parents (risk migration roles_baskets): everyone reads them.
BASKETS_SEEN = frozenset({"orders.view_basket", "orders.view_orderparent"})

VIEWER = (
    frozenset(f"{app}.view_{model}" for app, model in (m.split(".") for m in VIEWED))
    | BROKER_ACCOUNTS_SEEN
    | INSTRUMENT_REFRESHES_SEEN
    | WEBHOOKS_SEEN
    | BASKETS_SEEN
)

# Operators watch, and settle the reconciliation issues that are not CRITICAL.
OPERATOR = VIEWER | {"positions.change_reconciliationissue"}

# Who tried to log in to the admin, and who is locked out (django-axes).
LOGIN_ATTEMPTS = frozenset(
    {"axes.view_accessattempt", "axes.view_accessfailurelog", "axes.view_accesslog"}
)

# Risk officers act: the kill switch, CRITICAL issues, cancels, strategies, levels and limits,
# the morning Kite login of each broker account;
# and they see the admin's login attempts and lockouts.
RISK_OFFICER = (
    OPERATOR
    | LOGIN_ATTEMPTS
    | BROKER_ACCOUNTS_CONNECTED
    | WEBHOOKS_MANAGED
    | {
        "positions.resolve_critical_issue",
        "risk.change_kill_switch",
        "orders.cancel_order",
        "orders.change_strategy",
        "orders.add_strategyapikey",
        "orders.change_strategyapikey",
        "positions.change_position",
        "risk.add_risklimit",
        "risk.change_risklimit",
        "risk.add_marketholiday",
        "risk.change_marketholiday",
    }
)

ROLES = {
    "Risk officer": RISK_OFFICER,
    "Operator": OPERATOR,
    "Viewer": VIEWER,
}
