"""The sleep cycle: ingest → quality → metrics → detect → reflect → consolidate → deliver."""

from __future__ import annotations

import time
import uuid
from datetime import datetime

from prefect import flow
from prefect.runtime import flow_run

from reverie.config import load_settings
from tasks.agent import reflect
from tasks.deliver import deliver_brief
from tasks.detect import detect_candidates
from tasks.ingest import ingest_source
from tasks.memory import consolidate
from tasks.metrics import refresh_metrics
from tasks.quality import run_quality_gate
from tasks.warehouse import finish_cycle, start_cycle

SOURCE = "events"


def timed(stage, *args, **kwargs) -> dict:
    """Run one stage task and add its wall time to its summary."""
    started = time.monotonic()
    summary = stage(*args, **kwargs)
    return {**summary, "seconds": round(time.monotonic() - started, 2)}


@flow(name="sleep-cycle")
def sleep_cycle(project_dir: str = ".", full_refresh: bool = False) -> dict:
    """One sleep cycle over the project in `project_dir`; returns the run summary of the CLI contract."""
    settings = load_settings(project_dir)
    warehouse = str(settings.warehouse)
    cycle_id = f"c{datetime.now():%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
    run_id = str(flow_run.id) if flow_run.id else None
    started = time.monotonic()
    start_cycle(warehouse, cycle_id, run_id)
    stages: dict[str, dict] = {}
    status = "failed"
    try:
        stages["ingest"] = timed(ingest_source, warehouse, str(settings.landing_dir), SOURCE, cycle_id)
        stages["quality"] = timed(run_quality_gate, warehouse, SOURCE, cycle_id)
        stages["metrics"] = timed(refresh_metrics, warehouse, cycle_id, full_refresh,
                                  grace_minutes=settings.completeness_grace_minutes)
        stages["detect"] = timed(detect_candidates, warehouse, cycle_id, stages["metrics"]["since"], settings.detect)
        stages["reflect"] = timed(reflect, warehouse, cycle_id, settings.llm, str(settings.warehouse.parent / "logs"))
        stages["memory"] = timed(consolidate, warehouse, cycle_id, run_id)
        stages["deliver"] = timed(deliver_brief, warehouse, cycle_id, settings.name, str(settings.briefs_dir),
                                  stages["metrics"]["rows"])
        degraded = stages["ingest"]["failed"] or stages["reflect"]["status"] == "degraded"
        status = "degraded" if degraded else "completed"
    finally:
        seconds = round(time.monotonic() - started, 2)
        finish_cycle(warehouse, cycle_id, status, stages, seconds)
    return {"cycle_id": cycle_id, "flow_run_id": run_id, "status": status, "warehouse": warehouse,
            "stages": stages, "seconds": seconds}
