"""`reverie serve`: every deployment of deployments/prefect.yaml, for the project in one folder, served from one
long-lived process that keeps warm what each flow run needs.

Prefect's `serve` runs each flow run in a new process started with `spawn`, which imports Prefect, reverie and
great-expectations again (~8 s on 2 cores) and would start the embedded model again (~2 s). Here the flow runs start
from a forkserver that imported all of that once (a fork is ~20 ms), and the embedded model runs for as long as the
process does, its address passed to every run (`SHARED_SERVER_ENV`). A DuckDB connection is not kept: an open one
would lock `reverie ask` and `reverie memory` out of the warehouse between runs.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from pathlib import Path
from typing import Any

import yaml

from reverie.config import Settings
from reverie.llm import SHARED_SERVER_ENV, EmbeddedServer, LLMUnavailable
from reverie.logs import console_without_tracebacks
from reverie.paths import DEPLOYMENTS_DIR, PACKAGE_DIR

DEPLOYMENT_FILE = DEPLOYMENTS_DIR / "prefect.yaml"
# what every flow run imports, loaded once by the forkserver its runs are forked from
PRELOADED = ["reverie.flows.sleep_cycle", "reverie.flows.metrics_refresh", "reverie.flows.analysis", "reverie.flows.morning_brief",
             "reverie.tasks.quality.expectations", "great_expectations", "openai", "matplotlib.pyplot"]


POLL_SECONDS = 2.0  # Prefect's default is 10 s
SERVER_PATIENCE_SECONDS = 90  # a server that takes connections but is too busy to answer is waited for this long


class ServeRefused(RuntimeError):
    """`reverie serve` cannot start; the message says what to do."""


def deployment_specs(project: str, project_dir: Path) -> list[dict[str, Any]]:
    """The deployments of deployments/prefect.yaml for one project: its folder as `project_dir`, and the event
    triggers narrowed from any project's resource to this one's."""
    specs = []
    for spec in yaml.safe_load(DEPLOYMENT_FILE.read_text())["deployments"]:
        triggers = [{**trigger, "match": {**trigger.get("match", {}),
                                          "prefect.resource.id": f"reverie.project.{project}"}}
                    for trigger in spec.get("triggers", [])]
        specs.append({**spec, "parameters": {**spec.get("parameters", {}), "project_dir": str(project_dir)},
                      "triggers": triggers})
    return specs


def served_flows(settings: Settings) -> list[tuple[Any, dict[str, Any]]]:
    """Each deployment as (flow, the options of `Runner.add_flow`): schedules, triggers, concurrency, parameters.
    One of `nightly` and `dbt-nightly`, whichever fits the project, its schedule on. Not `cycle-unit`: its runs are for a work pool's workers (`[lake] pool`), and a served copy, on no pool, would
    replace the one `prefect deploy` put on the pool."""
    from prefect.client.schemas.objects import ConcurrencyLimitConfig
    from prefect.events import DeploymentTriggerTypes
    from prefect.flows import load_flow_from_entrypoint
    from prefect.schedules import Cron
    from pydantic import TypeAdapter

    from reverie.flows.workers import UNIT_DEPLOYMENT

    trigger = TypeAdapter(DeploymentTriggerTypes)
    served = []
    # a [dbt] project's night starts with dbt build
    nightly, not_served = ("dbt-nightly", "nightly") if settings.dbt else ("nightly", "dbt-nightly")
    for spec in deployment_specs(settings.name, settings.project_dir):
        if spec["name"] in (UNIT_DEPLOYMENT.partition("/")[2], not_served):
            continue
        flow = load_flow_from_entrypoint(str(PACKAGE_DIR / spec["entrypoint"]))
        schedules = [Cron(s["cron"], timezone=s.get("timezone"), active=s.get("active", True) or spec["name"] == nightly)
                     for s in spec.get("schedules", [])]
        triggers = [trigger.validate_python({"name": f"{spec['name']}__automation_{i}", **t})
                    for i, t in enumerate(spec["triggers"], start=1)]
        limit = spec.get("concurrency_limit")
        served.append((flow, {"name": spec["name"], "description": spec.get("description"), "tags": spec.get("tags"),
                              "parameters": spec["parameters"], "schedules": schedules, "triggers": triggers,
                              "concurrency_limit": ConcurrencyLimitConfig(**limit) if limit else None}))
    return served


def poll_seconds() -> float:
    """How often to ask the server for runs due: POLL_SECONDS unless PREFECT_RUNNER_POLL_FREQUENCY is set. A
    scheduled run is seen ahead whatever this is; a run an event triggers (analysis) waits up to this long."""
    from prefect.settings import get_current_settings

    runner = get_current_settings().runner
    return runner.poll_frequency if "poll_frequency" in runner.model_fields_set else POLL_SECONDS


def check_server() -> str:
    """The Prefect server's API URL, once it answers; ServeRefused when there is none (the ephemeral API cannot
    schedule, run triggers or keep a UI)."""
    import httpx
    from prefect.settings import get_current_settings

    url = get_current_settings().api.url
    start = ("start one with `prefect server start` (another terminal) and point reverie at it: "
             "`prefect config set PREFECT_API_URL=http://127.0.0.1:4200/api`")
    if not url:
        raise ServeRefused(f"reverie serve needs a Prefect server, not the ephemeral API: {start}")
    deadline = time.monotonic() + SERVER_PATIENCE_SECONDS
    while True:
        try:
            httpx.get(f"{url}/health", timeout=10).raise_for_status()
            return url
        except httpx.TimeoutException as exc:  # a server is there but busy (a machine starting up): wait for it
            if time.monotonic() >= deadline:
                raise ServeRefused(f"no Prefect server answers at {url} within {SERVER_PATIENCE_SECONDS} s "
                                   f"({type(exc).__name__}): {start}") from None
        except httpx.HTTPError as exc:  # nothing listens there, or it refuses: said at once
            raise ServeRefused(f"no Prefect server answers at {url} ({type(exc).__name__}): {start}") from None


def fork_flow_runs() -> bool:
    """Have Prefect start each served flow run from a forkserver that has imported what runs need, instead of a
    spawned interpreter that imports it all again; False (runs spawn, slower) if this Prefect starts them otherwise.

    Prefect's runner starts an in-memory flow with `prefect.flow_engine.run_flow_in_subprocess`, which asks
    `multiprocessing` for the spawn context; the engine module is given a `multiprocessing` whose contexts are all
    the forkserver's. Checked against the pinned Prefect by tests/test_prefect_server.py (a served run's parent)."""
    import prefect.flow_engine as engine

    if getattr(engine, "multiprocessing", None) is not multiprocessing:
        return False
    multiprocessing.set_forkserver_preload(PRELOADED)
    forkserver = multiprocessing.get_context("forkserver")

    class ForkserverOnly:
        def __getattr__(self, name: str):
            return getattr(multiprocessing, name)

        @staticmethod
        def get_context(method: str | None = None):
            return forkserver

    engine.multiprocessing = ForkserverOnly()
    return True


def stop_on_signals() -> None:
    """Ctrl-C and SIGTERM (a service manager's stop) end serving as KeyboardInterrupt: the runner then pauses the
    deployments and the embedded model is stopped. Once: Ctrl-C under `uv run` reaches this process twice (from
    the terminal and forwarded by uv), and a second interrupt in the middle of the shutdown left it hanging."""
    def interrupt(signum, frame):
        for each in (signal.SIGINT, signal.SIGTERM):
            signal.signal(each, signal.SIG_IGN)
        raise KeyboardInterrupt

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, interrupt)


def serve_project(settings: Settings, print_line=print) -> None:
    """Serve the project's deployments until interrupted; ServeRefused without a Prefect server.

    Each flow is added to Prefect's Runner as a flow (not a deployment, as `prefect.serve` does): the runner then
    starts its runs from the flow in memory instead of running `python -m prefect.engine` to import it again."""
    import asyncio

    from prefect.runner import Runner

    url = check_server()
    stop_on_signals()
    os.chdir(settings.project_dir)
    forked = fork_flow_runs()
    embedded = None
    if settings.llm.embedded and not settings.llm.off:
        try:
            embedded = EmbeddedServer(settings.warehouse.folder / "logs")
            os.environ[SHARED_SERVER_ENV] = embedded.wait_ready()
        except LLMUnavailable:
            embedded = None  # each run starts its own, and says so if it cannot
    try:
        if forked:
            from multiprocessing import forkserver

            forkserver.ensure_running()  # its imports now, not in the first run's time
        runner = Runner(name=f"reverie-{settings.name}", pause_on_shutdown=True, query_seconds=poll_seconds())
        for flow, options in served_flows(settings):
            runner.add_flow(flow, **options)
            print_line(f"serving {flow.name}/{options['name']}")
        if settings.workers.pool:
            print_line(f"units of work go to the work pool {settings.workers.pool!r}: its cycle-unit deployment comes "
                       "from `prefect deploy --name cycle-unit --prefect-file deployments/prefect.yaml`")
        print_line(f"project {settings.name} ({settings.project_dir}) on {url}; Ctrl-C stops (schedules pause)")
        with console_without_tracebacks():  # e.g. Prefect's events stream reconnecting on a busy machine
            asyncio.run(runner.start())
    finally:
        if embedded is not None:
            embedded.stop()
