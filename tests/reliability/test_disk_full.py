"""A disk that fills up, on a real size-limited file system (tmpfs): before a run it is refused in one line with
nothing written; in the middle of a write the cycle fails in one line, no traceback, nothing stored before is
lost, and once there is room the next run completes what the failed one began."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from reverie.config import load_settings
from reverie.flows.local_run import run_cycle
from reverie.generator import generate
from reverie.warehouse import MIN_FREE_BYTES
from tests.helpers import processes
from tests.helpers.prefect_server import harness_api_url
from tests.helpers.processes import REVERIE
from tests.helpers.projects import new_project
from tests.helpers.warehouse import STATE, state

pytestmark = pytest.mark.heavy("a tmpfs mounted and filled")


@pytest.fixture
def small_disk(tmp_path):
    """A 160 MB tmpfs mounted for the test (root only; CI runs as root, and there a skip fails)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=160m", "tmpfs", str(disk)], capture_output=True,
                             text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    yield disk
    subprocess.run(["umount", "-l", str(disk)], check=True)


@pytest.fixture
def night_on_small_disk(small_disk, tmp_path, session_llm):
    """A project on the small disk after one cycle, a new day landed, and what one cycle makes of it elsewhere."""
    session_llm.script()
    project = small_disk / "shop"
    settings = new_project(project, days=30, base_url=session_llm.base_url)
    assert run_cycle(project)["status"] == "completed"
    generate(settings.landing_dir, 1)
    reference = tmp_path / "reference"
    shutil.copytree(project, reference)
    assert run_cycle(reference)["status"] == "completed"
    return project, state(load_settings(reference).warehouse)


def fill(disk: Path, leave: int) -> Path:
    """A file taking all the room on `disk` but `leave` bytes."""
    junk = disk / "junk"
    room = shutil.disk_usage(disk).free - leave
    with junk.open("ab") as f:
        os.posix_fallocate(f.fileno(), junk.stat().st_size, max(room, 1))
    return junk


def reverie_run(project: Path, **env: str):
    """`reverie run --json` started in the project (a context: what is left of it is killed when the block ends)."""
    return processes.started([REVERIE, "run", "--json"], cwd=project, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True,
                             env={**os.environ, "PREFECT_API_URL": harness_api_url(), **env})


def lost(before: dict, after: dict) -> int:
    return sum(len(set(map(repr, before[name])) - set(map(repr, after[name]))) for name in STATE)


@pytest.mark.reliability("fault")
def test_a_run_on_a_nearly_full_disk_is_refused_in_one_line_with_nothing_written(night_on_small_disk, rows_lost):
    project, reference = night_on_small_disk
    warehouse = load_settings(project).warehouse
    before = state(warehouse)
    junk = fill(project.parent, leave=MIN_FREE_BYTES // 2)

    with reverie_run(project) as run:
        out, err = run.communicate(timeout=300)

    rows_lost(lost(before, state(warehouse)))
    assert run.returncode == 1 and "Traceback" not in out + err
    summary = json.loads(out)
    assert summary["status"] == "failed" and "MB free" in summary["error"] and "free some space" in summary["error"]
    assert state(warehouse) == before
    junk.unlink()
    assert run_cycle(project)["status"] == "completed"
    assert state(warehouse) == reference


@pytest.mark.reliability("fault")
def test_a_disk_filling_up_in_the_middle_of_a_write_fails_the_cycle_and_the_next_run_completes_it(
        night_on_small_disk, rows_lost):
    project, reference = night_on_small_disk
    warehouse = load_settings(project).warehouse
    before = state(warehouse)
    with reverie_run(project, REVERIE_FAULT_POINT="metrics:before-commit", REVERIE_FAULT_RESUME="stdin") as run:
        for line in run.stderr:  # the new day is loaded; the metrics are written, not committed: now the disk fills up
            if line.strip() == "reverie: fault point reached: metrics:before-commit":
                break
        junk = fill(project.parent, leave=0)
        run.stdin.write("\n")
        run.stdin.flush()
        out, err = run.communicate(timeout=300)

    rows_lost(lost(before, state(warehouse)))
    assert "Traceback" not in out + err, err[-3000:]
    summary = json.loads(out)
    assert summary["status"] in ("failed", "degraded") and "No space left on device" in json.dumps(summary), summary
    assert lost(before, state(warehouse)) == 0
    junk.unlink()
    again = run_cycle(project)
    assert again["status"] == "completed", again
    assert state(warehouse) == reference
