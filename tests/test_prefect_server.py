"""reverie on a real Prefect server, as the README runs it: `prefect server start` on loopback (its own PREFECT_HOME),
the deployments of deployments/prefect.yaml registered and run by a process worker, then served by `reverie serve`;
runs triggered by hand and by reverie's events, checked through the server's REST API."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import httpx
import pytest

from reverie.generator import generate
from reverie.paths import DEPLOYMENTS_DIR
from tests.helpers import processes
from tests.helpers.browser import Browser
from tests.helpers.landing import rewrite
from tests.helpers.prefect_server import BIN, CHECKOUT, Server
from tests.helpers.projects import new_project
from tests.helpers.receiver import Receiver
from tests.helpers.scripted_llm import finish, grounded_insight


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    home = Path(tempfile.mkdtemp(prefix="reverie-prefect-server-"))
    server = Server(home)
    yield server
    server.stop()
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def project(tmp_path, session_llm):
    session_llm.script(*[step for _ in range(6) for step in (grounded_insight, finish)])
    return new_project(tmp_path / "shop", days=35, base_url=session_llm.base_url)


def _memory_rows(settings, flow_run_id: str) -> int:
    with duckdb.connect(str(settings.warehouse), read_only=True) as con:
        return con.execute("select count(*) from memory where flow_run_id = $id", {"id": flow_run_id}).fetchone()[0]


def _risky_memory(settings, flow_run_id: str) -> dict[str, str]:
    with duckdb.connect(str(settings.warehouse), read_only=True) as con:
        return dict(con.execute("select id, severity from memory where flow_run_id = $id and status = 'active' "
                                "and severity in ('warning', 'critical') and kind <> 'prepared_answer'",
                                {"id": flow_run_id}).fetchall())


def _cycle_statuses(settings) -> list[str]:
    with duckdb.connect(str(settings.warehouse), read_only=True) as con:
        return [row[0] for row in con.execute("select status from cycles order by started_at").fetchall()]


def _completed_with_brief_and_memory(server: Server, settings, flow_run_id: str) -> None:
    run = server.wait(flow_run_id)
    assert run["state_type"] == "COMPLETED", run["state"]
    artifacts = server.http.post("/artifacts/filter", json={
        "artifacts": {"flow_run_id": {"any_": [flow_run_id]}}}).raise_for_status().json()
    brief = next(a for a in artifacts if a["key"] == "reverie-brief")
    assert settings.name in brief["data"]
    assert "reverie-brief-page" in {a["key"] for a in artifacts}
    assert _memory_rows(settings, flow_run_id) > 0


def _stop(process: subprocess.Popen, signum: int = signal.SIGINT) -> None:
    """Ctrl-C, as a person stops it (or SIGTERM, as a service manager does); killed if it does not stop within a
    minute (the test then fails on it)."""
    process.send_signal(signum)
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.mark.heavy("a Prefect server and a process worker")
def test_a_worker_runs_the_deployed_cycle_and_a_data_arrival_event_refreshes_then_analyses(server, project,
                                                                                          tmp_path):
    resource = f"reverie.project.{project.name}"
    server.cli("work-pool", "create", "reverie-process", "--type", "process", "--overwrite")
    server.cli("--no-prompt", "deploy", "--all", "--prefect-file", "deployments/prefect.yaml",
               REVERIE_PROJECT_DIR=str(project.project_dir))
    nightly = server.deployment("sleep-cycle", "nightly")
    assert nightly["work_pool_name"] == "reverie-process"
    assert nightly["schedules"][0]["schedule"] == {"cron": "0 3 * * *", "timezone": "Europe/London", "day_or": True}
    log = tmp_path / "worker.log"
    worker_command = [BIN / "prefect", "worker", "start", "--pool", "reverie-process"]
    with open(log, "w") as out, processes.started(worker_command, cwd=CHECKOUT, env=server.env,
                                                  stdout=subprocess.DEVNULL, stderr=out) as worker:
        try:
            flow_run_id = server.run("sleep-cycle", "nightly", in_seconds=5)  # as the nightly schedule's run is
            _completed_with_brief_and_memory(server, project, flow_run_id)
            (completed,) = server.events("reverie.cycle.completed")
            assert completed["resource"]["prefect.resource.id"] == resource
            assert {r["prefect.resource.id"] for r in completed["related"]} >= {f"prefect.flow-run.{flow_run_id}"}
            assert completed["payload"]["brief"].endswith(".md")
            stored = _risky_memory(project, flow_run_id)  # one event per warning or critical insight the run stored
            assert stored
            expected = {f"reverie.insight.{memory_id}": severity for memory_id, severity in stored.items()}
            deadline = time.monotonic() + 60
            while True:  # the server stores events a few seconds after they arrive, not all at once
                risks = server.events("reverie.insight.risk")
                emitted = {e["resource"]["prefect.resource.id"]: e["resource"]["reverie.severity"] for e in risks}
                if emitted == expected or time.monotonic() > deadline:
                    break
                time.sleep(1)
            assert emitted == expected
            assert all(resource in {r["prefect.resource.id"] for r in e["related"]} for e in risks)

            refreshes, reflects = server.run_ids("metrics-refresh", "metrics-refresh"), server.run_ids("analysis", "analysis")
            generate(project.landing_dir, 2)
            server.emit("reverie.data.arrived", resource)
            refresh = server.wait_for_new_run("metrics-refresh", "metrics-refresh", refreshes)
            assert refresh["state_type"] == "COMPLETED"
            reflect = server.wait_for_new_run("analysis", "analysis", reflects)
            _completed_with_brief_and_memory(server, project, reflect["id"])
            (refreshed,) = server.events("reverie.metrics.refreshed")
            assert refreshed["payload"]["new_files"] == 2
            assert _cycle_statuses(project) == ["completed", "completed"]  # the refresh's cycle, continued by the analysis flow
        finally:
            _stop(worker, signal.SIGTERM)
    assert "Traceback" not in log.read_text(), log.read_text()[-3000:]


@dataclass
class Served:
    """What `reverie serve` did for the project: its nightly run's id, its exit code and its log."""
    project: object
    flow_run_id: str
    returncode: int
    stderr: str


@pytest.fixture(scope="module")
def served(server, tmp_path_factory, session_llm) -> Served:
    """`reverie serve` in a project: the deployments registered for it, the nightly run, a refresh whose event starts
    reflect (one batch held back by the gate); stopped with SIGTERM, as systemd or `docker stop` stops it."""
    session_llm.script(*[step for _ in range(6) for step in (grounded_insight, finish)])
    folder = tmp_path_factory.mktemp("served")
    project = new_project(folder / "shop", days=35, base_url=session_llm.base_url)
    resource = f"reverie.project.{project.name}"
    log = folder / "serve.log"  # a file, not a pipe: a pipe nobody reads fills up and stalls the process
    with open(log, "w") as out, processes.started([BIN / "reverie", "serve"], cwd=project.project_dir,
                                                  env=server.env, stdout=subprocess.DEVNULL, stderr=out) as serve:
        try:
            deadline = time.monotonic() + 180
            while True:
                try:
                    reflect_deployment = server.deployment("analysis", "analysis")
                    if reflect_deployment["parameters"]["project_dir"] == str(project.project_dir):
                        break
                except httpx.HTTPStatusError:
                    pass
                assert serve.poll() is None and time.monotonic() < deadline, "reverie serve did not register"
                time.sleep(0.5)
            nightly = server.deployment("sleep-cycle", "nightly")
            assert nightly["work_pool_name"] is None  # served: no worker involved
            assert nightly["global_concurrency_limit"]["limit"] == 1
            assert nightly["concurrency_options"]["collision_strategy"] == "ENQUEUE"
            automations = server.http.post("/automations/filter", json={}).json()
            reflect_trigger = next(a["trigger"] for a in automations if a["name"] == "analysis__automation_1"
                                   and a["actions"][0].get("deployment_id") == reflect_deployment["id"])
            assert reflect_trigger["expect"] == ["reverie.metrics.refreshed"]
            assert reflect_trigger["match"] == {"prefect.resource.id": resource}

            flow_run_id = server.run("sleep-cycle", "nightly")
            _completed_with_brief_and_memory(server, project, flow_run_id)

            reflects = server.run_ids("analysis", "analysis")
            generate(project.landing_dir, 2)
            newest = sorted((project.landing_dir / "events").glob("date=*/part-0.parquet"))[-1]
            rewrite(newest, "* replace (if(event_type = 'order', amount * 1e6, amount) as amount)")  # held back
            refresh = server.wait(server.run("metrics-refresh", "metrics-refresh"))
            assert refresh["state_type"] == "COMPLETED"
            reflect = server.wait_for_new_run("analysis", "analysis", reflects)  # on the refresh's own event
            _completed_with_brief_and_memory(server, project, reflect["id"])
            (held,) = server.events("reverie.quality.failed")
            assert held["payload"]["batch"].endswith(f"{newest.parent.name}/part-0.parquet")
            assert "amount" in held["payload"]["reasons"][0] and held["resource"]["reverie.source"] == "events"
        finally:
            _stop(serve, signal.SIGTERM)
    return Served(project, flow_run_id, serve.returncode, log.read_text())


@pytest.mark.heavy("a Prefect server and reverie serve")
def test_reverie_serve_registers_the_deployments_runs_them_warm_and_reflects_on_the_refresh_event(served, server):
    assert served.returncode == 0 and "Traceback" not in served.stderr, served.stderr[-3000:]
    # runs started from the flow in memory (forked), not by `python -m prefect.engine` importing it from storage
    assert "Downloading flow code" not in served.stderr
    assert "stopped serving" in served.stderr
    assert server.deployment("sleep-cycle", "nightly")["paused"]  # no schedule fires with nobody serving it
    logs = served.project.warehouse.folder / "logs" / "embedded-llm.log"
    assert not logs.exists()  # the scripted endpoint was used: no embedded model started


@pytest.mark.heavy("a Prefect server, reverie serve and Chromium")
@pytest.mark.needs("chromium")
def test_the_prefect_ui_lists_the_deployments_and_renders_the_brief(served, server, tmp_path):
    """The Prefect UI (headless Chromium) lists reverie's deployments and shows the cycle's brief artifact;
    screenshots in tmp_path (and in $REVERIE_SCREENSHOTS when set: how docs/prefect-ui*.png are made)."""
    shots = [tmp_path / "prefect-ui.png", tmp_path / "prefect-ui-brief.png"]
    with Browser(width=1400, height=900, offline=False) as browser:
        browser.open(f"{server.ui}/deployments")
        for name in ("nightly", "metrics-refresh", "analysis", "morning-brief"):
            browser.wait_for_text(name)
        browser.screenshot(shots[0])
        (brief,) = server.http.post("/artifacts/filter", json={"artifacts": {
            "flow_run_id": {"any_": [served.flow_run_id]}, "key": {"any_": ["reverie-brief"]}}}).json()
        browser.open(f"{server.ui}/artifacts/artifact/{brief['id']}")  # the brief, rendered
        browser.wait_for_text(f"reverie brief — {served.project.name}")
        browser.screenshot(shots[1])
    assert all(shot.stat().st_size > 10_000 for shot in shots)
    if os.environ.get("REVERIE_SCREENSHOTS"):
        for shot in shots:
            shutil.copy(shot, Path(os.environ["REVERIE_SCREENSHOTS"]) / shot.name)


def test_flow_runs_are_forked_from_the_warm_forkserver_on_the_pinned_prefect():
    import inspect
    import multiprocessing

    import prefect.flow_engine as engine

    from reverie.flows.serve import fork_flow_runs

    assert engine.multiprocessing is multiprocessing  # the seam fork_flow_runs replaces
    assert 'get_context("spawn")' in inspect.getsource(engine.run_flow_in_subprocess)
    try:
        assert fork_flow_runs()
        assert engine.multiprocessing.get_context("spawn").get_start_method() == "forkserver"
    finally:
        engine.multiprocessing = multiprocessing


@pytest.mark.heavy("a Prefect server")
def test_the_critical_insight_automation_example_notifies_through_a_block(server, tmp_path):
    receiver = Receiver()
    try:
        block_id = subprocess.run([sys.executable, "-c", (
            "from prefect.blocks.notifications import CustomWebhookNotificationBlock as B; "
            f"print(B(name='receiver', url='{receiver.url}', json_data={{'text': '{{{{subject}}}}|{{{{body}}}}'}})"
            ".save('reverie-receiver', overwrite=True))")], env=server.env, capture_output=True, text=True,
            check=True, timeout=120).stdout.strip()
        automations = tmp_path / "automations.yaml"
        automations.write_text((DEPLOYMENTS_DIR / "automations.yaml").read_text().replace("NOTIFY_BLOCK_ID", block_id))
        server.cli("automation", "create", "--from-file", str(automations))
        risk = {"prefect.resource.id": "reverie.insight.mem-0123456789ab", "reverie.severity": "critical",
                "reverie.kind": "risk"}
        related = [{"prefect.resource.id": "reverie.project.shop", "prefect.resource.role": "project"}]
        payload = {"id": "mem-0123456789ab", "title": "refund_rate up 11.2 pp on 2026-11-02", "severity": "critical",
                   "kind": "risk", "metric": "refund_rate", "period": "2026-11-02", "cycle_id": "c1"}
        server.cli("event", "emit", "reverie.insight.risk", "--resource", json.dumps(risk),
                   "--related", json.dumps(related), "--payload", json.dumps(payload))
        deadline = time.monotonic() + 120
        while not receiver.messages and time.monotonic() < deadline:
            time.sleep(1)
        (message,) = receiver.messages
        subject, body = message["text"].split("|", 1)
        assert subject == "reverie: refund_rate up 11.2 pp on 2026-11-02"
        assert "reverie memory show mem-0123456789ab" in body and "critical risk on refund_rate" in body
    finally:
        receiver.stop()
