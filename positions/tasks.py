"""Periodic operations jobs: reconciliation during market hours, statistics after the close."""

import logging

from django.conf import settings
from django.utils import timezone
from procrastinate.contrib.django import app

from positions.contract_notes import contract_notes_check
from positions.jobs import PROTECTION_SYNC
from positions.protection import protections_poll, protections_sync
from positions.reconciliation import reconcile_positions
from positions.statistics import daily_stats_compute, strategy_counters_check
from risk.calendar import is_trading_day, market_is_open

logger = logging.getLogger("oms.jobs")


@app.periodic(cron="* * * * *")
@app.task(name="positions.reconcile", queue="operations", queueing_lock="reconcile")
def reconcile(timestamp: int) -> None:
    """Every OMS_RECONCILE_INTERVAL_MINUTES while the market is open."""
    now = timezone.localtime()
    if not market_is_open(now) or now.minute % settings.OMS_RECONCILE_INTERVAL_MINUTES:
        return
    logger.info("reconciliation: %s", reconcile_positions().summary())


# 16:00 IST on weekdays (the cron runs in UTC).
@app.periodic(cron="30 10 * * 1-5")
@app.task(name="positions.daily_stats", queue="operations", queueing_lock="daily_stats")
def daily_stats(timestamp: int) -> None:
    """After the close: today's statistics, then the strategy counters checked against them."""
    today = timezone.localdate()
    daily_stats_compute(date_from=today, date_to=today)
    for mismatch in strategy_counters_check():
        logger.error(
            "strategy %s: %s is %s, the book says %s",
            mismatch.strategy,
            mismatch.counter,
            mismatch.stored,
            mismatch.recomputed,
        )


# 16:00 IST on weekdays (the cron runs in UTC), once the day's fills are in.
@app.periodic(cron="30 10 * * 1-5")
@app.task(name="positions.contract_notes", queue="operations", queueing_lock="contract_notes")
def contract_notes(timestamp: int) -> None:
    """After the close on trading days: our charges of the day's LIVE orders against Kite's
    contract note (differences become CHARGES_MISMATCH issues)."""
    today = timezone.localdate()
    if is_trading_day(today):
        contract_notes_check(day=today)


@app.task(name=PROTECTION_SYNC, queue="orders", retry=5)
def protection_sync(strategy_id: int) -> None:
    """A strategy's positions changed (a fill, new levels): place, amend or cancel their GTTs."""
    protections_sync(strategy_id=strategy_id)


@app.periodic(cron="* * * * *")
@app.task(name="positions.protections", queue="orders", queueing_lock="protections")
def protections(timestamp: int) -> None:
    """Every minute: GTTs that triggered at the broker are adopted and booked (also after the
    workers were down), then every protection brought in line (a run that died resumes)."""
    protections_poll()
    protections_sync()
