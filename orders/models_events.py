"""The strategies' event log (``strategy_events``): what the feed and the webhooks deliver.

Rows are written by PostgreSQL triggers (orders migration ``events_log``), never by Python,
so no path can forget one, not even a statement typed in psql:

- AFTER INSERT on ``order_events``: TRANSITION → ``order.status``, MODIFY → ``order.modified``,
  REFUSED → ``order.refused`` (FILL and NOTE rows are not events: a fill is its trade);
- AFTER INSERT on ``trades`` (kind FILL) → ``order.fill``, with the fill's charges;
- AFTER INSERT on ``kill_switch_events`` → ``kill_switch``, one row per strategy for a global
  change, one for the strategy otherwise;
- AFTER UPDATE OF status, paused_by on ``strategies`` → ``strategy.status``.

Every insert notifies channel ``oms_events`` with the strategy's id (delivered at commit).

``id`` follows the inserts, not the commits, so it is no cursor: a transaction that started
first may commit last. The cursor is ``seq``, given after commit by the sequencer SQL function
``oms_events_sequence()``: under an exclusive advisory lock it numbers, in ``id`` order, the
rows whose transaction (``txid``) is older than every transaction still running, and returns
the highest ``seq``. Rows of a transaction still running wait for a later call. So a reader
that has seen ``seq`` N never later finds a row numbered N or less. The feed calls it before
it reads; so does the webhook dispatcher. Append-only: ``seq`` is set once, and a trigger
refuses any other UPDATE, and DELETE.

This module holds only the model; orders.models imports it, so that Django finds it there.
"""

from __future__ import annotations

import pgtrigger
from django.db import models
from django.db.models import Func, Q
from django.db.models.functions import Now

from omsproject.pg import TRUNCATE_PROTECTION, choices_check
from orders.enums import StrategyEventKind

# The advisory lock key the sequencer takes exclusively (transaction-level): "EVNT".
EVENTS_SEQUENCE_LOCK = 0x45564E54
NOTIFY_CHANNEL = "oms_events"


class TransactionIdField(models.Field):
    """A PostgreSQL ``xid8``: the 64-bit id of the transaction that wrote the row."""

    description = "PostgreSQL transaction id (xid8)"

    def db_type(self, connection):
        return "xid8"


class CurrentTransactionId(Func):
    function = "pg_current_xact_id"
    template = "%(function)s()"
    output_field = TransactionIdField()


class StrategyEvent(models.Model):
    """One thing a strategy hears about: an order's status, fill, modification or refusal, a
    kill switch change that applies to it, or a change of its own status."""

    # Indexed by strategy_event_feed_idx (strategy, seq).
    strategy = models.ForeignKey(
        "orders.Strategy", on_delete=models.PROTECT, related_name="events", db_index=False
    )
    seq = models.BigIntegerField(
        null=True, blank=True, unique=True, help_text="The feed's cursor, given after commit."
    )
    kind = models.CharField(max_length=20, choices=StrategyEventKind.choices)
    # Orders are never deleted; no index for a PROTECT check that never runs.
    order = models.ForeignKey(
        "orders.Order",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="strategy_events",
        db_index=False,
    )
    client_order_id = models.CharField(max_length=64, null=True, blank=True)
    payload = models.JSONField(default=dict)
    txid = TransactionIdField(db_default=CurrentTransactionId(), editable=False)
    created_at = models.DateTimeField(db_default=Now())

    class Meta:
        db_table = "strategy_events"
        ordering = ["seq", "id"]
        constraints = [
            choices_check("kind", StrategyEventKind, "strategy_event_kind_valid"),
        ]
        indexes = [
            models.Index(fields=["strategy", "seq"], name="strategy_event_feed_idx"),
            # What the sequencer scans: the rows still without a cursor, in insert order.
            models.Index(
                fields=["id"], condition=Q(seq__isnull=True), name="strategy_event_unsequenced_idx"
            ),
            # The audit list, newest first: all, or a day range.
            models.Index(fields=["created_at", "id"], name="strategy_event_created_idx"),
        ]
        triggers = [
            pgtrigger.Trigger(
                name="seq_set_once",
                when=pgtrigger.Before,
                operation=pgtrigger.Update | pgtrigger.Delete,
                func="""
                IF TG_OP = 'UPDATE' AND OLD.seq IS NULL AND NEW.seq IS NOT NULL
                   AND (NEW.id, NEW.strategy_id, NEW.kind, NEW.order_id, NEW.client_order_id,
                        NEW.payload, NEW.txid, NEW.created_at)
                       IS NOT DISTINCT FROM
                       (OLD.id, OLD.strategy_id, OLD.kind, OLD.order_id, OLD.client_order_id,
                        OLD.payload, OLD.txid, OLD.created_at) THEN
                    RETURN NEW;
                END IF;
                RAISE EXCEPTION 'strategy_events is append-only: only seq is set, once (%)', TG_OP;
                """,
            ),
            pgtrigger.Trigger(
                name="notify",
                when=pgtrigger.After,
                operation=pgtrigger.Insert,
                func=f"PERFORM pg_notify('{NOTIFY_CHANNEL}', NEW.strategy_id::text); RETURN NULL;",
            ),
            pgtrigger.Trigger(
                name=TRUNCATE_PROTECTION,
                level=pgtrigger.Statement,
                when=pgtrigger.Before,
                operation=pgtrigger.Truncate,
                func="RAISE EXCEPTION 'pgtrigger: Cannot truncate % table', TG_TABLE_NAME;",
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.seq or '-'} {self.kind} (strategy {self.strategy_id})"
