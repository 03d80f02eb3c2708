"""Commits: all or nothing, and what to do when a commit loses a race with another writer of a lake — run its
writes again (`committed`), or retry its Prefect task whole (`retried_on_conflict`)."""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import duckdb

from reverie.faults import fault_point

T = TypeVar("T")
# a commit that lost a race with another writer of a lake (DuckLake retries only some; SQLite's catalog is "locked")
WRITE_CONFLICT = re.compile(r"database is locked|conflict", re.IGNORECASE)


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection, name: str | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
    """All or nothing: a failure inside leaves the warehouse as it was. A named one has a fault point
    `<name>:before-commit`, where every change is written and none committed (tests kill the process there)."""
    con.execute("begin transaction")
    try:
        yield con
        if name:
            fault_point(f"{name}:before-commit")
    except BaseException:
        con.execute("rollback")
        raise
    con.execute("commit")


COMMIT_RETRY_DELAYS = [0.2, 0.4, 0.8, 1.6, 3.2, 6.4]  # seconds (±50%) before a lost commit's writes run again


def committed(con: duckdb.DuckDBPyConnection, write: Callable[[], T], name: str | None = None) -> tuple[T, int]:
    """`write()` in a transaction, run again each time its commit loses a race with another writer of a lake (after a
    growing delay with jitter, so the writers that collided do not collide again): what it returned, and how many
    times it ran again. What `write` stores must not depend on the other writers' commits."""
    delays, again = iter(COMMIT_RETRY_DELAYS), 0
    while True:
        try:
            with transaction(con, name):
                return write(), again
        except duckdb.Error as exc:
            delay = next(delays, None)
            if delay is None or not is_write_conflict(exc):
                raise
        time.sleep(delay * random.uniform(0.5, 1.5))
        again += 1


def is_write_conflict(exc: BaseException) -> bool:
    """Whether `exc` is a write that lost a race with another writer: nothing landed, and trying again will."""
    return isinstance(exc, duckdb.Error) and WRITE_CONFLICT.search(str(exc)) is not None


CONFLICT_RETRY_DELAYS = [1, 2, 4, 8, 16, 32]  # seconds before each retry of a task whose commit lost a race


def retried_on_conflict() -> dict:
    """A Prefect task's retry settings for a unit that writes a lake beside others (a source's quality gate): tried
    again, whole, when its commit lost a race, after a growing delay with jitter, so that the units that collided do
    not collide again. (A group of metrics keeps what it computed and retries only its commit: `committed`.)"""
    return {"retries": len(CONFLICT_RETRY_DELAYS), "retry_delay_seconds": CONFLICT_RETRY_DELAYS,
            "retry_jitter_factor": 1.0, "retry_condition_fn": write_conflicted}


def write_conflicted(task, task_run, state) -> bool:
    """A Prefect retry condition: retry a task whose commit lost a race with another writer of the lake (its
    write was all or nothing), and no other failure."""
    try:
        state.result()
    except Exception as exc:
        return is_write_conflict(exc)
    return False
