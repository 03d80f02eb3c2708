"""The analyst's SQL sandbox on a real warehouse file: each of its two locks alone stops every escape; limits hold."""

from __future__ import annotations

import base64
import binascii
import os
import shutil
import sqlite3
from pathlib import Path

import duckdb
import pytest

from reverie.analyst import sandbox
from reverie.analyst.evidence import trace_columns
from reverie.analyst.sandbox import (
    BOOKKEEPING,
    MAX_ROWS,
    SandboxError,
    check_statement,
    fetch,
    run_query,
    sandbox_connection,
)
from reverie.lake import Lake
from reverie.warehouse import Warehouse
from tests.helpers.sandbox import ESCAPES, TABLES, new_warehouse

pytestmark = pytest.mark.without_prefect

NOT_SQL = "select from where"


def files(folder: Path) -> list[str]:
    """Every file under a folder, relative to it. (Not folders: through the connection alone, a write refused by a
    read-only lake still leaves an empty folder for the table it would have made, under the lake's data path.)"""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if not p.is_dir())


def copied(template: Path, folder: Path, lake: bool) -> Warehouse:
    """A copy of a warehouse `new_warehouse` made in `template`, in `folder` (a copied lake's catalog is pointed at
    its own data path: DuckLake keeps the path it was made with)."""
    shutil.copytree(template, folder, dirs_exist_ok=True)
    if not lake:
        return Warehouse(folder / "warehouse.duckdb")
    with sqlite3.connect(folder / "lake.sqlite") as catalog:
        catalog.execute("update ducklake_metadata set value = ? where key = 'data_path'", [f"{folder}/lake/"])
    catalog.close()
    return Warehouse(folder / "warehouse.duckdb", lake=Lake(f"sqlite:{folder}/lake.sqlite", f"{folder}/lake/"))


@pytest.fixture(scope="session")
def warehouse_templates(tmp_path_factory) -> dict[str, Path]:
    """One warehouse of each kind, made once; every case works on a copy."""
    return {kind: new_warehouse(tmp_path_factory.mktemp(f"sandbox-{kind}"), lake=kind == "lake").folder
            for kind in ("file", "lake")}


_FILES: dict[Path, list[str]] = {}  # what each test's warehouse folder held when it was made


@pytest.fixture(params=["file", "lake"])
def warehouse(tmp_path, request, warehouse_templates):
    made = copied(warehouse_templates[request.param], tmp_path / "warehouse", lake=request.param == "lake")
    _FILES[made.folder] = files(made.folder)
    return made


def statement(template: str, warehouse: Warehouse) -> str:
    target = warehouse.lake.catalog.removeprefix("sqlite:") if warehouse.lake else warehouse.path
    return template.format(dir=warehouse.folder, warehouse=target)


# where a project keeps its warehouse, for statements only checked (a string check needs no warehouse)
SOMEWHERE = Path("/srv/shop/.reverie")
TARGETS = {"file": SOMEWHERE / "warehouse.duckdb", "lake": SOMEWHERE / "lake.sqlite"}


def read_only(warehouse: Warehouse) -> duckdb.DuckDBPyConnection:
    """A plain read-only connection to the warehouse, outside the sandbox."""
    if not warehouse.lake:
        return duckdb.connect(str(warehouse.path), read_only=True)
    con = duckdb.connect()
    warehouse.lake.attach(con, read_only=True)
    return con


def untouched(warehouse: Warehouse) -> None:
    """The memory row is still there as it was, and no file appeared beside the warehouse (or in its lake)."""
    with read_only(warehouse) as con:
        assert con.execute("select id, title from memory").fetchall() == [("mem-1", "kept")]
    assert files(warehouse.folder) == _FILES[warehouse.folder]


def private(warehouse: Warehouse) -> list[str]:
    """What no result may show: the warehouse's folder, the working folder, the home folder, a file's content."""
    return [str(warehouse.folder), str(Path.cwd()), os.path.expanduser("~"), "root:x:0", Path("/etc/hostname").read_text().strip()]


@pytest.mark.parametrize("template", ESCAPES)
@pytest.mark.reliability("escape", lock="statement check")
def test_the_statement_check_alone_refuses_every_escape(template):
    for target in TARGETS.values():  # aimed at a warehouse file and at a lake's catalog
        with pytest.raises(SandboxError):
            check_statement(template.format(dir=SOMEWHERE, warehouse=target), TABLES)


def decoded(value) -> str:
    """A text value read back the ways the escapes encode it: reversed, and from base64."""
    if not isinstance(value, str):
        return ""
    try:
        unpacked = base64.b64decode(value, validate=True).decode("utf-8", errors="replace")
    except (binascii.Error, ValueError):
        unpacked = ""
    return value[::-1] + unpacked


@pytest.mark.parametrize("template", ESCAPES)
@pytest.mark.reliability("escape", lock="connection")
def test_the_connection_alone_stops_every_escape(warehouse, template):
    """The statement check is skipped: what runs must fail, or show nothing private and change nothing."""
    with sandbox_connection(warehouse) as con:
        try:
            result = fetch(con, statement(template, warehouse), warehouse)
        except SandboxError:
            result = None
    if result is not None:
        shown = repr(result.rows) + "".join(decoded(v) for row in result.rows for v in row)
        assert not any(secret in shown for secret in private(warehouse)), shown
        letters = "".join(c for c in shown if c.isalnum())  # a path with its separators replaced still shows
        assert not any(len(s) >= 8 and s in letters for s in ("".join(c for c in p if c.isalnum())
                                                                for p in private(warehouse))), shown
    untouched(warehouse)


# the statement check refuses before a connection opens, so on a lake this only repeats the file's case: heavy tier
@pytest.mark.parametrize("warehouse", ["file", pytest.param("lake", marks=pytest.mark.heavy("a lake per case"))],
                         indirect=True)
@pytest.mark.parametrize("template", ESCAPES)
@pytest.mark.reliability("escape", lock="both")
def test_both_locks_together_refuse_with_a_reason(warehouse, template):
    with pytest.raises(SandboxError) as refused:
        run_query(warehouse, statement(template, warehouse))
    assert str(refused.value)
    untouched(warehouse)


@pytest.mark.parametrize("template", [f"select replace(cast(columns(*) as varchar), '/', '|') from main.{table}"
                                      for table in sorted(BOOKKEEPING)])
@pytest.mark.reliability("escape", lock="both")
def test_reverie_bookkeeping_is_not_the_analysts_to_read(template, warehouse_templates, tmp_path):
    """Cycles and deliveries hold machine paths (a brief's file, the stages' outputs) that a disguise would carry
    past any check of the results: no statement may name them, disguised or not."""
    warehouse = copied(warehouse_templates["file"], tmp_path / "warehouse", lake=False)
    with pytest.raises(SandboxError, match=f"no table 'main.{template.rpartition('.')[2]}' here"):
        run_query(warehouse, template)
    with sandbox_connection(warehouse) as con, pytest.raises(SandboxError, match="no table"):
        fetch(con, template, warehouse)  # the connection alone refuses them too
    readable = run_query(warehouse, "select count(*) from memory").rows
    assert readable == [(1,)]


def test_the_warehouse_tables_and_its_catalog_of_columns_are_readable(warehouse):
    assert run_query(warehouse, "select count(*) from orders").rows == [(1000,)]
    assert run_query(warehouse, "select count(*) from main.orders").rows == [(1000,)]
    assert run_query(warehouse, "with d as (select day from orders) select max(day) from d").rows == [(6,)]
    assert run_query(warehouse, "select * from range(3)").rows == [(0,), (1,), (2,)]
    columns = run_query(warehouse, "select column_name from information_schema.columns where table_name = 'orders'")
    assert columns.rows == [("id",), ("day",)]
    with pytest.raises(SandboxError, match="not valid SQL"):
        run_query(warehouse, NOT_SQL)


def test_queries_run_with_a_row_limit_a_time_limit_and_a_memory_limit(warehouse):
    result = run_query(warehouse, "with d as (select day, count(*) as n from orders group by day) select * from d order by day")
    assert result.columns == ["day", "n"] and len(result.rows) == 7 and not result.truncated
    assert result.values()[:2] == [0.0, 143.0]
    many = run_query(warehouse, "select * from orders")
    assert len(many.rows) == MAX_ROWS and many.truncated
    with pytest.raises(SandboxError, match="longer than 1 s"):
        run_query(warehouse, "select count(*) from range(100000000000) a, range(10) b", time_limit=1)
    with pytest.raises(SandboxError, match="Out of Memory"):
        run_query(warehouse, "select list(range) from range(200000000)")


# one expression whose single value DuckDB's memory limit does not cover: a list or a string of gigabytes
ONE_VALUE_TOO_BIG = ["select len(range(100000000))", "select length(repeat('x', 3000000000))",
                     "select len(list_sort(range(30000000)))", "select len(list_transform(range(1000000000), x -> x))"]


def _peak_kib() -> int:
    return int(Path("/proc/self/status").read_text().split("VmHWM:")[1].split()[0])


@pytest.mark.parametrize("kind", ["file", "lake"])
def test_one_expression_cannot_take_more_memory_than_the_sandbox_allows(kind, warehouse_templates, tmp_path):
    """DuckDB's memory_limit covers its buffers, not a vector's lists and strings: the sandbox's own process has an
    memory limit, so each of these is refused and this process does not grow."""
    warehouse = copied(warehouse_templates[kind], tmp_path / "warehouse", lake=kind == "lake")
    before = _peak_kib()
    assert run_query(warehouse, "select count(*) from orders").rows == [(1000,)]
    limits = Path(f"/proc/{sandbox._PROCESS.popen.pid}/limits").read_text()
    assert f"Max data size             {sandbox.PROCESS_MEMORY}" in limits
    for sql in ONE_VALUE_TOO_BIG:
        with pytest.raises(SandboxError, match="Out of Memory|memory than the sandbox allows|longer than 5 s"):
            run_query(warehouse, sql)
    assert _peak_kib() - before < 200 * 1024
    assert run_query(warehouse, "select count(*) from orders").rows == [(1000,)]


def test_a_statement_that_never_sees_the_interrupt_is_stopped_with_its_process(warehouse_templates, tmp_path,
                                                                               monkeypatch):
    """An interrupt is seen between vectors only (this one holds 20 million values); past the time limit and its
    grace, the statement's process is killed and replaced."""
    monkeypatch.setattr(sandbox, "STOP_GRACE_SECONDS", 0.2)
    warehouse = copied(warehouse_templates["file"], tmp_path / "warehouse", lake=False)
    run_query(warehouse, "select 1 from orders limit 1")
    first = sandbox._PROCESS.popen.pid
    with pytest.raises(SandboxError, match="longer than 0.1 s"):
        run_query(warehouse, "select list_sum(list_transform(range(20000000), x -> hash(hash(hash(hash(x)))) % 7))",
                  time_limit=0.1)
    assert sandbox._PROCESS is None and not Path(f"/proc/{first}").exists()
    assert run_query(warehouse, "select count(*) from orders").rows == [(1000,)]


def test_tracing_a_query_to_its_data_is_bounded_in_time():
    """Lineage is pure Python over the query's tree; self-joins with USING and * make it slow: it is stopped, and the
    columns count as unchecked evidence (not data)."""
    columns = {"metric": "VARCHAR", "member": "VARCHAR", "day": "DATE", "value": "DOUBLE"}
    joins = " ".join(f"join metric_values m{i} using (metric)" for i in range(1, 16))
    traces = trace_columns(f"select * from metric_values m0 {joins}", {"metric_values": columns}, 1 + 3 * 16,
                           seconds=0.3)
    assert {t.data for t in traces} == {False} and "within 0.3 s" in traces[0].why
    quick = trace_columns("select value from metric_values where metric = 'revenue'", {"metric_values": columns}, 1)
    assert quick[0].data and quick[0].filters == {"metric": {"revenue"}}


def test_every_numeric_and_temporal_type_duckdb_returns_counts_as_evidence(warehouse):
    result = run_query(warehouse, """select 1.5::decimal(18, 3) as dec, 2::hugeint as huge, 3::ubigint as unsigned,
        4::utinyint as tiny, 5.25::float as f, 6.5::double as d, true as flag, 'x' as word, 'nan'::double as nan,
        date '2026-01-05' as day, timestamp '2026-01-06 13:00' as ts, timestamptz '2026-01-07 10:00:00+00' as tz
        from orders limit 1""")
    assert result.values() == [1.5, 2.0, 3.0, 4.0, 5.25, 6.5]  # booleans, words and NaN are not numbers
    assert {d.isoformat() for d in result.dates()} == {"2026-01-05", "2026-01-06", "2026-01-07"}
