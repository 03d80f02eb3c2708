"""The analyst's SQL sandbox on a real warehouse file: what it refuses, what it runs, its limits."""

from __future__ import annotations

import pytest

from tasks.sandbox import MAX_ROWS, SandboxError, run_query
from tasks.warehouse import connect

HOSTILE = [
    ("select 1; select 2", "exactly one statement"),
    ("select * from memory; drop table memory", "exactly one statement"),
    ("drop table memory", "not DROP"),
    ("delete from memory", "not DELETE"),
    ("update memory set title = 'x'", "not UPDATE"),
    ("insert into memory (id) values ('x')", "not INSERT"),
    ("create table t as select 1", "not CREATE"),
    ("attach 'other.duckdb'", "not ATTACH"),
    ("install httpfs", "not INSTALL"),
    ("load httpfs", "only SELECT"),
    ("copy memory to '/tmp/stolen.csv'", "not COPY"),
    ("pragma show_tables", "not PRAGMA"),
    ("set enable_external_access = true", "not SET"),
    ("call pragma_version()", "only SELECT"),
    ("select * from read_csv('/etc/passwd')", "Cannot access file"),
    ("select * from read_text('/etc/hostname')", "read_text() is not available"),
    ("select * from glob('/etc/*')", "glob() is not available"),
    ("select (select count(*) from glob('/etc/*'))", "glob() is not available"),
    ("select * from 'https://example.com/x.csv'", "Cannot access file"),
    ("select getenv('HOME')", "getenv() is not available"),
    ("select current_setting('enable_external_access')", "current_setting() is not available"),
    ("select * from duckdb_settings()", "duckdb_settings() is not available"),
    ("select from where", "not valid SQL"),
]


@pytest.fixture
def warehouse(tmp_path):
    path = tmp_path / "warehouse.duckdb"
    with connect(path) as con:
        con.execute("create table orders as select range as id, range % 7 as day from range(1000)")
    return path


@pytest.mark.parametrize(("sql", "reason"), HOSTILE)
def test_anything_but_one_reading_query_is_refused_with_a_reason(warehouse, sql, reason):
    with pytest.raises(SandboxError, match=reason.replace("(", r"\(").replace(")", r"\)")):
        run_query(warehouse, sql)
    assert run_query(warehouse, "select count(*) from orders").rows == [(1000,)]  # nothing changed
    assert not (warehouse.parent / "stolen.csv").exists()


def test_queries_run_with_a_row_limit_and_a_time_limit(warehouse):
    result = run_query(warehouse, "with d as (select day, count(*) as n from orders group by day) select * from d order by day")
    assert result.columns == ["day", "n"] and len(result.rows) == 7 and not result.truncated
    assert result.values()[:2] == [0.0, 143.0]
    many = run_query(warehouse, "select * from orders")
    assert len(many.rows) == MAX_ROWS and many.truncated
    with pytest.raises(SandboxError, match="longer than 1 s"):
        run_query(warehouse, "select count(*) from range(100000000000) a, range(10) b", time_limit=1)
