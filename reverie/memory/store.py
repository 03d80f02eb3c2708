"""The memory store, the one way memory is written and read: items inserted and closed (by consolidate and
prepare alike), every change recorded in their history; listed, shown, given feedback and exported for people and
tools."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from pathlib import Path

from reverie.commits import transaction
from reverie.queries import execute_script, render, rows_as_dicts, sql_file
from reverie.warehouse import Warehouse

MEMORY_COLUMNS = (
    "id", "fingerprint", "kind", "title", "body", "metric", "dimension", "member", "period_start", "severity",
    "score", "status", "valid_from", "valid_to", "recorded_at", "closed_at", "first_seen", "last_confirmed",
    "supersedes", "superseded_by", "related_ids", "evidence", "source", "cycle_id", "flow_run_id", "feedback",
    "answer_key",
)


def fingerprint(kind: str, metric: str | None, dimension: str | None, member: str | None, period) -> str:
    """One subject, one active row: kind | metric | slice | period."""
    return "|".join(str(x) for x in (kind, metric or "", f"{dimension or ''}={member or ''}", period or ""))


def answer_fingerprint(answer_key: str) -> str:
    """A prepared answer's subject: the question it answers, whatever its words (one active answer per question)."""
    return f"prepared_answer|{answer_key}"


def insert_item(con, item: dict, fp: str, cycle_id: str, flow_run_id: str | None, now, supersedes=None) -> str:
    """A new active memory item, its insert in memory_history; its id."""
    return insert_items(con, [(item, fp)], cycle_id, flow_run_id, now, supersedes)[0]


def insert_items(con, items: list[tuple[dict, str]], cycle_id: str, flow_run_id: str | None, now,
                 supersedes=None) -> list[str]:
    """New active memory items (each with its fingerprint) and their inserts in memory_history, in two statements;
    their ids."""
    rows = [{
        **{k: item.get(k) for k in MEMORY_COLUMNS}, "id": f"mem-{uuid.uuid4().hex[:12]}", "fingerprint": fp,
        "status": "active", "valid_from": item.get("valid_from") or item["period_start"],
        "valid_to": item.get("valid_to") or item.get("period_end") or item["period_start"], "recorded_at": now,
        "first_seen": now, "last_confirmed": now, "supersedes": supersedes,
        "evidence": json.dumps(item["evidence"], default=str), "cycle_id": cycle_id, "flow_run_id": flow_run_id,
    } for item, fp in items]
    if rows:
        execute_script(con, sql_file("memory/insert_items.sql"), {
            **{column: [row[column] for row in rows] for column in MEMORY_COLUMNS},
            "now": now, "history_cycle_id": cycle_id})
    return [row["id"] for row in rows]


def close_item(con, memory_id: str, status: str, change: str, reason: str, cycle_id: str, now) -> None:
    """Close an item (superseded, retracted, expired) with the reason in its history: the one way items close."""
    close_items(con, [memory_id], status, change, reason, cycle_id, now)


def close_items(con, memory_ids: list[str], status: str, change: str, reason: str, cycle_id: str, now) -> None:
    """Close items alike (the same status and reason), in two statements."""
    if memory_ids:
        execute_script(con, sql_file("memory/close_items.sql"), {
            "ids": memory_ids, "status": status, "change": change, "reason": reason, "cycle_id": cycle_id, "now": now})


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
