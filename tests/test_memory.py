"""Memory through the CLI: search, show, history, feedback, export, on a warehouse a real cycle wrote."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
from typer.testing import CliRunner

from reverie.cli.commands import app
from reverie.flows.local_run import run_cycle
from reverie.tasks.detect import candidates
from reverie.warehouse import Warehouse

runner = CliRunner()
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def remembered(tmp_path_factory):
    """A project after one cycle (no LLM reachable: the detectors' insights only)."""
    from reverie.config import load_settings
    from reverie.generator import generate
    from reverie.project import scaffold
    from tests.helpers.projects import START

    project = tmp_path_factory.mktemp("memory") / "shop"
    scaffold(project)
    config = project / "reverie.toml"
    config.write_text(config.read_text().replace("[llm]\n", '[llm]\nbase_url = "http://127.0.0.1:9/v1"\n'
                                                 'model = "nobody"\ntimeout_seconds = 1.0\n', 1))
    settings = load_settings(project)
    generate(settings.landing_dir, 70, start=START, seed=11, scale=0.5)
    result = run_cycle(project)
    assert result["status"] == "degraded" and result["stages"]["consolidate"]["added"] > 5
    return settings


def cli(settings, monkeypatch, *args: str) -> dict:
    monkeypatch.chdir(settings.project_dir)
    outcome = runner.invoke(app, [*args, "--json"])
    assert outcome.exit_code == 0, outcome.output
    return json.loads(outcome.stdout)


def memory(settings, sql: str, params=None) -> list[tuple]:
    with duckdb.connect(str(settings.warehouse), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def test_search_ranks_by_relevance_within_filters(remembered, monkeypatch):
    metric, member, title = memory(
        remembered, "select metric, member, title from memory where dimension not in ('overall', 'batch') "
                    "and kind = 'unusual_change' order by score desc limit 1")[0]
    found = cli(remembered, monkeypatch, "memory", "search", f"{metric} {member}")["items"]
    assert found and found[0]["title"] == title  # the item naming both words comes first
    assert {"id", "kind", "title", "status", "severity", "metric", "period", "cycle_id", "flow_run_id"} <= set(found[0])
    assert found[0]["flow_run_id"]
    assert [f["relevance"] for f in found] == sorted((f["relevance"] for f in found), reverse=True)

    only = cli(remembered, monkeypatch, "memory", "search", metric, "--metric", metric, "--kind", "unusual_change")["items"]
    assert only and {(f["metric"], f["kind"]) for f in only} == {(metric, "unusual_change")}
    period = only[0]["period"]
    on_the_day = cli(remembered, monkeypatch, "memory", "search", metric, "--since", period, "--until", period)["items"]
    assert on_the_day and {f["period"] for f in on_the_day} == {period}
    from_the_day = cli(remembered, monkeypatch, "memory", "search", metric, "--since", period)["items"]  # open-ended
    until_the_day = cli(remembered, monkeypatch, "memory", "search", metric, "--until", period)["items"]
    assert {f["period"] for f in from_the_day} >= {period} and min(f["period"] for f in from_the_day) == period
    assert {f["period"] for f in until_the_day} >= {period} and max(f["period"] for f in until_the_day) == period
    assert cli(remembered, monkeypatch, "memory", "search", "nothing-like-this-anywhere")["items"] == []
    assert cli(remembered, monkeypatch, "memory", "search", 'conversion: "rate (DE')["query"]  # odd input is words
    for operators in ("orders IN US", "NOT revenue", "revenue AND -orders TO +x"):  # the parser's words are words too
        assert "items" in cli(remembered, monkeypatch, "memory", "search", operators)
    assert cli(remembered, monkeypatch, "memory", "search", metric, "--status", "expired")["items"] == []


def test_search_takes_words_as_they_come_and_reads_dates_as_periods(remembered, monkeypatch):
    metric, period = memory(remembered, "select metric, strftime(period_start, '%Y-%m-%d') from memory "
                                        "where kind = 'unusual_change' order by score desc limit 1")[0]
    day = date.fromisoformat(period)
    # unquoted words; the date is a period to look in, not the words "2026", "01", "05"
    on_the_day = cli(remembered, monkeypatch, "memory", "search", metric, period)["items"]
    assert on_the_day and {f["period"] for f in on_the_day} == {period}
    from_the_day = cli(remembered, monkeypatch, "memory", "search", metric, "--since", period)["items"]  # open-ended
    until_the_day = cli(remembered, monkeypatch, "memory", "search", metric, "--until", period)["items"]
    assert {f["period"] for f in from_the_day} >= {period} and min(f["period"] for f in from_the_day) == period
    assert {f["period"] for f in until_the_day} >= {period} and max(f["period"] for f in until_the_day) == period
    month_name = day.strftime("%B")
    in_the_month = cli(remembered, monkeypatch, "memory", "search", metric, month_name, str(day.year))["items"]
    assert period in {f["period"] for f in in_the_month}
    assert all(f["period"].startswith(f"{day:%Y-%m}") for f in in_the_month)
    by_name_alone = cli(remembered, monkeypatch, "memory", "search", metric, month_name.lower()[:3])["items"]
    assert {f["period"][5:7] for f in by_name_alone} == {f"{day:%m}"}
    assert cli(remembered, monkeypatch, "memory", "search", metric, f"{day.year - 1}-{day:%m-%d}")["items"] == []


def test_member_aliases_name_countries_only_where_the_members_are_countries():
    from reverie.memory.aliases import member_aliases

    rows = member_aliases([("DE", "country"), ("GB", "country"), ("AA", "carrier"), ("UA", "carrier"),
                           ("JFK", "origin"), ("email", "channel")], {"email": ["newsletter", "Mailings"]})
    assert rows == [("DE", "country", "federal republic of germany"), ("DE", "country", "germany"),
                    ("GB", "country", "united kingdom"),
                    ("GB", "country", "united kingdom of great britain and northern ireland"),
                    ("email", "channel", "mailings"), ("email", "channel", "newsletter")]


def test_memory_list_reads_well_in_80_columns(remembered, monkeypatch):
    monkeypatch.chdir(remembered.project_dir)
    monkeypatch.setenv("COLUMNS", "80")
    outcome = runner.invoke(app, ["memory", "list", "--limit", "5"])
    assert outcome.exit_code == 0, outcome.output
    titles = [title for (title,) in memory(remembered, "select title from memory where status = 'active'")]
    lines = outcome.stdout.splitlines()
    shown = [line.strip() for line in lines if line.startswith("  ")]
    assert len(shown) == 5 and all(line in titles for line in shown)  # each title whole, on its own line


def test_show_history_feedback_and_export(remembered, monkeypatch, tmp_path):
    memory_id, kind, metric, dimension, member = memory(
        remembered, "select id, kind, metric, dimension, member from memory where source like 'detector:%' "
                    "order by score desc limit 1")[0]
    shown = cli(remembered, monkeypatch, "memory", "show", memory_id)
    assert shown["id"] == memory_id and shown["evidence"]["queries"] and shown["history"][0]["change"] == "insert"
    (candidate,) = memory(remembered, "select related_ids[1] from memory where id = ?", [memory_id])[0]
    assert candidate.startswith("cand-")  # what an analyst's note cites: it opens the item it became
    assert cli(remembered, monkeypatch, "memory", "show", candidate) == {**shown, "candidate": candidate}

    assert cli(remembered, monkeypatch, "memory", "feedback", memory_id, "noise")["feedback"] == "noise"
    history = cli(remembered, monkeypatch, "memory", "history", memory_id)["history"]
    assert [h["change"] for h in history] == ["insert", "feedback"] and history[-1]["new_value"] == "noise"

    # feedback weighs later candidates of the same kind and subject
    with remembered.warehouse.connect() as con:
        again = candidates(con, "again", date(2000, 1, 1), remembered.detect)
    same = [c for c in again if (c["detector"], c["metric"], c["dimension"], c["member"]) == (kind, metric, dimension, member)]
    assert same and all(c["feedback"] == "noise" for c in same)
    assert shown["score"] == pytest.approx(2 * max(c["score"] for c in same), rel=0.2)

    total = memory(remembered, "select count(*) from memory")[0][0]
    jsonl, parquet = tmp_path / "memory.jsonl", tmp_path / "memory.parquet"
    assert cli(remembered, monkeypatch, "memory", "export", str(jsonl))["items"] == total
    assert cli(remembered, monkeypatch, "memory", "export", str(parquet), "--status", "active")["items"] <= total
    lines = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert len(lines) == total and {"id", "title", "evidence", "recorded_at", "feedback"} <= set(lines[0])
    assert duckdb.sql(f"select count(*) from '{parquet}'").fetchone()[0] == memory(
        remembered, "select count(*) from memory where status = 'active'")[0][0]


def test_clear_errors_for_unknown_ids_and_bad_values(remembered, monkeypatch, tmp_path):
    monkeypatch.chdir(remembered.project_dir)
    for args, words in ((["memory", "show", "mem-nope"], "no memory item mem-nope"),
                        (["memory", "show", "cand-nope"], "no memory item came from candidate cand-nope"),
                        (["memory", "feedback", "mem-nope", "useful"], "no memory item mem-nope"),
                        (["memory", "feedback", memory(remembered, "select id from memory limit 1")[0][0], "great"],
                         "useful, noise"),
                        (["memory", "export", str(tmp_path / "m.csv")], ".jsonl or .parquet"),
                        (["memory", "search", "x", "--since", "yesterday"], "--since")):
        outcome = runner.invoke(app, args)
        assert outcome.exit_code == 2 and words in outcome.output, outcome.output


def test_the_search_index_follows_memory(remembered, monkeypatch):
    import tantivy

    from reverie.memory.search import _open_index, indexed_version, update_index
    from reverie.memory.store import give_feedback

    version = lambda: memory(remembered, "select count(*) from memory_history")[0][0]  # noqa: E731
    memory_id = memory(remembered, "select id from memory where status = 'active' limit 1")[0][0]
    give_feedback(remembered.warehouse, memory_id, "useful")  # memory changed: the next search updates the index
    everything = cli(remembered, monkeypatch, "memory", "search", "", "--status", "all", "--limit", "1000")["items"]
    assert indexed_version(_open_index(remembered.warehouse)) == version()
    assert len(everything) == memory(remembered, "select count(*) from memory where kind != 'prepared_answer'")[0][0]
    # only what changed is indexed again, and the index holds each item once, as the table has it now
    assert update_index(remembered.warehouse)["indexed"] == 0
    give_feedback(remembered.warehouse, memory_id, "noise")
    assert update_index(remembered.warehouse) == {"version": version(), "indexed": 1}
    index = _open_index(remembered.warehouse)
    index.reload()
    hits = index.searcher().search(tantivy.Query.term_query(index.schema, "id", memory_id), 5).hits
    assert len(hits) == 1 and json.loads(index.searcher().doc(hits[0][1])["item"][0])["feedback"] == "noise"
    assert index.searcher().num_docs == memory(remembered, "select count(*) from memory")[0][0] + 1  # + the version


# --- consolidation ---------------------------------------------------------------------------------

def _candidate(cycle_id: str, member: str, observed: float, expected: float = 100.0, day: str = "2026-02-02") -> dict:
    from reverie.tasks.detect import CANDIDATE_COLUMNS

    row = dict.fromkeys(CANDIDATE_COLUMNS)
    row.update(candidate_id=f"cand-{cycle_id}-{member}", cycle_id=cycle_id, detector="unusual_change",
               kind="unusual_change", metric="orders", grain="day", dimension="country", member=member,
               period_start=day, period_end=day, observed=observed, expected=expected,
               magnitude=observed / expected - 1, direction="up" if observed >= expected else "down",
               favourable="good" if observed >= expected else "bad", score=0.5, rank=1,
               evidence_sql=f"select {observed} as value", comparison="a test baseline",
               headline=f"orders moved in {member}: {observed} against {expected}", detectors=["unusual_change"])
    return row


def _write(warehouse, table: str, rows: list[dict]) -> None:
    with warehouse.connect() as con:
        for row in rows:
            con.execute(f"insert into {table} ({', '.join(row)}) values ({', '.join('?' * len(row))})", list(row.values()))


def _note(cycle_id: str, title: str) -> dict:
    return {"insight_id": f"ins-{cycle_id}", "cycle_id": cycle_id, "kind": "hypothesis", "title": title, "body": None,
            "severity": "info", "metric": "refund_rate", "dimension": None, "member": None, "period_start": None,
            "candidate_ids": [f"cand-{cycle_id}"], "evidence": '{"verified": [], "numbers": []}',
            "source": "scripted-analyst",
            "written_at": datetime.now()}


def test_consolidation_confirms_merges_supersedes_contradicts_and_expires(tmp_path):
    from reverie.tasks.consolidate import consolidate

    warehouse = Warehouse(tmp_path / "warehouse.duckdb")
    _write(warehouse, "candidates", [_candidate("c1", "US", 200.0), _candidate("c1", "DE", 150.0)])
    assert consolidate.fn(warehouse, "c1", None)["added"] == 2
    # the same cycle again adds nothing; a newer value supersedes; the other way round contradicts
    assert consolidate.fn(warehouse, "c1", None)["confirmed"] == 2
    _write(warehouse, "candidates", [_candidate("c2", "US", 210.0), _candidate("c2", "DE", 60.0)])
    counts = consolidate.fn(warehouse, "c2", None)
    assert (counts["superseded"], counts["contradicted"], counts["added"]) == (1, 1, 0)
    rows = memory_rows(warehouse, "select member, status, supersedes is not null, superseded_by is not null "
                                  "from memory where kind = 'unusual_change' order by member, recorded_at")
    assert rows == [("DE", "retracted", False, True), ("DE", "active", True, False),
                    ("US", "superseded", False, True), ("US", "active", True, False)]
    changes = memory_rows(warehouse, "select change, new_value from memory_history where change in ('contradict', 'supersede')")
    assert {c for c, _ in changes} == {"contradict", "supersede"} and all(v.startswith(("contradicted by", "superseded by"))
                                                                         for _, v in changes)

    # an analyst note saying nearly the same thing again is merged into the first
    _write(warehouse, "agent_insights", [_note("c3", "Refunds rise in weeks when the courier delivers late")])
    consolidate.fn(warehouse, "c3", None)
    _write(warehouse, "agent_insights", [_note("c4", "Refunds rise in weeks when the courier delivers late.")])
    assert consolidate.fn(warehouse, "c4", None)["merged"] == 1
    notes = memory_rows(warehouse, "select id, related_ids from memory where kind = 'hypothesis'")
    assert len(notes) == 1 and sorted(notes[0][1]) == ["cand-c3", "cand-c4"]

    # nothing confirmed it for longer than the TTL: it expires, with the reason in its history
    with warehouse.connect() as con:
        con.execute("update memory set last_confirmed = last_confirmed - interval 91 day where kind = 'hypothesis'")
    assert consolidate.fn(warehouse, "c5", None)["expired"] == 1
    assert memory_rows(warehouse, f"select status from memory where id = '{notes[0][0]}'") == [("expired",)]
    assert memory_rows(warehouse, f"select new_value from memory_history where memory_id = '{notes[0][0]}' "
                                  "and change = 'expire'") == [("not confirmed for 90 days",)]
    assert memory_rows(warehouse, "select count(*) from memory") == [(5,)]  # nothing was ever deleted


def memory_rows(warehouse, sql: str) -> list[tuple]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(sql).fetchall()


@pytest.mark.reliability("fault")
def test_a_process_killed_mid_consolidation_leaves_memory_as_it_was(tmp_path):
    warehouse = Warehouse(tmp_path / "warehouse.duckdb")
    _write(warehouse, "candidates", [_candidate("c1", "US", 200.0)])
    from reverie.tasks.consolidate import consolidate

    consolidate.fn(warehouse, "c1", None)
    _write(warehouse, "candidates", [_candidate("big", f"M{i:05d}", 100.0 + i, day="2026-02-03") for i in range(400)])
    before = {table: memory_rows(warehouse, f"select * from {table} order by all") for table in ("memory", "memory_history")}
    script = (f"from reverie.warehouse import Warehouse\nfrom reverie.tasks.consolidate import consolidate\n"
              f"consolidate.fn(Warehouse({str(warehouse)!r}), 'big', None)\n")
    child = subprocess.Popen([sys.executable, "-c", script], stderr=subprocess.PIPE, text=True, cwd=ROOT,
                             env={**os.environ, "REVERIE_FAULT_POINT": "consolidate:before-commit"})
    # the child waits at the fault point, inside the transaction, with all 400 items written and none committed
    assert child.stderr.readline().strip() == "reverie: fault point reached: consolidate:before-commit"
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL
    after = {table: memory_rows(warehouse, f"select * from {table} order by all") for table in ("memory", "memory_history")}
    assert after == before
    assert consolidate.fn(warehouse, "big", None)["added"] == 400  # and the same work, redone, lands whole


def test_data_corrected_upstream_expires_the_insights_it_undoes(make_project):
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    settings = make_project(base_url="http://127.0.0.1:9/v1")  # nothing listens: detector insights only
    run_cycle(settings.project_dir)
    memory_id, first, last = memory_rows(settings.warehouse, """select id, valid_from, valid_to from memory
        where status = 'active' and source = 'detector:unusual_change' order by score desc limit 1""")[0]
    # each day of the change is sent again, corrected: an ordinary day (the same weekday a week before, moved to it)
    landing = settings.landing_dir / "events"
    days = [first + timedelta(days=k) for k in range((last - first).days + 1)]
    for day in days:
        ordinary = pq.read_table(landing / f"date={day - timedelta(days=7)}" / "part-0.parquet")
        moved = ordinary.set_column(ordinary.schema.get_field_index("event_time"), "event_time",
                                    pc.add(ordinary["event_time"], pa.scalar(timedelta(days=7), pa.duration("us"))))
        pq.write_table(moved, landing / f"date={day}" / "part-0.parquet")

    second = run_cycle(settings.project_dir)
    assert second["stages"]["ingest"]["files"] == len(days) and second["stages"]["consolidate"]["expired"] >= 1
    assert memory_rows(settings.warehouse, f"select status, closed_at is not null from memory where id = '{memory_id}'") \
        == [("expired", True)]
    assert memory_rows(settings.warehouse, f"""select change, new_value from memory_history
                                               where memory_id = '{memory_id}' order by changed_at""")[-1] == \
        ("expire", "its evidence no longer holds after the data changed")
    subjects = memory_rows(settings.warehouse, "select fingerprint, count(*) from memory where status = 'active' "
                                               "group by all having count(*) > 1")
    assert subjects == []  # one active row per subject


def test_a_confirmed_item_reads_as_its_finding_reads_now(tmp_path):
    from reverie.tasks.consolidate import consolidate

    warehouse = Warehouse(tmp_path / "warehouse.duckdb")
    _write(warehouse, "candidates", [_candidate("c1", "US", 200.0)])
    consolidate.fn(warehouse, "c1", None)
    again = _candidate("c2", "US", 200.0) | {"headline": "orders moved in US: 200.0 against 100.0, seen for 2 days"}
    _write(warehouse, "candidates", [again])
    assert consolidate.fn(warehouse, "c2", None)["confirmed"] == 1
    assert memory_rows(warehouse, "select title, status from memory") == [(again["headline"], "active")]
    assert memory_rows(warehouse, "select change, field, old_value, new_value from memory_history "
                                  "where cycle_id = 'c2'") == [("confirm", "title", "orders moved in US: 200.0 against 100.0",
                                                                again["headline"])]


def test_a_snapshot_written_before_aliases_existed_reads_as_having_none(tmp_path):
    """An older release's snapshot has no member_aliases: none are read, and DuckDB does not take the Python
    function of that name for a table (its replacement scans look at the caller's names)."""
    from reverie.memory.aliases import read_aliases

    with duckdb.connect(str(tmp_path / "old.duckdb")) as con:
        con.execute("create table memory (id varchar)")
        assert read_aliases(con) == {}
