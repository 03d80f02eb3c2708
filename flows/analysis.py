"""The analysis half: continue the cycles a metrics refresh left — detect → reflect → consolidate → prepare →
deliver over the periods it recomputed. The `analysis` deployment runs it when `reverie.metrics.refreshed` is
emitted (it was called `reflect`, like the stage it runs, before this release)."""

from __future__ import annotations

from contextlib import ExitStack

from prefect import flow

from reverie.config import Settings, load_settings
from reverie.flows.cycle_life import current_run_id, cycle_life, hold_writer
from reverie.flows.stages import analysis_stages
from reverie.flows.workers import cycle_workers
from reverie.llm import warm_llm
from reverie.summaries import CycleSummary
from reverie.tasks.cycles import refreshed_cycles
from reverie.units import RunUnits


def continue_cycle(settings: Settings, cycle_id: str, run_units: RunUnits) -> CycleSummary:
    """The analysis half of a refreshed cycle, under its id (units of work run as `run_units` does)."""
    with cycle_life(settings, continuing=cycle_id) as cycle:
        analysis_stages(settings, cycle.id, cycle.stages, run_units)
    return cycle.summary


@flow(name="analysis")
def analyse_refreshed(project_dir: str = ".", wait_minutes: float = 60.0) -> dict:
    """Continue every refreshed cycle, oldest first (usually the one whose event triggered this run); returns the
    last one's summary with `cycles`, the ids continued.

    `wait_minutes`: how long to wait for another run writing the warehouse before this one is skipped."""
    settings = load_settings(project_dir)
    with ExitStack() as stack:
        if (busy := hold_writer(stack, settings, "analysis", wait_minutes)) is not None:
            return {**busy, "cycles": []}
        pending = refreshed_cycles(warehouse=settings.warehouse)
        if not pending:
            return {"cycle_id": None, "flow_run_id": current_run_id(), "status": "nothing to analyse",
                    "warehouse": str(settings.warehouse), "stages": {}, "seconds": 0.0, "cycles": []}
        run_units = stack.enter_context(cycle_workers(settings))
        with warm_llm(settings.llm, settings.warehouse.folder / "logs"):
            summaries = [continue_cycle(settings, cycle_id, run_units) for cycle_id in pending]
    return {**summaries[-1], "cycles": [s["cycle_id"] for s in summaries]}
