"""dbt, then the sleep cycle: for a project whose metrics live in a dbt project ([dbt] in reverie.toml)."""

from __future__ import annotations

from prefect import flow, get_run_logger

from reverie.config import Settings, load_settings
from reverie.flows.sleep_cycle import sleep_cycle
from reverie.summaries import CycleSummary
from reverie.tasks.dbt_build import build_dbt_project
from reverie.tasks.metrics.dbt import dbt_metric_specs


@flow(name="dbt-build-then-cycle")
def dbt_build_then_cycle(project_dir: str = ".", full_refresh: bool = False,
                         wait_minutes: float = 60.0) -> CycleSummary | None:
    """`dbt build` in the project's dbt project, then one sleep cycle. A model dbt failed to build (or skipped) is not
    read: its source fails in one line naming dbt's error, keeps what it loaded before, and the cycle is degraded."""
    settings = load_settings(project_dir)
    if settings.dbt is None:
        get_run_logger().warning("%s/reverie.toml has no [dbt] project_dir: nothing to build; no cycle run",
                                 settings.project_dir)
        return None
    build_dbt_project(settings.dbt)
    return sleep_cycle(project_dir=project_dir, full_refresh=full_refresh, wait_minutes=wait_minutes)


def dbt_metrics(settings: Settings) -> dict:
    """What a cycle will compute of the project's dbt metrics, and what not and why (`reverie init --from-dbt`)."""
    read = dbt_metric_specs(settings.dbt, settings.sources)
    return {"metrics": [{"name": s.name, "kind": s.kind, "model": s.model, "grains": s.grains,
                         "dimensions": s.dimensions} for s in read.specs], "unsupported": read.unsupported,
            "errors": read.errors}
