"""One unit of a cycle's work as a flow run of its own — a source's ingest and gate, a group of metrics, a detector,
an analyst: what a work pool's worker takes when the project names `[lake] pool`. The cycle's flow creates these
runs, holds the writer lock meanwhile and reads their results (kept in Prefect's result storage, which the workers
and the cycle's process must share)."""

from __future__ import annotations

from prefect import flow

from reverie.config import load_settings
from reverie.flows.workers import unit_call


@flow(name="cycle-unit", flow_run_name="{unit}-{name}", persist_result=True)
def run_cycle_unit(project_dir: str, unit: str, name: str, parameters: dict):
    """Run the unit of work `unit` (refresh-source, metrics, detector, analyst) called `name` with `parameters`, for the
    project in `project_dir`; its result is the cycle's."""
    task, call = unit_call(load_settings(project_dir), unit, parameters)
    return task(**call)
