"""The two halves of a sleep cycle as the flows compose them: the refresh (ingest → quality → metrics) and the
analysis of what it recomputed (detect → reflect → consolidate → prepare → deliver).

The nightly `sleep-cycle` runs both in one flow run; `metrics-refresh` runs the first and leaves the cycle
`refreshed`, and `analysis` (triggered by the refresh's event) continues it with the second under the same cycle id.
A flow runs them inside a cycle's life (flows/cycle_life.py), holding the warehouse's writer lock. The stages' units of
work — each source's ingest and quality gate, each group of metrics, each detector, each analyst on an endpoint —
run where the flow's `run_units` sends them (flows/workers.py: here, on a Dask cluster, or on a work pool); the rest in
the flow's own process."""

from __future__ import annotations

import time
from collections.abc import Callable

from prefect import task
from prefect.cache_policies import NO_CACHE

from reverie.config import Settings, SourceSettings
from reverie.faults import fault_point
from reverie.flows.cycle_life import current_run_id
from reverie.summaries import STAGE, Stages, failures, ingest_total, quality_total
from reverie.tasks.consolidate import consolidate
from reverie.tasks.deliver import deliver_brief
from reverie.tasks.detect import detect_candidates
from reverie.tasks.ingest import ingest_source
from reverie.tasks.metrics import refresh_metrics
from reverie.tasks.prepare import prepare_answers
from reverie.tasks.quality import run_quality_gate
from reverie.tasks.reflect import reflect
from reverie.units import RunUnits, Unit
from reverie.warehouse import Warehouse


def timed(stage: Callable[..., dict], fault: str, **parameters) -> dict:
    """Run one stage (or a unit of one) and add its wall time to its summary (a fault point `before:<fault>` ahead)."""
    fault_point(f"before:{fault}")
    started = time.monotonic()
    summary = stage(**parameters)
    return {**summary, "seconds": round(time.monotonic() - started, 2)}


def run_stage(stages: Stages, name: str, stage: Callable[..., dict], **parameters) -> None:
    """Run the stage `name` of the cycle (one of `STAGES`) and keep its summary, with its wall time, under its name."""
    if name not in STAGE:
        raise KeyError(f"{name} is not one of the cycle's stages (reverie.summaries.STAGES)")
    stages[name] = timed(stage, getattr(stage, "name", name), **parameters)


@task(name="refresh-source", task_run_name="refresh-{source.name}", cache_policy=NO_CACHE)
def refresh_source(warehouse: Warehouse, project_dir: str, quality_dir: str, lookback_days: int,
                   source: SourceSettings, cycle_id: str) -> tuple[dict, dict]:
    """One source's share of the refresh, as one unit of work for a worker: its ingest, then its quality gate."""
    ingested = timed(ingest_source, ingest_source.name, warehouse=warehouse, project_dir=project_dir, source=source,
                     cycle_id=cycle_id, lookback_days=lookback_days)
    checked = timed(run_quality_gate, run_quality_gate.name, warehouse=warehouse, source_settings=source,
                    cycle_id=cycle_id, quality_dir=quality_dir)
    return ingested, checked


def source_call(settings: Settings, source: SourceSettings, cycle_id: str) -> dict:
    """`refresh_source`'s call for one of the project's sources: what the unit needs of the settings, no more."""
    return {"warehouse": settings.warehouse, "project_dir": str(settings.project_dir),
            "quality_dir": str(settings.quality_dir), "lookback_days": settings.lookback_days, "source": source,
            "cycle_id": cycle_id}


SOURCE_UNIT = Unit(
    refresh_source,
    sent=lambda call: (call["source"].name, {"source": call["source"].name, "cycle_id": call["cycle_id"]}),
    rebuilt=lambda settings, sent: source_call(settings, settings.sources[sent["source"]], sent["cycle_id"]))


def refresh_stages(settings: Settings, cycle_id: str, full_refresh: bool, stages: Stages,
                   run_units: RunUnits) -> None:
    """Ingest every source and run its quality gate, then refresh the metrics a group at a time (the units of work
    run as `run_units` does); each stage's summary into `stages`."""
    refreshed = dict(zip(settings.sources, run_units(refresh_source, [
        source_call(settings, source, cycle_id) for source in settings.sources.values()])))
    stages["ingest"] = ingest_total({name: ingested for name, (ingested, _) in refreshed.items()})
    stages["quality"] = quality_total({name: checked for name, (_, checked) in refreshed.items()})
    run_stage(
        stages, "metrics", refresh_metrics, warehouse=settings.warehouse, cycle_id=cycle_id,
        sources=settings.sources, models_dir=str(settings.models_dir), metrics_dir=str(settings.metrics_dir),
        full_refresh=full_refresh, lookback_days=settings.lookback_days,
        grace_minutes=settings.completeness_grace_minutes, quality_dir=str(settings.quality_dir), run_units=run_units,
        dbt=settings.dbt)


def analysis_stages(settings: Settings, cycle_id: str, stages: Stages, run_units: RunUnits) -> None:
    """Detect what changed in the periods the refresh recomputed (a unit of work per detector, run as `run_units`
    does), have the analysts reflect (threads here, or units on the cycle's workers when there are some), consolidate
    memory, prepare answers and deliver the brief; each stage's summary into `stages` (which holds the refresh's)."""
    warehouse = settings.warehouse
    run_id = current_run_id()
    log_dir = str(warehouse.folder / "logs")
    since = stages["metrics"]["since"]  # the first period recomputed: what is new to detect and remember
    run_stage(stages, "detect", detect_candidates, warehouse=warehouse, cycle_id=cycle_id, since=since,
              settings=settings.detect, detectors_dir=str(settings.detectors_dir), run_units=run_units)
    run_stage(stages, "reflect", reflect, warehouse=warehouse, cycle_id=cycle_id, settings=settings.llm,
              log_dir=log_dir, run_units=run_units if settings.workers.elsewhere else None)
    run_stage(stages, "consolidate", consolidate, warehouse=warehouse, cycle_id=cycle_id, flow_run_id=run_id,
              since=since, settings=settings.memory)
    run_stage(stages, "prepare", prepare_answers, warehouse=warehouse, cycle_id=cycle_id, flow_run_id=run_id,
              settings=settings.llm, log_dir=log_dir, aliases=settings.aliases)
    run_stage(stages, "deliver", deliver_brief, warehouse=warehouse, cycle_id=cycle_id, project=settings.name,
              briefs_dir=str(settings.briefs_dir), metrics_rows=stages["metrics"]["rows"],
              settings=settings.deliver, failed=failures(stages))
