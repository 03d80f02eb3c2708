"""The sleep cycle: ingest → quality → metrics → detect → reflect → consolidate → prepare → deliver."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import datetime

from prefect import flow, get_run_logger
from prefect.runtime import flow_run

from reverie.config import load_settings
from reverie.llm import warm_llm
from reverie.summaries import (
    CycleSummary,
    Stages,
    degraded,
    ingest_total,
    quality_total,
)
from tasks.cycles import finish_cycle, start_cycle
from tasks.deliver import deliver_brief
from tasks.detect import detect_candidates
from tasks.ingest import ingest_source
from tasks.memory import consolidate
from tasks.metrics import refresh_metrics
from tasks.prepare import prepare_answers
from tasks.quality import run_quality_gate
from tasks.reflect import reflect


def timed(stage: Callable[..., dict], **parameters) -> dict:
    """Run one stage task and add its wall time to its summary."""
    started = time.monotonic()
    summary = stage(**parameters)
    return {**summary, "seconds": round(time.monotonic() - started, 2)}


@flow(name="sleep-cycle")
def sleep_cycle(project_dir: str = ".", full_refresh: bool = False) -> CycleSummary:
    """One sleep cycle over the project in `project_dir`; returns the run summary of the CLI contract."""
    settings = load_settings(project_dir)
    warehouse = settings.warehouse
    cycle_id = f"c{datetime.now():%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
    run_id = str(flow_run.id) if flow_run.id else None
    if not settings.sources:
        get_run_logger().warning("no sources declared in %s/reverie.toml", settings.project_dir)
    started = time.monotonic()
    start_cycle(warehouse=warehouse, cycle_id=cycle_id, flow_run_id=run_id)
    stages: Stages = {}
    status = "failed"
    log_dir = warehouse.folder / "logs"
    sources = settings.sources.values()
    with warm_llm(settings.llm, log_dir):  # the embedded model loads while the data stages run
        try:
            stages["ingest"] = ingest_total({source.name: timed(
                ingest_source, warehouse=warehouse, project_dir=str(settings.project_dir), source=source,
                cycle_id=cycle_id, lookback_days=settings.lookback_days) for source in sources})
            stages["quality"] = quality_total({source.name: timed(
                run_quality_gate, warehouse=warehouse, source_settings=source, cycle_id=cycle_id,
                quality_dir=str(settings.quality_dir)) for source in sources})
            stages["metrics"] = timed(
                refresh_metrics, warehouse=warehouse, cycle_id=cycle_id, sources=settings.sources,
                models_dir=str(settings.models_dir), metrics_dir=str(settings.metrics_dir), full_refresh=full_refresh,
                lookback_days=settings.lookback_days, grace_minutes=settings.completeness_grace_minutes,
                quality_dir=str(settings.quality_dir))
            since = stages["metrics"]["since"]  # the first period recomputed: what is new to detect and remember
            stages["detect"] = timed(detect_candidates, warehouse=warehouse, cycle_id=cycle_id, since=since,
                                     settings=settings.detect, detectors_dir=str(settings.detectors_dir))
            stages["reflect"] = timed(reflect, warehouse=warehouse, cycle_id=cycle_id, settings=settings.llm,
                                      log_dir=str(log_dir))
            stages["memory"] = timed(consolidate, warehouse=warehouse, cycle_id=cycle_id, flow_run_id=run_id,
                                     since=since, settings=settings.memory)
            stages["prepare"] = timed(prepare_answers, warehouse=warehouse, cycle_id=cycle_id, flow_run_id=run_id,
                                      settings=settings.llm, log_dir=str(log_dir))
            stages["deliver"] = timed(deliver_brief, warehouse=warehouse, cycle_id=cycle_id, project=settings.name,
                                      briefs_dir=str(settings.briefs_dir), metrics_rows=stages["metrics"]["rows"],
                                      settings=settings.deliver)
            status = "degraded" if degraded(stages) else "completed"
        finally:
            seconds = round(time.monotonic() - started, 2)
            finish_cycle(warehouse=warehouse, cycle_id=cycle_id, status=status, stages=stages, seconds=seconds)
    return {"cycle_id": cycle_id, "flow_run_id": run_id, "status": status, "warehouse": str(warehouse),
            "stages": stages, "seconds": seconds}
