"""Memory through the CLI: search, show, history, feedback, export, on a warehouse a real cycle wrote."""

from __future__ import annotations

import json
from datetime import date

import duckdb
import pytest
from typer.testing import CliRunner

from reverie.cli import app, run_cycle
from tasks.detect import candidates
from tasks.warehouse import connect

runner = CliRunner()


@pytest.fixture(scope="module")
def remembered(tmp_path_factory):
    """A project after one cycle (no LLM reachable: the detectors' insights only)."""
    from tests.conftest import START
    from reverie.config import load_settings
    from reverie.generator import generate
    from reverie.project import scaffold

    project = tmp_path_factory.mktemp("memory") / "shop"
    scaffold(project)
    config = project / "reverie.toml"
    config.write_text(config.read_text().replace("[llm]\n", '[llm]\nbase_url = "http://127.0.0.1:9/v1"\n'
                                                 'model = "nobody"\ntimeout_seconds = 1.0\n', 1))
    settings = load_settings(project)
    generate(settings.landing_dir, 70, start=START, seed=11, scale=0.5)
    result = run_cycle(project)
    assert result["status"] == "degraded" and result["stages"]["memory"]["added"] > 5
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
    assert [f["relevance"] for f in found] == sorted((f["relevance"] for f in found), reverse=True)

    only = cli(remembered, monkeypatch, "memory", "search", metric, "--metric", metric, "--kind", "unusual_change")["items"]
    assert only and {(f["metric"], f["kind"]) for f in only} == {(metric, "unusual_change")}
    period = only[0]["period"]
    on_the_day = cli(remembered, monkeypatch, "memory", "search", metric, "--since", period, "--until", period)["items"]
    assert on_the_day and {f["period"] for f in on_the_day} == {period}
    assert cli(remembered, monkeypatch, "memory", "search", "nothing-like-this-anywhere")["items"] == []
    assert cli(remembered, monkeypatch, "memory", "search", 'conversion: "rate (DE')["query"]  # odd input is words
    assert cli(remembered, monkeypatch, "memory", "search", metric, "--status", "expired")["items"] == []


def test_show_history_feedback_and_export(remembered, monkeypatch, tmp_path):
    memory_id, kind, metric, dimension, member = memory(
        remembered, "select id, kind, metric, dimension, member from memory where source like 'detector:%' "
                    "order by score desc limit 1")[0]
    shown = cli(remembered, monkeypatch, "memory", "show", memory_id)
    assert shown["id"] == memory_id and shown["evidence"]["queries"] and shown["history"][0]["change"] == "insert"

    assert cli(remembered, monkeypatch, "memory", "feedback", memory_id, "noise")["feedback"] == "noise"
    history = cli(remembered, monkeypatch, "memory", "history", memory_id)["history"]
    assert [h["change"] for h in history] == ["insert", "feedback"] and history[-1]["new_value"] == "noise"

    # feedback weighs later candidates of the same kind and subject
    with connect(remembered.warehouse) as con:
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
                        (["memory", "feedback", "mem-nope", "useful"], "no memory item mem-nope"),
                        (["memory", "feedback", memory(remembered, "select id from memory limit 1")[0][0], "great"],
                         "useful, noise"),
                        (["memory", "export", str(tmp_path / "m.csv")], ".jsonl or .parquet"),
                        (["memory", "search", "x", "--since", "yesterday"], "--since")):
        outcome = runner.invoke(app, args)
        assert outcome.exit_code == 2 and words in outcome.output, outcome.output


def test_the_search_index_follows_memory(remembered, monkeypatch):
    from tasks.memory import give_feedback
    from tasks.memory_search import INDEX_FOLDER

    folders = lambda: sorted(p.name for p in (remembered.warehouse.parent / INDEX_FOLDER).iterdir())  # noqa: E731
    before = folders()
    assert len(before) == 1  # consolidation built it; nothing half-built left behind
    memory_id = memory(remembered, "select id from memory where status = 'active' limit 1")[0][0]
    give_feedback(remembered.warehouse, memory_id, "useful")  # memory changed: the next search rebuilds
    cli(remembered, monkeypatch, "memory", "search", "revenue")
    after = folders()
    assert len(after) == 1 and after != before
