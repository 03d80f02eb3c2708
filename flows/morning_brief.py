"""The morning brief: the latest cycle's brief delivered again, with the alerts it held for quiet hours and those a
failing channel is owed. Schedule it when quiet hours end."""

from __future__ import annotations

from contextlib import ExitStack

from prefect import flow

from reverie.config import load_settings
from reverie.flows.cycle_life import current_run_id, hold_writer
from reverie.tasks.cycles import latest_cycle
from reverie.tasks.deliver import deliver_brief


@flow(name="morning-brief")
def morning_brief(project_dir: str = ".", wait_minutes: float = 60.0) -> dict:
    """Deliver the latest cycle's brief again; returns {cycle_id, flow_run_id, status, deliver}.

    `wait_minutes`: how long to wait for another run writing the warehouse before this one is skipped."""
    settings = load_settings(project_dir)
    with ExitStack() as stack:
        if (busy := hold_writer(stack, settings, "morning-brief", wait_minutes)) is not None:
            return {**busy, "deliver": None}
        cycle = latest_cycle(warehouse=settings.warehouse)
        if cycle is None:
            return {"cycle_id": None, "flow_run_id": current_run_id(), "status": "no cycle yet", "deliver": None}
        summary = deliver_brief(warehouse=settings.warehouse, cycle_id=cycle["cycle_id"], project=settings.name,
                                briefs_dir=str(settings.briefs_dir), metrics_rows=cycle["metrics_rows"],
                                settings=settings.deliver, failed=cycle["failed"])
    return {"cycle_id": cycle["cycle_id"], "flow_run_id": current_run_id(),
            "status": "degraded" if summary["errors"] else "completed", "deliver": summary}
