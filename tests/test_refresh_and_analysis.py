"""The nightly cycle split in two as the deployments run it — an hourly metrics refresh, then the analysis of what it
recomputed — and one writer at a time, whatever the flow, on real DuckDB and real Prefect."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import duckdb
import pytest

from reverie.flows.analysis import analyse_refreshed
from reverie.flows.metrics_refresh import metrics_refresh
from reverie.flows.morning_brief import morning_brief
from reverie.flows.sleep_cycle import sleep_cycle
from reverie.generator import generate
from tests.helpers import processes
from tests.helpers.scripted_llm import finish, grounded_insight


def without_analyst(settings):
    """The project with `[llm] analysts = 0`: no model at all."""
    config = settings.project_dir / "reverie.toml"
    config.write_text(config.read_text().replace("[llm]\n", "[llm]\nanalysts = 0\n", 1))
    return settings


def cycles(settings) -> list[tuple]:
    with duckdb.connect(str(settings.warehouse), read_only=True) as con:
        return con.execute("select cycle_id, status, stages, started_at, finished_at from cycles "
                           "order by started_at").fetchall()


def test_a_refresh_leaves_its_cycle_for_the_analysis_flow_which_continues_it_under_the_same_id(make_project, scripted_llm):
    settings = make_project(days=35, base_url=scripted_llm.base_url)
    scripted_llm.script(grounded_insight, finish)
    refreshed = metrics_refresh(project_dir=str(settings.project_dir))
    assert refreshed["status"] == "refreshed" and refreshed["stages"]["metrics"]["since"]
    assert set(refreshed["stages"]) == {"ingest", "quality", "metrics"}
    assert not scripted_llm.requests  # no analyst in a refresh
    assert not (settings.briefs_dir / "latest.md").exists()
    assert morning_brief(project_dir=str(settings.project_dir))["status"] == "no cycle yet"  # nothing reflected

    reflected = analyse_refreshed(project_dir=str(settings.project_dir))
    assert reflected["cycles"] == [refreshed["cycle_id"]] and reflected["cycle_id"] == refreshed["cycle_id"]
    assert reflected["status"] == "completed" and reflected["stages"]["reflect"]["written"] == 1
    assert list(reflected["stages"]) == ["ingest", "quality", "metrics", "detect", "reflect", "consolidate",
                                         "prepare", "deliver"]
    assert reflected["seconds"] >= refreshed["seconds"]  # both halves' own time
    (row,) = cycles(settings)
    assert row[0] == refreshed["cycle_id"] and row[1] == "completed" and "deliver" in json.loads(row[2])
    assert refreshed["cycle_id"] in (settings.briefs_dir / "latest.md").read_text()

    again = analyse_refreshed(project_dir=str(settings.project_dir))
    assert again["status"] == "nothing to analyse" and again["cycles"] == []

    unchanged = metrics_refresh(project_dir=str(settings.project_dir))  # no new file: nothing to reflect on
    assert unchanged["status"] == "completed" and unchanged["stages"]["metrics"]["since"] is None


def test_the_nightly_cycle_first_continues_a_refresh_no_analysis_run_took_up(make_project):
    settings = without_analyst(make_project(days=35))
    refreshed = metrics_refresh(project_dir=str(settings.project_dir))
    generate(settings.landing_dir, 1)
    nightly = sleep_cycle(project_dir=str(settings.project_dir))
    statuses = {row[0]: row[1] for row in cycles(settings)}
    assert statuses == {refreshed["cycle_id"]: "completed", nightly["cycle_id"]: "completed"}


@pytest.mark.reliability("fault")
def test_a_run_waits_for_the_writer_then_is_skipped_naming_who_holds_the_warehouse(make_project):
    settings = without_analyst(make_project(days=3))
    metrics_refresh(project_dir=str(settings.project_dir))
    generate(settings.landing_dir, 1)
    before = cycles(settings)
    with settings.warehouse.writing(60, {"flow": "sleep-cycle", "flow_run_id": "run-that-holds"}):
        started = time.monotonic()
        result = sleep_cycle(project_dir=str(settings.project_dir), wait_minutes=0.05)
        waited = time.monotonic() - started
    assert result["status"] == "skipped" and result["cycle_id"] is None and result["stages"] == {}
    assert "being written by sleep-cycle (flow run run-that-holds)" in result["error"]
    assert "gave up after waiting 3 s" in result["error"] and waited >= 3
    assert cycles(settings) == before  # nothing written, nothing half-done
    assert sleep_cycle(project_dir=str(settings.project_dir))["stages"]["ingest"]["files"] == 1  # left for the next


@pytest.mark.reliability("fault")
def test_a_run_started_while_another_writes_waits_for_it_and_then_runs(make_project):
    settings = make_project(days=3)
    holding, release, released = threading.Event(), threading.Event(), []

    def hold() -> None:
        with settings.warehouse.writing(60, {"flow": "metrics-refresh"}):
            holding.set()
            release.wait(10)
            released.append(settings.warehouse.now())  # still holding: a cycle that waited starts after this

    holder = threading.Thread(target=hold)
    holder.start()
    assert holding.wait(30)
    threading.Timer(2.0, release.set).start()
    result = metrics_refresh(project_dir=str(settings.project_dir), wait_minutes=1)
    holder.join()
    assert result["status"] == "refreshed"
    (cycle,) = cycles(settings)
    assert cycle[0] == result["cycle_id"] and cycle[3] >= released[0]  # it began once the other had let go


@pytest.mark.heavy("two reverie run processes, each starting Prefect on a new PREFECT_HOME")
@pytest.mark.reliability("fault")
def test_two_cycles_launched_at_once_write_one_after_the_other_and_both_complete(make_project, tmp_path):
    settings = without_analyst(make_project(days=10))
    reverie = Path(sys.executable).parent / "reverie"
    # a new PREFECT_HOME, as on a new machine: both commands' Prefect servers would migrate its database at once
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect-home")}
    command = dict(args=[reverie, "run", "--json"], cwd=settings.project_dir, stdout=subprocess.PIPE,
                   stderr=subprocess.PIPE, text=True, env=env)
    with processes.started(**command) as one, processes.started(**command) as other:
        runs = [one, other]
        outputs = [run.communicate(timeout=600) for run in runs]
    for run, (_, stderr) in zip(runs, outputs):
        assert run.returncode == 0, stderr
        assert "Traceback" not in stderr and "lock" not in stderr.lower()
    results = [json.loads(stdout) for stdout, _ in outputs]
    assert sorted(r["status"] for r in results) == ["completed", "completed"]
    first, second = cycles(settings)
    assert first[4] <= second[3]  # the second began after the first had finished: never two writers
    assert sorted(r["stages"]["ingest"]["files"] for r in results) == [0, 10]  # each file landed once
