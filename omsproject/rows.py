"""Model rows in statements written by hand (the few hot paths that need one statement).

Column lists and values come from the models' own fields, so a new field cannot be forgotten:
``select_columns`` / ``from_row`` read a model's row out of a wider SELECT (a join, a LEFT JOIN
that may find nothing); ``row_json`` gives a row's values as one JSON parameter for
``jsonb_populate_record`` (``insert_columns`` / ``insert_json`` for a new instance; WriteBatch
builds its INSERTs and UPDATEs on it).
"""

from __future__ import annotations

import datetime
import decimal
import functools
import json
import uuid
from dataclasses import dataclass

from django.db import connection, models


def select_columns(alias: str, model) -> list[str]:
    """The model's columns, qualified by ``alias``, in field order (for ``from_row``)."""
    return [f"{alias}.{field.column}" for field in model._meta.concrete_fields]


def column_count(model) -> int:
    return len(model._meta.concrete_fields)


def from_row(model, values):
    """An instance from the model's columns of a row (None when a LEFT JOIN found none), with
    the fields' own conversions applied as the ORM would (JSON arrives as text)."""
    fields = model._meta.concrete_fields
    if values[fields.index(model._meta.pk)] is None:
        return None
    values = [
        field.from_db_value(value, None, connection)
        if value is not None and hasattr(field, "from_db_value")
        else value
        for field, value in zip(fields, values, strict=True)
    ]
    return model.from_db(connection.alias, [field.attname for field in fields], values)


@functools.cache
def _insert_fields(model, skip: str) -> tuple:
    return tuple(
        field
        for field in model._meta.concrete_fields
        if not field.primary_key and field.name != skip
    )


@functools.cache
def insert_columns(model, *, skip: str = "") -> str:
    """The quoted columns of an INSERT of a new ``model`` row: all but the primary key and the
    field ``skip``. Their values: ``insert_json``, read with ``jsonb_populate_record``."""
    return ", ".join(connection.ops.quote_name(f.column) for f in _insert_fields(model, skip))


def _json_default(value):
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()  # microseconds kept (DjangoJSONEncoder would cut them)
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"{type(value).__name__} {value!r}: not a column value")


# Field types whose values of this Python type get_prep_value returns unchanged: sent as they
# are (the rest, and aware datetimes' naive cousins, go through get_prep_value).
_AS_IS = {
    "BigIntegerField": int,
    "BooleanField": bool,
    "CharField": str,
    "DecimalField": decimal.Decimal,
    "ForeignKey": int,
    "IntegerField": int,
    "PositiveIntegerField": int,
    "PositiveSmallIntegerField": int,
    "SmallIntegerField": int,
    "TextField": str,
}


@dataclass(frozen=True)
class Column:
    """How one field's value is read off an instance and put into the row's JSON."""

    field: models.Field
    stamped: bool  # auto_now / auto_now_add: pre_save sets the value
    as_is: type | None
    is_json: bool

    @classmethod
    def of(cls, field: models.Field) -> Column:
        return cls(
            field,
            stamped=getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False),
            as_is=_AS_IS.get(field.get_internal_type()),
            is_json=isinstance(field, models.JSONField),
        )

    def value(self, instance: models.Model, add: bool):
        field = self.field
        value = field.pre_save(instance, add) if self.stamped else getattr(instance, field.attname)
        if value is None or type(value) is self.as_is:
            return value
        if type(value) is datetime.datetime and value.tzinfo is not None:
            return value
        value = field.get_prep_value(value)
        if self.is_json and value is not None:
            value = json.loads(json.dumps(value, cls=field.encoder))
        return value


def row_json(instance: models.Model, columns: tuple[Column, ...], *, add: bool) -> str:
    """One row as a JSON object for ``jsonb_populate_record``: PostgreSQL reads each value with
    its column's type (decimals and timestamps travel as text, nothing is rounded on the way),
    and a statement of many columns takes one parameter. The values are what ``Model.save()``
    would write: each field's ``pre_save`` (auto_now stamps) and ``get_prep_value`` (skipped
    where it returns the value unchanged); JSON fields go through their own encoder."""
    row = {column.field.column: column.value(instance, add) for column in columns}
    return json.dumps(row, default=_json_default)


def insert_json(row, *, skip: str = "") -> str:
    """The columns of the new instance ``row`` as one JSON object, as save() would write them
    (see ``row_json``), for ``SELECT <insert_columns> FROM jsonb_populate_record(NULL::<table>,
    %s::jsonb)``."""
    return row_json(row, _insert_column_values(type(row), skip), add=True)


@functools.cache
def _insert_column_values(model, skip: str) -> tuple[Column, ...]:
    return tuple(Column.of(field) for field in _insert_fields(model, skip))


def saved(row, pk) -> None:
    """Mark an instance written by hand as saved, with its new primary key."""
    row.pk = pk
    row._state.adding = False
    row._state.db = connection.alias
