"""The analyst's SQL sandbox: one read-only SELECT at a time, no files, no network, bounded rows, time and memory.

Two locks, and each stops every escape on its own (tests try each lock alone):

1. The statement (`check_statement`), parsed with sqlglot, must be one query that reads only the
   warehouse's own tables and views (reverie's bookkeeping, which holds machine paths, left out), named from an
   allowlist, and its own CTEs where they are in scope: no file or URL in FROM, no table function but
   `range`/`generate_series`/`unnest`, no catalog view or function that shows settings or paths, no ATTACH, INSTALL, LOAD, COPY, PRAGMA,
   SET, DDL or DML, nothing too long or too deeply nested to check within a second.
2. The connection (`sandbox_connection` and `fetch`): read-only, external access off and the local
   file system disabled after the file is open, extension autoloading off, no spilling, a memory
   limit, the catalog functions and views that show paths or settings shadowed, configuration locked;
   the statement as DuckDB's own parser reads it (`check_as_duckdb_reads`), since a schema-qualified
   `system.main.duckdb_databases()` gets past a shadow and an encoded path past any check of the results;
   and a result or an error text that shows a path of this machine (the warehouse's folder, the working folder,
   the home folder) is refused, also as a BLOB or with its separators changed.

Both run in a process of their own (`bounded`): DuckDB's memory limit covers its buffers but not one vector's lists
and strings (`len(range(100000000))` takes gigabytes), and an interrupt is seen only between chunks, so the process
has a memory limit of its own and is killed when a statement outlives its time; the parent only waits.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import pickle
import resource
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from multiprocessing.connection import Connection
from pathlib import Path

import duckdb
import sqlglot
from sqlglot import exp

from reverie.queries import literal, sql_file
from reverie.warehouse import Warehouse
from reverie.wording import is_number

MAX_ROWS = 200
TIME_LIMIT_SECONDS = 5.0
# an analyst's query is a few hundred characters; sqlglot takes about 5 s over a megabyte of SQL
MAX_STATEMENT_CHARS = 100_000
MEMORY_LIMIT = "512MB"  # DuckDB's buffers: what its operators can spill or refuse
# the sandbox process's private memory (RLIMIT_DATA), a single vector's lists and strings included; not its address
# space: attaching a lake reserves 1.2 GB of it that is never touched
PROCESS_MEMORY = 768 << 20
OPEN_SECONDS = 60.0  # opening the warehouse (a lake's catalog, a busy machine) before a statement's own clock starts
STOP_GRACE_SECONDS = 2.0  # past its time limit, a statement that did not see the interrupt is killed with its process
# reverie's bookkeeping, not data: it holds machine paths (a brief's file, the stages' outputs), prompts and ledgers,
# which a disguise (a cast to BLOB, a replace of '/') would carry past any check of the results
BOOKKEEPING = frozenset({"cycles", "deliveries", "llm_calls", "asks", "schema_migrations", "source_state",
                         "memory_history", "insight_rejections"})
PURE_TABLE_FUNCTIONS = {"range", "generate_series", "unnest"}  # make rows from their arguments, read nothing
CATALOG_VIEWS = {("information_schema", "tables"), ("information_schema", "columns")}  # names and types, no paths
# functions that reach outside the warehouse's tables: files, URLs, settings, secrets, the catalog's paths
FORBIDDEN_FUNCTIONS = {"current_setting", "getenv", "query", "query_table", "glob", "sniff_csv", "which_secret",
                       "json_execute_serialized_sql", "checkpoint", "force_checkpoint", "summary", "iceberg_scan",
                       "delta_scan", "sqlite_scan", "postgres_scan", "mysql_scan", "arrow_scan", "pandas_scan",
                       "python_map_function", "seq_scan", "repeat_row", "test_all_types", "test_vector_types"}
FORBIDDEN_PREFIXES = ("read_", "duckdb_", "pragma_", "parquet_", "enable_", "disable_", "sqlite_", "pg_")
# shadowed on the sandbox connection: what shows the warehouse's path, the settings or the home folder
SHADOWED_TABLE_FUNCTIONS = ("duckdb_databases", "duckdb_settings", "duckdb_extensions", "duckdb_secrets",
                            "duckdb_temporary_files", "duckdb_external_file_cache", "duckdb_logs",
                            "pragma_database_size", "pragma_platform", "pragma_user_agent")
SHADOWED_VIEWS = ("pragma_database_list", "pg_settings", "duckdb_logs_parsed")
SHADOWED_SCALARS = {"current_setting": 1, "getenv": 1}


logging.getLogger("sqlglot").setLevel(logging.ERROR)  # its "falling back to Command" notes: refused below anyway


class SandboxError(ValueError):
    """A statement the sandbox refuses or that failed; the message goes back to the model."""


def as_date(value) -> date | None:
    """The date of a DATE, TIMESTAMP or TIMESTAMPTZ value; None for anything else."""
    if isinstance(value, datetime):
        return value.date()
    return value if isinstance(value, date) else None


@dataclass
class QueryResult:
    columns: list[str]
    rows: list[tuple]
    truncated: bool
    types: list[str] = field(default_factory=list)  # DuckDB's type of each column
    schema: dict[str, dict[str, str]] = field(default_factory=dict)  # the warehouse's tables and their columns

    def values(self) -> list[float]:
        """Every number the query returned (for checking the numbers an insight quotes)."""
        return [float(v) for row in self.rows for v in row if is_number(v)]

    def dates(self) -> set[date]:
        """Every date the query returned, from DATE, TIMESTAMP or TIMESTAMPTZ columns alike."""
        return {d for row in self.rows for d in map(as_date, row) if d}


def _function_name(node: exp.Expression) -> str:
    name = node.name if isinstance(node, exp.Anonymous) else ""
    if not name and isinstance(node, exp.Func):
        name = node.sql_name()
    return name.lower()


def _forbidden(name: str) -> bool:
    return name in FORBIDDEN_FUNCTIONS or name.startswith(FORBIDDEN_PREFIXES)


def _cte_positions(statement: exp.Query) -> tuple[dict[int, dict[str, int]], dict[int, int]]:
    """Each WITH clause's CTE names with where each is first defined (by the clause's id), and each CTE's place in its
    clause (by the CTE's id)."""
    names: dict[int, dict[str, int]] = {}
    positions: dict[int, int] = {}
    for clause in statement.find_all(exp.With):
        defined = names[id(clause)] = {}
        for position, cte in enumerate(clause.expressions):
            positions[id(cte)] = position
            defined.setdefault(cte.alias_or_name.lower(), position)
    return names, positions


def _names_a_cte(table: exp.Table, ctes: tuple[dict[int, dict[str, int]], dict[int, int]]) -> bool:
    """Whether a FROM item names a CTE it can see (`ctes`: _cte_positions): one of a WITH around it, defined before the
    CTE it is in (or that CTE itself, in WITH RECURSIVE). DuckDB reads any other name from the catalog, whatever CTE
    elsewhere in the statement bears it."""
    names, positions = ctes
    name = table.name.lower()
    child, node = table, table.parent
    while node is not None:
        if isinstance(node, exp.With):  # reached from inside one of its CTEs
            defined, place = names[id(node)].get(name), positions.get(id(child), 0)
            if defined is not None and (defined < place or (defined == place and node.args.get("recursive"))):
                return True
        elif isinstance(node, exp.Query) and node.ctes and not isinstance(child, exp.With):
            if name in names[id(node.ctes[0].parent)]:
                return True
        child, node = node, node.parent
    return False


def _check_table(table: exp.Table, tables: set[str], ctes: tuple[dict, dict]) -> None:
    """A FROM item: one of the warehouse's tables, a CTE, or a table function that reads nothing."""
    if isinstance(table.this, exp.Func):
        name = _function_name(table.this)
        if isinstance(table.this, exp.GenerateSeries | exp.Unnest) or name in PURE_TABLE_FUNCTIONS:
            return
        raise SandboxError(f"{name or 'that table function'}() is not available: the analyst reads the "
                           "warehouse's tables only")
    if not isinstance(table.this, exp.Identifier):
        raise SandboxError("reading files is not available: the analyst reads the warehouse's tables only")
    name, schema = table.name.lower(), table.db.lower()
    if (schema, name) in CATALOG_VIEWS and not table.catalog:
        return
    cte = not schema and _names_a_cte(table, ctes)
    if table.catalog or schema not in ("", "main") or (name not in tables and not cte):
        shown = ".".join(part for part in (table.catalog, table.db, table.name) if part)
        raise SandboxError(f"no table {shown!r} here: the analyst reads the warehouse's tables only "
                           f"({', '.join(sorted(tables)) or 'none'})")


def check_statement(sql: str, tables: set[str] | frozenset[str]) -> exp.Query:
    """The statement, parsed, if it is one read-only query over `tables` (lowercase names) and its CTEs; else why not."""
    if len(sql) > MAX_STATEMENT_CHARS:
        raise SandboxError(f"the statement is {len(sql):,} characters long: at most {MAX_STATEMENT_CHARS:,}, please")
    try:
        statements = [s for s in sqlglot.parse(sql, read="duckdb") if s is not None]
    except sqlglot.errors.SqlglotError as exc:
        raise SandboxError(f"not valid SQL: {str(exc).splitlines()[0]}") from exc
    except RecursionError:  # sqlglot's parser recurses per level: about 40 nested parentheses exhaust Python's stack
        raise SandboxError("the statement nests too deeply: write it with CTEs") from None
    if len(statements) != 1:
        raise SandboxError(f"exactly one statement, please (got {len(statements)})")
    statement = statements[0]
    if not isinstance(statement, exp.Query):
        raise SandboxError(f"only SELECT queries may run here, not {statement.key.upper()}")
    ctes = _cte_positions(statement)
    for node in statement.walk():
        if isinstance(node, exp.Insert | exp.Update | exp.Delete | exp.Drop | exp.Create | exp.Alter | exp.Command
                      | exp.Copy | exp.Attach | exp.Pragma | exp.Set):
            raise SandboxError(f"only SELECT queries may run here, not {node.key.upper()}")
        if isinstance(node, exp.Table):
            _check_table(node, tables, ctes)
        elif isinstance(node, exp.Summarize) and not isinstance(node.this, exp.Table | exp.Query):
            raise SandboxError("reading files is not available: the analyst reads the warehouse's tables only")
        elif isinstance(node, exp.Func) and _forbidden(_function_name(node)):
            raise SandboxError(f"{_function_name(node)}() is not available: the analyst reads the warehouse's "
                               "tables only")
    return statement


def _duckdb_nodes(tree) -> Iterator[dict]:
    """Every object of DuckDB's serialized parse tree."""
    if isinstance(tree, dict):
        yield tree
        tree = list(tree.values())
    if isinstance(tree, list):
        for child in tree:
            yield from _duckdb_nodes(child)


def check_as_duckdb_reads(con: duckdb.DuckDBPyConnection, sql: str, tables: frozenset[str]) -> None:
    """The statement as DuckDB's own parser reads it (whatever sqlglot made of it): one SELECT whose functions are
    allowed wherever they are qualified, whose table functions read nothing, and whose FROM items are `tables`, the
    two catalog views of names and types, or CTEs whose names no catalog holds."""
    try:
        parsed = json.loads(con.execute("select json_serialize_sql(?)", [sql]).fetchone()[0])
    except duckdb.Error as exc:
        raise SandboxError(f"not valid SQL: {str(exc).splitlines()[0]}") from exc
    if parsed.get("error") or len(parsed.get("statements", ())) != 1:
        raise SandboxError("exactly one SELECT query, please")
    nodes = list(_duckdb_nodes(parsed["statements"]))
    ctes = {entry["key"].lower() for node in nodes for entry in (node.get("cte_map") or {}).get("map", ())}
    in_catalog = {name for (name,) in con.execute(sql_file("analyst/catalog_names.sql")).fetchall()}
    for node in nodes:
        name = str(node.get("function_name", "")).lower()
        if _forbidden(name):
            raise SandboxError(f"{name}() is not available: the analyst reads the warehouse's tables only")
        if node.get("type") == "TABLE_FUNCTION" and node["function"].get("function_name") not in PURE_TABLE_FUNCTIONS:
            raise SandboxError(f"{node['function'].get('function_name')}() is not available: the analyst reads the "
                               "warehouse's tables only")
        if node.get("type") == "BASE_TABLE":
            table, schema, catalog = (node[k].lower() for k in ("table_name", "schema_name", "catalog_name"))
            known = ((schema, table) in CATALOG_VIEWS or table in tables and schema in ("", "main")
                     or table in ctes and not schema and table.isidentifier() and table not in in_catalog)
            if catalog or not known:
                shown = ".".join(part for part in (catalog, schema, table) if part)
                raise SandboxError(f"no table {shown!r} here: the analyst reads the warehouse's tables only")


def _private_paths(warehouse: Path) -> list[str]:
    """Paths whose appearance in a result means the query reached outside the data."""
    paths = {str(warehouse.resolve().parent), str(Path.cwd().resolve()), os.path.expanduser("~")}
    return sorted(p for p in paths if len(p) > 1)


@contextmanager
def sandbox_connection(warehouse: Warehouse) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only, offline, memory-bounded connection whose catalog shows no paths and whose settings are locked."""
    config = {"autoload_known_extensions": False, "autoinstall_known_extensions": False,
              "memory_limit": MEMORY_LIMIT, "temp_directory": ""}
    try:
        if warehouse.lake:
            con = duckdb.connect(config=config)
            warehouse.lake.attach(con, read_only=True)
            # a lake's tables are files read at query time: its data folder stays readable, nothing else
            con.execute(f"set allowed_directories = [{literal(warehouse.lake.data_path)}]")
            con.execute("set enable_external_access = false")
        else:
            con = duckdb.connect(str(warehouse.path), read_only=True, config={"enable_external_access": False, **config})
    except duckdb.Error as exc:  # missing, or held by a writer in another process
        raise SandboxError(f"the warehouse cannot be read now: {str(exc).splitlines()[0]}") from exc
    try:
        if not warehouse.lake:  # the warehouse is open; nothing else will be
            con.execute("set disabled_filesystems = 'LocalFileSystem'")
        if warehouse.timezone is not None:  # instants read in the project's zone, as everywhere else
            con.execute(f"set TimeZone = {literal(warehouse.timezone)}")
        for name in SHADOWED_TABLE_FUNCTIONS:
            con.execute(f"create temp macro {name}() as table select null as hidden where false")
        for name in SHADOWED_VIEWS:
            con.execute(f"create temp view {name} as select null as hidden where false")
        for name, arity in SHADOWED_SCALARS.items():
            con.execute(f"create temp macro {name}({', '.join(f'a{i}' for i in range(arity))}) as null")
        con.execute("set lock_configuration = true")
        yield con
    finally:
        con.close()


def warehouse_tables(con: duckdb.DuckDBPyConnection) -> frozenset[str]:
    """The warehouse's own tables and views but reverie's bookkeeping, lowercase: what the analyst may read."""
    names = {name.lower() for (name,) in con.execute(sql_file("analyst/readable_tables.sql")).fetchall()}
    return frozenset(names - BOOKKEEPING)


def warehouse_schema(con: duckdb.DuckDBPyConnection) -> dict[str, dict[str, str]]:
    """Column names and types of every table and view in the warehouse (for tracing evidence to its columns)."""
    schema: dict[str, dict[str, str]] = {}
    for table, column, kind in con.execute(sql_file("analyst/table_columns.sql")).fetchall():
        schema.setdefault(table.lower(), {})[column] = kind
    return schema


def _skeleton(text: str) -> str:
    """A text's letters and digits only: a path with its separators replaced still shows."""
    return "".join(c for c in text if c.isalnum()).lower()


def _shows_a_path(value, paths: list[str]) -> bool:
    """Whether a value shows one of `paths`: as text, as bytes (a BLOB), or with its separators changed."""
    if isinstance(value, bytes | bytearray | memoryview):
        text = bytes(value).decode("utf-8", errors="replace")
    else:
        text = value if isinstance(value, str) else str(value) if isinstance(value, list | dict | tuple) else ""
    if any(p in text for p in paths):
        return True
    skeleton = _skeleton(text)
    return any(len(s) >= 8 and s in skeleton for s in map(_skeleton, paths))


def fetch(con: duckdb.DuckDBPyConnection, sql: str, warehouse: Warehouse, max_rows: int = MAX_ROWS,
          time_limit: float = TIME_LIMIT_SECONDS) -> QueryResult:
    """Run a statement on a sandbox connection: at most `max_rows` rows and `time_limit` seconds, and no result that
    shows a path of this machine."""
    check_as_duckdb_reads(con, sql, warehouse_tables(con))
    timer = threading.Timer(time_limit, con.interrupt)
    try:
        timer.start()
        relation = con.execute(sql)
        rows = relation.fetchmany(max_rows + 1) if relation.description else []
        columns = [d[0] for d in relation.description or []]
        types = [str(d[1]) for d in relation.description or []]
    except duckdb.InterruptException as exc:
        raise SandboxError(f"the query ran longer than {time_limit:g} s and was stopped") from exc
    except duckdb.Error as exc:
        said = str(exc).splitlines()[0]  # error(x) says what x is: an error's text is a result too
        if _shows_a_path(said, _private_paths(warehouse.path)):
            said = f"{type(exc).__name__}: its message shows a file path of this machine and is not shown"
        raise SandboxError(said) from exc
    finally:
        timer.cancel()
    paths = _private_paths(warehouse.path)
    if any(_shows_a_path(v, paths) for row in rows for v in row):
        raise SandboxError("the result shows a file path of this machine: the analyst reads data only")
    return QueryResult(columns, rows[:max_rows], len(rows) > max_rows, types)


def run_query(warehouse: Warehouse, sql: str, max_rows: int = MAX_ROWS,
              time_limit: float = TIME_LIMIT_SECONDS) -> QueryResult:
    """Check one query against the warehouse's tables and run it in the sandbox's bounded process."""
    try:
        return bounded(_run_query_here, (warehouse, sql, max_rows, time_limit), time_limit + STOP_GRACE_SECONDS)
    except Overran:
        raise SandboxError(f"the query ran longer than {time_limit:g} s and was stopped") from None


def _run_query_here(warehouse: Warehouse, sql: str, max_rows: int, time_limit: float) -> QueryResult:
    with sandbox_connection(warehouse) as con:
        check_statement(sql, warehouse_tables(con))
        started()
        result = fetch(con, sql, warehouse, max_rows, time_limit)
        result.schema = warehouse_schema(con)
        return result


class Overran(SandboxError):
    """A bounded call that outlived its time; its process was killed."""


class Spent(Exception):
    """A bounded call's error after which its process is replaced (the error is carried in its argument)."""


class _Process:
    """A child Python that runs sandbox calls one at a time under a memory limit of its own."""

    def __init__(self) -> None:
        theirs_in, ours_out = os.pipe()
        ours_in, theirs_out = os.pipe()
        code = f"from reverie.analyst.sandbox import serve; serve({theirs_in}, {theirs_out})"
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        # its own session: a Ctrl-C meant for the command reaches the parent, which kills it
        self.popen = subprocess.Popen([sys.executable, "-c", code], pass_fds=(theirs_in, theirs_out), env=env,
                                      start_new_session=True, stdin=subprocess.DEVNULL)
        os.close(theirs_in)
        os.close(theirs_out)
        self.inbox, self.outbox = Connection(ours_in, writable=False), Connection(ours_out, readable=False)
        self.owner = os.getpid()

    def call(self, function: Callable, args: tuple, running_seconds: float):
        self.outbox.send((function, args))
        seconds = OPEN_SECONDS
        while True:
            if not self.inbox.poll(seconds):
                raise Overran("stopped")
            kind, payload = self.inbox.recv()  # EOFError: the process died
            if kind == "started":
                seconds = running_seconds
            elif kind == "error":
                raise payload
            elif kind == "spent":  # out of memory: what it holds on to may leave too little to start a thread
                raise Spent(payload)
            else:
                return payload

    def kill(self) -> None:
        self.popen.kill()
        self.popen.wait()
        self.inbox.close()
        self.outbox.close()


_PROCESS: _Process | None = None
_PROCESS_LOCK = threading.Lock()
_OUTBOX = None  # in the sandbox process: where `started` reports


def bounded(function: Callable, args: tuple, running_seconds: float):
    """`function(*args)` in the sandbox process: at most PROCESS_MEMORY of memory, and killed (Overran) when it runs
    `running_seconds` past its `started()` (or past opening, if it never says). The process is started once and
    replaced after a kill or a death."""
    global _PROCESS
    with _PROCESS_LOCK:
        if _PROCESS is None or _PROCESS.owner != os.getpid():  # a forked child has its own
            _PROCESS = _Process()
        try:
            return _PROCESS.call(function, args, running_seconds)
        except (Overran, Spent, EOFError, OSError) as exc:
            _PROCESS.kill()
            _PROCESS = None
            if isinstance(exc, Overran):
                raise
            if isinstance(exc, Spent):
                raise exc.args[0] from None
            raise SandboxError("the statement ended the sandbox's process (it needed more memory than the sandbox "
                               "allows) and was stopped") from None


def started() -> None:
    """Start the clock of the bounded call under way (after opening the warehouse, before the statement)."""
    if _OUTBOX is not None:
        _OUTBOX.send(("started", None))


@atexit.register
def _stop_process() -> None:
    if _PROCESS is not None and _PROCESS.owner == os.getpid():
        _PROCESS.kill()


def serve(inbox_fd: int, outbox_fd: int) -> None:
    """The sandbox process: limit its memory, then answer calls until the parent goes away."""
    global _OUTBOX
    parent = os.getppid()
    threading.Thread(target=_exit_with, args=(parent,), daemon=True).start()
    resource.setrlimit(resource.RLIMIT_DATA, (PROCESS_MEMORY, PROCESS_MEMORY))
    inbox, _OUTBOX = Connection(inbox_fd, writable=False), Connection(outbox_fd, readable=False)
    while True:
        try:
            function, args = inbox.recv()
        except EOFError:
            return
        try:
            answer = ("done", function(*args))
        except Exception as exc:  # noqa: BLE001 - every failure goes back to the caller, as it would in-process
            spent = not isinstance(exc, SandboxError) or "Out of Memory" in str(exc)
            answer = ("spent" if spent else "error",
                      exc if _picklable(exc) else RuntimeError(f"{type(exc).__name__}: {exc}"))
        _OUTBOX.send(answer)


def _exit_with(parent: int) -> None:
    """End the sandbox process within a second of its parent's end (a killed run leaves no reader holding the file)."""
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(0)


def _picklable(value) -> bool:
    try:
        pickle.loads(pickle.dumps(value))
    except Exception:  # noqa: BLE001 - any failure to carry it over means: carry its text instead
        return False
    return True
