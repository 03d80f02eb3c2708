"""reverie's own Prefect events, for automations: a cycle ended, metrics were refreshed, an insight is a risk, a
batch failed its checks. Every event's resource is the project (`reverie.project.<name>`) or names it as related,
and the flow run that emitted it is related too (docs/scheduling.md, "Events and automations")."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.events import emit_event
from prefect.runtime import flow_run

from reverie.logs import run_logger
from reverie.queries import rows_as_dicts, sql_file
from reverie.warehouse import Warehouse

PAYLOAD_TEXT_CHARS = 2000


def project_resource(project: str) -> dict[str, str]:
    """The resource every reverie event concerns or relates to: the project, as reverie.toml names it."""
    return {"prefect.resource.id": f"reverie.project.{project}", "prefect.resource.name": project}


def _related(project: str) -> list[dict[str, str]]:
    related = [{**project_resource(project), "prefect.resource.role": "project"}]
    if flow_run.id:
        related.append({"prefect.resource.id": f"prefect.flow-run.{flow_run.id}", "prefect.resource.role": "flow-run",
                        "prefect.resource.name": flow_run.name or ""})
    return related


def _bounded(value, limit: int = PAYLOAD_TEXT_CHARS):
    """A payload value with every text cut to `limit` characters: Prefect refuses an event over 1.5 MB."""
    if isinstance(value, str):
        return value if len(value) <= limit else f"{value[:limit]}…"
    if isinstance(value, dict):
        return {k: _bounded(v, limit) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_bounded(v, limit) for v in value]
    return value


def _emit(event: str, resource: dict[str, str], project: str, payload: dict) -> int:
    """One event; 0 where Prefect emits none (no API to send it to, or it refused this one: logged, the cycle goes on)."""
    related = [r for r in _related(project) if r["prefect.resource.id"] != resource["prefect.resource.id"]]
    try:
        return int(emit_event(event, resource=resource, related=related, payload=_bounded(payload)) is not None)
    except Exception as exc:  # an event is a notice for automations: never worth the cycle
        run_logger().warning("event %s not emitted: %s: %s", event, type(exc).__name__, exc)
        return 0


def quality_events(project: str, cycle_id: str, quality: dict) -> int:
    """`reverie.quality.failed` for each batch the quality gate held back."""
    emitted = 0
    for source, summary in quality["sources"].items():
        for held in summary["batches"]:
            emitted += _emit("reverie.quality.failed", {**project_resource(project), "reverie.source": source},
                             project, {"cycle_id": cycle_id, "source": source, "batch": held["batch"],
                                       "reasons": held["reasons"]})
    return emitted


@task(name="emit-refresh-events", cache_policy=NO_CACHE)
def emit_refresh_events(project: str, summary: dict) -> int:
    """`reverie.quality.failed` per held-back batch, and `reverie.metrics.refreshed` when periods were recomputed
    (what triggers the `reflect` deployment); returns how many were emitted."""
    stages = summary["stages"]
    emitted = quality_events(project, summary["cycle_id"], stages["quality"])
    if stages["metrics"]["since"] is not None:
        emitted += _emit("reverie.metrics.refreshed", project_resource(project), project, {
            "cycle_id": summary["cycle_id"], "since": stages["metrics"]["since"], "rows": stages["metrics"]["rows"],
            "metrics": stages["metrics"]["metrics"], "new_files": stages["ingest"]["files"],
            "watermark": stages["ingest"]["watermark"]})
    return emitted


@task(name="emit-cycle-events", cache_policy=NO_CACHE)
def emit_cycle_events(warehouse: Warehouse, project: str, summary: dict, quality_checked: bool) -> int:
    """`reverie.insight.risk` per warning or critical insight the cycle wrote, `reverie.quality.failed` per
    held-back batch (when this run checked them), then `reverie.cycle.<status>`; returns how many were emitted."""
    stages = summary["stages"]
    # a cycle that failed before its gate finished has no quality summary; its own error must not be hidden
    emitted = quality_events(project, summary["cycle_id"], stages["quality"]) if quality_checked and "quality" in stages else 0
    risks = []
    if summary["cycle_id"] and "consolidate" in stages:
        with warehouse.connect() as con:
            risks = rows_as_dicts(con.execute(sql_file("events/risk_insights.sql"), {"cycle_id": summary["cycle_id"]}))
    for insight in risks:
        resource = {"prefect.resource.id": f"reverie.insight.{insight['id']}",
                    "prefect.resource.name": insight["title"][:200], "reverie.severity": insight["severity"],
                    "reverie.kind": insight["kind"]}
        emitted += _emit("reverie.insight.risk", resource, project, {"cycle_id": summary["cycle_id"], **insight})
    deliver = stages.get("deliver") or {}
    emitted += _emit(f"reverie.cycle.{summary['status']}", project_resource(project), project, {
        "cycle_id": summary["cycle_id"], "status": summary["status"], "seconds": summary.get("seconds"),
        "error": summary.get("error"), "brief": deliver.get("brief"), "risks": len(risks),
        "stages": {name: {k: v for k, v in stage.items() if isinstance(v, (int, float, str)) or v is None}
                   for name, stage in stages.items()}})
    return emitted
