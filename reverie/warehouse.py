"""The warehouse: one typed handle that opens connections, keeps reverie's schema current and names the lock.
(SQL files are filled in reverie.queries, commits in reverie.commits, the schema in reverie.migrations, a lake's
attaching in reverie.lake.)

It is a DuckDB file, or (with `[lake] catalog` in reverie.toml) a DuckLake: a catalog database (SQLite or
PostgreSQL) and a folder of Parquet files, which several processes can read and write at once."""

from __future__ import annotations

import json
import os
import re
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb

from reverie.lake import LAKE, Lake
from reverie.migrations import migrate
from reverie.queries import literal, quoted, with_values
from reverie.secrets import LIBPQ_PASSWORD

# A cycle's tasks each open the file briefly, and so does a command run meanwhile (`reverie memory list`): whoever
# finds it held waits this long for the other to close it before saying who holds it.
OPEN_WAIT_SECONDS = 30.0
MIN_FREE_BYTES = 64 * 2**20  # below this a run does not start writing: a disk this full fails it half-way
WRITER_LOCK = "writer.lock"
WRITER_FILE = "writer.json"


def no_warehouse(warehouse: "Warehouse") -> str:
    """What a command says when the project has no warehouse yet."""
    return f"no warehouse at {warehouse}: run `reverie run` or `reverie demo` first"


class WarehouseBusy(RuntimeError):
    """Another process holds the warehouse file; the message says which and what to do."""


class DiskFull(RuntimeError):
    """The warehouse's disk has too little room for a run to write; the message says how much and where."""


_SCHEMA_CURRENT: set[tuple] = set()
_ATTACHED: dict[Lake, duckdb.DuckDBPyConnection] = {}  # each lake attached once per process (tasks run in threads)
_ATTACHING = threading.Lock()


@dataclass(frozen=True)
class Warehouse:
    """One project's DuckDB file. Tasks receive this, not a path: it opens connections with the schema current.

    Its times are the project's local times (`timezone`): connections cut and show instants in that zone."""

    path: Path
    timezone: str | None = None  # None: DuckDB's default, the machine's zone
    open_wait_seconds: float = OPEN_WAIT_SECONDS  # how long to wait for another process to close the file
    lake: Lake | None = None  # a DuckLake instead of the file at `path` (whose folder still holds logs and index)

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))

    def __fspath__(self) -> str:  # the warehouse is a file: it can be opened, copied and shown as one
        return str(self.path)

    def __str__(self) -> str:  # as messages and summaries show it: a catalog's password is not shown
        if not self.lake:
            return str(self.path)
        return "the DuckLake " + LIBPQ_PASSWORD.sub("password=…", self.lake.catalog)

    def exists(self) -> bool:
        """Whether anything was written to it yet (a lake's catalog is a server's or a file's)."""
        if self.lake and not self.lake.catalog.startswith("sqlite:"):
            return True
        return Path(self.lake.catalog.removeprefix("sqlite:")).exists() if self.lake else self.path.exists()

    @property
    def folder(self) -> Path:
        """Where reverie keeps what belongs with this warehouse (logs, the memory index)."""
        return self.path.parent

    def now(self) -> datetime:
        """The wall-clock time now in the project's zone, as the warehouse's times are kept (without an offset)."""
        if self.timezone is None:
            return datetime.now()
        return datetime.now(ZoneInfo(self.timezone)).replace(tzinfo=None)

    def local(self, moment: datetime) -> datetime:
        """A time of this machine's clock (a file's modification time, say) in the project's zone, without offset."""
        if self.timezone is None:
            return moment
        return moment.astimezone(ZoneInfo(self.timezone)).replace(tzinfo=None)

    @contextmanager
    def connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A read-write connection with reverie's schema current."""
        self.folder.mkdir(parents=True, exist_ok=True)
        con = self._open()
        try:
            identity = (LAKE, self.lake.catalog) if self.lake else (str(self.path.resolve()), os.stat(self.path).st_ino)
            if identity not in _SCHEMA_CURRENT:  # once per process and file: tasks connect often
                migrate(con)
                _SCHEMA_CURRENT.add(identity)
            yield con
        finally:
            con.close()

    @contextmanager
    def kept_open(self) -> Iterator[None]:
        """Keep the database open in this process for the block: the connections opened inside share it (DuckDB keeps
        one instance per file and process), so none opens the file and no close but the last checkpoints it. Only
        while no other process needs the file: DuckDB lets one process at a time open it to write."""
        with self.connect():
            yield

    @contextmanager
    def writing(self, wait_seconds: float, what: dict) -> Iterator[None]:
        """Be the only run writing this warehouse for the block: wait up to `wait_seconds` for another (a cycle, a
        refresh, a morning brief, in any process on this machine) to finish, else WarehouseBusy naming it.

        DuckDB's own lock is per connection and a run opens many, so two runs would interleave their writes;
        this lock is held for the whole run. `what` (flow, flow run, cycle) is left beside it for the next one."""
        from filelock import FileLock, Timeout  # 30 ms of imports (asyncio) that `ask` and the readers never need

        self.folder.mkdir(parents=True, exist_ok=True)
        lock = FileLock(self.folder / WRITER_LOCK)
        try:
            lock.acquire(timeout=wait_seconds)
        except Timeout:
            raise WarehouseBusy(f"{self.path} is being written by {self.writer() or 'another run'}; "
                                f"gave up after waiting {wait_seconds:g} s") from None
        free = shutil.disk_usage(self.folder).free
        if free < MIN_FREE_BYTES:  # a write that fails half-way costs a run; refused before anything is written
            lock.release()
            raise DiskFull(f"the disk holding {self.folder} has {free / 2**20:.1f} MB free; a run needs at least "
                           f"{MIN_FREE_BYTES / 2**20:.0f} MB: free some space (nothing was written)")
        holder = self.folder / WRITER_FILE
        try:
            holder.write_text(json.dumps({**what, "pid": os.getpid(), "since": self.now().isoformat(timespec="seconds")}))
            yield
        finally:
            holder.unlink(missing_ok=True)
            lock.release()

    def writer(self) -> str | None:
        """Who holds the writer lock, in words (flow, flow run, since when), if anyone said."""
        try:
            held = json.loads((self.folder / WRITER_FILE).read_text())
        except (OSError, ValueError):
            return None
        run = f" (flow run {held['flow_run_id']})" if held.get("flow_run_id") else ""
        return f"{held.get('flow', 'a run')}{run}, PID {held.get('pid')}, since {held.get('since')}"

    def _open(self) -> duckdb.DuckDBPyConnection:
        if self.lake:
            with _ATTACHING:  # once per process: attaching costs ~0.3 s, a cursor next to nothing
                if self.lake not in _ATTACHED:
                    attached = duckdb.connect()  # the lake holds everything; this only reaches it
                    self.lake.attach(attached)
                    _ATTACHED[self.lake] = attached
            con = _ATTACHED[self.lake].cursor()  # its own connection: closing it leaves the lake attached
            con.execute(f"use {LAKE}")
            if self.timezone is not None:
                con.execute(f"set TimeZone = {literal(self.timezone)}")
            return con
        deadline = time.monotonic() + self.open_wait_seconds
        pause = 0.05
        while True:
            try:
                con = duckdb.connect(str(self.path))
                break
            except duckdb.IOException as exc:
                if "lock" not in str(exc).lower():
                    raise
                if time.monotonic() + pause > deadline:
                    holder = re.search(r"PID (\d+)", str(exc))
                    writer = self.writer()
                    raise WarehouseBusy(
                        f"{self.path} is in use by another process"
                        + (f" (PID {holder.group(1)})" if holder else "")
                        + (f": {writer}" if writer else "")
                        + f"; waited {self.open_wait_seconds:g} s, try again when it has finished") from None
                time.sleep(pause)
                pause = min(pause * 2, 1.0)
        if self.timezone is not None:
            con.execute(f"set TimeZone = {literal(self.timezone)}")
        return con


def cursor(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """Another connection to the same database, reading the same catalog (the lake's) in the same time zone."""
    database, zone = con.execute("select current_database(), current_setting('TimeZone')").fetchone()
    other = con.cursor()
    other.execute(f"use {quoted(database)}")
    other.execute(f"set TimeZone = {literal(zone)}")
    return other


def table_exists(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    """Whether a table or view of that name exists in the warehouse."""
    return con.execute(with_values("warehouse/table_exists.sql", {"name": name})).fetchall() != [(0,), (0,)]


def data_watermark(con: duckdb.DuckDBPyConnection):
    """How far the ingested data reaches, over all sources."""
    return con.execute("select max(watermark) from source_state").fetchone()[0]
