"""Deferring the broker-held protection's job by task name (the task lives in positions.tasks;
this module sits below the services that write the intent, inside their transaction)."""

from __future__ import annotations

from django.db import transaction
from procrastinate.contrib.django import app
from procrastinate.exceptions import AlreadyEnqueued

PROTECTION_SYNC = "positions.protection_sync"


def protection_lock(strategy_id: int) -> str:
    return f"protection-{strategy_id}"


def defer_protection_sync(strategy_id: int) -> None:
    """Bring a strategy's broker-held protections in line with its positions, after the commit
    of the transaction that changed them. One job waits per strategy at most (its queueing
    lock): a job not started yet will see this change too. In a savepoint, so a refusal
    leaves the caller's transaction usable."""
    task = app.configure_task(
        PROTECTION_SYNC,
        allow_unknown=False,
        lock=protection_lock(strategy_id),
        queueing_lock=protection_lock(strategy_id),
    )
    try:
        with transaction.atomic():
            task.defer(strategy_id=strategy_id)
    except AlreadyEnqueued:
        pass
