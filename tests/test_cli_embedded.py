"""The README's first command, for real: `reverie demo` on the embedded model, as a newcomer runs it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.helpers import processes
from tests.helpers.processes import REVERIE, reverie


def llama_servers(parent: int) -> dict[int, int]:
    """The embedded model servers whose parent is `parent`: pid and port."""
    found = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().decode(errors="replace").split("\0")
            ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if "reverie.embedded_server" in argv and ppid == parent:
            found[int(proc.name)] = int(argv[argv.index("--port") + 1])
    return found


def answering(port: int) -> bool:
    """Whether an embedded model server answers on `port` (it does once the model is loaded)."""
    try:
        return httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.mark.heavy("the embedded model, three reverie processes")
def test_demo_runs_a_clean_cycle_on_the_embedded_model_and_memory_lists_it(tmp_path):
    first = reverie("demo", "--days", "45", "--json", cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    for stream in (first.stdout, first.stderr):
        assert "Traceback" not in stream and "| ERROR" not in stream and "database is locked" not in stream
    result = json.loads(first.stdout)  # one JSON object, nothing else, on stdout
    assert result["status"] == "completed"
    assert result["stages"]["metrics"]["rows"] > 0
    reflect = result["stages"]["reflect"]
    assert reflect["model"] == "smollm2-135m-instruct" and reflect["calls"] >= 1 and reflect["prompt_tokens"] > 0
    assert reflect["written"] + reflect["rejected"] >= 1  # the tiny model did write; the grounding check judged it
    assert (tmp_path / "reverie.toml").exists() and Path(result["stages"]["deliver"]["brief"]).exists()

    listed = reverie("memory", "list", "--json", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    items = json.loads(listed.stdout)["items"]
    assert items and all(i["flow_run_id"] == result["flow_run_id"] for i in items)
    assert {"id", "kind", "title", "status", "severity", "metric", "period", "cycle_id", "flow_run_id"} <= set(items[0])

    again = reverie("demo", "--json", cwd=tmp_path)  # a later demo lands one more night
    assert again.returncode == 0, again.stderr[-3000:]
    second = json.loads(again.stdout)
    assert second["stages"]["ingest"]["files"] == 1 and second["cycle_id"] != result["cycle_id"]

    human = reverie("memory", "list", cwd=tmp_path)
    assert human.returncode == 0 and "item(s)" in human.stdout


@pytest.mark.heavy("the embedded model")
def test_ctrl_c_stops_the_embedded_model_server(tmp_path):
    with processes.started([REVERIE, "demo", "--days", "45"], cwd=tmp_path, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL) as process:
        deadline = time.monotonic() + 300
        while not (servers := llama_servers(process.pid)) or not all(map(answering, servers.values())):
            assert process.poll() is None, f"reverie demo ended (exit {process.returncode}) before its model answered"
            assert time.monotonic() < deadline, f"the embedded server never answered: {servers}"
            time.sleep(0.2)
        process.send_signal(signal.SIGINT)  # only to reverie, as if its own handler had to clean up
        process.wait(timeout=60)
        deadline = time.monotonic() + 15
        while any(alive(pid) for pid in servers) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not any(alive(pid) for pid in servers)


def alive(pid: int) -> bool:
    """Whether a process runs (a zombie, exited and not yet reaped, does not)."""
    try:
        return "Z" not in Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False


def busy_cores(count: int = 2) -> list[subprocess.Popen]:
    """Processes that keep `count` cores busy, as other jobs do on a shared machine at night."""
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]


@pytest.mark.heavy("the embedded model with both cores busy")
@pytest.mark.reliability("fault")
def test_demo_completes_on_a_fresh_machine_with_both_cores_busy(tmp_path):
    """A newcomer's first run — a fresh PREFECT_HOME — while two other processes saturate both cores."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_SERVER_EPHEMERAL")}
    env.update(PREFECT_HOME=str(tmp_path / "prefect-home"), COLUMNS="200")
    (tmp_path / "shop").mkdir()
    load = busy_cores()
    try:
        done = processes.run([REVERIE, "demo", "--days", "30", "--json"], cwd=tmp_path / "shop", env=env, timeout=900)
    finally:
        for process in load:
            process.kill()
            process.wait()
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr and "Timed out" not in done.stderr
    result = json.loads(done.stdout)
    assert result["status"] == "completed" and result["stages"]["reflect"]["calls"] >= 1


@pytest.mark.heavy("a reverie process on a new PREFECT_HOME")
def test_prefect_that_cannot_start_is_one_clear_line(tmp_path):
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect-home"),
           "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "1"}  # the user's own setting wins, even a bad one
    (tmp_path / "shop").mkdir()
    done = processes.run([REVERIE, "demo", "--days", "3"], cwd=tmp_path / "shop", env=env, timeout=300)
    assert done.returncode == 1
    lines = [line for line in done.stderr.splitlines() if line.strip() and "INFO" not in line]
    assert lines[-1].startswith("error: Prefect's local API did not start within 1 s"), done.stderr[-2000:]
    assert "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS" in lines[-1] and "Traceback" not in done.stderr


@pytest.mark.heavy("two reverie processes on a new PREFECT_HOME")
@pytest.mark.reliability("fault")
def test_a_prefect_database_that_cannot_be_read_is_one_line_naming_it_and_the_server_log(tmp_path):
    """Prefect's temporary server prints tracebacks of its own: they go to the project's log, not the terminal, and a
    server that cannot start is not started again and again until the timeout."""
    home = tmp_path / "prefect-home"
    home.mkdir()
    (home / "prefect.db").write_bytes(b"not a database" * 1000)
    env = {**os.environ, "PREFECT_HOME": str(home)}
    assert processes.run([REVERIE, "init", "shop"], cwd=tmp_path, env=env, timeout=120).returncode == 0
    done = processes.run([REVERIE, "run"], cwd=tmp_path / "shop", env=env, timeout=250)  # below the 300 s a server gets
    assert done.returncode == 1
    log = tmp_path / "shop" / ".reverie" / "logs" / "prefect-server.log"
    assert done.stderr.splitlines()[-2] == (f"error: Prefect's local API failed to start (sqlite3.DatabaseError: "
                                            f"file is not a database); its log: {log}"), done.stderr[-3000:]
    assert "Traceback" not in done.stderr and "ERROR" not in done.stderr
    assert "Traceback" in log.read_text() and "Application startup failed" in log.read_text()
