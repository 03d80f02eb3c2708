"""Bad input, as nights bring it: a new day's file spoilt every way files are, a source that vanished, broken or
changed declarations. Each gets a clear error naming the file, column or field, or a quarantine — through the
command a user runs (`reverie run`), never a traceback — and nothing stored before is lost."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from reverie.cli.commands import app
from reverie.generator import generate
from tests.helpers.warehouse import rows_by_file

NEW_DAY = "landing/events/date=2026-02-04/part-0.parquet"  # the day landed after the first cycle's 30
NEW_DAY_START = datetime(2026, 2, 4)
# what was stored before, by key: none of it may be gone after a bad night
STORED = {
    "batches": "select source, file from batches where status = 'loaded'",
    "metric_values": "select metric, grain, period_start, dimension, member from metric_values "
                     "where period_start < date '2026-02-03'",
    "memory": "select id from memory",
    "raw rows": rows_by_file("events", "count(*)"),
}


def query(project: Path, sql: str, params=None) -> list[tuple]:
    with duckdb.connect(str(project / ".reverie" / "warehouse.duckdb"), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def stored(project: Path) -> dict[str, set]:
    return {name: set(query(project, sql)) for name, sql in STORED.items()}


def daily(project: Path, metric: str) -> dict:
    """A metric's daily values of the whole business, by day: value and the cycle that computed it."""
    return {day: (value, cycle) for day, value, cycle in query(project, """
        select period_start, value, cycle_id from metric_values
        where metric = ? and grain = 'day' and dimension = 'overall'""", [metric])}


def rewrite_new_day(select: str) -> Callable[[Path], None]:
    """Replace the new day's Parquet file with `select` over it (`day` is the file as it was)."""
    def spoil(project: Path) -> None:
        path = project / NEW_DAY
        with duckdb.connect() as con:
            con.execute(f"create table day as select * from read_parquet('{path}', hive_partitioning = false)")
            con.execute(f"copy ({select}) to '{path}.tmp' (format parquet)")
        Path(f"{path}.tmp").replace(path)
    return spoil


def write_new_day(data: bytes | Callable[[bytes], bytes]) -> Callable[[Path], None]:
    def spoil(project: Path) -> None:
        path = project / NEW_DAY
        path.write_bytes(data(path.read_bytes()) if callable(data) else data)
    return spoil


def edit(file: str, old: str, new: str) -> Callable[[Path], None]:
    """Replace `old` by `new` in one of the project's files (it must be there)."""
    def spoil(project: Path) -> None:
        path = project / file
        text = path.read_text()
        assert old in text, (file, old)
        path.write_text(text.replace(old, new, 1))
    return spoil


def remove_landing(project: Path) -> None:
    shutil.rmtree(project / "landing" / "events")


def add_csv_source(content: bytes) -> Callable[[Path], None]:
    """A second source, `orders`, read from CSV files, with one file holding `content`."""
    def spoil(project: Path) -> None:
        (project / "exports").mkdir()
        (project / "exports" / "orders_2026-02-04.csv").write_bytes(content)
        with (project / "reverie.toml").open("a") as toml:
            toml.write('\n[sources.orders]\nformat = "csv"\npath = "exports/orders_*.csv"\ntime_column = "created_at"\n')
    return spoil


@dataclass
class Case:
    spoil: Callable[[Path], None]
    said: str           # what the output must say: the file, column or field at fault ("": nothing is at fault)
    outcome: str        # quarantined | file failed | refused (nothing ran) | loaded | recomputed
    metrics: int | None = None  # how many metrics were still computed (of the demo's 7)
    recomputed: str | None = None  # recomputed: the metric whose every day this cycle computed again
    unchecked: int = 0  # how many new batches went in unchecked (a suite that cannot run): said so, never "passed"


LATIN1_CSV = "order_id,created_at,customer,amount\n1,2026-02-04 10:00:00,Müller,12.5\n".encode("latin-1")
CASES = {
    "schema drift: a column renamed": Case(rewrite_new_day("select * rename (amount as amount_eur) from day"),
                                           "amount", "file failed"),
    "schema drift: a column dropped": Case(rewrite_new_day("select * exclude (country) from day"), "country",
                                           "file failed"),
    "schema drift: a column added": Case(rewrite_new_day("select *, 'x' as coupon from day"),
                                         "unexpected column 'coupon'", "file failed"),
    "schema drift: a column's type changed": Case(
        rewrite_new_day("select * replace (cast(event_time as varchar) as event_time) from day"), "event_time",
        "file failed"),
    "corrupt parquet": Case(write_new_day(b"PAR1 this is not parquet at all PAR1"), NEW_DAY, "file failed"),
    "parquet cut short": Case(write_new_day(lambda data: data[: len(data) // 2]), NEW_DAY, "file failed"),
    "empty file (0 bytes)": Case(write_new_day(b""), NEW_DAY, "file failed"),
    "parquet with no rows": Case(rewrite_new_day("select * from day limit 0"), "no rows", "file failed"),
    "wrong types: amounts as words": Case(
        rewrite_new_day("select * replace (if(amount > 0, 'lots', null) as amount) from day"), "amount",
        "file failed"),
    "null keys": Case(rewrite_new_day("select * replace (if(event_type = 'order', null, event_id) as event_id) "
                                      "from day"), "event_id", "quarantined"),
    "duplicate events": Case(rewrite_new_day("select * from day union all (select * from day limit 50)"),
                             "event_id", "quarantined"),
    "far-future timestamps": Case(rewrite_new_day(
        "select * replace (if(event_type = 'order', event_time + interval 900 year, event_time) as event_time) "
        "from day"), "event_time", "quarantined"),
    "far-past timestamps": Case(rewrite_new_day(
        "select * replace (if(event_type = 'order', event_time - interval 126 year, event_time) as event_time) "
        "from day"), "event_time", "quarantined"),
    "null timestamps": Case(rewrite_new_day("select * replace (null::timestamp as event_time) from day"),
                            "event_time", "quarantined"),
    "extreme outliers": Case(rewrite_new_day("select * replace (if(amount > 0, amount * 1e12, amount) as amount) "
                                             "from day"), "amount", "quarantined"),
    "infinite and NaN amounts": Case(rewrite_new_day(
        "select * replace (if(amount > 0, 'inf'::double, amount) as amount) from day "
        "union all (select * replace ('nan'::double as amount) from day limit 3)"), "amount", "quarantined"),
    "huge strings": Case(rewrite_new_day("select * replace (if(event_type = 'order', repeat('x', 2000000), country) "
                                         "as country) from day"), "", "loaded"),
    "non-UTF-8 CSV": Case(add_csv_source(LATIN1_CSV), "orders_2026-02-04.csv", "file failed"),
    "a missing landing folder": Case(remove_landing, "landing/events: no such folder", "file failed"),
    "malformed reverie.toml": Case(edit("reverie.toml", "[project]", "[project"), "reverie.toml", "refused"),
    "reverie.toml: a field of the wrong type": Case(
        edit("reverie.toml", "[project]\n", "[project]\nlookback_days = 'two'\n"), "lookback_days", "refused"),
    "reverie.toml: a suite that is not declared": Case(
        edit("reverie.toml", 'suite = "demo_events"', 'suite = "demo_evnts"'),
        "[sources.events] suite: 'demo_evnts' is not declared in", "refused"),
    "reverie.toml: an unknown source format": Case(
        edit("reverie.toml", 'format = "parquet"', 'format = "xlsx"'), "xlsx", "refused"),
    "malformed metric declaration (YAML)": Case(edit("metrics/shop.yml", "metrics:\n", "metrics:\n  - {name: [\n"),
                                                "shop.yml", "loaded", metrics=0),
    "metric declaration: an unknown aggregate": Case(edit("metrics/shop.yml", "{agg: count}", "{agg: median_ish}"),
                                                     "(sessions): measure.agg", "loaded", metrics=6),
    "metric declaration: an unknown column": Case(edit("metrics/shop.yml", "dimensions: [country, channel, device]",
                                                       "dimensions: [country, chanel, device]"), "chanel", "loaded",
                                                  metrics=6),
    "malformed quality declaration (YAML)": Case(edit("quality/demo.yml", "suites:\n", "suites:\n  demo_events: [\n"),
                                                 "demo.yml", "loaded", unchecked=1),
    "quality declaration: an unknown check": Case(
        edit("quality/demo.yml", "{check: not_null, column: event_id}", "{check: not_nul, column: event_id}"),
        "not_nul", "loaded", unchecked=1),
    "a metric declaration changed": Case(edit("metrics/shop.yml", "{agg: sum, expr: amount, filter: status = 'paid'}",
                                              "{agg: sum, expr: amount * 0.9, filter: status = 'paid'}"),
                                         "", "recomputed", recomputed="revenue"),
    "a metric declaration removed": Case(edit("metrics/shop.yml", "  - name: sessions\n", "  - name: visits\n"),
                                         "", "recomputed", recomputed="visits"),
}


@pytest.fixture(scope="module")
def night(tmp_path_factory, cycled):
    """A project after one 30-day cycle, then no analyst (the same memory every time), with a new day landed."""
    settings = cycled(tmp_path_factory.mktemp("bad-input") / "shop", days=30)
    config = settings.project_dir / "reverie.toml"
    config.write_text(config.read_text().replace("[llm]\n", "[llm]\nanalysts = 0\n", 1))
    generate(settings.landing_dir, 1)
    return settings.project_dir


def reverie_run(project: Path, monkeypatch) -> tuple[int, str, dict | None]:
    """`reverie run --json` in the project, as a user runs it: exit code, everything printed, the summary."""
    monkeypatch.chdir(project)
    result = CliRunner().invoke(app, ["run", "--json"])
    try:
        summary = json.loads(result.stdout)
    except ValueError:
        summary = None
    return result.exit_code, result.output, summary


@pytest.mark.reliability("bad_input")
@pytest.mark.parametrize("name", CASES)
def test_bad_input_gets_a_clear_error_or_a_quarantine_and_loses_nothing(night, tmp_path, name, monkeypatch, capfd,
                                                                        rows_lost):
    case = CASES[name]
    project = tmp_path / "shop"
    shutil.copytree(night, project)
    before = stored(project)
    daily_before = {metric: daily(project, metric) for metric in ("revenue", "visits")}
    case.spoil(project)

    code, output, summary = reverie_run(project, monkeypatch)
    printed = capfd.readouterr()

    assert "Traceback" not in output + printed.out + printed.err
    if case.outcome == "refused":  # the project cannot be read: one line naming the file and field, nothing ran
        assert code == 2 and summary is None, output
        assert len(output.strip().splitlines()) == 1 and case.said in output, output
        edit_back = stored(project)
        rows_lost(sum(len(before[k] - edit_back[k]) for k in STORED))
        assert edit_back == before
        return
    assert code == 0 and summary, output
    after = stored(project)
    rows_lost(sum(len(before[k] - after[k]) for k in STORED))
    assert all(before[k] <= after[k] for k in STORED), {k: before[k] - after[k] for k in STORED}
    said = json.dumps(summary)
    assert case.said in said, said
    stages = summary["stages"]
    if case.outcome == "quarantined":
        assert stages["quality"]["quarantined"] == 1, said
    elif case.outcome == "file failed":
        assert summary["status"] == "degraded" and stages["ingest"]["failed"], said
        assert case.said in json.dumps(stages["ingest"]["failed"]), stages["ingest"]["failed"]
    else:  # loaded or recomputed: the new day went in and through the gate, whatever else the output says
        assert summary["status"] in ("completed", "degraded"), said
        assert stages["ingest"]["files"] == 1 and not stages["ingest"]["failed"], stages["ingest"]
        assert stages["quality"]["quarantined"] == 0, stages["quality"]
        assert query(project, "select status from batches where file = ?", [NEW_DAY]) == [("loaded",)]
        assert case.metrics == 0 or NEW_DAY_START in daily(project, "orders")  # and into the metrics
    if case.outcome == "recomputed":  # every day of the changed metric computed again by this cycle
        now = daily(project, case.recomputed)
        assert len(now) == 31 and {cycle for _, cycle in now.values()} == {summary["cycle_id"]}, now
        if earlier := daily_before.get(case.recomputed):  # a changed declaration: its new values, not the old
            assert all(now[day][0] == pytest.approx(0.9 * value) for day, (value, _) in earlier.items())
    if case.metrics is not None:  # a broken declaration is left out; the other metrics are computed
        assert stages["metrics"]["metrics"] == case.metrics and stages["metrics"]["errors"], stages["metrics"]
    brief = Path(stages["deliver"]["brief"])
    assert brief.exists() and brief.stat().st_size < 100_000  # a 2 MB value is not copied into the brief
    text, page = brief.read_text(), Path(stages["deliver"]["page"]).read_text()
    assert stages["quality"]["unchecked"] == case.unchecked, stages["quality"]
    if case.unchecked:  # a check that did not run is said to be unchecked, with why; nothing is said to have passed
        assert "- **unchecked** — source events: 1 of 1 new batch(es) loaded without checks" in text
        assert '<span class="unchecked">unchecked</span> — source events: 1 of 1 new batch(es)' in page
        assert "passed its checks" not in text + page
    # a degraded cycle's brief, markdown and page, opens with what failed
    degraded = summary["status"] == "degraded"
    assert text.split("\n## ")[1].startswith("This cycle is degraded") == degraded, text
    assert page.split("<section")[1].startswith(' id="failed"') == degraded
    assert len(said) < 100_000
