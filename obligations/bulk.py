"""Set-based writes whose cost in queries does not grow with the number of rows.

Django splits bulk_create and bulk_update into batches of 999 parameters on SQLite, so a sweep
over 2,000 cycles would cost more queries than one over 20. Here the rows travel as one JSON
parameter that the database unpacks itself (json_each on SQLite, jsonb_to_recordset on
PostgreSQL): one statement, whatever the count.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from django.db import connection
from django.db.models import Lookup, Model


def _converter(field: Any) -> Callable[[Any], Any]:
    """How a field's Python value goes into the JSON: dates and datetimes in the database's
    own format (SQLite keeps naive UTC text), anything else as it is."""
    if field.get_internal_type() not in ("DateField", "DateTimeField"):
        return lambda value: value

    @functools.lru_cache(maxsize=4096)  # rows share few dates: convert each once
    def convert(value: Any) -> Any:
        prepared = field.get_db_prep_value(value, connection, prepared=False)
        return prepared.isoformat() if isinstance(prepared, dt.date | dt.datetime) else prepared

    return convert


def _payload(
    model: type[Model], names: Sequence[str], rows: Iterable[Mapping[str, Any]], with_pk: bool
) -> str:
    converters = [(name, _converter(model._meta.get_field(name))) for name in names]
    return json.dumps(
        [
            {
                **({"pk": row["pk"]} if with_pk else {}),
                **{name: convert(row[name]) for name, convert in converters},
            }
            for row in rows
        ]
    )


def _columns(model: type[Model], names: Sequence[str]) -> list[tuple[str, str, str]]:
    """(json key, quoted column, SQL type) for each field name."""
    quote = connection.ops.quote_name
    result = []
    for name in names:
        field = model._meta.get_field(name)
        column = str(getattr(field, "column", name))
        result.append((name, quote(column), field.db_type(connection) or "text"))  # type: ignore[union-attr]
    return result


def _source(columns: list[tuple[str, str, str]]) -> str:
    """A row source over the JSON parameter, with each key as a column of the same name."""
    if connection.vendor == "postgresql":
        spec = ", ".join(f'"{key}" {sqltype}' for key, _, sqltype in columns)
        return f"jsonb_to_recordset(%s::jsonb) AS r({spec})"
    keys = ", ".join(f"json_extract(value, '$.{key}') AS \"{key}\"" for key, _, _ in columns)
    return f"(SELECT {keys} FROM json_each(%s)) AS r"


def insert_ignoring_conflicts(
    model: type[Model], names: Sequence[str], rows: Sequence[Mapping[str, Any]]
) -> None:
    """INSERT the rows; any that would break a unique constraint is skipped, not an error."""
    if not rows:
        return
    columns = _columns(model, names)
    table = connection.ops.quote_name(model._meta.db_table)
    targets = ", ".join(column for _, column, _ in columns)
    values = ", ".join(f'r."{key}"' for key, _, _ in columns)
    # "WHERE true" keeps SQLite from reading ON CONFLICT as part of the SELECT's join.
    sql = (
        f"INSERT INTO {table} ({targets}) SELECT {values} FROM {_source(columns)} "
        f"WHERE true ON CONFLICT DO NOTHING"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [_payload(model, names, rows, with_pk=False)])


def update_by_pk(
    model: type[Model], names: Sequence[str], rows: Sequence[Mapping[str, Any]]
) -> None:
    """UPDATE each row (a mapping with "pk" and the fields in `names`) to its own values."""
    if not rows:
        return
    pk = model._meta.pk
    assert pk is not None
    columns = [("pk", connection.ops.quote_name(pk.column), pk.db_type(connection) or "bigint")]
    columns += _columns(model, names)
    table = connection.ops.quote_name(model._meta.db_table)
    assignments = ", ".join(f'{column} = r."{key}"' for key, column, _ in columns[1:])
    sql = (
        f"UPDATE {table} SET {assignments} FROM {_source(columns)} "
        f'WHERE {table}.{columns[0][1]} = r."pk"'
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [_payload(model, names, rows, with_pk=True)])


class AnyOf(Lookup):  # type: ignore[type-arg]
    """`field__any=ids`: the value is one of many ids, sent as one parameter. PostgreSQL gets
    `= ANY(array)`, which it answers from the index whatever it guesses of the count (an id
    list unpacked by a set-returning function in a subquery was re-expanded for every row of
    a nested loop: 11 s of SQL in a sweep of 10,000 cycles). SQLite unpacks a JSON array,
    because a list of parameters would hit its limit on their number."""

    lookup_name = "any"
    prepare_rhs = False

    def get_prep_lookup(self) -> list[int]:
        return [int(value) for value in self.rhs]

    def as_sql(self, compiler: Any, connection: Any) -> tuple[str, list[Any]]:
        lhs, params = self.process_lhs(compiler, connection)
        if connection.vendor == "postgresql":
            return f"{lhs} = ANY(%s::bigint[])", [*params, self.rhs]
        return f"{lhs} IN (SELECT value FROM json_each(%s))", [*params, json.dumps(self.rhs)]
