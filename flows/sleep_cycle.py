"""The sleep cycle: ingest → quality → metrics → detect → reflect → consolidate → deliver."""

from __future__ import annotations

import time
import uuid
from datetime import datetime

from prefect import flow, get_run_logger
from prefect.runtime import flow_run

from reverie.config import load_settings
from reverie.llm import warm_llm
from tasks.agent import reflect
from tasks.deliver import deliver_brief
from tasks.detect import detect_candidates
from tasks.ingest import ingest_source
from tasks.memory import consolidate
from tasks.metrics import refresh_metrics
from tasks.quality import run_quality_gate
from tasks.warehouse import finish_cycle, start_cycle


def timed(stage, *args, **kwargs) -> dict:
    """Run one stage task and add its wall time to its summary."""
    started = time.monotonic()
    summary = stage(*args, **kwargs)
    return {**summary, "seconds": round(time.monotonic() - started, 2)}


def combined(per_source: dict[str, dict], **empty) -> dict:
    """One stage's summaries over all sources: counts added up, lists joined, each source kept."""
    total: dict = {**empty, "sources": per_source}
    for summary in per_source.values():
        for key, value in summary.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                total[key] = total.get(key, 0) + value
            elif isinstance(value, list):
                total[key] = total.get(key, []) + value
    if "watermark" in total:
        total["watermark"] = max((s["watermark"] for s in per_source.values() if s["watermark"]), default=None)
    return total


@flow(name="sleep-cycle")
def sleep_cycle(project_dir: str = ".", full_refresh: bool = False) -> dict:
    """One sleep cycle over the project in `project_dir`; returns the run summary of the CLI contract."""
    settings = load_settings(project_dir)
    warehouse = str(settings.warehouse)
    cycle_id = f"c{datetime.now():%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
    run_id = str(flow_run.id) if flow_run.id else None
    if not settings.sources:
        get_run_logger().warning("no sources declared in %s/reverie.toml", settings.project_dir)
    started = time.monotonic()
    start_cycle(warehouse, cycle_id, run_id)
    stages: dict[str, dict] = {}
    status = "failed"
    log_dir = settings.warehouse.parent / "logs"
    sources = settings.sources.items()
    with warm_llm(settings.llm, log_dir):  # the embedded model loads while the data stages run
        try:
            stages["ingest"] = combined(
                {name: timed(ingest_source, warehouse, str(settings.project_dir), source, cycle_id,
                             settings.lookback_days) for name, source in sources},
                files=0, rows=0, failed=[], watermark=None, seconds=0)
            stages["quality"] = combined(
                {name: timed(run_quality_gate, warehouse, source, cycle_id, str(settings.quality_dir))
                 for name, source in sources},
                passed=0, failed=0, quarantined=0, warnings=0, unchecked=0, batches=[], errors=[], seconds=0)
            stages["metrics"] = timed(refresh_metrics, warehouse, cycle_id, settings.sources, str(settings.models_dir),
                                      str(settings.metrics_dir), full_refresh, settings.lookback_days,
                                      settings.completeness_grace_minutes, str(settings.quality_dir))
            since = stages["metrics"]["since"]
            stages["detect"] = timed(detect_candidates, warehouse, cycle_id, since, settings.detect,
                                     detectors_dir=str(settings.detectors_dir))
            stages["reflect"] = timed(reflect, warehouse, cycle_id, settings.llm, str(log_dir))
            stages["memory"] = timed(consolidate, warehouse, cycle_id, run_id, since, settings.memory)
            stages["deliver"] = timed(deliver_brief, warehouse, cycle_id, settings.name, str(settings.briefs_dir),
                                      stages["metrics"]["rows"])
            degraded = (stages["ingest"].get("failed") or stages["quality"]["errors"] or stages["metrics"]["errors"]
                        or stages["detect"]["errors"] or stages["reflect"]["status"] == "degraded")
            status = "degraded" if degraded else "completed"
        finally:
            seconds = round(time.monotonic() - started, 2)
            finish_cycle(warehouse, cycle_id, status, stages, seconds)
    return {"cycle_id": cycle_id, "flow_run_id": run_id, "status": status, "warehouse": warehouse,
            "stages": stages, "seconds": seconds}
