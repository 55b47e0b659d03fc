"""Set-based writes whose cost in queries does not grow with the number of rows.

Django splits bulk_create and bulk_update into batches of 999 parameters on SQLite, so a sweep
over 2,000 cycles would cost more queries than one over 20. Here the rows travel as one JSON
parameter, an array of arrays, that the database unpacks itself (json_each on SQLite,
jsonb_array_elements on PostgreSQL): one statement, whatever the count. Values that are the same
on every row travel once, as parameters of their own: at 80,000 rows, repeating them doubled
the JSON and PostgreSQL's time to read it.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from collections.abc import Mapping, Sequence
from typing import Any

from django.db import connection
from django.db.models import Lookup, Model


def _payload(rows: Sequence[Sequence[Any]]) -> str:
    """The rows as a JSON array of arrays, dates and datetimes in the database's own format
    (SQLite keeps naive UTC text)."""

    @functools.lru_cache(maxsize=4096)  # rows share few dates: convert each once
    def convert(value: Any) -> str:
        if isinstance(value, dt.datetime):
            prepared = connection.ops.adapt_datetimefield_value(value)
        elif isinstance(value, dt.date):
            prepared = connection.ops.adapt_datefield_value(value)
        else:
            raise TypeError(f"{value!r} cannot travel in a bulk write")
        # PostgreSQL's adapters return the value itself, SQLite's its text.
        return prepared.isoformat() if isinstance(prepared, dt.date) else str(prepared)

    return json.dumps(list(rows), default=convert)


def _columns(model: type[Model], names: Sequence[str]) -> list[tuple[str, str, str]]:
    """(field name, quoted column, SQL type) for each field name."""
    quote = connection.ops.quote_name
    result = []
    for name in names:
        field = model._meta.get_field(name)
        column = str(getattr(field, "column", name))
        result.append((name, quote(column), field.db_type(connection) or "text"))  # type: ignore[union-attr]
    return result


def _source(columns: list[tuple[str, str, str]]) -> str:
    """A row source over the JSON parameter, with each row's i-th item as a column named after
    the i-th field."""
    if connection.vendor == "postgresql":
        items = ", ".join(
            f'(e->>{i})::{sqltype} AS "{key}"' for i, (key, _, sqltype) in enumerate(columns)
        )
        return f"(SELECT {items} FROM jsonb_array_elements(%s::jsonb) AS e) AS r"
    items = ", ".join(
        f"json_extract(value, '$[{i}]') AS \"{key}\"" for i, (key, _, _) in enumerate(columns)
    )
    return f"(SELECT {items} FROM json_each(%s)) AS r"


def insert_ignoring_conflicts(
    model: type[Model],
    names: Sequence[str],
    rows: Sequence[Sequence[Any]],
    same: Mapping[str, Any] | None = None,
) -> None:
    """INSERT the rows (each its values in the order of `names`), with `same` on every row;
    any that would break a unique constraint is skipped, not an error."""
    if not rows:
        return
    same = same or {}
    columns = _columns(model, names)
    constants = _columns(model, list(same))
    table = connection.ops.quote_name(model._meta.db_table)
    targets = ", ".join(column for _, column, _ in columns + constants)
    cast = "::{}" if connection.vendor == "postgresql" else ""
    values = [f'r."{key}"' for key, _, _ in columns]
    values += ["%s" + cast.format(sqltype) for _, _, sqltype in constants]
    params = [
        model._meta.get_field(name).get_db_prep_value(value, connection, prepared=False)  # type: ignore[union-attr]
        for name, value in same.items()
    ]
    # "WHERE true" keeps SQLite from reading ON CONFLICT as part of the SELECT's join.
    sql = (
        f"INSERT INTO {table} ({targets}) SELECT {', '.join(values)} FROM {_source(columns)} "
        f"WHERE true ON CONFLICT DO NOTHING"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, _payload(rows)])


def update_by_pk(model: type[Model], names: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """UPDATE each row (a sequence: the pk, then the values of `names` in order) to its own
    values."""
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
        cursor.execute(sql, [_payload(rows)])


class AnyOf(Lookup):  # type: ignore[type-arg]
    """`field__any=ids`: the value is one of many ids, sent as one parameter, or one of the
    ids a subquery selects. PostgreSQL gets `= ANY(array)`, which it answers from the index
    whatever it guesses of the count (an id list unpacked by a set-returning function in a
    subquery was re-expanded for every row of a nested loop: 11 s of SQL in a sweep of 10,000
    cycles; a subquery under IN was hash-joined to a scan of the whole table). SQLite unpacks
    a JSON array, because a list of parameters would hit its limit on their number."""

    lookup_name = "any"
    prepare_rhs = False

    def get_prep_lookup(self) -> Any:
        if hasattr(self.rhs, "resolve_expression"):
            return self.rhs
        return [int(value) for value in self.rhs]

    def as_sql(self, compiler: Any, connection: Any) -> tuple[str, list[Any]]:
        lhs, params = self.process_lhs(compiler, connection)
        postgresql = connection.vendor == "postgresql"
        if hasattr(self.rhs, "as_sql"):
            subquery, rhs_params = self.process_rhs(compiler, connection)
            sql = f"{lhs} = ANY(ARRAY{subquery})" if postgresql else f"{lhs} IN {subquery}"
            return sql, [*params, *rhs_params]
        if postgresql:
            # The array as text: psycopg builds a list parameter item by item, 25 times slower.
            array = "{" + ",".join(map(str, self.rhs)) + "}"
            return f"{lhs} = ANY(%s::bigint[])", [*params, array]
        return f"{lhs} IN (SELECT value FROM json_each(%s))", [*params, json.dumps(self.rhs)]


class Unsearched(Lookup):  # type: ignore[type-arg]
    """`field__unsearched=value`: equal, checked on each row the other conditions found, never
    searched for through the field's index. For a value the database has no statistics on
    (a claim made a moment ago), PostgreSQL guessed a handful of rows and searched by it, and
    SQLite searched by the status: for each digest, each read every row the run held (seconds
    of a 100,000-cycle sweep on either)."""

    lookup_name = "unsearched"

    def as_sql(self, compiler: Any, connection: Any) -> tuple[str, list[Any]]:
        lhs, params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        # An expression of the column, not the column: neither database matches it to an index.
        return f"({lhs} || '') = {rhs}", [*params, *rhs_params]
