"""The sleep cycle: ingest → quality → metrics → detect → reflect → consolidate → prepare → deliver."""

from __future__ import annotations

from contextlib import ExitStack

from prefect import flow, get_run_logger

from reverie.config import check_suites, load_settings
from reverie.flows.analysis import continue_cycle
from reverie.flows.cycle_life import cycle_life, hold_writer
from reverie.flows.stages import analysis_stages, refresh_stages
from reverie.flows.workers import cycle_workers
from reverie.llm import warm_llm
from reverie.summaries import CycleSummary
from reverie.tasks.cycles import refreshed_cycles


@flow(name="sleep-cycle")
def sleep_cycle(project_dir: str = ".", full_refresh: bool = False, wait_minutes: float = 60.0) -> CycleSummary:
    """One sleep cycle over the project in `project_dir`; returns the run summary of the CLI contract.

    `wait_minutes`: how long to wait for another run writing the warehouse before this one is skipped."""
    settings = check_suites(load_settings(project_dir))
    with ExitStack() as stack:
        if (busy := hold_writer(stack, settings, "sleep-cycle", wait_minutes)) is not None:
            return busy
        if not settings.sources:
            get_run_logger().warning("no sources declared in %s/reverie.toml", settings.project_dir)
        run_units = stack.enter_context(cycle_workers(settings))
        with warm_llm(settings.llm, settings.warehouse.folder / "logs"):  # the model loads while the data stages run
            for refreshed in refreshed_cycles(warehouse=settings.warehouse):  # a refresh no analysis run continued
                continue_cycle(settings, refreshed, run_units)
            with cycle_life(settings) as cycle:
                refresh_stages(settings, cycle.id, full_refresh, cycle.stages, run_units)
                analysis_stages(settings, cycle.id, cycle.stages, run_units)
    return cycle.summary
