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
# The audit lists (risk migration roles_audit): everyone reads the admin's change log (who
# changed what, when) and the strategies' event log; only risk officers export the audit lists
# to CSV (a file leaves the back office: the desk's whole history, in one click).
AUDIT_SEEN = frozenset({"admin.view_logentry", "orders.view_strategyevent"})
AUDIT_EXPORTED = frozenset({"risk.export_audit"})
AUDIT = AUDIT_SEEN | AUDIT_EXPORTED

# The background jobs (risk migration 0018): the dashboard's jobs card links to the failed and
# stalled ones; operators and risk officers read them (nobody changes them here).
JOBS_SEEN = frozenset({"procrastinate.view_procrastinatejob"})
# Broker-held protections (GTTs, risk migration roles_protections): everyone sees them.
PROTECTIONS_SEEN = frozenset({"positions.view_brokerprotection"})
# The admin's change log (risk migration admin_changes): everyone reads it; only the services
# that make a controlled change write it.
ADMIN_CHANGES_SEEN = frozenset({"risk.view_adminchange"})

# Baskets and sliced parents (risk migration roles_baskets): everyone reads them.
BASKETS_SEEN = frozenset({"orders.view_basket", "orders.view_orderparent"})

VIEWER = (
    frozenset(f"{app}.view_{model}" for app, model in (m.split(".") for m in VIEWED))
    | BROKER_ACCOUNTS_SEEN
    | INSTRUMENT_REFRESHES_SEEN
    | WEBHOOKS_SEEN
    | AUDIT_SEEN
    | PROTECTIONS_SEEN
    | ADMIN_CHANGES_SEEN
    | BASKETS_SEEN
)

# Operators watch, and settle the reconciliation issues that are not CRITICAL.
OPERATOR = VIEWER | JOBS_SEEN | {"positions.change_reconciliationissue"}

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
    | AUDIT_EXPORTED
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

# The permissions each later role migration brought, by its name: a role migration syncs the
# roles as they were when it ran (roles_at), since the permissions of a later one do not exist
# yet. A new role migration adds its line here and calls roles_at with its own name; the
# earlier migrations never change.
ADDED_BY = {
    "0011_roles_see_login_attempts": LOGIN_ATTEMPTS,
    "0012_roles_broker_accounts": BROKER_ACCOUNTS,
    "0015_roles_see_instrument_refreshes": INSTRUMENT_REFRESHES_SEEN,
    "0017_roles_webhooks": WEBHOOKS,
    "0018_roles_jobs_and_health": JOBS_SEEN,
    "0019_roles_audit": AUDIT,
    "0020_roles_protections": PROTECTIONS_SEEN,
    "0021_admin_changes": ADMIN_CHANGES_SEEN,
    "0023_roles_baskets": BASKETS_SEEN,
}


def roles_at(migration: str) -> dict[str, frozenset[str]]:
    """The roles as risk's migration ``migration`` grants them: ROLES less what later ones add."""
    later = [held for name, held in ADDED_BY.items() if name > migration]
    return {name: frozenset(held.difference(*later)) for name, held in ROLES.items()}
