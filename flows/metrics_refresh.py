"""The metrics refresh: ingest → quality → metrics, hourly or when data arrives, without the analyst. What it
recomputed waits as a `refreshed` cycle; its `reverie.metrics.refreshed` event triggers the `analysis` deployment."""

from __future__ import annotations

from contextlib import ExitStack

from prefect import flow

from reverie.config import check_suites, load_settings
from reverie.flows.cycle_life import cycle_life, hold_writer
from reverie.flows.stages import refresh_stages
from reverie.flows.workers import cycle_workers
from reverie.summaries import CycleSummary


@flow(name="metrics-refresh")
def metrics_refresh(project_dir: str = ".", full_refresh: bool = False, wait_minutes: float = 10.0) -> CycleSummary:
    """Land new data and refresh the metrics; status `refreshed` when periods were recomputed (the analysis flow continues
    the cycle), else `completed` (or `degraded`).

    `wait_minutes`: how long to wait for another run writing the warehouse before this one is skipped (the next
    refresh lands what this one would have)."""
    settings = check_suites(load_settings(project_dir))
    with ExitStack() as stack:
        if (busy := hold_writer(stack, settings, "metrics-refresh", wait_minutes)) is not None:
            return busy
        run_units = stack.enter_context(cycle_workers(settings))
        with cycle_life(settings, refresh=True) as cycle:
            refresh_stages(settings, cycle.id, full_refresh, cycle.stages, run_units)
            if cycle.stages["metrics"]["since"] is not None:
                cycle.status = "refreshed"  # the analysis deployment continues it, triggered by the refresh's event
    return cycle.summary
