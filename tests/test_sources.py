"""Source formats: every registered format finds, reads and describes its batches; jsonl end to end through ingest."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import duckdb
import pytest

from reverie.config import ConfigError, load_settings
from reverie.queries import literal
from reverie.sources import FORMATS, Reading, UnknownFormat, build_format
from reverie.sources.csv import CsvFiles, CsvOptions
from reverie.tasks.ingest import ingest_source
from tests.helpers import postgres
from tests.helpers.landing import write
from tests.helpers.object_storage import S3Server, s3_server
from tests.helpers.warehouse import query, rows_by_file

pytestmark = pytest.mark.without_prefect


# One tiny landing per registered format, and per file format in object storage too: two rows, event_time and
# amount; each returns its [sources.*] fields and sets what the source reads from the environment.

def _two_days(folder: Path, suffix: str, text: str) -> list[Path]:
    paths = []
    for day in (1, 2):
        paths.append(folder / "landing" / f"day{day}.{suffix}")
        paths[-1].parent.mkdir(exist_ok=True)
        if suffix == "parquet":
            duckdb.sql(f"copy (select timestamp '2026-03-0{day} 10:00' as event_time, {day} as amount) "
                       f"to '{paths[-1]}' (format parquet)")
        else:
            write(paths[-1], text.format(day=day))
    return paths


FILES = {"parquet": ("parquet", "", ""),
         "csv": ("csv", "event_time;amount\n2026-03-0{day} 10:00:00;{day}\n", '\ndelimiter = ";"'),
         "jsonl": ("jsonl", '{{"event_time": "2026-03-0{day} 10:00:00", "amount": {day}}}\n', "")}


def file_landing(format_name: str, folder: Path, servers) -> str:
    suffix, text, extra = FILES[format_name]
    _two_days(folder, suffix, text)
    return f'format = "{format_name}"\npath = "landing/*.{suffix}"{extra}'


def s3_landing(format_name: str, folder: Path, servers) -> str:
    suffix, text, extra = FILES[format_name]
    s3 = servers.s3()
    for path in _two_days(folder, suffix, text):
        s3.client.upload_file(str(path), "lake", f"{folder.name}/{path.name}")
    return f'format = "{format_name}"\npath = "s3://lake/{folder.name}/*.{suffix}"{extra}'


def duckdb_landing(format_name: str, folder: Path, servers) -> str:
    with duckdb.connect(str(folder / "crm.duckdb")) as crm:
        crm.execute("create table events as select * from (values (timestamp '2026-03-01 10:00', 1), "
                    "(timestamp '2026-03-02 10:00', 2)) as t(event_time, amount)")
    return 'format = "duckdb"\ndatabase = "crm.duckdb"\ntable = "events"'


def dbt_landing(format_name: str, folder: Path, servers) -> str:
    """A view dbt-duckdb built, naming its table by the file's catalog; dbt's run left no result to check."""
    with duckdb.connect(str(folder / "shop.duckdb")) as shop:
        shop.execute("create table raw_events as select * from (values (timestamp '2026-03-01 10:00', 1), "
                     "(timestamp '2026-03-02 10:00', 2)) as t(event_time, amount)")
        shop.execute('create view events as select * from "shop"."main"."raw_events"')
    return ('format = "dbt"\ndatabase = "shop.duckdb"\ntable = "main.events"\nproject_dir = "."\n'
            'relation = \'"shop"."main"."events"\'\ncomputed = { amount = "amount * 1" }')


def postgres_landing(format_name: str, folder: Path, servers) -> str:
    table = f"events_{abs(hash(folder.name))}"
    postgres.execute(servers.postgres(), f"create table {table} (event_time timestamp, amount integer)",
                     f"insert into {table} values ('2026-03-01 10:00', 1), ('2026-03-02 10:00', 2)")
    return f'format = "postgres"\nconnection_env = "PG_CONFORMANCE"\ntable = "{table}"\nchunk_rows = 1'


LANDINGS = {"parquet": file_landing, "csv": file_landing, "jsonl": file_landing, "duckdb": duckdb_landing,
            "postgres": postgres_landing, "dbt": dbt_landing}
CASES = [*sorted(FORMATS), *(pytest.param(f"{name} on s3", id=f"{name}-s3") for name in FILES)]
ROWS = {("2026-03-01 10:00:00", 1), ("2026-03-02 10:00:00", 2)}


class Servers:
    """The servers a landing needs, started on first use, for one test."""

    def __init__(self, request, monkeypatch) -> None:
        self.request, self.monkeypatch = request, monkeypatch

    def postgres(self) -> str:
        dsn = self.request.getfixturevalue("postgres_dsn")
        self.monkeypatch.setenv("PG_CONFORMANCE", dsn)
        return dsn

    def s3(self) -> S3Server:
        server = self.request.getfixturevalue("s3")
        for name, value in server.environment().items():
            self.monkeypatch.setenv(name, value)
        return server


@pytest.fixture(scope="module")
def postgres_dsn():
    if postgres.binaries() is None:
        pytest.skip("PostgreSQL is not installed (Debian: apt-get install postgresql)")
    with postgres.postgres_server() as dsn:
        yield dsn


@pytest.fixture(scope="module")
def s3():
    with s3_server() as server:
        yield server


def test_every_registered_format_has_a_landing_to_be_tested_on():
    assert set(LANDINGS) == set(FORMATS)


@pytest.mark.parametrize("case", CASES)
def test_a_format_finds_reads_and_describes_its_batches(tmp_path, case, request, monkeypatch):
    format_name, on_s3 = case.removesuffix(" on s3"), case.endswith(" on s3")
    fields_text = (s3_landing if on_s3 else LANDINGS[format_name])(format_name, tmp_path, Servers(request, monkeypatch))
    (tmp_path / "reverie.toml").write_text(f"[sources.things]\n{fields_text}\n")
    source = load_settings(tmp_path).sources["things"]
    source_format = build_format(source.name, source.format, source.options)
    reading = Reading(source=source.name, time_column="event_time", project_dir=tmp_path, cycle_id="c1")

    con = duckdb.connect()
    with source_format.opened(con, reading):
        batches = source_format.discover(con, reading)
        assert batches and len({batch.name for batch in batches}) == len(batches)
        # found again unchanged, a batch keeps its signature: nothing is reloaded for nothing
        assert [b.signature for b in source_format.discover(con, reading)] == [b.signature for b in batches]
        one_by_one = set()
        for batch in batches:
            described = source_format.describe(con, batch)
            assert set(described) == {"event_time", "amount"} and described["event_time"].startswith("TIMESTAMP")
            relation = source_format.read(batch)
            one_by_one |= {(batch.name, str(t), a) for t, a in con.execute(
                f"select event_time, amount from {relation.sql}", relation.params).fetchall()}
        together = source_format.read_together(batches, [7 + n for n in range(len(batches))])
        read_together = {(batches[b - 7].name, str(t), a) for b, t, a in con.execute(
            f"select _batch, event_time, amount from {together.sql}", together.params).fetchall()}
    assert read_together == one_by_one
    assert {(t, a) for _, t, a in one_by_one} == ROWS
    # what was opened for the read is closed again: nothing of the source stays attached or in a secret
    assert con.execute("select count(*) from duckdb_databases() where database_name like 'source_%'").fetchone() == (0,)
    assert con.execute("select count(*) from duckdb_secrets()").fetchone() == (0,)


def test_an_unknown_format_is_named_with_the_known_ones(tmp_path):
    (tmp_path / "reverie.toml").write_text('[sources.events]\nformat = "xml"\npath = "landing/*.xml"\n')
    known = "source 'events': format 'xml' is not one of parquet, csv, duckdb, jsonl"
    with pytest.raises(ConfigError, match=known) as info:
        load_settings(tmp_path)
    assert str(tmp_path / "reverie.toml") in str(info.value)
    with pytest.raises(UnknownFormat, match=known):
        build_format("events", "xml")


@pytest.mark.parametrize("text, message", [
    ('format = "jsonl"\n', r"\[sources.events\] needs path \(a glob of jsonl files\)"),
    ('format = "jsonl"\npath = "a/*.jsonl"\ndelimiter = ","\n',
     r"\[sources.events\]: unknown field 'delimiter' \(known for format jsonl: format, time_column, suite, timezone, path, endpoint, region, profile, url_style\)$"),
    ('format = "csv"\npath = "a/*.csv"\ndelimiter = 5\n', r"\[sources.events\] delimiter: expected text, got 5$"),
    ('format = "duckdb"\ndatabase = "crm.duckdb"\n', r"\[sources.events\] needs table"),
    ('format = "postgres"\ntable = "orders"\n', r"\[sources.events\] needs connection_env"),
    ('format = "postgres"\nconnection_env = "host=db user=me password=hunter2"\ntable = "orders"\n',
     r"\[sources.events\] connection_env must name an environment variable \(like PG_ORDERS\), not hold the "
     r"connection itself: a password never goes in reverie.toml$"),
    ('format = "postgres"\nconnection_env = "SHOP_DB"\ntable = "orders"\nquery = "select 1"\n',
     r"\[sources.events\] needs table or query \(one of them\)"),
    ('format = "postgres"\nconnection_env = "SHOP_DB"\ntable = "orders"\nchunk_rows = 0\n',
     r"\[sources.events\] chunk_rows"),
    ('format = "parquet"\npath = "landing/*.parquet"\nendpoint = "http://127.0.0.1:9000"\n',
     r"\[sources.events\] endpoint is for a path in object storage \(s3://...\), and path is 'landing/\*.parquet'"),
    ('format = "parquet"\npath = "s3://lake/*.parquet"\nurl_style = "virtual"\n',
     r"\[sources.events\] url_style = 'virtual': must be path or vhost"),
])
@pytest.mark.reliability("bad_input")
def test_a_format_checks_its_own_options_and_names_the_field(tmp_path, text, message):
    (tmp_path / "reverie.toml").write_text(f"[sources.events]\n{text}")
    with pytest.raises(ConfigError, match=message) as info:
        load_settings(tmp_path)
    assert str(tmp_path / "reverie.toml") in str(info.value)


def _jsonl_project(folder: Path):
    (folder / "reverie.toml").write_text('[sources.clicks]\nformat = "jsonl"\npath = "exports/clicks_*.jsonl"\n'
                                         'time_column = "clicked_at"\n')
    for day in (1, 2):
        write(folder / "exports" / f"clicks_0{day}.jsonl",
              "".join(f'{{"clicked_at": "2026-03-0{day}T{hour:02}:00:00", "page": "/p{hour}", "ms": {hour * 10}}}\n'
                      for hour in range(3)))
    settings = load_settings(folder)
    return settings, settings.sources["clicks"]


@pytest.mark.parametrize("left", ["named", "cut off after adding the numbers", "cut off after dropping the names"])
def test_raw_rows_that_carry_their_batch_by_name_are_numbered_at_the_next_ingest(tmp_path, monkeypatch, left):
    settings, source = _jsonl_project(tmp_path)
    assert ingest_source.fn(settings.warehouse, str(tmp_path), source, "c1")["files"] == 2
    with settings.warehouse.connect() as con:
        if left == "cut off after dropping the names":
            con.execute("alter table raw_clicks rename column _batch to _batch_number")
        else:  # as an earlier release left it: batches unnumbered, rows named
            con.execute("alter table raw_clicks alter _batch type varchar")
            con.execute("update raw_clicks set _batch = (select file from batches where batch_id = raw_clicks._batch::bigint)")
            con.execute("alter table batches drop column batch_id")
            con.execute("delete from schema_migrations where version = '028_add_batches_batch_id'")
            if left == "cut off after adding the numbers":
                con.execute("alter table raw_clicks add column _batch_number bigint")
    monkeypatch.setattr("reverie.warehouse._SCHEMA_CURRENT", set())  # the next release, in a new process
    assert ingest_source.fn(settings.warehouse, str(tmp_path), source, "c2")["files"] == 0
    assert query(settings, "select data_type from information_schema.columns where table_name = 'raw_clicks' "
                           "and column_name = '_batch'") == [("BIGINT",)]
    assert query(settings, rows_by_file("clicks", "count(*)")) == [("exports/clicks_01.jsonl", 3),
                                                                  ("exports/clicks_02.jsonl", 3)]
    # a file changed since: its rows found by their number and replaced, the other file's kept
    write(tmp_path / "exports" / "clicks_01.jsonl", '{"clicked_at": "2026-03-01T09:00:00", "page": "/p9", "ms": 90}\n',
          mtime=1_770_000_100)
    assert ingest_source.fn(settings.warehouse, str(tmp_path), source, "c3")["files"] == 1
    assert query(settings, rows_by_file("clicks", "count(*)")) == [("exports/clicks_01.jsonl", 1),
                                                                  ("exports/clicks_02.jsonl", 3)]
    assert query(settings, "select max(batch_id) from batches") == [(3,)]


def test_a_jsonl_source_loads_one_batch_per_file_and_reloads_a_changed_one(tmp_path):
    settings, source = _jsonl_project(tmp_path)
    first = ingest_source.fn(settings.warehouse, str(tmp_path), source, "c1")
    assert (first["files"], first["rows"], first["failed"]) == (2, 6, [])
    assert first["watermark"] == "2026-03-02T02:00:00"
    assert query(settings, rows_by_file("clicks", "count(*)", "max(ms)")) == \
        [("exports/clicks_01.jsonl", 3, 20), ("exports/clicks_02.jsonl", 3, 20)]

    assert ingest_source.fn(settings.warehouse, str(tmp_path), source, "c2")["files"] == 0  # nothing changed

    write(tmp_path / "exports" / "clicks_02.jsonl", '{"clicked_at": "2026-03-02T09:00:00", "page": "/p9", "ms": 90}\n',
          mtime=1_770_000_100)
    third = ingest_source.fn(settings.warehouse, str(tmp_path), source, "c3")
    assert (third["files"], third["rows"], third["watermark"]) == (1, 1, "2026-03-02T09:00:00")
    assert query(settings, rows_by_file("clicks", "list(page order by page)")) == [("exports/clicks_01.jsonl", ["/p0", "/p1", "/p2"]),
                                                                     ("exports/clicks_02.jsonl", ["/p9"])]
    assert query(settings, "select count(*) from raw_clicks") == [(4,)]


@pytest.mark.reliability("bad_input")
def test_a_bad_jsonl_file_fails_alone_named_and_is_reported_once(tmp_path):
    settings, source = _jsonl_project(tmp_path)
    exports = tmp_path / "exports"
    write(exports / "clicks_03.jsonl", '{"clicked_at": "2026-03-03T10:00:00", "page": "/p1", "ms": 5\n')  # cut short
    write(exports / "clicks_04.jsonl", '{"when": "2026-03-04T10:00:00", "page": "/p1", "ms": 5}\n')

    result = ingest_source.fn(settings.warehouse, str(tmp_path), source, "c1")
    assert (result["files"], result["rows"]) == (2, 6)  # the good files, loaded one by one
    errors = {failure["file"]: failure["error"] for failure in result["failed"]}
    assert set(errors) == {"exports/clicks_03.jsonl", "exports/clicks_04.jsonl"}
    assert errors["exports/clicks_03.jsonl"].startswith(str(exports / "clicks_03.jsonl"))
    assert "Malformed JSON" in errors["exports/clicks_03.jsonl"]
    assert errors["exports/clicks_04.jsonl"] == f"{exports / 'clicks_04.jsonl'}: time column 'clicked_at' is missing"
    assert query(settings, "select file, status from batches where status = 'rejected' order by 1") == \
        [("exports/clicks_03.jsonl", "rejected"), ("exports/clicks_04.jsonl", "rejected")]
    assert query(settings, "select status from source_state") == [("failed",)]

    again = ingest_source.fn(settings.warehouse, str(tmp_path), source, "c2")
    assert (again["files"], again["failed"]) == (0, [])  # unchanged: not tried again, not reported again

    write(exports / "clicks_03.jsonl", '{"clicked_at": "2026-03-03T10:00:00", "page": "/p1", "ms": 5}\n',
          mtime=1_770_000_100)
    fixed = ingest_source.fn(settings.warehouse, str(tmp_path), source, "c3")
    assert (fixed["files"], fixed["rows"], fixed["failed"]) == (1, 1, [])


@dataclass(frozen=True)
class CommentedCsvOptions(CsvOptions):
    comment: str = "#"
    KIND: ClassVar[str] = "csv"


class CommentedCsvFiles(CsvFiles):
    """A format made here the way the next one will be made: options in its Options, their use in its reader."""
    Options = CommentedCsvOptions

    def reader_options(self) -> list[str]:
        return [*super().reader_options(), f"comment = {literal(self.options.comment)}"]


def test_a_new_format_is_one_class_and_one_registry_entry(tmp_path, monkeypatch):
    monkeypatch.setitem(FORMATS, "csv_with_comments", CommentedCsvFiles)
    config = '[sources.spend]\nformat = "csv_with_comments"\npath = "spend_*.csv"\ntime_column = "day"\n'
    (tmp_path / "reverie.toml").write_text(config + 'comment = 5\n')
    with pytest.raises(ConfigError, match=r"\[sources.spend\] comment: expected text, got 5$"):
        load_settings(tmp_path)

    (tmp_path / "reverie.toml").write_text(config + 'comment = ";"\n')
    write(tmp_path / "spend_1.csv", "; exported by the ad platform\nday,cost\n2026-03-01,1.5\n; totals follow\n"
                                    "2026-03-03,4.5\n")
    settings = load_settings(tmp_path)
    result = ingest_source.fn(settings.warehouse, str(tmp_path), settings.sources["spend"], "c1")
    assert (result["files"], result["rows"]) == (1, 2)
    assert query(settings, "select cost from raw_spend order by day") == [(1.5,), (4.5,)]
