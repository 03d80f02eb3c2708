"""One source's share of a cycle's refresh as a flow run of its own: what a work pool's worker takes when the project
names `[lake] pool`. The cycle's flow creates one per source, holds the writer lock meanwhile, and reads the
results (kept in Prefect's result storage, which the workers and the cycle's process must share)."""

from __future__ import annotations

from prefect import flow

from flows.stages import refresh_source
from reverie.config import load_settings


@flow(name="refresh-source", flow_run_name="refresh-{source}", persist_result=True)
def refresh_one_source(project_dir: str, source: str, cycle_id: str) -> tuple[dict, dict]:
    """Ingest the source named `source` of the project in `project_dir` and run its quality gate, for `cycle_id`."""
    settings = load_settings(project_dir)
    return refresh_source(settings, settings.sources[source], cycle_id)
