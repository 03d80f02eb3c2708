"""Where a cycle's units of work run — each source's ingest and quality gate, each group of metrics, each detector,
each analyst: one after another in the flow's process, all at once on a Dask cluster (`[lake] workers` or
`scheduler`), or as flow runs of the `cycle-unit` deployment that a Prefect work pool's workers take (`[lake] pool`).
(Analysts are threads of the flow's process unless there are workers and an endpoint: tasks/reflect.py.)

A flow opens `cycle_workers` once and hands its `run_units` to the stages; the results come back in the calls' order,
whichever way the units ran."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

from prefect import Task
from prefect.task_runners import TaskRunner

from reverie.config import Settings, Workers
from reverie.flows.stages import SOURCE_UNIT
from reverie.prefect_api import api_url
from reverie.tasks.detect import DETECTOR_UNIT
from reverie.tasks.metrics import METRIC_GROUP_UNIT
from reverie.tasks.reflect import ANALYST_UNIT
from reverie.units import RunUnits, Unit

UNIT_DEPLOYMENT = "cycle-unit/cycle-unit"  # flows/cycle_unit.py, in deployments/prefect.yaml
POOL_POLL_SECONDS = 2.0
POOL_START_SECONDS = 600.0  # a unit's run no worker has taken by then: the pool has no worker, the cycle fails
UNITS: dict[str, Unit] = {unit.task.name: unit for unit in (SOURCE_UNIT, METRIC_GROUP_UNIT, DETECTOR_UNIT,
                                                              ANALYST_UNIT)}  # a new unit of work: its Unit, here


class PoolUnavailable(RuntimeError):
    """The units cannot be handed to the work pool's workers; the message says what to do."""


def unit_parameters(unit: Task, call: dict) -> tuple[str, dict]:
    """A unit's call as a flow run's name and parameters."""
    if unit.name not in UNITS:
        raise ValueError(f"{unit.name} is not a unit of work a work pool takes")
    return UNITS[unit.name].sent(call)


def unit_call(settings: Settings, unit: str, parameters: dict) -> tuple[Task, dict]:
    """The unit named `unit` and its call, rebuilt by a worker from the project's settings (an API key its own
    environment's) and its run's parameters."""
    if unit not in UNITS:
        raise ValueError(f"no unit of work named {unit!r}")
    return UNITS[unit].task, UNITS[unit].rebuilt(settings, parameters)


def run_on_pool(settings: Settings, unit: Task, calls: list[dict]) -> list:
    """Each call of a unit as a flow run of the `cycle-unit` deployment, all created at once for the workers of
    `[lake] pool` to take, then awaited; their results in the calls' order. A unit whose run did not complete fails
    the cycle, naming the run; so do runs no worker took within POOL_START_SECONDS (cancelled)."""
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment
    from prefect.exceptions import ObjectNotFound
    from prefect.settings import get_current_settings
    from prefect.states import Cancelled

    pool = settings.workers.pool
    if not get_current_settings().api.url:
        raise PoolUnavailable(f"[lake] pool = {pool!r} needs a Prefect server its workers reach: set PREFECT_API_URL "
                              "(see deployments/prefect.yaml)")
    with get_client(sync_client=True) as client:
        try:
            deployment = client.read_deployment_by_name(UNIT_DEPLOYMENT)
        except ObjectNotFound:
            raise PoolUnavailable(f"[lake] pool = {pool!r}: no deployment {UNIT_DEPLOYMENT} on the Prefect server; "
                                  "deploy deployments/prefect.yaml") from None
        if deployment.work_pool_name is None:
            raise PoolUnavailable(f"[lake] pool = {pool!r}, but the deployment {UNIT_DEPLOYMENT} is on no work pool "
                                  "(a served copy); deploy deployments/prefect.yaml to the pool: prefect deploy --name "
                                  "cycle-unit --prefect-file deployments/prefect.yaml")
        if deployment.work_pool_name != pool:
            raise PoolUnavailable(f"[lake] pool = {pool!r}, but the deployment {UNIT_DEPLOYMENT} runs on the work "
                                  f"pool {deployment.work_pool_name!r}")
        runs = []
        for call in calls:
            name, parameters = unit_parameters(unit, call)
            runs.append(run_deployment(UNIT_DEPLOYMENT, timeout=0, parameters={
                "project_dir": str(settings.project_dir), "unit": unit.name, "name": name, "parameters": parameters}))
        pending, deadline = {run.id for run in runs}, time.monotonic() + POOL_START_SECONDS
        while pending:
            time.sleep(POOL_POLL_SECONDS)
            states = {run_id: client.read_flow_run(run_id).state for run_id in pending}
            pending = {run_id for run_id, state in states.items() if not state.is_final()}
            waiting = [run_id for run_id in pending if states[run_id].is_scheduled()]
            if waiting and time.monotonic() > deadline:
                for run_id in waiting:
                    client.set_flow_run_state(run_id, Cancelled(message="no worker took it"), force=True)
                raise PoolUnavailable(f"[lake] pool = {pool!r}: no worker took {len(waiting)} of the {unit.name} "
                                      f"flow runs within {POOL_START_SECONDS:g} s (cancelled); start one: prefect "
                                      f"worker start --pool {pool}")
        ended = [client.read_flow_run(run.id) for run in runs]
    for run in ended:
        if not run.state.is_completed():
            raise PoolUnavailable(f"the flow run {run.name} ({run.id}) on the work pool {pool!r} ended "
                                  f"{run.state.type.value}: {run.state.message}")
    return [run.state.result() for run in ended]


@contextmanager
def dask_runner(workers: Workers) -> Iterator[TaskRunner]:
    """A Dask cluster for the block: the one at `scheduler`, or `count` local processes (one thread each: DuckDB
    spreads a query over the cores itself). Its task runs report to this run's Prefect API; their console output
    is left out (their logs, tracebacks included, are the flow run's in Prefect)."""
    from prefect_dask import DaskTaskRunner

    logging.getLogger("distributed").setLevel(logging.WARNING)  # a line per worker started, connected and stopped
    if workers.scheduler:
        runner = DaskTaskRunner(address=workers.scheduler)
    else:
        env = {"PREFECT_API_URL": api_url(), "PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL": "CRITICAL"}
        runner = DaskTaskRunner(cluster_kwargs={"n_workers": workers.count, "threads_per_worker": 1,
                                                "processes": True, "dashboard_address": ":0", "env": env})
    with runner:
        yield runner


@contextmanager
def cycle_workers(settings: Settings) -> Iterator[RunUnits]:
    """How the block runs its units of work: on the work pool's workers when `[lake] pool` names one; else as task
    runs one after another in this process, or all at once on a Dask cluster when there are workers — started the
    first time two units are run at once, stopped when the block ends (a flow opens it once)."""
    workers = settings.workers
    with ExitStack() as stack:
        cluster: list[TaskRunner] = []

        def run_units(unit: Task, calls: list[dict]) -> list:
            if workers.pool and calls:
                return run_on_pool(settings, unit, calls)
            if not workers.dask or len(calls) < 2:
                return [unit(**call) for call in calls]
            if not cluster:
                cluster.append(stack.enter_context(dask_runner(workers)))
            futures = [cluster[0].submit(unit, call) for call in calls]
            return [future.result() for future in futures]

        run_units.here = not workers.pool and not workers.dask  # type: ignore[attr-defined]
        yield run_units
