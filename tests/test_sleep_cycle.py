"""A whole sleep cycle on generated data, real DuckDB, real Prefect, and a scripted LLM over real HTTP."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import duckdb
import pytest
from prefect.client.orchestration import get_client

from reverie.cli.render import stage_line
from reverie.flows.local_run import run_cycle
from reverie.generator import generate
from reverie.summaries import STAGES, failures
from tests.helpers.scripted_llm import candidates_in, finish, grounded_insight, tool_call

SECRET = "sk-test-do-not-store-0123456789"


def fabricated_insight(request: dict) -> dict:
    top = candidates_in(request)[0]
    return tool_call("write_insight", {
        "kind": "pattern", "severity": "critical", "candidate_ids": [top["id"]],
        "title": "Revenue will grow 37.5% next quarter", "body": "Because 4,321 customers said so.",
    })


def query(settings, sql: str, params=None):
    with duckdb.connect(str(settings.warehouse), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


async def _flow_run(flow_run_id: str):
    async with get_client() as client:
        return await client.read_flow_run(flow_run_id)


def _artifact_markdown(key: str) -> str:
    async def read():
        async with get_client() as client:
            return await client.read_latest_artifacts()
    return next(a.data for a in asyncio.run(read()) if a.key == key)


def test_a_cycle_computes_metrics_writes_grounded_memory_with_provenance(make_project, scripted_llm, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    settings = make_project(base_url=scripted_llm.base_url)
    scripted_llm.script(grounded_insight, fabricated_insight, finish)

    result = run_cycle(settings.project_dir)

    assert result["status"] == "completed", result
    stages = result["stages"]
    assert stages["ingest"]["files"] == 56 and stages["quality"]["quarantined"] == 0
    assert stages["metrics"]["metrics"] == 7 and stages["metrics"]["errors"] == [] and stages["metrics"]["commits_retried"] == 0
    assert stages["metrics"]["rows"] > 0 and stages["detect"]["candidates"] > 0
    expected_reflect = {"written": 1, "rejected": 1, "prompt_tokens": 300, "completion_tokens": 60, "calls": 3,
                        "status": "ok", "model": "scripted-analyst"}
    assert {k: stages["reflect"][k] for k in expected_reflect} == expected_reflect
    assert set(result) >= {"cycle_id", "flow_run_id", "status", "warehouse", "stages", "seconds"}
    assert list(stages) == [stage.name for stage in STAGES]  # every stage of the registry, in its order
    assert all(stage_line(name, summary) for name, summary in stages.items())  # and the CLI can say each

    # metric values agree with a hand-written query over the landing files
    landing = settings.landing_dir / "events"
    expected = duckdb.sql(f"""select event_time::date, round(sum(amount), 6) from read_parquet('{landing}/*/*.parquet')
                              where event_type = 'order' and status = 'paid' group by 1 order by 1""").fetchall()
    computed = query(settings, """select period_start::date, round(value, 6) from metric_values where metric = 'revenue'
                                  and grain = 'day' and dimension = 'overall' order by 1""")
    assert computed == expected
    conversion = query(settings, """select count(*) from metric_values where metric = 'conversion_rate'
                                    and not (value between 0 and 1 and numerator <= denominator)""")
    assert conversion == [(0,)]

    # the real openai client sent tools over HTTP, with the key only in its header
    request = scripted_llm.requests[0]
    assert {t["function"]["name"] for t in request["tools"]} == {
        "run_sql", "describe_metric", "search_memory", "write_insight", "update_insight", "retract_insight", "finish"}
    assert request["tool_choice"] == "auto" and request["model"] == "scripted-analyst"
    assert scripted_llm.headers[0]["authorization"] == f"Bearer {SECRET}"

    # memory: the detector's candidates and the grounded insight, each with provenance
    rows = query(settings, """select source, cycle_id, flow_run_id, evidence, title from memory where status = 'active'""")
    assert {r[1] for r in rows} == {result["cycle_id"]} and {r[2] for r in rows} == {result["flow_run_id"]}
    agent_rows = [r for r in rows if r[0] == "scripted-analyst"]
    assert len(agent_rows) == 1 and "moved" in agent_rows[0][4]
    evidence = json.loads(agent_rows[0][3])
    assert evidence["queries"] and evidence["verified"][0]["observed"] is not None
    detector_rows = [r for r in rows if r[0].startswith("detector:")]
    assert len(detector_rows) == stages["detect"]["candidates"]
    for _, _, _, raw_evidence, _ in detector_rows:  # each evidence query reproduces the observed value
        evidence = json.loads(raw_evidence)
        values = [v for row in query(settings, evidence["queries"][0]) for v in row if isinstance(v, float | int)]
        assert any(v == pytest.approx(evidence["observed"]) for v in values), evidence
    rejected = query(settings, "select reason from insight_rejections where cycle_id = ?", [result["cycle_id"]])
    assert len(rejected) == 1 and "37.5%" in rejected[0][0] and "4,321" in rejected[0][0]
    assert not any("Revenue will grow" in r[4] for r in rows)

    # the flow run is real and finished; the brief is a file and a Prefect artifact
    flow_run = asyncio.run(_flow_run(result["flow_run_id"]))
    assert flow_run.state.is_completed() and flow_run.name
    brief = Path(stages["deliver"]["brief"]).read_text()
    assert agent_rows[0][4] in brief
    assert agent_rows[0][4] in _artifact_markdown("reverie-brief")

    # ledger: every call recorded; the API key reached none of reverie's tables
    assert query(settings, "select count(*), sum(prompt_tokens) from llm_calls where purpose = 'reflect'") == [(3, 300)]
    with duckdb.connect(str(settings.warehouse), read_only=True) as con:
        for (table,) in con.execute("select table_name from information_schema.tables").fetchall():
            assert SECRET not in str(con.execute(f"select * from {table}").fetchall()), table


# prepared answers are replaced every night by design: what a rerun must not add is insights
ACTIVE_INSIGHTS = "select count(*) from memory where status = 'active' and kind <> 'prepared_answer'"


def test_rerun_on_same_data_adds_nothing_and_new_day_is_incremental(make_project, scripted_llm):
    settings = make_project(base_url=scripted_llm.base_url)
    scripted_llm.script(finish)
    first = run_cycle(settings.project_dir)
    active = query(settings, ACTIVE_INSIGHTS)[0][0]
    values = query(settings, "select * exclude (cycle_id) from metric_values order by all")

    scripted_llm.script(finish)
    again = run_cycle(settings.project_dir)
    assert again["status"] == "completed"
    assert again["stages"]["ingest"]["files"] == 0 and again["stages"]["metrics"]["rows"] == 0
    assert query(settings, ACTIVE_INSIGHTS)[0][0] == active
    assert query(settings, "select * exclude (cycle_id) from metric_values order by all") == values

    # the same data recomputed from scratch: every candidate is found again, and memory only confirms it
    scripted_llm.script(finish)
    full = run_cycle(settings.project_dir, full_refresh=True)
    assert full["stages"]["metrics"]["rows"] == len(values)
    assert full["stages"]["detect"]["candidates"] == first["stages"]["detect"]["candidates"] > 0
    memory = full["stages"]["consolidate"]
    assert memory["added"] == 0 and memory["superseded"] == 0 and memory["expired"] == 0
    assert memory["confirmed"] >= full["stages"]["detect"]["candidates"]
    assert query(settings, ACTIVE_INSIGHTS)[0][0] == active
    assert query(settings, "select * exclude (cycle_id) from metric_values order by all") == values

    # a project folder that moved (or was copied with its warehouse) is the same project: nothing is loaded twice
    moved = settings.project_dir.parent / f"{settings.project_dir.name}-moved"
    shutil.copytree(settings.project_dir, moved)
    elsewhere = run_cycle(moved)
    assert elsewhere["stages"]["ingest"]["files"] == 0 and elsewhere["stages"]["metrics"]["rows"] == 0

    generate(settings.landing_dir, 1)
    scripted_llm.script(finish)
    third = run_cycle(settings.project_dir)
    assert third["stages"]["ingest"]["files"] == 1
    # one new day plus the one-day lookback, for every metric and slice
    recomputed = query(settings, "select count(distinct period_start) from metric_values where cycle_id = ? and grain = 'day'",
                       [third["cycle_id"]])
    assert recomputed == [(2,)]
    assert first["cycle_id"] != third["cycle_id"]


@pytest.mark.reliability("fault")
def test_unreachable_llm_degrades_the_cycle_but_keeps_deterministic_insights(make_project):
    settings = make_project(base_url="http://127.0.0.1:9/v1")  # discard port: nothing listens
    result = run_cycle(settings.project_dir)
    assert result["status"] == "degraded"
    assert result["stages"]["reflect"]["status"] == "degraded"
    assert "APIConnectionError" in result["stages"]["reflect"]["error"]
    assert [lost for lost in failures(result["stages"]) if "APIConnectionError" in lost][0].startswith("reflect: ")
    assert "degraded" in stage_line("reflect", result["stages"]["reflect"])
    detected = query(settings, "select count(*) from memory where source like 'detector:%'")[0][0]
    assert detected == result["stages"]["detect"]["candidates"] > 0
    assert query(settings, "select outcome from llm_calls") == [("error: APIConnectionError",)]


@pytest.mark.reliability("bad_input")
def test_a_dirty_batch_is_quarantined_and_kept_out_of_metrics(make_project, scripted_llm):
    settings = make_project(days=40, base_url=scripted_llm.base_url)
    day = settings.landing_dir / "events" / "date=2026-01-20" / "part-0.parquet"
    duckdb.sql(f"copy (select * replace (if(event_type = 'order', null, event_id) as event_id) "
               f"from read_parquet('{day}', hive_partitioning = false)) to '{day}.tmp' (format parquet)")
    Path(f"{day}.tmp").replace(day)
    scripted_llm.script(finish)
    result = run_cycle(settings.project_dir)
    assert result["stages"]["quality"]["quarantined"] == 1
    assert "event_id" in result["stages"]["quality"]["batches"][0]["reasons"][0]
    assert query(settings, "select count(*) from metric_values where period_start = '2026-01-20'") == [(0,)]
    assert query(settings, "select count(*) from metric_values where period_start = '2026-01-21'")[0][0] > 0
    assert "part-0.parquet" in Path(result["stages"]["deliver"]["brief"]).read_text()


@pytest.mark.reliability("bad_input")
def test_an_unreadable_file_fails_alone(make_project, scripted_llm):
    settings = make_project(days=30, base_url=scripted_llm.base_url)
    broken = settings.landing_dir / "events" / "date=2026-01-10" / "part-0.parquet"
    broken.write_bytes(b"not parquet at all")
    scripted_llm.script(finish)
    result = run_cycle(settings.project_dir)
    assert result["status"] == "degraded"
    assert result["stages"]["ingest"]["files"] == 29
    assert [f["file"] for f in result["stages"]["ingest"]["failed"]] == [str(broken.relative_to(settings.project_dir))]
    assert query(settings, "select status, error like '%part-0.parquet%' from source_state") == [("failed", True)]
