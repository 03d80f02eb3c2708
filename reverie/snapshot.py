"""The snapshot questions are answered from: what a finished cycle left in memory, copied to a file of its own.

DuckDB lets one process write a file and no other open it, not even to read; a cycle holds the warehouse for
minutes. `reverie ask` and `reverie mcp` must not wait for it, so each cycle ends by copying what questions need —
memory and its history, the metrics, their complete daily values and their values by day, week and month — to
`snapshot.duckdb` beside the warehouse, built aside and moved into place whole. Any number of readers open it
read-only while the next cycle writes the warehouse. A running cycle leaves a marker saying since when, so a
question that needs the warehouse itself (the cold path) can say who holds it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import duckdb

from reverie.queries import literal, rows_as_dicts, sql_file
from reverie.warehouse import Warehouse

SNAPSHOT_FILE = "snapshot.duckdb"
RUNNING_FILE = "cycle-running.json"
COPIED_TABLES = ("memory", "memory_history", "member_aliases", "detectors", "metrics_not_computed")  # whole; metrics and values through sql/snapshot/


class NoSnapshot(RuntimeError):
    """No cycle has finished yet: nothing prepared, nothing in memory to answer from."""


@dataclass(frozen=True)
class Snapshot:
    """The last finished cycle's snapshot, opened read-only; `folder` is the warehouse's (the memory index)."""
    path: Path
    timezone: str | None
    folder: Path
    lake: None = None  # read like a warehouse (search, the sandbox), it is always a DuckDB file, even beside a lake

    @contextmanager
    def connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A read-only connection: any number of them at once, while a cycle writes the warehouse."""
        con = duckdb.connect(str(self.path), read_only=True)
        try:
            if self.timezone is not None:
                con.execute(f"set TimeZone = {literal(self.timezone)}")
            yield con
        finally:
            con.close()


def snapshot_info(con: duckdb.DuckDBPyConnection) -> dict:
    """The cycle that wrote a snapshot, when, the data's watermark and the newest complete day — read on the
    connection that reads the rest, so both come from the same file."""
    return rows_as_dicts(con.execute("select * from snapshot_info"))[0]


def open_snapshot(warehouse: Warehouse) -> Snapshot:
    """The warehouse's latest snapshot; NoSnapshot before the first cycle has finished."""
    path = warehouse.folder / SNAPSHOT_FILE
    if not path.exists():
        raise NoSnapshot(f"nothing to answer from yet: no cycle has finished in {warehouse.folder} "
                         "(run `reverie run` or `reverie demo` first)")
    return Snapshot(path, warehouse.timezone, warehouse.folder)


def write_snapshot(warehouse: Warehouse, cycle_id: str) -> Path:
    """Copy what questions are answered from into a new snapshot file and move it into place whole."""
    target = warehouse.folder / SNAPSHOT_FILE
    building = target.with_name(f"{target.name}.building")
    building.unlink(missing_ok=True)
    with warehouse.connect() as con:
        con.execute(f"attach {literal(str(building))} as snapshot")
        try:
            for table in COPIED_TABLES:
                con.execute(f"create table snapshot.{table} as select * from {table}")
            for name in ("metrics", "daily_values", "period_values"):
                con.execute(f"create table snapshot.{name} as {sql_file(f'snapshot/{name}.sql')}")
            con.execute(f"create table snapshot.snapshot_info as {sql_file('snapshot/info.sql')}",
                        {"cycle_id": cycle_id, "written_at": warehouse.now()})
        finally:
            con.execute("detach snapshot")
    os.replace(building, target)
    return target


def mark_running(warehouse: Warehouse, cycle_id: str) -> None:
    """Leave word that a cycle holds the warehouse, and since when (removed by `mark_finished`)."""
    marker = warehouse.folder / RUNNING_FILE
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps({"cycle_id": cycle_id, "started_at": warehouse.now().isoformat(timespec="seconds"),
                                  "pid": os.getpid()}))


def mark_finished(warehouse: Warehouse) -> None:
    (warehouse.folder / RUNNING_FILE).unlink(missing_ok=True)


def running_cycle(warehouse: Warehouse) -> dict | None:
    """The cycle that says it holds the warehouse (its id, start and process), if its process is alive."""
    try:
        marker = json.loads((warehouse.folder / RUNNING_FILE).read_text())
        os.kill(int(marker["pid"]), 0)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return marker
