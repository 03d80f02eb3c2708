"""The warehouse: one typed handle that opens connections, keeps reverie's schema current and names the lock."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb

from reverie.paths import SQL_DIR

MIGRATIONS_DIR = SQL_DIR / "migrations"
MACROS_DIR = SQL_DIR / "macros"
PLACEHOLDER = re.compile(r"\{\{\s*(\w+)\s*\}\}")


class WarehouseBusy(RuntimeError):
    """Another process holds the warehouse file; the message says which and what to do."""


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


_SCHEMA_CURRENT: set[tuple[str, int]] = set()


@dataclass(frozen=True)
class Warehouse:
    """One project's DuckDB file. Tasks receive this, not a path: it opens connections with the schema current.

    Its times are the project's local times (`timezone`): connections cut and show instants in that zone."""

    path: Path
    timezone: str | None = None  # None: DuckDB's default, the machine's zone

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))

    def __fspath__(self) -> str:  # the warehouse is a file: it can be opened, copied and shown as one
        return str(self.path)

    __str__ = __fspath__

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
            identity = (str(self.path.resolve()), os.stat(self.path).st_ino)
            if identity not in _SCHEMA_CURRENT:  # once per process and file: tasks connect often
                migrate(con)
                _SCHEMA_CURRENT.add(identity)
            yield con
        finally:
            con.close()

    def _open(self) -> duckdb.DuckDBPyConnection:
        try:
            con = duckdb.connect(str(self.path))
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower():
                raise
            holder = re.search(r"PID (\d+)", str(exc))
            raise WarehouseBusy(f"{self.path} is in use by another process"
                                + (f" (PID {holder.group(1)})" if holder else "")
                                + "; a cycle may be running: try again when it has finished") from None
        if self.timezone is not None:
            con.execute(f"set TimeZone = {literal(self.timezone)}")
        return con


def migrate(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Apply the migrations this warehouse has not had, each in its own transaction, then (re)create the macros.

    Warehouses made before migrations were recorded have the tables but no record: the first migrations are
    written to be harmless there (`if not exists`), so they are simply recorded."""
    con.execute("create table if not exists schema_migrations (version varchar primary key, applied_at timestamp not null)")
    done = {row[0] for row in con.execute("select version from schema_migrations").fetchall()}
    applied = []
    for path in _migrations():
        if path.stem in done:
            continue
        with transaction(con):
            con.execute(path.read_text())
            con.execute("insert into schema_migrations values ($version, $now)", {"version": path.stem, "now": datetime.now()})
        applied.append(path.stem)
    for path in sorted(MACROS_DIR.glob("*.sql")):  # macros are code, not data: always the current version
        con.execute(path.read_text())
    return applied


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
    return con.execute(sql_file("warehouse/table_exists.sql"), {"name": name}).fetchall() != [(0,), (0,)]


def data_watermark(con: duckdb.DuckDBPyConnection):
    """How far the ingested data reaches, over all sources."""
    return con.execute("select max(watermark) from source_state").fetchone()[0]


def rows_as_dicts(relation: duckdb.DuckDBPyConnection) -> list[dict]:
    """Fetch a query result as a list of dicts."""
    names = [d[0] for d in relation.description]
    return [dict(zip(names, row)) for row in relation.fetchall()]
