"""Insert many rows at once, skip those a unique constraint already holds, and say which rows
were new: `INSERT … ON CONFLICT DO NOTHING RETURNING <key>`.

`bulk_create(ignore_conflicts=True)` cannot tell which rows it skipped, and a lookup before the
insert races with a concurrent writer; RETURNING answers from the insert itself.
"""

from collections.abc import Mapping, Sequence
from typing import Any

import psycopg
from django.db import connection, models


def insert_new_rows(
    model: type[models.Model],
    columns: Mapping[str, Sequence[Any]],
    *,
    conflict_field: str,
) -> set[Any]:
    """Insert rows given column by column (field name -> one value per row, all the same
    length) into `model`'s table, skipping rows whose `conflict_field` value is stored already,
    and return the `conflict_field` values of the rows inserted. Those values must be distinct
    within one call. Fields left out take their database default. Runs in the caller's
    transaction; a concurrent insert of the same key waits for the other transaction to end."""
    keys = columns[conflict_field]
    if len(set(keys)) != len(keys):
        raise ValueError(f"{conflict_field} values repeat within one insert")
    if not keys:
        return set()
    if connection.vendor == "postgresql":
        return _insert_unnest(model, columns, conflict_field)
    return _insert_row_by_row(model, columns, conflict_field)


def _insert_unnest(
    model: type[models.Model], columns: Mapping[str, Sequence[Any]], conflict_field: str
) -> set[Any]:
    """PostgreSQL: one statement for the whole batch, each column sent as one binary array."""
    meta = model._meta
    fields = [meta.get_field(name) for name in columns]
    quote = connection.ops.quote_name
    names = ", ".join(quote(field.column) for field in fields)
    arrays = ", ".join(f"%b::{field.db_type(connection)}[]" for field in fields)
    table, conflict = quote(meta.db_table), quote(meta.get_field(conflict_field).column)
    # Every identifier comes from model metadata; every value travels as a parameter.
    sql = (
        f"INSERT INTO {table} ({names}) SELECT * FROM unnest({arrays}) "  # noqa: S608
        f"ON CONFLICT ({conflict}) DO NOTHING RETURNING {conflict}"
    )
    connection.ensure_connection()
    # A server-side binding cursor sends binary arrays; Django's client-side binding would
    # render every value into the SQL text, several times slower.
    with psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(sql, [list(values) for values in columns.values()])
        return {key for (key,) in cursor.fetchall()}


def _insert_row_by_row(
    model: type[models.Model], columns: Mapping[str, Sequence[Any]], conflict_field: str
) -> set[Any]:
    """Other databases (SQLite for the demo): the same statement once per row."""
    meta = model._meta
    fields = [meta.get_field(name) for name in columns]
    quote = connection.ops.quote_name
    names = ", ".join(quote(field.column) for field in fields)
    placeholders = ", ".join(["%s"] * len(fields))
    table, conflict = quote(meta.db_table), quote(meta.get_field(conflict_field).column)
    sql = (
        f"INSERT INTO {table} ({names}) VALUES ({placeholders}) "  # noqa: S608
        f"ON CONFLICT ({conflict}) DO NOTHING RETURNING {conflict}"
    )
    inserted: set[Any] = set()
    with connection.cursor() as cursor:
        for row in zip(*columns.values(), strict=True):
            cursor.execute(
                sql,
                [
                    field.get_db_prep_save(value, connection)
                    for field, value in zip(fields, row, strict=True)
                ],
            )
            inserted.update(key for (key,) in cursor.fetchall())
    return inserted
