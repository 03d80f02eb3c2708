"""CSV exports as real pipelines write them: declared nulls, types, formats and encodings; types stable across days;
a refused file tried again once its declaration is fixed, or when `reverie retry` asks."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from reverie.cli.commands import app
from reverie.config import ConfigError, load_settings
from reverie.tasks.ingest import ingest_source
from tests.helpers.landing import write
from tests.helpers.warehouse import query

pytestmark = pytest.mark.without_prefect

SPEND = '[sources.spend]\nformat = "csv"\npath = "exports/spend_*.csv"\ntime_column = "day"\n'


def project(folder: Path, fields: str = ""):
    (folder / "reverie.toml").write_text(SPEND + fields)
    settings = load_settings(folder)
    return settings, settings.sources["spend"]


def land(folder: Path, day: int, rows: list[str], mtime: int = 1_770_000_000) -> Path:
    return write(folder / "exports" / f"spend_0{day}.csv",
                 "day,amount,code\n" + "".join(f"2026-03-0{day},{row}\n" for row in rows), mtime)


def ingest(folder: Path, source, cycle_id: str) -> dict:
    return ingest_source.fn(load_settings(folder).warehouse, str(folder), source, cycle_id)


def test_a_column_with_na_on_some_days_loads_every_day_as_its_established_type(tmp_path):
    settings, source = project(tmp_path, 'null_strings = ["NA"]\n')
    land(tmp_path, 1, ["NA,A1", "2,B7"])
    assert ingest(tmp_path, source, "c1")["failed"] == []
    # sniffed alone, day 2's codes are numbers and day 3's amounts text: read as the days before them were
    land(tmp_path, 2, ["3,007", "4,012"])
    land(tmp_path, 3, ["NA,C3", "NA,D4"])
    second = ingest(tmp_path, source, "c2")
    assert (second["files"], second["rows"], second["failed"]) == (2, 4, [])
    assert query(settings, "select column_name, data_type from information_schema.columns "
                           "where table_name = 'raw_spend' and column_name in ('amount', 'code') order by 1") == \
        [("amount", "BIGINT"), ("code", "VARCHAR")]
    assert query(settings, "select day::varchar, amount, code from raw_spend order by all") == [
        ("2026-03-01", 2, "B7"), ("2026-03-01", None, "A1"), ("2026-03-02", 3, "007"), ("2026-03-02", 4, "012"),
        ("2026-03-03", None, "C3"), ("2026-03-03", None, "D4")]


def test_integer_column_is_still_widened_when_decimals_appear(tmp_path):
    settings, source = project(tmp_path)
    land(tmp_path, 1, ["1,A1"])
    land(tmp_path, 2, ["2.5,A2"])
    assert ingest(tmp_path, source, "c1")["failed"] == []
    assert query(settings, "select amount from raw_spend order by 1") == [(1.0,), (2.5,)]


def test_an_na_day_is_refused_naming_file_and_column_then_loaded_once_null_strings_are_declared(tmp_path):
    settings, source = project(tmp_path)
    land(tmp_path, 1, ["1,A1", "2,A2"])
    assert ingest(tmp_path, source, "c1")["files"] == 1
    land(tmp_path, 2, ["NA,B1", "3,B2"])
    refused = ingest(tmp_path, source, "c2")
    assert refused["files"] == 0
    (failure,) = refused["failed"]
    assert failure["file"] == "exports/spend_02.csv"
    assert failure["error"].startswith(str(tmp_path / "exports" / "spend_02.csv") + ": ")
    assert 'column "amount"' in failure["error"] and '"NA"' in failure["error"] and "\n" not in failure["error"]
    assert ingest(tmp_path, source, "c3")["failed"] == []  # unchanged file and declaration: not tried again

    settings, source = project(tmp_path, 'null_strings = ["NA", ""]\n')
    fixed = ingest(tmp_path, source, "c4")
    assert (fixed["files"], fixed["rows"], fixed["failed"]) == (1, 2, [])
    assert query(settings, "select file, status from batches order by 1") == \
        [("exports/spend_01.csv", "loaded"), ("exports/spend_02.csv", "loaded")]
    assert query(settings, "select count(*) from raw_spend where amount is null") == [(1,)]


def test_declared_column_types_header_and_date_format(tmp_path):
    (tmp_path / "reverie.toml").write_text(
        '[sources.spend]\nformat = "csv"\npath = "exports/*.csv"\ntime_column = "column0"\nheader = false\n'
        'delimiter = ";"\nquote = "\'"\ndate_format = "%d/%m/%Y"\n'
        'columns = { column1 = "DOUBLE", column2 = "VARCHAR" }\n')
    write(tmp_path / "exports" / "a.csv", "01/03/2026;1;007\n02/03/2026;2;'0;8'\n")
    settings = load_settings(tmp_path)
    result = ingest_source.fn(settings.warehouse, str(tmp_path), settings.sources["spend"], "c1")
    assert (result["files"], result["rows"], result["failed"]) == (1, 2, [])
    assert query(settings, "select column0::varchar, column1, column2 from raw_spend order by 1") == \
        [("2026-03-01", 1.0, "007"), ("2026-03-02", 2.0, "0;8")]


def test_a_latin1_export_is_read_when_its_encoding_is_declared(tmp_path):
    settings, source = project(tmp_path)
    path = tmp_path / "exports" / "spend_01.csv"
    path.parent.mkdir()
    path.write_bytes("day,amount,city\n2026-03-01,1,Zürich\n".encode("latin-1"))
    refused = ingest(tmp_path, source, "c1")
    assert refused["files"] == 0 and refused["failed"][0]["error"].startswith(str(path))

    settings, source = project(tmp_path, 'encoding = "latin-1"\n')
    loaded = ingest(tmp_path, source, "c2")
    assert (loaded["files"], loaded["failed"]) == (1, [])
    assert query(settings, "select city from raw_spend") == [("Zürich",)]


@pytest.mark.parametrize("fields, message", [
    ('columns = { amount = "MONEY" }\n', r"\[sources.spend\] columns.amount = 'MONEY': .*MONEY does not exist"),
    ('columns = { amount = 5 }\n', r"\[sources.spend\] columns.amount = 5: must be a DuckDB type name"),
    ('encoding = "klingon"\n', r"\[sources.spend\] encoding = 'klingon': .*does not support the encoding"),
    ('quote = "<>"\n', r"\[sources.spend\] quote = '<>': .*cannot exceed a size of 1 byte"),
    ('timestamp_format = "%Q"\n', r"\[sources.spend\] timestamp_format = '%Q': .*Unrecognized format"),
    ('null_strings = ["NA", 0]\n', r"\[sources.spend\] null_strings = \['NA', 0\]: must be a list of text"),
    ('header = "yes"\n', r"\[sources.spend\] header: expected true or false, got 'yes'$"),
])
def test_a_csv_option_that_cannot_work_is_named_with_the_file_and_the_source(tmp_path, fields, message):
    with pytest.raises(ConfigError, match=message) as info:
        project(tmp_path, fields)
    assert str(info.value).startswith(str(tmp_path / "reverie.toml"))


def test_reverie_retry_marks_rejected_batches_and_the_next_ingest_loads_them(tmp_path, monkeypatch):
    settings, source = project(tmp_path)
    land(tmp_path, 1, ["1,101", "2,102"])
    land(tmp_path, 2, ["3,B7"])
    first = ingest(tmp_path, source, "c1")
    assert first["files"] == 1 and 'column "code"' in first["failed"][0]["error"]
    # the data is right, the warehouse's type was not: fixed in the warehouse, where no declaration changes
    with duckdb.connect(str(settings.warehouse)) as con:
        con.execute("alter table raw_spend alter column code type varchar")
    assert ingest(tmp_path, source, "c2")["failed"] == []  # not tried again by itself

    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    unknown = runner.invoke(app, ["retry", "nothing", "--json"])
    assert unknown.exit_code == 2 and "no source 'nothing' in reverie.toml (declared: spend)" in unknown.output
    outcome = runner.invoke(app, ["retry", "spend", "--json"])
    assert outcome.exit_code == 0, outcome.output
    assert json.loads(outcome.stdout) == {"source": "spend", "retried": 1}
    assert query(settings, "select file, status from batches where status <> 'loaded'") == \
        [("exports/spend_02.csv", "retry")]

    retried = ingest(tmp_path, source, "c3")
    assert (retried["files"], retried["rows"], retried["failed"]) == (1, 1, [])
    assert query(settings, "select code from raw_spend order by 1") == [("101",), ("102",), ("B7",)]
    assert json.loads(runner.invoke(app, ["retry", "--json"]).stdout) == {"source": None, "retried": 0}


def test_a_filter_that_never_matches_a_column_of_na_text_is_a_warning_not_a_silent_zero(tmp_path):
    from reverie.tasks.metrics import refresh_metrics

    settings, source = project(tmp_path)  # no null_strings: 'NA' stays text
    rows = [f"{'NA' if k % 50 == 0 else k},C{k}" for k in range(600)]
    land(tmp_path, 1, rows)
    land(tmp_path, 2, rows)
    (tmp_path / "metrics").mkdir()
    (tmp_path / "metrics" / "spend.yml").write_text(
        "metrics:\n  - name: missing_amounts\n    model: spend\n    time_column: day\n"
        "    filter: amount is null\n    measure: {agg: count}\n")
    assert ingest(tmp_path, source, "c1")["failed"] == []
    summary = refresh_metrics(settings.warehouse, "c1", settings.sources, str(settings.models_dir),
                                 str(settings.metrics_dir))
    assert summary["errors"] == []
    [(check, severity, message)] = query(settings, "select expectation, severity, message from quality_results "
                                                   "where source = 'metrics' and not success")
    assert (check, severity) == ("matches", "warning")
    assert message.startswith("its filter `amount is null` matched none of the 1,200 rows of spend: every value is 0")
