"""The quality gate: declared suites, quarantine with reasons, metric sanity, memory and the brief."""

from __future__ import annotations

import os
import shutil
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from reverie.flows.local_run import run_cycle
from reverie.generator import generate
from reverie.suites import QualityError, load_quality
from tests.helpers.landing import rewrite
from tests.helpers.scripted_llm import tool_call

DIRTY = {  # day -> (how the day's file is spoiled, words the reason must contain)
    "2026-02-04": ("if(event_type = 'order', null, event_id) as event_id", "have no event_id"),
    "2026-02-05": ("if(event_type = 'signup', 'dup-1', event_id) as event_id", "repeat a event_id value"),
    "2026-02-06": ("if(event_type = 'order', amount * 1e6, amount) as amount", "have amount outside [0, 100000]"),
    "2026-02-07": ("if(event_type = 'order' and hash(event_id) % 5 = 0, 'chargeback', status) as status", "outside paid, failed, refunded"),
}
DROPPED = "2026-02-08"  # a volume drop: one row in ten arrived
CLEAN = "2026-02-09"
STALE = "2026-01-12"  # a new file for a day weeks behind the data


def finish(request):
    return tool_call("finish", {"summary": "nothing to add"})


def finish_noting_the_prompt(seen: list):
    def step(request):
        seen.append(request["messages"][1]["content"])
        return finish(request)
    return step


def query(settings, sql: str, params=None):
    with duckdb.connect(str(settings.warehouse), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def day_file(settings, day: str, name: str = "part-0.parquet") -> Path:
    return settings.landing_dir / "events" / f"date={day}" / name


@pytest.fixture
def dirty_cycle(make_project, scripted_llm, tmp_path_factory):
    """30 clean days in one cycle, then 6 new days of which 5 are dirty, a stale file and an empty file."""
    settings = make_project(days=30, scale=0.1, base_url=scripted_llm.base_url)
    scripted_llm.script(finish)
    first = run_cycle(settings.project_dir)
    before = query(settings, "select period_start, value from metric_values where metric = 'sessions' and grain = 'day' "
                             "and dimension = 'overall' order by 1")
    generate(settings.landing_dir, 6)
    originals = tmp_path_factory.mktemp("originals")
    for day, (spoil, _) in DIRTY.items():
        shutil.copy(day_file(settings, day), originals / f"{day}.parquet")
        rewrite(day_file(settings, day), f"* replace ({spoil})")
    duckdb.sql(f"""copy (select * from read_parquet('{day_file(settings, DROPPED)}', hive_partitioning = false)
                         where hash(event_id) % 10 = 0) to '{day_file(settings, DROPPED)}.tmp' (format parquet)""")
    Path(f"{day_file(settings, DROPPED)}.tmp").replace(day_file(settings, DROPPED))
    rewrite(day_file(settings, STALE, "part-resent.parquet"), "* replace (event_id || '-resent' as event_id)",
            source=day_file(settings, STALE))
    duckdb.sql(f"""copy (select * from read_parquet('{day_file(settings, CLEAN)}', hive_partitioning = false) limit 0)
                   to '{day_file(settings, CLEAN, "part-empty.parquet")}' (format parquet)""")
    prompts: list[str] = []
    scripted_llm.script(finish_noting_the_prompt(prompts))
    result = run_cycle(settings.project_dir)
    # the analyst is told what was held back: it may explain a change
    assert prompts and "held back: events landing/events/date=2026-02-04/part-0.parquet" in prompts[0]
    return settings, first, before, result, originals


@pytest.mark.reliability("bad_input")
def test_each_kind_of_dirty_batch_is_quarantined_with_a_reason_and_kept_out_of_metrics(dirty_cycle):
    settings, first, before, result, _ = dirty_cycle
    assert first["stages"]["quality"]["quarantined"] == 0
    reasons = {Path(b["batch"]).parent.name.removeprefix("date=") + "/" + Path(b["batch"]).name: " ".join(b["reasons"])
               for b in result["stages"]["quality"]["batches"]}
    for day, (_, words) in DIRTY.items():
        assert words in reasons.pop(f"{day}/part-0.parquet")
    assert "volume:" in reasons.pop(f"{DROPPED}/part-0.parquet")
    assert "stale:" in reasons.pop(f"{STALE}/part-resent.parquet")
    assert reasons == {}
    assert result["stages"]["quality"]["passed"] == 1  # the clean day

    # the empty file could not be loaded: remembered as rejected with its reason, not retried until it changes
    assert query(settings, "select status, reason like '%has no rows%' from batches where file like '%part-empty%'") == \
        [("rejected", True)]

    # nothing of a held-back batch reaches a metric: its days have no values, the stale day kept its old ones
    held = [*DIRTY, DROPPED]
    assert query(settings, "select count(*) from metric_values where grain = 'day' and strftime(period_start, '%Y-%m-%d') "
                           "in (select unnest(?::varchar[]))", [held]) == [(0,)]
    after = dict(query(settings, "select period_start, value from metric_values where metric = 'sessions' "
                                 "and grain = 'day' and dimension = 'overall'"))
    assert all(after[day] == value for day, value in before)
    assert query(settings, "select count(*) from metric_values where grain = 'day' and period_start = ?", [CLEAN])[0][0] > 0

    # kept with samples, remembered as data_quality items, and in the brief
    sample = query(settings, """select sample from quality_results where expectation = 'in_set' and column_name = 'status'
                                and not success""")
    assert "chargeback" in sample[0][0]
    items = query(settings, "select member, severity, title from memory where kind = 'data_quality' and dimension = 'batch'")
    assert {Path(m).parent.name for m, _, _ in items} == {f"date={d}" for d in [*held, STALE, CLEAN]}
    assert all(severity == "critical" for _, severity, _ in items)
    brief = Path(result["stages"]["deliver"]["brief"]).read_text()
    assert brief.count("**held back**") == 7 and "have no event_id" in brief and "has no rows" in brief
    # the gap the quarantine left is reported by the metric sanity check, as a warning
    gaps = query(settings, "select message from quality_results where source = 'metrics' and batch = 'sessions' "
                           "and expectation = 'no_missing_periods' and not success")
    assert "day 2026-02-04" in gaps[0][0]
    assert result["status"] == "degraded"  # the empty file failed to load


def test_a_fixed_batch_is_picked_up_by_the_next_cycle(dirty_cycle, scripted_llm):
    settings, _, _, _, originals = dirty_cycle
    fixed = day_file(settings, "2026-02-04")
    shutil.copy(originals / "2026-02-04.parquet", fixed)
    scripted_llm.script(finish)
    result = run_cycle(settings.project_dir)
    assert result["stages"]["ingest"]["files"] == 1 and result["stages"]["quality"]["quarantined"] == 0
    assert query(settings, "select status from batches where file like '%2026-02-04%'") == [("loaded",)]
    assert query(settings, "select count(*) from metric_values where grain = 'day' and period_start = '2026-02-04'")[0][0] > 0
    assert query(settings, """select status from memory where kind = 'data_quality' and member like '%2026-02-04%'""") == \
        [("expired",)]


def test_a_metric_failing_its_sanity_check_keeps_its_earlier_values(make_project, scripted_llm):
    settings = make_project(days=20, scale=0.1, base_url=scripted_llm.base_url)
    scripted_llm.script(finish)
    run_cycle(settings.project_dir)
    before = query(settings, "select * from metric_values where metric = 'conversion_rate' order by all")
    suite = settings.quality_dir / "demo.yml"
    suite.write_text(suite.read_text() + "  - {check: between, metrics: [conversion_rate], max: 0.001}\n")
    generate(settings.landing_dir, 1)
    scripted_llm.script(finish)
    result = run_cycle(settings.project_dir)
    assert result["status"] == "degraded"
    assert any("conversion_rate" in e and "sanity" in e and "outside [, 0.001]" in e for e in result["stages"]["metrics"]["errors"])
    assert query(settings, "select * from metric_values where metric = 'conversion_rate' order by all") == before
    assert query(settings, "select count(*) from metric_values where metric = 'orders' and cycle_id = ?",
                 [result["cycle_id"]])[0][0] > 0  # the others were published
    titles = query(settings, "select title from memory where kind = 'data_quality' and metric = 'conversion_rate'")
    assert "kept its earlier values" in titles[0][0]

    suite.write_text(suite.read_text().replace("  - {check: between, metrics: [conversion_rate], max: 0.001}\n", ""))
    generate(settings.landing_dir, 1)
    scripted_llm.script(finish)
    run_cycle(settings.project_dir)  # sane again: its item is closed
    assert query(settings, "select status from memory where kind = 'data_quality' and metric = 'conversion_rate'") == \
        [("expired",)]


@pytest.mark.parametrize("text, words", [
    ("suites:\n  s:\n    - {check: not_null}\n", "suites.s[0]: not_null needs column"),
    ("suites:\n  s:\n    - {check: maybe, column: a}\n", "suites.s[0]: check: Input should be"),
    ("suites:\n  s:\n    - {check: in_set, column: a, values: [x], severity: fatal}\n", "suites.s[0]: severity"),
    ("metrics:\n  - {check: between, metrics: [orders]}\n", "metrics[0]: "),
    ("suites: [a, b]\n", "suites: expected a mapping"),
])
@pytest.mark.reliability("bad_input")
def test_quality_declarations_are_checked_with_errors_naming_file_and_field(tmp_path, text, words):
    (tmp_path / "q.yml").write_text(text)
    with pytest.raises(QualityError) as error:
        load_quality(tmp_path)
    assert str(tmp_path / "q.yml") in str(error.value) and words in str(error.value)


@pytest.mark.reliability("bad_input")
def test_a_broken_suite_degrades_the_cycle_and_says_why(make_project, scripted_llm):
    settings = make_project(days=10, scale=0.1, base_url=scripted_llm.base_url)
    suite = settings.quality_dir / "demo.yml"
    suite.write_text(suite.read_text().replace("- {check: not_null, column: event_time}",
                                               "- {check: expectation, expectation: ExpectNoSuchThing, column: event_time}"))
    scripted_llm.script(finish)
    result = run_cycle(settings.project_dir)
    assert result["status"] == "degraded"
    [error] = result["stages"]["quality"]["errors"]
    assert "demo.yml: suites.demo_events[" in error and "ExpectNoSuchThing" in error
    assert result["stages"]["quality"]["unchecked"] == 10


@pytest.mark.parametrize("live, files_written, warned", [
    ("", "the day after their data", "days ago"),  # live by default: the clock is the reference
    (", live: false", "the day after their data", None),  # a backfill of archived exports
    (", live: false", "now", "days before its file was written"),  # an export already stale when it was written
])
def test_freshness_compares_with_the_clock_only_for_live_data(make_project, scripted_llm, live, files_written, warned):
    settings = make_project(days=5, scale=0.1, base_url=scripted_llm.base_url)  # January 2026: long before today
    suite = settings.quality_dir / "demo.yml"
    suite.write_text(suite.read_text().replace("{check: freshness, max_age_hours: 72}",
                                               f"{{check: freshness, max_age_hours: 72{live}}}"))
    if files_written != "now":
        for path in (settings.landing_dir / "events").glob("date=*/*.parquet"):
            written = datetime.fromisoformat(path.parent.name.removeprefix("date=")) + timedelta(days=1, hours=1)
            os.utime(path, (written.timestamp(), written.timestamp()))
    scripted_llm.script(finish)
    result = run_cycle(settings.project_dir)
    [(success, message)] = query(settings, "select success, message from quality_results "
                                           "where expectation = 'freshness' and batch = '(source)'")
    brief = Path(result["stages"]["deliver"]["brief"]).read_text()
    if warned:
        assert not success and message.startswith("no fresh data: the newest row is from 2026-01-09")
        assert warned in message and f"source events: {message}" in brief
    else:
        assert success and "no fresh data" not in brief


def test_row_checks_run_in_the_warehouse_screened_then_detailed_per_batch(tmp_path):
    """A strict screen flags any unexpected row; the flagged checks are then judged as declared, batch by batch."""
    from reverie.suites import Check
    from reverie.tasks.quality.expectations import row_outcomes
    from reverie.warehouse import Warehouse

    warehouse = Warehouse(tmp_path / "warehouse.duckdb")
    with warehouse.connect() as con:
        con.execute("""create table raw_orders as
                       select 1 as _batch, 'o' || i as order_id, if(i < 3, null, 'DE') as country, i * 1.0 as amount,
                              if(i = 9, null, timestamp '2026-02-01' + to_hours(i)) as ordered_at
                       from range(10) t(i)
                       union all
                       select 2, if(i = 0, 'o1', 'pp' || i), 'DE', i * 1.0, timestamp '2026-02-02' + to_hours(i)
                       from range(10) t(i)""")
        checks = [Check(check="not_null", column="country", mostly=0.5),  # 3 of 10 missing in a.csv: within mostly
                  Check(check="unique", column="order_id"),  # o1 is in both files
                  Check(check="between", column="amount", min=0, max=100),  # every row passes
                  Check(check="expectation", expectation="ExpectTableRowCountToBeBetween",
                        kwargs={"max_value": 15}),  # a table-level check: the rows' verdict together
                  Check(check="expectation", expectation="ExpectColumnValueLengthsToBeBetween", column="order_id",
                        kwargs={"max_value": 2}, severity="warning")]
        batches = [{"file": "a.csv", "batch_id": 1, "rows": 10, "first_event": datetime(2026, 2, 1), "last_event": datetime(2026, 2, 1, 8)},
                   {"file": "b.csv", "batch_id": 2, "rows": 10, "first_event": datetime(2026, 2, 2), "last_event": datetime(2026, 2, 2, 9)}]
        outcomes = row_outcomes(con, "raw_orders", '"ordered_at"', batches, checks, "test.yml: suites.orders")
    got = {(o.batch, o.check.check, o.check.expectation): o for o in outcomes}
    assert len(outcomes) == len(checks) * len(batches)
    nulls = got[("a.csv", "not_null", None)]
    assert nulls.success and nulls.unexpected_count == 3  # counted, and passing as declared
    assert got[("b.csv", "not_null", None)].unexpected_count == 0
    for batch in ("a.csv", "b.csv"):
        repeated = got[(batch, "unique", None)]
        assert not repeated.success and repeated.unexpected_count == 1 and repeated.sample == ["o1"]
        assert "repeat a order_id value" in repeated.message
        assert got[(batch, "between", None)].success and got[(batch, "between", None)].unexpected_count == 0
        assert not got[(batch, "expectation", "ExpectTableRowCountToBeBetween")].success
    lengths_a = got[("a.csv", "expectation", "ExpectColumnValueLengthsToBeBetween")]
    lengths_b = got[("b.csv", "expectation", "ExpectColumnValueLengthsToBeBetween")]
    assert lengths_a.success and not lengths_b.success and lengths_b.unexpected_count == 9  # pp1..pp9
