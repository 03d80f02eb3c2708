"""The analyst's SQL sandbox: one read-only SELECT at a time, no files, no network, bounded rows and time.

Two locks, so that one failing is not enough: the statement is parsed (sqlglot) and must be a single
query that only reads tables — no ATTACH, INSTALL, LOAD, COPY, PRAGMA, SET, DDL or DML, no function
that reads files or URLs — and it runs on a connection of its own, opened read-only with external
access disabled and its configuration locked.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path

import duckdb
import sqlglot
from sqlglot import exp

MAX_ROWS = 200
TIME_LIMIT_SECONDS = 5.0
# table functions and scalar functions that reach outside the warehouse or its settings
FORBIDDEN_FUNCTIONS = {"read_csv", "read_csv_auto", "read_parquet", "parquet_scan", "read_json", "read_json_auto",
                       "read_ndjson", "read_text", "read_blob", "glob", "query", "query_table", "sniff_csv",
                       "parquet_metadata", "parquet_schema", "iceberg_scan", "delta_scan", "sqlite_scan",
                       "postgres_scan", "mysql_scan", "current_setting", "getenv", "duckdb_secrets",
                       "duckdb_settings", "duckdb_extensions", "which_secret"}


logging.getLogger("sqlglot").setLevel(logging.ERROR)  # its "falling back to Command" notes: refused below anyway


class SandboxError(ValueError):
    """A statement the sandbox refuses or that failed; the message goes back to the model."""


@dataclass
class QueryResult:
    columns: list[str]
    rows: list[tuple]
    truncated: bool

    def values(self) -> list[float]:
        """Every number the query returned (for checking the numbers an insight quotes)."""
        return [float(v) for row in self.rows for v in row
                if isinstance(v, int | float) and not isinstance(v, bool)]


def check_statement(sql: str) -> exp.Query:
    """The statement, parsed, if it is one read-only query; else why not."""
    try:
        statements = [s for s in sqlglot.parse(sql, read="duckdb") if s is not None]
    except sqlglot.errors.SqlglotError as exc:
        raise SandboxError(f"not valid SQL: {str(exc).splitlines()[0]}") from exc
    if len(statements) != 1:
        raise SandboxError(f"exactly one statement, please (got {len(statements)})")
    statement = statements[0]
    if not isinstance(statement, exp.Query):
        raise SandboxError(f"only SELECT queries may run here, not {statement.key.upper()}")
    for node in statement.walk():
        if isinstance(node, exp.Insert | exp.Update | exp.Delete | exp.Drop | exp.Create | exp.Alter | exp.Command):
            raise SandboxError(f"only SELECT queries may run here, not {node.key.upper()}")
        name = node.name.lower() if isinstance(node, exp.Func | exp.Anonymous) and node.name else ""
        if isinstance(node, exp.Func) and not name:
            name = node.sql_name().lower()
        if name in FORBIDDEN_FUNCTIONS:
            raise SandboxError(f"{name}() is not available: the analyst reads the warehouse's tables only")
        if isinstance(node, exp.Table) and isinstance(node.this, exp.Literal):
            raise SandboxError("reading files is not available: the analyst reads the warehouse's tables only")
    return statement


def run_query(warehouse: str | Path, sql: str, max_rows: int = MAX_ROWS,
              time_limit: float = TIME_LIMIT_SECONDS) -> QueryResult:
    """Run one checked query on a read-only, offline connection; at most `max_rows` rows, `time_limit` seconds."""
    check_statement(sql)
    con = duckdb.connect(str(warehouse), read_only=True,
                         config={"enable_external_access": False, "autoload_known_extensions": False,
                                 "autoinstall_known_extensions": False})
    timer = threading.Timer(time_limit, con.interrupt)
    try:
        con.execute("set lock_configuration = true")
        timer.start()
        relation = con.execute(sql)
        rows = relation.fetchmany(max_rows + 1)
        columns = [d[0] for d in relation.description or []]
    except duckdb.InterruptException as exc:
        raise SandboxError(f"the query ran longer than {time_limit:g} s and was stopped") from exc
    except duckdb.Error as exc:
        raise SandboxError(str(exc).splitlines()[0]) from exc
    finally:
        timer.cancel()
        con.close()
    return QueryResult(columns, rows[:max_rows], len(rows) > max_rows)
