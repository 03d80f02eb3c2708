"""A project's warehouse as the tests read it (rows, every table as text, the state a cycle leaves behind), and one
held open by another process."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from reverie.warehouse import Warehouse


def query(settings, sql: str, params=None) -> list[tuple]:
    """The rows of `sql` in the project's warehouse, opened read-only."""
    with duckdb.connect(str(settings.warehouse), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def rows_by_file(source: str, *aggregates: str) -> str:
    """SQL: a source's raw rows grouped by the file (the batch's name) they came from, with those aggregates."""
    return (f"select batches.file, {', '.join(aggregates)} from raw_{source} as raw left join batches "
            f"on batches.source = '{source}' and batches.batch_id = raw._batch group by 1 order by 1")


def everything_stored(settings) -> str:
    """Every row of every table in the warehouse, as text."""
    with duckdb.connect(str(settings.warehouse), read_only=True) as con:
        tables = [t for (t,) in con.execute("select table_name from information_schema.tables").fetchall()]
        return "\n".join(str(con.execute(f"select * from {table}").fetchall()) for table in tables)


# what a cycle leaves behind, without the ids and clocks that differ from one run to another
STATE = {
    "batches": "select source, file, rows, status, reason, first_event, last_event from batches",
    "raw rows per batch": rows_by_file("events", "count(*)"),
    "metric_values": "select * exclude (cycle_id) from metric_values",
    "candidates": "select * exclude (candidate_id, cycle_id) from candidates",
    # a stale source's item says how old its newest row is now: the clock, not the crash, moves that figure
    "memory": "select fingerprint, kind, regexp_replace(title, '[0-9][0-9,.]* days ago', 'N days ago'), status, "
              "severity, metric, period_start from memory where kind <> 'prepared_answer'",
    "active prepared answers": "select answer_key from memory where kind = 'prepared_answer' and status = 'active'",
    "cycles not finished": "select cycle_id from cycles where finished_at is null",
    "deliveries": "select channel, status, count(*) from deliveries group by all",
    "alerts sent": "select channel, unnest(alerts).fingerprint from deliveries where status = 'sent'",
}


def rounded(value):
    """A number as compared: DuckDB sums in parallel, so the last bits of a sum depend on its threads' timing."""
    return round(value, 6) if isinstance(value, float) else value


def state(warehouse: Path) -> dict[str, list[tuple]]:
    """What a cycle left in the warehouse (STATE), each part's rows in one order."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return {name: sorted((tuple(map(rounded, row)) for row in con.execute(sql).fetchall()), key=repr)
                for name, sql in STATE.items()}


@contextmanager
def held_by_another_process(warehouse: Warehouse, release: str = "sys.stdin.read()") -> Iterator[subprocess.Popen]:
    """A second process holding the warehouse file (made first, schema and all) until `release` returns."""
    with warehouse.connect():
        pass
    holder = subprocess.Popen([sys.executable, "-c", f"import duckdb, sys, time; con = duckdb.connect({str(warehouse)!r}); "
                               f"print('holding', flush=True); {release}"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "holding"
        yield holder
    finally:
        holder.communicate("", timeout=30)
