"""A cycle killed dead (SIGKILL) at each stage boundary and in the middle of each write, then run again: it completes,
and the warehouse holds what a cycle that was never killed holds — no row twice, none partial, none lost — and no
alert reached a channel twice.

Each kill happens at a fault point (reverie.faults): the process announces it got there and waits, so it dies
exactly there, not wherever a sleep happened to leave it."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path

import duckdb
import pytest

from reverie.config import load_settings
from reverie.flows.local_run import run_cycle
from reverie.generator import generate
from tests.helpers import processes
from tests.helpers.prefect_server import harness_api_url
from tests.helpers.processes import REVERIE
from tests.helpers.projects import new_project
from tests.helpers.receiver import Receiver
from tests.helpers.warehouse import STATE, state

URL_ENV = "REVERIE_TEST_CRASH_WEBHOOK_URL"
DELIVER = f'channels = ["brief_file", "prefect_artifact", "webhook"]\n[deliver.webhook]\nurl_env = "{URL_ENV}"\n'
# in the order a cycle reaches them: before each stage, and inside each stage's write with nothing committed
FAULT_POINTS = [
    "before:ingest", "ingest:before-commit", "before:quality-gate", "quality:before-commit", "before:metrics",
    "metrics:before-commit", "before:detect", "detect:before-commit", "before:reflect", "reflect:before-commit",
    "before:consolidate", "consolidate:before-commit", "before:prepare-answers", "prepare:before-commit",
    "before:deliver", "deliver:webhook:sent-before-recorded", "deliver:before-commit", "before:finish-cycle",
]
# a run killed, the run taking its cycle up killed too, then one that finishes
KILLS = [[point] for point in FAULT_POINTS] + [["metrics:before-commit", "consolidate:before-commit"]]
# the default tier's few: inside the first write, inside memory's transaction, and between sending and recording;
# each kill costs a `reverie run` process (seconds of imports), so the others are the heavy tier's
DEFAULT_KILLS = [["ingest:before-commit"], ["consolidate:before-commit"], ["deliver:webhook:sent-before-recorded"]]


def tiered(kills: list[list[str]]) -> list:
    """The kills as parameters, those not among DEFAULT_KILLS marked heavy."""
    return [pytest.param(points, id="+".join(points),
                         marks=[] if points in DEFAULT_KILLS else [pytest.mark.heavy("a reverie run killed")])
            for points in kills]


def differences(after: list[tuple], reference: list[tuple]) -> dict[str, list[str]]:
    """The rows only one side has, as text (what a failed comparison says)."""
    ours, theirs = set(map(repr, after)), set(map(repr, reference))
    return {"only after the crash": sorted(ours - theirs)[:5], "only uninterrupted": sorted(theirs - ours)[:5]}


@pytest.fixture(scope="module")
def receiver():
    server = Receiver()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def night(tmp_path_factory, session_llm, receiver):
    """A project after one cycle with a new day landed, and what one uninterrupted cycle makes of it."""
    with pytest.MonkeyPatch.context() as patch:  # the webhook's URL, for this module's cycles and runs only
        patch.setenv(URL_ENV, receiver.url)
        session_llm.script()  # the analyst only says it has nothing to add: the same memory every run
        base = tmp_path_factory.mktemp("crash") / "shop"
        settings = new_project(base, days=30, base_url=session_llm.base_url, toml="")
        config = base / "reverie.toml"
        config.write_text(config.read_text().replace("[deliver]\n", f"[deliver]\n{DELIVER}", 1))
        assert run_cycle(base)["status"] == "completed"
        generate(settings.landing_dir, 1)
        reference = base.parent / "reference"
        shutil.copytree(base, reference)
        receiver.idempotency_keys.clear()
        summary = run_cycle(reference)
        assert summary["status"] == "completed" and summary["stages"]["ingest"]["files"] == 1
        assert summary["stages"]["deliver"]["channels"]["webhook"]  # the night has an alert to send
        yield base, state(load_settings(reference).warehouse), len(receiver.idempotency_keys)


def killed_at(project: Path, point: str) -> None:
    """`reverie run` in its own process, killed with SIGKILL when it reaches the fault point."""
    env = {**os.environ, "REVERIE_FAULT_POINT": point, "PREFECT_API_URL": harness_api_url()}
    with processes.started([REVERIE, "run", "--json"], cwd=project, env=env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, text=True) as child:
        for line in child.stderr:
            if line.strip() == f"reverie: fault point reached: {point}":
                break
        else:
            pytest.fail(f"the cycle ended (exit {child.wait()}) without reaching {point}")
        child.send_signal(signal.SIGKILL)
        child.wait()
        child.stderr.close()
    assert child.returncode == -signal.SIGKILL


@pytest.mark.reliability("fault")
@pytest.mark.parametrize("points", tiered(KILLS))
def test_a_cycle_killed_there_and_run_again_stores_what_an_uninterrupted_one_does(night, tmp_path, receiver, points,
                                                                                  rows_lost):
    base, reference, messages = night
    project = tmp_path / "shop"
    shutil.copytree(base, project)
    receiver.idempotency_keys.clear()

    for point in points:
        killed_at(project, point)
    rerun = run_cycle(project)

    after = state(load_settings(project).warehouse)
    rows_lost(sum(len(set(map(repr, reference[name])) - set(map(repr, after[name]))) for name in STATE))
    assert rerun["status"] == "completed", rerun
    for name in STATE:
        assert after[name] == reference[name], (name, differences(after[name], reference[name]))
    # the webhook had the night's message; if twice (killed after sending it), under one Idempotency-Key
    assert len(set(receiver.idempotency_keys)) == messages
    if "deliver:webhook:sent-before-recorded" in points:
        assert len(receiver.idempotency_keys) == messages + 1


@pytest.mark.reliability("fault")
def test_only_cycles_left_unfinished_since_the_last_good_one_are_taken_up_and_the_newest_folded_in(tmp_path):
    from reverie.tasks.cycles import take_up_interrupted
    from reverie.warehouse import Warehouse

    warehouse = Warehouse(tmp_path / "warehouse.duckdb")
    with warehouse.connect() as con:
        for minute, (cycle_id, status) in enumerate([("c1", "failed"), ("c2", "completed"), ("c3", "running"),
                                                     ("c4", "failed")]):
            con.execute("insert into cycles (cycle_id, started_at, status, stages) values "
                        "(?, timestamp '2026-01-01' + to_minutes(?), ?, '{\"kept\": true}')", [cycle_id, minute, status])
            con.execute("insert into batches (source, file, size_bytes, modified_at, rows, status, cycle_id, "
                        "loaded_at) values ('events', ?, 1, now(), 1, 'loaded', ?, now())", [f"{cycle_id}.parquet", cycle_id])

    assert take_up_interrupted.fn(warehouse) == "c3"

    with duckdb.connect(str(warehouse), read_only=True) as con:
        assert con.execute("select cycle_id, status, stages from cycles order by cycle_id").fetchall() == [
            ("c1", "failed", '{"kept": true}'), ("c2", "completed", '{"kept": true}'),
            ("c3", "running", '{"kept": true}'), ("c4", "interrupted", '{"kept": true}')]
        assert con.execute("select file, cycle_id from batches order by file").fetchall() == [
            ("c1.parquet", "c1"), ("c2.parquet", "c2"), ("c3.parquet", "c3"), ("c4.parquet", "c3")]
