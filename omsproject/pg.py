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


def append_only_triggers() -> list[pgtrigger.Protect]:
    """Refuse UPDATE and DELETE: history rows are written once and kept."""
    return [pgtrigger.Protect(name="append_only", operation=pgtrigger.Update | pgtrigger.Delete)]


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
