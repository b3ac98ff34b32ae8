"""Periodic risk jobs on procrastinate."""

from procrastinate.contrib.django import app

from risk.monitors import risk_monitor as run_risk_monitor


@app.periodic(cron="* * * * *")
@app.task(name="risk.monitor", queue="risk", queueing_lock="risk_monitor")
def risk_monitor(timestamp: int) -> None:
    """Each minute: stop-loss/take-profit exits, PnL snapshot, automatic kill switch rules,
    and the MIS square-off when it is due."""
    run_risk_monitor()
