"""Several row writes sent to PostgreSQL as one statement, in the order they were added.

A fill changes five tables; as separate ORM saves that is six round trips, each waiting on
the database. ``WriteBatch`` collects the INSERTs and UPDATEs of model instances — each
service adds the rows it owns — and sends them as one statement of data-modifying CTEs.

PostgreSQL runs the CTEs of one statement in no promised order, and they all see the same
snapshot. Here each write waits for the one before it (its WHERE counts the rows the previous
one returned, which runs that one to completion first), so the writes happen in the order
added: a position can be closed and its successor opened in one statement under the
"one open position" partial unique index.

Each row travels as one JSON parameter that ``jsonb_populate_record`` turns into the table's
row type: the column types convert the values exactly as on any INSERT (decimals and
timestamps are sent as text, so nothing is rounded on the way), and the statement has a
few parameters instead of one per column, so psycopg parses it once and keeps it. Values are
what ``Model.save()`` would write: each field's ``pre_save`` (auto_now stamps) and
``get_prep_value`` (skipped where it would return the value unchanged: a str for a CharField,
a Decimal for a DecimalField...); JSON fields are encoded with their own encoder, as the ORM
does.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections, models

from omsproject.rows import Column, insert_columns, insert_json, row_json, saved


@dataclass(frozen=True)
class _Write:
    # "INSERT INTO t (a, b) SELECT a, b FROM jsonb_populate_record(NULL::t, %s::jsonb) r" or
    # "UPDATE t SET (a) = (SELECT ...) WHERE id = %s": execute() adds the gate on the
    # previous write and the RETURNING clause.
    sql: str
    params: list
    instance: models.Model
    inserted: bool


def _quote(name: str) -> str:
    return connections[DEFAULT_DB_ALIAS].ops.quote_name(name)


def _record(table: str, columns: str) -> str:
    return f"SELECT {columns} FROM jsonb_populate_record(NULL::{_quote(table)}, %s::jsonb)"  # noqa: S608


@functools.cache
def _insert_sql(model: type[models.Model]) -> str:
    columns = insert_columns(model)
    table = model._meta.db_table
    return f"INSERT INTO {_quote(table)} ({columns}) {_record(table, columns)}"


@functools.cache
def _update_sql(model: type[models.Model], names: tuple[str, ...]):
    fields = tuple(model._meta.get_field(name) for name in names)
    columns = ", ".join(_quote(f.column) for f in fields)
    table = model._meta.db_table
    sql = f"UPDATE {_quote(table)} SET ({columns}) = ({_record(table, columns)})"  # noqa: S608
    sql += f" WHERE {_quote(model._meta.pk.column)} = %s"
    return sql, tuple(Column.of(f) for f in fields)


class WriteBatch:
    """INSERTs and UPDATEs of model instances, executed by ``execute()`` as one statement."""

    def __init__(self) -> None:
        self._writes: list[_Write] = []

    def __len__(self) -> int:
        return len(self._writes)

    def insert(self, instance: models.Model) -> None:
        """INSERT the instance (every concrete field but its automatic primary key, which
        ``execute()`` sets)."""
        sql = _insert_sql(type(instance))
        self._writes.append(_Write(sql, [insert_json(instance)], instance, inserted=True))

    def update(self, instance: models.Model, fields: list[str] | tuple[str, ...]) -> None:
        """UPDATE these fields of the instance's row, as ``save(update_fields=...)`` would."""
        sql, columns = _update_sql(type(instance), tuple(fields))
        params = [row_json(instance, columns, add=False), instance.pk]
        self._writes.append(_Write(sql, params, instance, inserted=False))

    def execute(self) -> None:
        """Run every write in one statement, in order; set the inserted instances' keys.
        Raises DatabaseError if an UPDATE found no row."""
        if not self._writes:
            return
        ctes, keys = [], []
        for number, write in enumerate(self._writes):
            sql = write.sql
            if number:
                # Waits for the previous write to finish: see the module's docstring.
                gate = f"(SELECT count(*) FROM write_{number - 1}) >= 0"  # noqa: S608
                sql += f" {'WHERE' if write.inserted else 'AND'} {gate}"
            pk = _quote(write.instance._meta.pk.column)
            ctes.append(f"write_{number} AS ({sql} RETURNING {pk})")
            keys.append(f"(SELECT array_agg({pk}) FROM write_{number})")  # noqa: S608
        statement = f"WITH {', '.join(ctes)} SELECT {', '.join(keys)}"
        params = [param for write in self._writes for param in write.params]
        with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
            cursor.execute(statement, params)
            returned = cursor.fetchone()
        for write, keys_returned in zip(self._writes, returned, strict=True):
            if not keys_returned:
                table = write.instance._meta.db_table
                raise DatabaseError(f"{table} {write.instance.pk}: the update found no row")
            if write.inserted:
                saved(write.instance, keys_returned[0])
        self._writes.clear()
