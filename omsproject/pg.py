"""PostgreSQL building blocks shared by every app's models: triggers and check helpers, and
ignoring a trigger at run time."""

from contextlib import contextmanager

import pgtrigger
import psycopg
from django.db import connection, models
from django.db.models.functions import Round


def updated_at_trigger() -> pgtrigger.Trigger:
    """Keep ``updated_at`` true even for rows changed by hand in psql."""
    return pgtrigger.Trigger(
        name="set_updated_at",
        when=pgtrigger.Before,
        operation=pgtrigger.Update,
        func="NEW.updated_at = now(); RETURN NEW;",
    )


TRUNCATE_PROTECTION = "protect_truncate"


def append_only_triggers() -> list[pgtrigger.Trigger]:
    """Refuse UPDATE, DELETE and TRUNCATE: history rows are written once and kept.

    Row triggers do not fire on TRUNCATE, so a statement-level BEFORE TRUNCATE trigger refuses
    it. (pgtrigger's Protect makes row-level triggers, which PostgreSQL does not allow on
    TRUNCATE, hence a plain Trigger.) ``history_truncate_allowed`` lifts it for one block: the
    test suite's flush between transactional tests.
    """
    return [
        pgtrigger.Protect(name="append_only", operation=pgtrigger.Update | pgtrigger.Delete),
        pgtrigger.Trigger(
            name=TRUNCATE_PROTECTION,
            level=pgtrigger.Statement,
            when=pgtrigger.Before,
            operation=pgtrigger.Truncate,
            func="RAISE EXCEPTION 'pgtrigger: Cannot truncate % table', TG_TABLE_NAME;",
        ),
    ]


def choices_check(
    field: str, choices: type[models.TextChoices], name: str
) -> models.CheckConstraint:
    return models.CheckConstraint(condition=models.Q(**{f"{field}__in": choices.values}), name=name)


def on_paisa_check(field: str, name: str, *, nullable: bool = True) -> models.CheckConstraint:
    """Positive and a whole number of paise, even in a column that could hold more decimals."""
    rule = models.Q(**{f"{field}__gt": 0}) & models.Q(**{field: Round(models.F(field), 2)})
    if nullable:
        rule = models.Q(**{f"{field}__isnull": True}) | rule
    return models.CheckConstraint(condition=rule, name=name)


@contextmanager
def triggers_ignored(*uris: str):
    """``pgtrigger.ignore(*uris)`` on this project's connections.

    pgtrigger prefixes each statement with a ``set_config`` in the same query string, which
    PostgreSQL refuses from a prepared statement: the connection binds parameters on the server
    (settings: ``server_side_binding``). Inside this block the connection's cursors bind them
    on the client instead, so the prefix works.
    """
    connection.ensure_connection()
    raw = connection.connection
    previous = raw.cursor_factory
    raw.cursor_factory = psycopg.ClientCursor
    try:
        with pgtrigger.ignore(*uris):
            yield
    finally:
        raw.cursor_factory = previous


def truncate_protected_uris() -> list[str]:
    """The pgtrigger URIs of every BEFORE TRUNCATE protection (one per append-only table)."""
    return [
        f"{model._meta.label}:{trigger.name}"
        for model, trigger in pgtrigger.registered()
        if trigger.name == TRUNCATE_PROTECTION
    ]


@contextmanager
def history_truncate_allowed():
    """TRUNCATE of the append-only tables allowed in this block, on this connection only
    (pgtrigger's ignore: a transaction-local setting sent with each statement)."""
    with triggers_ignored(*truncate_protected_uris()):
        yield
