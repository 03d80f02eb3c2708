"""Migrations: reverie's schema, applied once per warehouse in order and recorded; the macros recreated each time."""

from __future__ import annotations

from datetime import datetime
from functools import cache
from pathlib import Path

import duckdb

from reverie.commits import is_write_conflict, transaction
from reverie.lake import in_lake
from reverie.paths import SQL_DIR

MIGRATIONS_DIR = SQL_DIR / "migrations"
MACROS_DIR = SQL_DIR / "macros"


def _migrations() -> list[Path]:
    return sorted(MIGRATIONS_DIR.glob("[0-9][0-9][0-9]_*.sql"))


@cache  # the migrations ship with reverie: parsed once per process, when a name must be checked
def own_tables() -> frozenset[str]:
    """The tables reverie's migrations create: names a source or model may not take."""
    import sqlglot  # here, not at the top: every CLI command imports this module, few need sqlglot
    from sqlglot import exp

    names = {"schema_migrations"}
    for path in _migrations():
        for statement in sqlglot.parse(path.read_text(), read="duckdb"):
            if isinstance(statement, exp.Create) and statement.kind == "TABLE":
                names.add(statement.this.name if isinstance(statement.this, exp.Table) else statement.this.this.name)
    return frozenset(names)


def without_keys(sql: str) -> str:
    """DDL without primary keys and unique constraints, which DuckLake does not have (reverie's writes delete
    before they insert, so they do not rely on them)."""
    import sqlglot
    from sqlglot import exp

    statements = []
    for statement in sqlglot.parse(sql, read="duckdb"):
        for constraint in list(statement.find_all(exp.PrimaryKey, exp.PrimaryKeyColumnConstraint,
                                                  exp.UniqueColumnConstraint)):
            (constraint.parent if isinstance(constraint.parent, exp.ColumnConstraint) else constraint).pop()
        statements.append(statement.sql(dialect="duckdb"))
    return ";\n".join(statements)


def migrate(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Apply the migrations this warehouse has not had, each in its own transaction, then (re)create the macros.

    Warehouses made before migrations were recorded have the tables but no record: the first migrations are
    written to be harmless there (`if not exists`), so they are simply recorded."""
    ddl = without_keys if in_lake(con) else (lambda sql: sql)
    con.execute(ddl("create table if not exists schema_migrations (version varchar primary key, applied_at timestamp not null)"))
    done = {row[0] for row in con.execute("select version from schema_migrations").fetchall()}
    applied = []
    for path in _migrations():
        if path.stem in done:
            continue
        with transaction(con):
            con.execute(ddl(path.read_text()))
            con.execute("insert into schema_migrations values ($version, $now)", {"version": path.stem, "now": datetime.now()})
        applied.append(path.stem)
    for path in sorted(MACROS_DIR.glob("*.sql")):  # macros are code, not data: always the current version
        try:
            con.execute(path.read_text())
        except duckdb.Error as exc:
            if not is_write_conflict(exc):
                raise
            # a lake's: another process (a worker starting its first unit) replaced it at the same moment, from
            # the same file
    return applied
