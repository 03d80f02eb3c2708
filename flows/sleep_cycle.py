"""The sleep cycle: ingest → quality → metrics → detect → reflect → consolidate → prepare → deliver."""

from __future__ import annotations

import time
from contextlib import ExitStack

from prefect import flow, get_run_logger

from flows.reflect import continue_cycle
from flows.stages import analysis_stages, begin_cycle, finished, hold_writer, refresh_stages
from flows.workers import cycle_workers
from reverie.config import check_suites, load_settings
from reverie.llm import warm_llm
from reverie.summaries import CycleSummary, Stages, degraded
from tasks.cycles import refreshed_cycles
from tasks.events import emit_cycle_events


@flow(name="sleep-cycle")
def sleep_cycle(project_dir: str = ".", full_refresh: bool = False, wait_minutes: float = 60.0) -> CycleSummary:
    """One sleep cycle over the project in `project_dir`; returns the run summary of the CLI contract.

    `wait_minutes`: how long to wait for another run writing the warehouse before this one is skipped."""
    settings = check_suites(load_settings(project_dir))
    warehouse = settings.warehouse
    with ExitStack() as stack:
        if (busy := hold_writer(stack, settings, "sleep-cycle", wait_minutes)) is not None:
            return busy
        if not settings.sources:
            get_run_logger().warning("no sources declared in %s/reverie.toml", settings.project_dir)
        started = time.monotonic()
        stages: Stages = {}
        status = "failed"
        spread = stack.enter_context(cycle_workers(settings))
        with warm_llm(settings.llm, warehouse.folder / "logs"):  # the embedded model loads while the data stages run
            for refreshed in refreshed_cycles(warehouse=warehouse):  # a refresh that no reflect run continued
                continue_cycle(settings, refreshed, spread)
            cycle_id = begin_cycle(settings)
            try:
                refresh_stages(settings, cycle_id, full_refresh, stages, spread)
                analysis_stages(settings, cycle_id, stages, spread)
                status = "degraded" if degraded(stages) else "completed"
            finally:
                summary = finished(settings, cycle_id, status, stages, round(time.monotonic() - started, 2))
                emit_cycle_events(warehouse=warehouse, project=settings.name, summary=summary, quality_checked=True)
    return summary
