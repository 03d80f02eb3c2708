"""The memory store for people and tools: list, show, history, feedback, export; and how changes are recorded."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

from reverie.warehouse import Warehouse, rows_as_dicts, transaction

SEVERITY_ORDER = "case severity when 'critical' then 0 when 'warning' then 1 else 2 end"


def record_change(con, memory_id: str, change: str, cycle_id: str | None, now, field=None, old=None, new=None) -> None:
    """One line of an item's history: what changed, from what to what, in which cycle."""
    con.execute("insert into memory_history values (?, ?, ?, ?, ?, ?, ?)",
                [memory_id, change, field, old, new, now, cycle_id])


def list_memory(warehouse: Warehouse, status: str = "active", kind: str | None = None, limit: int = 50) -> list[dict]:
    """Memory items for people and the CLI: most severe and highest scored first."""
    with warehouse.connect() as con:
        items = rows_as_dicts(con.execute(
            f"""select id, kind, title, body, status, severity, score, metric, dimension, member,
                      strftime(period_start, '%Y-%m-%d') as period, source, cycle_id, flow_run_id,
                      strftime(recorded_at, '%Y-%m-%dT%H:%M:%S') as recorded_at,
                      strftime(last_confirmed, '%Y-%m-%dT%H:%M:%S') as last_confirmed, evidence
               from memory
               where ($status = 'all' or status = $status) and ($kind is null or kind = $kind)
               order by {SEVERITY_ORDER}, score desc nulls last, recorded_at desc
               limit $limit""", {"status": status, "kind": kind, "limit": limit}))
    for item in items:
        item["evidence"] = json.loads(item["evidence"]) if item["evidence"] else None
    return items


FEEDBACK = ("useful", "noise")


def show_memory(warehouse: Warehouse, memory_id: str) -> dict | None:
    """One memory item, whole, with its history and the items it supersedes or is superseded by."""
    with warehouse.connect() as con:
        rows = rows_as_dicts(con.execute("select * from memory where id = ?", [memory_id]))
        if not rows:
            return None
        item = rows[0]
        item["evidence"] = json.loads(item["evidence"]) if item["evidence"] else None
        item["history"] = _history_of(con, memory_id)
    return item


def memory_history(warehouse: Warehouse, memory_id: str) -> list[dict] | None:
    """Every change to one item, oldest first; None when there is no such item."""
    with warehouse.connect() as con:
        if not con.execute("select count(*) from memory where id = ?", [memory_id]).fetchone()[0]:
            return None
        return _history_of(con, memory_id)


def _history_of(con, memory_id: str) -> list[dict]:
    return rows_as_dicts(con.execute(
        """select change, field, old_value, new_value, strftime(changed_at, '%Y-%m-%dT%H:%M:%S') as changed_at, cycle_id
           from memory_history where memory_id = ? order by changed_at, rowid""", [memory_id]))


def give_feedback(warehouse: Warehouse, memory_id: str, feedback: str) -> dict:
    """Mark an item useful or noise: later candidates of the same kind and subject rank higher or lower."""
    if feedback not in FEEDBACK:
        raise ValueError(f"feedback must be one of {', '.join(FEEDBACK)}, not {feedback!r}")
    with warehouse.connect() as con, transaction(con):
        rows = con.execute("select feedback from memory where id = ?", [memory_id]).fetchall()
        if not rows:
            raise KeyError(memory_id)
        con.execute("update memory set feedback = ? where id = ?", [feedback, memory_id])
        record_change(con, memory_id, "feedback", None, datetime.now(), "feedback", rows[0][0], feedback)
    return {"id": memory_id, "feedback": feedback, "previous": rows[0][0]}


STATUSES = ("active", "superseded", "retracted", "expired")


def export_memory(warehouse: Warehouse, path: Path, status: str = "all") -> int:
    """Write memory items to JSON lines (.jsonl) or Parquet (.parquet), chosen by the file's suffix."""
    formats = {".jsonl": "format json", ".parquet": "format parquet"}
    if path.suffix not in formats:
        raise ValueError(f"{path}: export writes .jsonl or .parquet files")
    if status != "all" and status not in STATUSES:
        raise ValueError(f"status must be all or one of {', '.join(STATUSES)}, not {status!r}")
    where = "" if status == "all" else f"where status = '{status}'"  # checked above: COPY takes no parameters
    with warehouse.connect() as con:
        con.execute(f"""copy (select * from memory {where} order by recorded_at, id)
                        to '{str(path).replace("'", "''")}' ({formats[path.suffix]})""")
        return con.execute(f"select count(*) from memory {where}").fetchone()[0]
