"""The memory store for people and tools: list, show, history, feedback, export; and how changes are recorded."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

from reverie.warehouse import Warehouse, render, rows_as_dicts, sql_file, transaction


def record_change(con, memory_id: str, change: str, cycle_id: str | None, now, field=None, old=None, new=None) -> None:
    """One line of an item's history: what changed, from what to what, in which cycle."""
    con.execute("insert into memory_history values ($id, $change, $field, $old, $new, $now, $cycle_id)",
                {"id": memory_id, "change": change, "field": field, "old": old, "new": new, "now": now,
                 "cycle_id": cycle_id})


def list_memory(warehouse: Warehouse, status: str = "active", kind: str | None = None, limit: int = 50) -> list[dict]:
    """Memory items for people and the CLI: most severe and highest scored first."""
    with warehouse.connect() as con:
        items = rows_as_dicts(con.execute(sql_file("memory/list_items.sql"),
                                          {"status": status, "kind": kind, "limit": limit}))
    for item in items:
        item["evidence"] = json.loads(item["evidence"]) if item["evidence"] else None
    return items


FEEDBACK = ("useful", "noise")


def show_memory(warehouse: Warehouse, memory_id: str) -> dict | None:
    """One memory item, whole, with its history and the items that are one story with it (`linked`); a candidate's
    id (cand-…, as a note cites it) shows the item it became, with `candidate` saying so."""
    with warehouse.connect() as con:
        candidate = None
        if memory_id.startswith("cand-"):
            found = con.execute(sql_file("memory/candidate_item.sql"), {"candidate_id": memory_id}).fetchone()
            candidate, memory_id = memory_id, found[0] if found else memory_id
        rows = rows_as_dicts(con.execute("select * from memory where id = $id", {"id": memory_id}))
        if not rows:
            return None
        item = rows[0]
        item["candidate"] = candidate
        item["evidence"] = json.loads(item["evidence"]) if item["evidence"] else None
        item["history"] = _history_of(con, memory_id)
        item["linked"] = rows_as_dicts(con.execute(
            "select id, kind, title, status from memory where list_contains($ids, id) order by valid_from, id",
            {"ids": item.get("linked_ids") or []}))
    return item


def memory_history(warehouse: Warehouse, memory_id: str) -> list[dict] | None:
    """Every change to one item, oldest first; None when there is no such item."""
    with warehouse.connect() as con:
        if not con.execute("select count(*) from memory where id = $id", {"id": memory_id}).fetchone()[0]:
            return None
        return _history_of(con, memory_id)


def _history_of(con, memory_id: str) -> list[dict]:
    return rows_as_dicts(con.execute(sql_file("memory/item_history.sql"), {"memory_id": memory_id}))


def give_feedback(warehouse: Warehouse, memory_id: str, feedback: str) -> dict:
    """Mark an item useful or noise: later candidates of the same kind and subject rank higher or lower."""
    if feedback not in FEEDBACK:
        raise ValueError(f"feedback must be one of {', '.join(FEEDBACK)}, not {feedback!r}")
    with warehouse.connect() as con, transaction(con):
        rows = con.execute("select feedback from memory where id = $id", {"id": memory_id}).fetchall()
        if not rows:
            raise KeyError(memory_id)
        con.execute("update memory set feedback = $feedback where id = $id", {"feedback": feedback, "id": memory_id})
        record_change(con, memory_id, "feedback", None, datetime.now(), "feedback", rows[0][0], feedback)
    return {"id": memory_id, "feedback": feedback, "previous": rows[0][0]}


STATUSES = ("active", "superseded", "retracted", "expired")


def export_memory(warehouse: Warehouse, path: Path, status: str = "all") -> int:
    """Write memory items to JSON lines (.jsonl) or Parquet (.parquet), chosen by the file's suffix."""
    formats = {".jsonl": "format json", ".parquet": "format parquet"}  # checked: the only formats filled in
    if path.suffix not in formats:
        raise ValueError(f"{path}: export writes .jsonl or .parquet files")
    if status != "all" and status not in STATUSES:
        raise ValueError(f"status must be all or one of {', '.join(STATUSES)}, not {status!r}")
    with warehouse.connect() as con:
        con.execute(render("memory/export.sql", literals={"status": status, "path": str(path)},
                           expressions={"format": formats[path.suffix]}))
        return con.execute("select count(*) from memory where $status = 'all' or status = $status",
                           {"status": status}).fetchone()[0]
