"""Periodic risk jobs on procrastinate."""

import logging

from procrastinate.contrib.django import app

from orders.services.broker_accounts import broker_sessions_alert
from positions.models import ReconciliationIssue
from risk import jobs
from risk.instruments import dump_broker, instruments_refresh
from risk.kill_switch import kill_switch_on_critical_issue
from risk.monitors import risk_monitor as run_risk_monitor

logger = logging.getLogger("oms.jobs")


@app.periodic(cron="* * * * *")
@app.task(name="risk.monitor", queue="risk", queueing_lock="risk_monitor")
def risk_monitor(timestamp: int) -> None:
    """Each minute: stop-loss/take-profit exits, PnL snapshot, automatic kill switch rules,
    and the MIS square-off when it is due."""
    run_risk_monitor()


@app.task(name=jobs.CRITICAL_ISSUE, queue="risk")
def critical_issue(issue_id: int) -> None:
    """A CRITICAL issue recorded outside reconciliation (a broker report that contradicts its
    order): the same rule as reconciliation's, halting if the limits say so."""
    issue = ReconciliationIssue.objects.select_related("strategy").get(pk=issue_id)
    if not issue.resolved:
        kill_switch_on_critical_issue(issue)


@app.periodic(cron="* * * * *")
@app.task(name="risk.broker_sessions", queue="risk", queueing_lock="broker_sessions")
def broker_sessions(timestamp: int) -> None:
    """Each minute from OMS_SESSION_ALERT_FROM on a trading day: e-mail staff (once a day per
    account) about a Kite account LIVE strategies need that has no session yet."""
    broker_sessions_alert()


# 08:30 IST on weekdays (the cron runs in UTC): Kite publishes the day's dump before 08:30.
@app.periodic(cron="0 3 * * 1-5")
@app.task(name="risk.instruments_refresh", queue="operations", queueing_lock="instruments")
def instruments_refresh_morning(timestamp: int) -> None:
    """Before the open: the instrument master refreshed from Kite's instruments dump (what
    changed is kept in InstrumentRefresh, visible in the admin). A desk with no Kite account
    logged in yet (or paper only) keeps the master it has."""
    broker = dump_broker()
    if broker is None:
        logger.warning("instrument refresh skipped: no Kite account has a session today")
        return
    instruments_refresh(broker)
