"""The warehouse: one typed handle that opens connections, keeps reverie's schema current and names the lock.

It is a DuckDB file, or (with `[lake] catalog` in reverie.toml) a DuckLake: a catalog database (SQLite or
PostgreSQL) and a folder of Parquet files, which several processes can read and write at once."""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from pathlib import Path
from typing import TypeVar
from zoneinfo import ZoneInfo

import duckdb

from reverie.faults import fault_point
from reverie.paths import SQL_DIR

MIGRATIONS_DIR = SQL_DIR / "migrations"
MACROS_DIR = SQL_DIR / "macros"
PLACEHOLDER = re.compile(r"\{\{\s*(\w+)\s*\}\}")
PASSWORD = re.compile(r"password=\S+")
T = TypeVar("T")
# a commit that lost a race with another writer of a lake (DuckLake retries only some; SQLite's catalog is "locked")
WRITE_CONFLICT = re.compile(r"database is locked|conflict", re.IGNORECASE)
# A cycle's tasks each open the file briefly, and so does a command run meanwhile (`reverie memory list`): whoever
# finds it held waits this long for the other to close it before saying who holds it.
OPEN_WAIT_SECONDS = 30.0
MIN_FREE_BYTES = 64 * 2**20  # below this a run does not start writing: a disk this full fails it half-way
WRITER_LOCK = "writer.lock"
WRITER_FILE = "writer.json"


LAKE = "lake"  # the name the DuckLake is attached under, and every connection's default catalog
LAKE_EXTENSIONS = {"ducklake": "duckdb_extension_ducklake", "sqlite_scanner": "duckdb_extension_sqlite_scanner",
                   "postgres_scanner": "duckdb_extension_postgres_scanner"}  # PyPI packages: they load offline


def no_warehouse(warehouse: "Warehouse") -> str:
    """What a command says when the project has no warehouse yet."""
    return f"no warehouse at {warehouse}: run `reverie run` or `reverie demo` first"


class WarehouseBusy(RuntimeError):
    """Another process holds the warehouse file; the message says which and what to do."""


class DiskFull(RuntimeError):
    """The warehouse's disk has too little room for a run to write; the message says how much and where."""


class SqlTemplateError(ValueError):
    """A SQL file whose placeholders do not match what it is filled with; the message names the file."""


def sql_file(relative: str) -> str:
    """The text of a SQL file under sql/."""
    return (SQL_DIR / relative).read_text()


def quoted(identifier: str) -> str:
    """An identifier as DuckDB reads it, whatever it holds."""
    return '"' + identifier.replace('"', '""') + '"'


def literal(value: str) -> str:
    """A string as a SQL literal, for where DuckDB takes no parameter: a view's body, COPY, ATTACH, reader
    options, and queries stored to be run again (evidence)."""
    return "'" + value.replace("'", "''") + "'"


def sql_value(value) -> str:
    """A Python value as a SQL literal: text, a number, a date or time, a list of them, or NULL."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, datetime):
        return f"timestamp {literal(value.isoformat(sep=' '))}"
    if isinstance(value, date):
        return f"date {literal(value.isoformat())}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(map(sql_value, value)) + "]"
    return literal(str(value))


def with_values(relative: str, values: dict) -> str:
    """A SQL file with its `$name` parameters written in as literals. DuckDB's parameter binding imports pandas (a
    second on two cores), so the ask path, which answers in milliseconds, writes its few values in instead."""
    return re.sub(r"\$(\w+)", lambda m: sql_value(values[m.group(1)]) if m.group(1) in values else m.group(0),
                  sql_file(relative))


def render(relative: str, identifiers: dict[str, str] | None = None, literals: dict[str, str] | None = None,
           expressions: dict[str, str] | None = None) -> str:
    """A SQL file with its `{{ name }}` placeholders filled: identifiers and literals quoted, expressions (already
    parsed and checked by their owner) as they are. Query values travel as DuckDB named parameters ($name)."""
    fills = ({name: quoted(value) for name, value in (identifiers or {}).items()}
             | {name: literal(value) for name, value in (literals or {}).items()} | (expressions or {}))
    lines = sql_file(relative).splitlines(keepends=True)
    while lines and lines[0].startswith("--"):  # the file's header is for its readers, not for the statement
        lines.pop(0)
    text = "".join(lines)
    wanted = set(PLACEHOLDER.findall(text))
    if wanted != set(fills):
        raise SqlTemplateError(f"sql/{relative}: placeholders {sorted(wanted)} filled with {sorted(fills)}")
    return PLACEHOLDER.sub(lambda m: fills[m.group(1)], text)


def _migrations() -> list[Path]:
    return sorted(MIGRATIONS_DIR.glob("[0-9][0-9][0-9]_*.sql"))


@cache  # the migrations ship with reverie: parsed once per process, when a name must be checked
def own_tables() -> frozenset[str]:
    """The tables reverie's migrations create: names a source or model may not take."""
    import sqlglot  # here, not at the top: every CLI command imports this module, few need sqlglot
    from sqlglot import exp

    names = {"schema_migrations"}
    for path in _migrations():
        for statement in sqlglot.parse(path.read_text(), read="duckdb"):
            if isinstance(statement, exp.Create) and statement.kind == "TABLE":
                names.add(statement.this.name if isinstance(statement.this, exp.Table) else statement.this.this.name)
    return frozenset(names)


_SCHEMA_CURRENT: set[tuple] = set()
_ATTACHED: dict[Lake, duckdb.DuckDBPyConnection] = {}  # each lake attached once per process (tasks run in threads)
_ATTACHING = threading.Lock()


@dataclass(frozen=True)
class Lake:
    """A DuckLake: where its catalog lives (`sqlite:<file>`, `postgres:<libpq settings>`) and its data files."""
    catalog: str
    data_path: str

    def attach(self, con: duckdb.DuckDBPyConnection, read_only: bool = False) -> None:
        """Attach the lake to a connection and make it the connection's default catalog."""
        for name, package in LAKE_EXTENSIONS.items():
            if name == "ducklake" or self.catalog.startswith(name.removesuffix("_scanner") + ":"):
                con.execute(f"load {literal(_extension_file(name, package))}")
        options = f"data_path {literal(self.data_path)}" + (", read_only" if read_only else "")
        con.execute(f"attach {literal('ducklake:' + self.catalog)} as {LAKE} ({options})")
        con.execute(f"use {LAKE}")


@cache
def _extension_file(name: str, package: str) -> str:
    import importlib

    folder = Path(importlib.import_module(package).__file__).parent
    return str(folder / "extensions" / f"v{duckdb.__version__}" / f"{name}.duckdb_extension")


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
        return "the DuckLake " + PASSWORD.sub("password=…", self.lake.catalog)

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


def in_lake(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether a connection's default catalog is a DuckLake."""
    return con.execute("select current_database()").fetchone()[0] == LAKE


def without_keys(sql: str) -> str:
    """DDL without primary keys and unique constraints, which DuckLake does not have (reverie's writes delete
    before they insert, so they do not rely on them)."""
    import sqlglot
    from sqlglot import exp

    statements = []
    for statement in sqlglot.parse(sql, read="duckdb"):
        for constraint in list(statement.find_all(exp.PrimaryKey, exp.PrimaryKeyColumnConstraint,
                                                  exp.UniqueColumnConstraint)):
            (constraint.parent if isinstance(constraint.parent, exp.ColumnConstraint) else constraint).pop()
        statements.append(statement.sql(dialect="duckdb"))
    return ";\n".join(statements)


def migrate(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Apply the migrations this warehouse has not had, each in its own transaction, then (re)create the macros.

    Warehouses made before migrations were recorded have the tables but no record: the first migrations are
    written to be harmless there (`if not exists`), so they are simply recorded."""
    ddl = without_keys if in_lake(con) else (lambda sql: sql)
    con.execute(ddl("create table if not exists schema_migrations (version varchar primary key, applied_at timestamp not null)"))
    done = {row[0] for row in con.execute("select version from schema_migrations").fetchall()}
    applied = []
    for path in _migrations():
        if path.stem in done:
            continue
        with transaction(con):
            con.execute(ddl(path.read_text()))
            con.execute("insert into schema_migrations values ($version, $now)", {"version": path.stem, "now": datetime.now()})
        applied.append(path.stem)
    for path in sorted(MACROS_DIR.glob("*.sql")):  # macros are code, not data: always the current version
        try:
            con.execute(path.read_text())
        except duckdb.Error as exc:
            if not is_write_conflict(exc):
                raise
            # a lake's: another process (a worker starting its first unit) replaced it at the same moment, from
            # the same file
    return applied


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


def execute_script(con: duckdb.DuckDBPyConnection, sql: str, params: dict) -> None:
    """Run each statement of a SQL text, each with the parameters it names (DuckDB refuses any it does not)."""
    for statement in con.extract_statements(sql):
        con.execute(statement, {name: params[name] for name in statement.named_parameters})


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


def rows_as_dicts(relation: duckdb.DuckDBPyConnection) -> list[dict]:
    """Fetch a query result as a list of dicts."""
    names = [d[0] for d in relation.description]
    return [dict(zip(names, row)) for row in relation.fetchall()]
