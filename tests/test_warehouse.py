"""The warehouse handle: migrations on new and old files, the lock named, SQL files filled one way."""

from __future__ import annotations

import sys
from pathlib import Path

import duckdb
import pytest

from reverie.commits import committed
from reverie.migrations import own_tables
from reverie.queries import SqlTemplateError, quoted, render
from reverie.warehouse import Warehouse, WarehouseBusy
from tests.helpers import processes
from tests.helpers.warehouse import held_by_another_process

MIGRATIONS = sorted(p.stem for p in (Path(__file__).parent.parent / "sql" / "migrations").glob("*.sql"))


def test_a_new_warehouse_gets_every_migration_once(tmp_path):
    warehouse = Warehouse(tmp_path / "w.duckdb")
    with warehouse.connect() as con:
        versions = [v for (v,) in con.execute("select version from schema_migrations order by version").fetchall()]
    assert versions == MIGRATIONS and versions[0] == "001_create_cycles"  # each file once, in order
    with duckdb.connect(str(warehouse)) as con:
        assert {t for (t,) in con.execute("select table_name from duckdb_tables()").fetchall()} == own_tables()


def test_a_warehouse_made_before_migrations_were_recorded_is_brought_up_to_date(tmp_path):
    path = tmp_path / "old.duckdb"
    with duckdb.connect(str(path)) as con:  # the candidates table as the first releases made it, with a row
        con.execute("""create table candidates (candidate_id varchar primary key, cycle_id varchar not null,
                       detector varchar not null, kind varchar not null, metric varchar not null, grain varchar not null,
                       dimension varchar not null, member varchar not null, period_start date not null, observed double,
                       expected double, magnitude double, direction varchar, favourable varchar, score double not null,
                       rank integer not null, evidence_sql varchar not null)""")
        con.execute("insert into candidates values ('c1', 'old', 'record', 'record', 'm', 'day', 'overall', 'all', "
                    "'2025-01-01', 2, 1, 1, 'up', 'good', 0.5, 1, 'select 1')")
    with Warehouse(path).connect() as con:
        columns = {c for (c,) in con.execute("select column_name from duckdb_columns() where table_name = 'candidates'").fetchall()}
        assert {"headline", "drivers", "related", "period_end"} <= columns
        assert con.execute("select candidate_id from candidates").fetchall() == [("c1",)]
        assert con.execute("select count(*) from schema_migrations").fetchone()[0] == len(MIGRATIONS)


@pytest.mark.reliability("fault")
def test_a_warehouse_held_by_another_process_is_named_not_a_traceback(tmp_path):
    warehouse = Warehouse(tmp_path / "w.duckdb", open_wait_seconds=1)  # not the 30 s a cycle's task waits
    with held_by_another_process(warehouse) as holder:
        with pytest.raises(WarehouseBusy, match=rf"w.duckdb is in use by another process \(PID {holder.pid}\).*"
                                                rf"waited 1 s"):
            with warehouse.connect():
                pass


def test_sql_files_take_quoted_identifiers_and_must_match_their_placeholders():
    assert quoted('odd "name"') == '"odd ""name"""'
    sql = render("staging/source.sql", identifiers={"raw_table": 'raw_x"; drop table memory; --'},
                 literals={"source": "it's"}, expressions={"local_time": ""})
    assert '"raw_x""; drop table memory; --"' in sql and "source = 'it''s'" in sql and "{{" not in sql
    with pytest.raises(SqlTemplateError, match="sql/staging/source.sql: placeholders"):
        render("staging/source.sql", identifiers={"raw_table": "raw_x"})


@pytest.mark.reliability("fault")
def test_ingest_retries_while_another_process_holds_the_warehouse_for_a_moment(make_project):
    from prefect import flow

    from reverie.tasks.ingest import ingest_source

    settings = make_project(days=3)

    @flow
    def ingest_once():
        return ingest_source(warehouse=settings.warehouse, project_dir=str(settings.project_dir),
                             source=settings.sources["events"], cycle_id="c1")

    with held_by_another_process(settings.warehouse, release="time.sleep(3)"):
        assert ingest_once()["files"] == 3  # the first try found the file held; a retry loaded every day


@pytest.mark.reliability("fault")
def test_the_cli_names_the_process_holding_the_warehouse_in_one_line(make_project, monkeypatch):
    settings = make_project(days=1)
    with held_by_another_process(settings.warehouse) as holder:
        listed = processes.run([Path(sys.executable).parent / "reverie", "memory", "list"],
                               cwd=settings.project_dir, timeout=120)
    assert listed.returncode == 1 and "Traceback" not in listed.stderr
    assert f"is in use by another process (PID {holder.pid})" in listed.stderr
    assert len(listed.stderr.strip().splitlines()) == 1


def test_a_commit_that_loses_a_race_writes_again_and_any_other_failure_is_raised_at_once(tmp_path, monkeypatch):
    from reverie import commits

    monkeypatch.setattr(commits, "COMMIT_RETRY_DELAYS", [0.01, 0.01])
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    con.execute("create table t as select 1 as id, 0 as v")
    other = con.cursor()  # another writer, committing in the middle of each try that `races` says loses
    tries = []

    def write(races: int):
        def attempt() -> int:
            tries.append(1)
            con.execute("select v from t").fetchall()  # the try's snapshot: from here on, others' commits race it
            if len(tries) <= races:
                other.execute("update t set v = v + 100 where id = 1")
            con.execute("update t set v = v + 1 where id = 1")
            return len(tries)
        return attempt

    assert committed(con, write(races=1)) == (2, 1)
    assert con.execute("select v from t").fetchone() == (101,)  # the other writer's, then the retried write's
    tries.clear()
    with pytest.raises(duckdb.TransactionException, match="Conflict"):
        committed(con, write(races=3))  # three losses: more than the retries
    assert len(tries) == 3 and con.execute("select v from t").fetchone() == (401,)
    tries.clear()

    def broken() -> None:
        tries.append(1)
        con.execute("update t set v = 'not a number'")

    with pytest.raises(duckdb.ConversionException):
        committed(con, broken)
    assert len(tries) == 1 and con.execute("select v from t").fetchone() == (401,)
