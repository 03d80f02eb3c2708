"""A PostgreSQL source against a real server the tests start: a first read in chunks, nightly reads that pick up
late rows, corrections and deletions, a table written to while it is read, a connection dropped in the middle of a
read, a schema changed, wrong credentials — the source fails alone, in one line, and nothing is lost."""

from __future__ import annotations

import logging
import subprocess
import threading
import time

import pytest

from reverie.config import load_settings
from reverie.queries import literal
from reverie.tasks.ingest import ingest_source
from tests.helpers import postgres, processes
from tests.helpers.warehouse import query

pytestmark = [pytest.mark.without_prefect, pytest.mark.needs("postgresql")]

PASSWORD = "Tr0ub4dor&3-pg"


@pytest.fixture(scope="module")
def server():
    with postgres.postgres_server(password=PASSWORD) as dsn:
        yield f"{dsn} password={PASSWORD}"


class Shop:
    """A table of 3,000 orders on the server, one every 20 minutes from 2026-03-01, and a project reading it."""

    def __init__(self, dsn: str, folder, name: str) -> None:
        self.dsn, self.folder, self.table, self.cycles = dsn, folder, name, 0
        self.sql(f"drop table if exists {name} cascade",
                 f"create table {name} (id integer primary key, ordered_at timestamp not null, amount numeric(10, 2), "
                 "country text)",
                 f"insert into {name} select i, timestamp '2026-03-01' + i * interval '20 minutes', i % 97, "
                 f"(array['FR', 'DE', 'US'])[i % 3 + 1] from generate_series(0, 2999) i")
        self.project(f'table = "{name}"')

    def project(self, read: str, connection_env: str = "PG_SHOP") -> None:
        (self.folder / "reverie.toml").write_text(
            f'[sources.orders]\nformat = "postgres"\nconnection_env = "{connection_env}"\n{read}\n'
            'time_column = "ordered_at"\nchunk_rows = 1000\n')
        self.settings = load_settings(self.folder)

    def sql(self, *statements: str) -> None:
        postgres.execute(self.dsn, *statements)

    def cycle(self) -> dict:
        """One cycle's ingest of the source; its summary."""
        self.cycles += 1
        return ingest_source.fn(self.settings.warehouse, str(self.folder), self.settings.sources["orders"],
                                f"c{self.cycles}")

    def on_server(self) -> list[tuple]:
        with postgres.attached(self.dsn) as con:
            return con.execute(f"select id, ordered_at, amount, country from server.{self.table} order by id").fetchall()

    def scalar(self, sql: str):
        """What a statement run by the server itself returns."""
        with postgres.attached(self.dsn) as con:
            return con.execute(f"select * from postgres_query('server', {literal(sql)})").fetchone()[0]

    def in_warehouse(self) -> list[tuple]:
        return query(self.settings, "select id, ordered_at, amount, country from raw_orders order by id")


@pytest.fixture
def shop(server, tmp_path, monkeypatch, request):
    monkeypatch.setenv("PG_SHOP", server)
    return Shop(server, tmp_path, f"orders_{abs(hash(request.node.name)) % 10**8}")


def until(condition, what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"waited {timeout:.0f} s for {what}"
        time.sleep(0.05)


def test_a_first_read_goes_in_chunks_and_nightly_reads_take_late_rows_corrections_and_deletions(shop, caplog):
    caplog.set_level(logging.INFO)
    first = shop.cycle()
    assert first["failed"] == [] and first["rows"] == 3000 and first["files"] == 3  # three chunks of ~1,000
    progress = [line for line in caplog.messages if "chunks read" in line]
    assert [line.split(",")[0] for line in progress] == [f"ingest orders: {n} of 3 chunks read" for n in (1, 2, 3)]
    assert progress[-1].split(", ")[1] == "3000 rows" and progress[-1].endswith("about 0 s left")
    assert shop.in_warehouse() == shop.on_server()
    chunks = [n for (n,) in query(shop.settings, "select rows from batches order by first_event")]
    assert sum(chunks) == 3000 and all(900 <= n <= 1100 for n in chunks)

    # between cycles: a new order, a late one inside the look-back, one corrected and one deleted the day before
    shop.sql(f"insert into {shop.table} values (5000, timestamp '2026-04-12 08:00', 1, 'FR')",
             f"insert into {shop.table} values (5001, timestamp '2026-04-11 23:00', 2, 'DE')",
             f"update {shop.table} set amount = 999 where id = 2990",
             f"delete from {shop.table} where id = 2995")
    second = shop.cycle()
    assert second["failed"] == [] and second["files"] == 1
    assert shop.in_warehouse() == shop.on_server()  # nothing twice, the correction in, the deletion out
    assert len(shop.in_warehouse()) == 3001

    assert shop.cycle()["failed"] == [] and shop.in_warehouse() == shop.on_server()  # a quiet night changes nothing


def test_rows_without_a_time_are_read_by_a_first_read_in_chunks(shop):
    # chunks are windows of time: the first takes the rows no window holds, as a first read in one piece does
    shop.sql(f"alter table {shop.table} alter column ordered_at drop not null",
             f"insert into {shop.table} values (4000, null, 5, 'FR')")
    first = shop.cycle()
    assert first["failed"] == [] and first["files"] > 1 and first["rows"] == 3001
    assert shop.in_warehouse() == shop.on_server()
    assert shop.cycle()["failed"] == [] and shop.in_warehouse() == shop.on_server()  # kept by the nights after


def test_a_table_written_to_while_it_is_read_is_caught_up_by_the_next_cycle(shop):
    stop, written = threading.Event(), []

    def write():
        while not stop.is_set():  # an order a minute on the last day, each committed alone
            i = len(written)
            shop.sql(f"insert into {shop.table} values ({10_000 + i}, timestamp '2026-04-11' + interval '{i} minutes', "
                     "1, 'US')")
            written.append(i)

    writer = threading.Thread(target=write)
    writer.start()
    try:
        assert shop.cycle()["failed"] == []
    finally:
        stop.set()
        writer.join()
    assert written
    assert shop.cycle()["failed"] == []
    assert shop.in_warehouse() == shop.on_server()


def test_a_chunk_that_fails_keeps_the_chunks_before_it_and_the_next_cycle_reads_on(shop):
    # the rows from April on divide by a knob set to 0: the last chunk of the first read fails, the others do not
    shop.sql("drop table if exists knob", "create table knob (d integer)", "insert into knob values (0)")
    shop.project(f'query = "select id, ordered_at, amount / case when ordered_at >= timestamp \'2026-04-01\' then '
                 f'(select d from knob) else 1 end as amount, country from {shop.table}"')
    first = shop.cycle()
    (failure,) = first["failed"]
    assert failure["error"].endswith("): PostgreSQL: division by zero")
    assert first["files"] == 2 and first["rows"] == 2000
    assert query(shop.settings, "select count(*) from raw_orders where ordered_at >= '2026-04-01'") == [(0,)]
    shop.sql("update knob set d = 1")
    assert shop.cycle()["failed"] == []
    assert shop.in_warehouse() == shop.on_server()


def test_a_connection_dropped_in_the_middle_of_a_read_loses_nothing_and_the_next_cycle_goes_on(shop):
    # reading the rows from April on takes a lock another session can hold: a read then waits, and is cut off
    shop.sql(f"create view {shop.table}_read as select * from {shop.table} where case when ordered_at >= "
             "timestamp '2026-04-01' then pg_advisory_xact_lock_shared(42)::text = '' else true end")
    shop.project(f'table = "{shop.table}_read"')
    assert shop.cycle()["failed"] == []
    before = shop.in_warehouse()
    shop.sql(f"update {shop.table} set amount = 0 where ordered_at >= '2026-04-11'")

    # another session (psql, kept open) holds the lock
    with processes.started([postgres.program("psql"), "-q", shop.dsn], stdin=subprocess.PIPE, text=True) as holder:
        holder.stdin.write("select pg_advisory_lock(42);\n")
        holder.stdin.flush()
        until(lambda: shop.scalar("select count(*) from pg_locks where locktype = 'advisory' and granted"),
              "the lock to be held")
        summaries = []
        reader = threading.Thread(target=lambda: summaries.append(shop.cycle()))
        reader.start()
        waiting = "from pg_stat_activity where wait_event = 'advisory'"
        until(lambda: shop.scalar(f"select count(*) {waiting}"), "the read to wait on the lock")
        shop.scalar(f"select count(pg_terminate_backend(pid)) {waiting}")
        reader.join()
    # the holder's session is gone, and its lock with it
    (failure,) = summaries[0]["failed"]
    assert failure["error"] == (f"postgres {shop.table}_read ($PG_SHOP): the connection to the database was lost "
                                "during the read; nothing of this read was kept")
    assert PASSWORD not in failure["error"]
    assert shop.in_warehouse() == before  # the read's window was not emptied, nor half loaded
    assert shop.cycle()["failed"] == []
    assert shop.in_warehouse() == shop.on_server()


@pytest.mark.reliability("fault")
def test_a_column_dropped_or_a_table_renamed_fails_the_source_alone_in_one_line(shop):
    assert shop.cycle()["failed"] == []
    loaded = shop.in_warehouse()
    shop.sql(f"alter table {shop.table} drop column country")
    (failure,) = shop.cycle()["failed"]
    assert "column 'country' is missing" in failure["error"] and "\n" not in failure["error"]
    shop.sql(f"alter table {shop.table} rename to {shop.table}_old")
    (failure,) = shop.cycle()["failed"]
    assert failure["error"] == f'postgres {shop.table} ($PG_SHOP): PostgreSQL: relation "{shop.table}" does not exist'
    assert shop.in_warehouse() == loaded
    assert query(shop.settings, "select status from source_state") == [("failed",)]


@pytest.mark.reliability("fault")
@pytest.mark.parametrize("connection", ["wrong password", "unreachable", "unset"])
def test_a_database_that_cannot_be_reached_fails_the_source_without_showing_the_password(shop, monkeypatch,
                                                                                          connection, caplog):
    assert shop.cycle()["failed"] == []
    loaded = shop.in_warehouse()
    settings = {"wrong password": shop.dsn.replace(PASSWORD, "wrong-Pa55word"),
                "unreachable": shop.dsn.replace("port=", "port=1") + "",
                "unset": None}[connection]
    if settings is None:
        monkeypatch.delenv("PG_SHOP")
    else:
        monkeypatch.setenv("PG_SHOP", settings)
    summary = shop.cycle()
    (failure,) = summary["failed"]
    assert "\n" not in failure["error"]
    said = failure["error"] + caplog.text + str(query(shop.settings, "select * from source_state"))
    assert PASSWORD not in said and "wrong-Pa55word" not in said
    assert {"wrong password": "password authentication failed", "unreachable": "Unable to connect",
            "unset": "environment variable PG_SHOP is not set"}[connection] in failure["error"]
    assert shop.in_warehouse() == loaded
    monkeypatch.setenv("PG_SHOP", shop.dsn)
    assert shop.cycle()["failed"] == []
