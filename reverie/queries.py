"""SQL files read, filled and run: the one way reverie's statements get their identifiers, literals and values."""

from __future__ import annotations

import re
from datetime import date, datetime

import duckdb

from reverie.paths import SQL_DIR

PLACEHOLDER = re.compile(r"\{\{\s*(\w+)\s*\}\}")


class SqlTemplateError(ValueError):
    """A SQL file whose placeholders do not match what it is filled with; the message names the file."""


def sql_file(relative: str) -> str:
    """The text of a SQL file under sql/."""
    return (SQL_DIR / relative).read_text()


def quoted(identifier: str) -> str:
    """An identifier as DuckDB reads it, whatever it holds."""
    return '"' + identifier.replace('"', '""') + '"'


def literal(value: str) -> str:
    """A string as a SQL literal, for where DuckDB takes no parameter: a view's body, COPY, ATTACH, reader
    options, and queries stored to be run again (evidence)."""
    return "'" + value.replace("'", "''") + "'"


def sql_value(value) -> str:
    """A Python value as a SQL literal: text, a number, a date or time, a list of them, or NULL."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, datetime):
        return f"timestamp {literal(value.isoformat(sep=' '))}"
    if isinstance(value, date):
        return f"date {literal(value.isoformat())}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(map(sql_value, value)) + "]"
    return literal(str(value))


def with_values(relative: str, values: dict) -> str:
    """A SQL file with its `$name` parameters written in as literals. DuckDB's parameter binding imports pandas (a
    second on two cores), so the ask path, which answers in milliseconds, writes its few values in instead."""
    return re.sub(r"\$(\w+)", lambda m: sql_value(values[m.group(1)]) if m.group(1) in values else m.group(0),
                  sql_file(relative))


def render(relative: str, identifiers: dict[str, str] | None = None, literals: dict[str, str] | None = None,
           expressions: dict[str, str] | None = None) -> str:
    """A SQL file with its `{{ name }}` placeholders filled: identifiers and literals quoted, expressions (already
    parsed and checked by their owner) as they are. Query values travel as DuckDB named parameters ($name)."""
    fills = ({name: quoted(value) for name, value in (identifiers or {}).items()}
             | {name: literal(value) for name, value in (literals or {}).items()} | (expressions or {}))
    lines = sql_file(relative).splitlines(keepends=True)
    while lines and lines[0].startswith("--"):  # the file's header is for its readers, not for the statement
        lines.pop(0)
    text = "".join(lines)
    wanted = set(PLACEHOLDER.findall(text))
    if wanted != set(fills):
        raise SqlTemplateError(f"sql/{relative}: placeholders {sorted(wanted)} filled with {sorted(fills)}")
    return PLACEHOLDER.sub(lambda m: fills[m.group(1)], text)


def execute_script(con: duckdb.DuckDBPyConnection, sql: str, params: dict) -> None:
    """Run each statement of a SQL text, each with the parameters it names (DuckDB refuses any it does not)."""
    for statement in con.extract_statements(sql):
        con.execute(statement, {name: params[name] for name in statement.named_parameters})


def rows_as_dicts(relation: duckdb.DuckDBPyConnection) -> list[dict]:
    """Fetch a query result as a list of dicts."""
    names = [d[0] for d in relation.description]
    return [dict(zip(names, row)) for row in relation.fetchall()]
