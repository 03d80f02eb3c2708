"""Metrics: declared in YAML, computed by one SQL template, recomputed only for the periods new data touched."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import duckdb
from prefect import task
from prefect.cache_policies import NO_CACHE

from reverie.config import SourceSettings
from reverie.logs import run_logger
from reverie.models import ModelError, build_models
from reverie.summaries import MetricsSummary
from reverie.warehouse import Warehouse, transaction
from tasks.metrics.declarations import MetricError, check_columns, load_metric_specs
from tasks.metrics.refresh import recompute, refresh_start, touched_since, watermark_of, zones_of
from tasks.metrics.sanity_checks import (
    failed_to_compute,
    filter_never_matches,
    sanity_outcomes,
    save_metric_outcomes,
)
from tasks.quality.declarations import QualityConfig, QualityError, load_quality


# no cache, no retries: each run stores values and sanity results; a cache would skip that, a retry store them twice
@task(name="metrics", cache_policy=NO_CACHE)
def refresh_metrics(warehouse: Warehouse, cycle_id: str, sources: dict[str, SourceSettings], models_dir: str,
                    metrics_dir: str, full_refresh: bool = False, lookback_days: int = 1, grace_minutes: int = 15,
                    quality_dir: str | None = None) -> MetricsSummary:
    """Build the models, then recompute every valid metric in one transaction; a broken metric fails alone.

    Declared sanity checks run on the new values before they are committed: an error keeps the metric's old values.
    A metric that cannot be computed is stored as a failed check too, so it reaches memory and the brief.
    """
    logger = run_logger()
    errors: list[str] = []
    specs = load_metric_specs(Path(metrics_dir), errors)  # a broken declaration is left out, the others computed
    try:
        quality = load_quality(Path(quality_dir)) if quality_dir else QualityConfig()
    except QualityError:
        quality = QualityConfig()  # the quality gate reports the broken file; metrics are computed unchecked
    by_sources: dict[frozenset, tuple] = {}
    with warehouse.connect() as con:
        try:
            lineage = build_models(con, sources, Path(models_dir))
        except ModelError as exc:
            logger.warning("metrics: %s", exc)
            return {"rows": 0, "metrics": len(specs), "since": None, "errors": [*errors, str(exc)]}
        ready, not_computed = [], []
        for spec in specs:
            read = frozenset(lineage.sources_of(spec.model))
            if not read:
                continue  # its sources have no data yet
            if read not in by_sources:  # metrics on the same sources share these two look-ups
                by_sources[read] = (touched_since(con, cycle_id, read, lookback_days), watermark_of(con, read))
            try:
                check_columns(con, spec)
            except MetricError as exc:
                errors.append(str(exc))
                not_computed.append(failed_to_compute(spec, str(exc)))
                continue
            ready.append((spec, (*by_sources[read], zones_of(warehouse.timezone, [sources[name] for name in read]))))

        catalogue = {name: (fingerprint, definition, model) for name, fingerprint, definition, model in
                     con.execute("select name, fingerprint, definition, model from metrics").fetchall()}

        sanity: dict[str, list[dict]] = {}

        def refresh(batch: list) -> tuple[int, list[datetime]]:
            planned = [(spec, refresh_start(con, spec, catalogue.get(spec.name), touched, full_refresh, zoned),
                        watermark)
                       for spec, (touched, watermark, zoned) in batch]
            planned = [plan for plan in planned if plan[1] is not None]
            rows = recompute(con, planned, cycle_id, grace_minutes)
            for spec, _, _ in planned:
                sanity[spec.name] = sanity_outcomes(con, spec, quality.metric_checks_for(spec.name), cycle_id)
                unmatched = filter_never_matches(con, spec)
                sanity[spec.name] += [unmatched] if unmatched else []
                broken = [o["message"] for o in sanity[spec.name] if not o["success"] and o["severity"] == "error"]
                if broken:
                    raise MetricError(f"{spec.path}: metric '{spec.name}': failed its sanity check: {'; '.join(broken)}")
            return rows, [since for _, since, _ in planned]

        try:
            with transaction(con, "metrics"):  # the usual case: every metric, one commit
                outcomes, refreshed = [refresh(ready)], len(ready)
        except (duckdb.Error, MetricError):
            # one failed while computing: redo them one by one, so the others land and it keeps its old values
            outcomes, refreshed = [], 0
            for spec, lookups in ready:
                try:
                    with transaction(con):
                        outcomes.append(refresh([(spec, lookups)]))
                    refreshed += 1
                except MetricError as exc:
                    errors.append(str(exc))
                except duckdb.Error as exc:
                    errors.append(f"{spec.path}: metric '{spec.name}': {exc}")
                    not_computed.append(failed_to_compute(spec, errors[-1]))
        save_metric_outcomes(con, cycle_id, [o for outcomes_of in sanity.values() for o in outcomes_of] + not_computed)
    for message in errors:
        logger.warning("metrics: %s", message)
    rows = sum(count for count, _ in outcomes)
    first_since = min((since for _, starts in outcomes for since in starts), default=None)
    logger.info("metrics: %d metric(s), %d values recomputed%s", refreshed, rows,
                f" from {first_since:%Y-%m-%d}" if first_since else "")
    return {"rows": rows, "metrics": refreshed, "since": first_since.date().isoformat() if first_since else None,
            "errors": errors}
