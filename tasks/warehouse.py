"""The DuckDB warehouse: connections, reverie's own schema, SQL files, cycle bookkeeping."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import duckdb
from prefect import task

from reverie.config import SQL_DIR


def sql_file(relative: str) -> str:
    """The text of a SQL file under sql/."""
    return (SQL_DIR / relative).read_text()


_SCHEMA_IN_PLACE: set[tuple[str, int]] = set()


@contextmanager
def connect(warehouse: str | Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-write connection to the warehouse, with reverie's schema in place."""
    Path(warehouse).parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(warehouse))
    try:
        identity = (str(Path(warehouse).resolve()), os.stat(warehouse).st_ino)
        if identity not in _SCHEMA_IN_PLACE:  # once per process and file: tasks connect often
            for ddl in sorted((SQL_DIR / "schema").glob("*.sql")):
                con.execute(ddl.read_text())
            _SCHEMA_IN_PLACE.add(identity)
        yield con
    finally:
        con.close()


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """All or nothing: a failure inside leaves the warehouse as it was."""
    con.execute("begin transaction")
    try:
        yield con
    except BaseException:
        con.execute("rollback")
        raise
    con.execute("commit")


def table_exists(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    """Whether a table or view of that name exists in the warehouse."""
    return con.execute("select count(*) from duckdb_tables() where table_name = $n and database_name = current_database() "
                       "union all select count(*) from duckdb_views() where view_name = $n and not internal",
                       {"n": name}).fetchall() != [(0,), (0,)]


def data_watermark(con: duckdb.DuckDBPyConnection):
    """How far the ingested data reaches, over all sources."""
    return con.execute("select max(watermark) from source_state").fetchone()[0]


def rows_as_dicts(relation: duckdb.DuckDBPyConnection) -> list[dict]:
    """Fetch a query result as a list of dicts."""
    names = [d[0] for d in relation.description]
    return [dict(zip(names, row)) for row in relation.fetchall()]


@task(name="start-cycle")
def start_cycle(warehouse: str, cycle_id: str, flow_run_id: str | None) -> None:
    """Record that a sleep cycle has begun."""
    with connect(warehouse) as con:
        con.execute("insert into cycles (cycle_id, flow_run_id, started_at) values (?, ?, ?)",
                    [cycle_id, flow_run_id, datetime.now()])


@task(name="finish-cycle")
def finish_cycle(warehouse: str, cycle_id: str, status: str, stages: dict, seconds: float) -> None:
    """Record how a sleep cycle ended."""
    with connect(warehouse) as con:
        con.execute(
            "update cycles set finished_at = ?, status = ?, stages = ?, seconds = ? where cycle_id = ?",
            [datetime.now(), status, json.dumps(stages, default=str), seconds, cycle_id],
        )
