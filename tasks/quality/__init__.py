"""Quality gate: check each new batch against its source's declared suite; an error quarantines it."""

from __future__ import annotations

from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE

from reverie.commits import retried_on_conflict
from reverie.config import SourceSettings
from reverie.logs import run_logger
from reverie.models import local_time
from reverie.queries import rows_as_dicts
from reverie.suites import QualityError, load_quality
from reverie.summaries import QualitySummary
from reverie.tasks.quality.expectations import row_outcomes
from reverie.tasks.quality.history_checks import HISTORY_CHECKS, history_outcomes
from reverie.tasks.quality.results import SOURCE_WIDE, publish_outcomes, save_outcomes, save_unchecked
from reverie.warehouse import Warehouse


@task(name="quality-gate", task_run_name="quality-{source_settings.name}", cache_policy=NO_CACHE,
      **retried_on_conflict())
def run_quality_gate(warehouse: Warehouse, source_settings: SourceSettings, cycle_id: str, quality_dir: str) -> QualitySummary:
    """Check the batches loaded this cycle against the source's suite; quarantine those with an error."""
    logger = run_logger()
    source, table, suite_name = source_settings.name, source_settings.raw_table, source_settings.suite
    summary = {"passed": 0, "failed": 0, "quarantined": 0, "warnings": 0, "unchecked": 0, "batches": [], "errors": []}
    with warehouse.connect() as con:
        batches = rows_as_dicts(con.execute(
            "select file, batch_id, rows, first_event, last_event from batches where source = $source and cycle_id = $cycle_id and status = 'loaded' "
            "order by file", {"source": source, "cycle_id": cycle_id}))
        if not suite_name:
            save_unchecked(con, cycle_id, "", source, f"source {source} declares no suite", warehouse.now())
            return {**summary, "unchecked": len(batches)}
        try:
            config = load_quality(Path(quality_dir))
            if suite_name not in config.suites:
                raise QualityError(f"source '{source}': suite '{suite_name}' is not declared in {quality_dir}/*.yml "
                                   f"(declared: {', '.join(config.suites) or 'none'})")
            checks = config.suites[suite_name]
            where = f"{config.suite_files[suite_name]}: suites.{suite_name}"
            now = warehouse.now()  # the project's wall clock, as the data's times are kept
            outcomes = history_outcomes(con, source, cycle_id, [c for c in checks if c.check in HISTORY_CHECKS], now,
                                        warehouse.local, source_settings.time_column)
            row_checks = [c for c in checks if c.check not in HISTORY_CHECKS]
            if batches and row_checks:
                logger.info("quality %s: validating %d new batch(es) with great-expectations", source, len(batches))
                outcomes += row_outcomes(con, table, local_time(con, source_settings), batches, row_checks, where)
        except QualityError as exc:  # a broken suite checks nothing, and says so; it does not hold data back
            logger.warning("quality %s: %s; batches load unchecked", source, exc)
            save_unchecked(con, cycle_id, suite_name, source, f"its suite could not run: {exc}", warehouse.now())
            return {**summary, "unchecked": len(batches), "errors": [str(exc)]}
        reasons = save_outcomes(con, cycle_id, suite_name, source, outcomes, now)
    if outcomes:
        publish_outcomes(source, outcomes)
    for batch, why in reasons.items():
        logger.warning("quality %s: quarantined %s: %s", source, batch, "; ".join(why))
    warnings = [o for o in outcomes if not o.success and o.check.severity == "warning"]
    for o in warnings:
        logger.warning("quality %s: %s: %s", source, o.batch, o.message)
    checked = {o.batch for o in outcomes} - {SOURCE_WIDE}
    logger.info("quality %s: %d batch(es) passed, %d quarantined, %d warning(s)", source,
                len(checked - set(reasons)), len(reasons), len(warnings))
    return {**summary, "passed": len(checked - set(reasons)), "failed": len(reasons), "quarantined": len(reasons),
            "warnings": len(warnings), "batches": [{"batch": b, "reasons": why} for b, why in reasons.items()]}
