"""Every ask recorded in the warehouse (`asks`, and its model calls in `llm_calls`). An ask that called no model
(prepared, computed, declined: an answer of ~40 ms) and any ask while a cycle holds the warehouse is kept aside in
a file beside it, one appended line, and moved in by the next cycle, `reverie stats` or the next ask that called
the model: opening the warehouse to write costs such an ask another ~50 ms."""

from __future__ import annotations

import fcntl
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime
from pathlib import Path

from reverie.commits import transaction
from reverie.llm_calls import record_calls
from reverie.queries import literal, render
from reverie.warehouse import Warehouse, WarehouseBusy

PENDING_FILE = "pending-asks.jsonl"


@contextmanager
def _pending_held(folder: Path) -> Iterator[None]:
    """The pending file to oneself for a moment: an ask appending never writes into a file being moved in."""
    with open(folder / f"{PENDING_FILE}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _insert(con, ask: dict) -> None:
    texts = {k: str(ask[k]) for k in ("ask_id", "asked_at", "question", "path", "answer")}
    numbers = {k: repr(int(ask[k]) if k.endswith("tokens") else float(ask[k]))
               for k in ("prompt_tokens", "completion_tokens", "seconds")}
    con.execute(render("ask/insert_ask.sql", literals=texts, expressions={
        **numbers, "cited": "[" + ", ".join(literal(str(c)) for c in ask["cited"]) + "]",
        "snapshot_cycle_id": literal(ask["snapshot_cycle_id"]) if ask["snapshot_cycle_id"] else "null",
        "grounded": "true" if ask["grounded"] else "false"}))
    if ask["calls"]:
        record_calls(con, None, "ask", ask["calls"], datetime.fromisoformat(str(ask["asked_at"])))


def move_pending_asks(con, folder: Path) -> int:
    """Record the asks kept aside (those that called no model, and any while a cycle held the warehouse), in a
    transaction of their own; the file goes only once they are committed (an ask already recorded is not recorded
    twice)."""
    pending, taken = folder / PENDING_FILE, folder / f"{PENDING_FILE}.moving"
    with _pending_held(folder):
        if pending.exists():  # asks arriving from now on start a new file
            with open(taken, "a") as moving:
                moving.write(pending.read_text())
            pending.unlink()
    if not taken.exists():
        return 0
    asks = []
    for line in taken.read_text().splitlines():
        try:
            asks.append(json.loads(line))
        except json.JSONDecodeError:  # cut short by an ask killed while writing it: the rest still counts
            continue
    with transaction(con):
        known = {r[0] for r in con.execute("select ask_id from asks where list_contains($ids, ask_id)",
                                           {"ids": [a["ask_id"] for a in asks]}).fetchall()}
        for ask in asks:
            if ask["ask_id"] not in known:
                _insert(con, ask)
    taken.unlink()
    return len(asks)


def record_ask(warehouse: Warehouse, ask: dict) -> str:
    """Record one ask: 'warehouse' (an ask that called the model, with the asks kept aside before it), or 'pending'
    (kept aside: it called no model, or a cycle holds the warehouse)."""
    if ask["calls"]:
        try:
            with replace(warehouse, open_wait_seconds=0).connect() as con:  # an answer never waits for a cycle
                move_pending_asks(con, warehouse.folder)
                with transaction(con):
                    _insert(con, ask)
            return "warehouse"
        except WarehouseBusy:
            pass
    with _pending_held(warehouse.folder), open(warehouse.folder / PENDING_FILE, "a+b") as pending:
        line = json.dumps(ask, default=str).encode() + b"\n"
        if pending.tell():  # a line cut short by an ask killed while writing it stays a line of its own
            pending.seek(-1, 2)
            line = line if pending.read(1) == b"\n" else b"\n" + line
        pending.write(line)
    return "pending"
