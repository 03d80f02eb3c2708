"""A real Prefect server for tests and benchmarks: `prefect server start` on a free loopback port with its own
PREFECT_HOME, its REST API, and an environment for the clients (CLI, workers, `reverie serve`) that talk to it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx

from tests.helpers import processes

BIN = Path(sys.executable).parent
TERMINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}

CHECKOUT = Path(__file__).resolve().parents[2]  # the repository: where `prefect deploy` reads prefect.yaml


class _RetryingTransport(httpx.HTTPTransport):
    """Prefect's server answers 503 for errors a client may retry (its database busy on a loaded machine), and
    Prefect's own client tries again; so do the tests' calls to its REST API, a few times with a growing pause."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        for pause in (0.5, 1, 2, 4, 8):
            response = super().handle_request(request)
            if response.status_code != 503:
                return response
            response.close()
            time.sleep(pause)
        return super().handle_request(request)


class PortTaken(Exception):
    """The server could not bind the port it was given."""


class Server:
    """A Prefect server process and what talking to it needs: its REST API and an environment for its clients."""

    def __init__(self, home: Path) -> None:
        home.mkdir(parents=True, exist_ok=True)
        self.log = home / "server.log"
        for _ in range(3):  # a free port can be taken between finding it and the server binding it
            self._start(home, processes.free_port())
            try:
                self._wait_healthy()
                return
            except PortTaken:
                self.stop()
            except BaseException:  # never left running behind a failed start
                self.stop()
                raise
        raise AssertionError(f"the Prefect server found its port taken three times: {self.log.read_text()[-3000:]}")

    def _start(self, home: Path, port: int) -> None:
        self.api = f"http://127.0.0.1:{port}/api"
        base = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
        self.ui = f"http://127.0.0.1:{port}"
        self.env = {**base, "PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                    "PREFECT_UI_API_URL": self.api,  # the UI's default is port 4200's
                    "PREFECT_API_URL": self.api, "PREFECT_WORKER_QUERY_SECONDS": "2",
                    "PREFECT_RUNNER_POLL_FREQUENCY": "2",
                    # no runs from the deployments' own crons (an hourly refresh at :15 would interleave): the runs
                    # here are created by hand, scheduled a few seconds ahead as the scheduler's are, or by events
                    "PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED": "false"}
        with open(self.log, "w") as out:
            self.process = subprocess.Popen(
                [BIN / "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                env={k: v for k, v in self.env.items() if k != "PREFECT_API_URL"}, stdout=out,
                stderr=subprocess.STDOUT, start_new_session=True)
        # a server on a busy machine can be slow to answer for a while: the tests wait on states, not on one reply
        self.http = httpx.Client(base_url=self.api, timeout=120, transport=_RetryingTransport())

    def _wait_healthy(self, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if self.http.get("/health").status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if self.process.poll() is not None:
                log = self.log.read_text()
                if "address already in use" in log.lower():
                    raise PortTaken(log)
                raise AssertionError(f"the Prefect server exited with code {self.process.returncode}: {log[-3000:]}")
            assert time.monotonic() < deadline, f"the Prefect server did not answer within {timeout:.0f} s: " \
                                                 f"{self.log.read_text()[-3000:]}"
            time.sleep(0.5)

    def stop(self) -> None:
        self.http.close()
        processes.stop_group(self.process)

    def cli(self, *args: str, cwd: Path = CHECKOUT, **env: str) -> str:
        done = processes.run([BIN / "prefect", *args], cwd=cwd, env={**self.env, **env}, timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    def deployment(self, flow: str, name: str) -> dict:
        return self.http.get(f"/deployments/name/{flow}/{name}").raise_for_status().json()

    def run(self, flow: str, name: str, in_seconds: float = 0) -> str:
        """A run of a deployment, now or scheduled `in_seconds` ahead (as a schedule's runs are); its id."""
        deployment = self.deployment(flow, name)
        when = datetime.now(timezone.utc) + timedelta(seconds=in_seconds)
        state = {"type": "SCHEDULED", "state_details": {"scheduled_time": when.isoformat()}}
        return self.http.post(f"/deployments/{deployment['id']}/create_flow_run",
                              json={"state": state}).raise_for_status().json()["id"]

    def wait(self, flow_run_id: str, timeout: float = 420) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            run = self.http.get(f"/flow_runs/{flow_run_id}").raise_for_status().json()
            if run["state_type"] in TERMINAL:
                return run
            time.sleep(1)
        raise AssertionError(f"flow run {flow_run_id} still {run['state_type']} after {timeout} s")

    def run_ids(self, flow: str, name: str) -> set[str]:
        """The ids of a deployment's runs so far."""
        deployment = self.deployment(flow, name)
        runs = self.http.post("/flow_runs/filter", json={"deployments": {"id": {"any_": [deployment["id"]]}}})
        return {run["id"] for run in runs.raise_for_status().json()}

    def wait_for_new_run(self, flow: str, name: str, known: set[str], timeout: float = 420) -> dict:
        """The first run of a deployment that is not among `known`, once it has ended."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            new = self.run_ids(flow, name) - known
            if new:
                return self.wait(min(new), timeout=deadline - time.monotonic())
            time.sleep(1)
        raise AssertionError(f"no new run of {flow}/{name} within {timeout} s")

    def events(self, name: str, timeout: float = 60) -> list[dict]:
        """The events of that name, once there is one (the server stores events a few seconds after they arrive)."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.http.post("/events/filter", json={"filter": {"event": {"name": [name]}}, "limit": 50})
            events = found.raise_for_status().json()["events"]
            if events or time.monotonic() > deadline:
                return events
            time.sleep(1)

    @contextmanager
    def pool_workers(self, logs: list[Path]) -> Iterator[None]:
        """reverie's deployments on the process pool `reverie-process`, and one `prefect worker start --limit 1`
        per log file (its stderr there) for the block: each takes one flow run at a time."""
        self.cli("work-pool", "create", "reverie-process", "--type", "process", "--overwrite")
        self.cli("--no-prompt", "deploy", "--all", "--prefect-file", "deployments/prefect.yaml",
                 REVERIE_PROJECT_DIR=str(CHECKOUT))  # the cycles pass their own project_dir
        workers = []
        try:
            for log in logs:
                with open(log, "w") as out:
                    workers.append(subprocess.Popen(
                        [BIN / "prefect", "worker", "start", "--pool", "reverie-process", "--limit", "1"],
                        cwd=CHECKOUT, env=self.env, stdout=subprocess.DEVNULL, stderr=out,
                        start_new_session=True))
            yield
        finally:
            for worker in workers:
                worker.terminate()
            for worker in workers:  # slow to stop on a busy machine (its runs are over by now): then killed
                processes.stop_group(worker, timeout=60)

    def emit(self, event: str, resource_id: str) -> None:
        self.cli("event", "emit", event, "--resource-id", resource_id)


def harness_api_url() -> str:
    """The API of this session's Prefect test harness (conftest's), for a child process to report to."""
    from prefect.settings import PREFECT_API_URL

    return PREFECT_API_URL.value()
