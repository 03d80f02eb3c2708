"""The metrics refresh: ingest → quality → metrics, hourly or when data arrives, without the analyst. What it
recomputed waits as a `refreshed` cycle; its `reverie.metrics.refreshed` event triggers the `reflect` deployment."""

from __future__ import annotations

import time
from contextlib import ExitStack

from prefect import flow

from flows.stages import begin_cycle, finished, hold_writer, refresh_stages
from flows.workers import cycle_workers
from reverie.config import check_suites, load_settings
from reverie.summaries import CycleSummary, Stages, degraded
from tasks.events import emit_refresh_events


@flow(name="metrics-refresh")
def metrics_refresh(project_dir: str = ".", full_refresh: bool = False, wait_minutes: float = 10.0) -> CycleSummary:
    """Land new data and refresh the metrics; status `refreshed` when periods were recomputed (reflect continues
    the cycle), else `completed` (or `degraded`).

    `wait_minutes`: how long to wait for another run writing the warehouse before this one is skipped (the next
    refresh lands what this one would have)."""
    settings = check_suites(load_settings(project_dir))
    with ExitStack() as stack:
        if (busy := hold_writer(stack, settings, "metrics-refresh", wait_minutes)) is not None:
            return busy
        started = time.monotonic()
        spread = stack.enter_context(cycle_workers(settings))
        cycle_id = begin_cycle(settings)
        stages: Stages = {}
        status = "failed"
        try:
            refresh_stages(settings, cycle_id, full_refresh, stages, spread)
            status = ("refreshed" if stages["metrics"]["since"] is not None
                      else "degraded" if degraded(stages) else "completed")
        finally:
            summary = finished(settings, cycle_id, status, stages, round(time.monotonic() - started, 2))
        emit_refresh_events(project=settings.name, summary=summary)
    return summary
