"""Quality gate: validate each newly loaded batch with great-expectations; an error quarantines it."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime

from prefect import task

from reverie.config import SourceSettings
from tasks.logs import run_logger
from tasks.warehouse import connect, transaction


@dataclass(frozen=True)
class Check:
    expectation: str  # a great_expectations.expectations class name
    column: str | None
    severity: str  # error quarantines the batch; warning only reports
    kwargs: dict


# Suites by name; a source names its suite in reverie.toml. Declared suites come with the quality-gate issue.
DEMO_EVENTS = (
    Check("ExpectColumnValuesToNotBeNull", "event_id", "error", {}),
    Check("ExpectColumnValuesToBeUnique", "event_id", "error", {}),
    Check("ExpectColumnValuesToNotBeNull", "event_time", "error", {}),
    Check("ExpectColumnValuesToBeInSet", "event_type", "error", {"value_set": ["session", "signup", "order"]}),
    Check("ExpectColumnValuesToBeInSet", "status", "error", {"value_set": ["paid", "failed", "refunded"]}),
    Check("ExpectColumnValuesToBeBetween", "amount", "warning", {"min_value": 0, "max_value": 100_000}),
)
SUITES = {"demo_events": DEMO_EVENTS}


def _validator(suite_name: str, checks: tuple[Check, ...]):
    """An ephemeral great-expectations context with one pandas asset and the suite (imported lazily: ~5 s)."""
    import great_expectations as gx

    # GE pins some of its loggers to INFO; a clean cycle log wants only its warnings
    for name in ("great_expectations", "great_expectations.data_context.types.base"):
        logging.getLogger(name).setLevel(logging.WARNING)
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = gx.data_context.types.base.ProgressBarsConfig(globally=False)
    asset = context.data_sources.add_pandas("reverie").add_dataframe_asset(suite_name)
    batch_definition = asset.add_batch_definition_whole_dataframe("batch")
    suite = gx.ExpectationSuite(name=suite_name)
    for check in checks:
        kwargs = dict(check.kwargs, column=check.column) if check.column else dict(check.kwargs)
        suite.add_expectation(getattr(gx.expectations, check.expectation)(**kwargs, meta={"severity": check.severity}))

    def validate(frame):
        return batch_definition.get_batch(batch_parameters={"dataframe": frame}).validate(suite, result_format="SUMMARY")

    return validate


@task(name="quality-gate")
def run_quality_gate(warehouse: str, source_settings: SourceSettings, cycle_id: str) -> dict:
    """Validate the batches loaded this cycle; quarantine those with an error-level failure."""
    logger = run_logger()
    source, table = source_settings.name, source_settings.raw_table
    summary = {"passed": 0, "failed": 0, "quarantined": 0, "warnings": 0, "unchecked": 0, "batches": []}
    with connect(warehouse) as con:
        batches = [b for (b,) in con.execute(
            "select file from batches where source = ? and cycle_id = ? and status = 'loaded' order by file",
            [source, cycle_id]).fetchall()]
        if not batches:
            return summary
        if source_settings.suite not in SUITES:
            if source_settings.suite:
                logger.warning("quality %s: unknown suite %r (known: %s); batches pass unchecked",
                               source, source_settings.suite, ", ".join(SUITES))
            return {**summary, "unchecked": len(batches)}
        logger.info("quality %s: validating %d new batch(es) with great-expectations", source, len(batches))
        validate = _validator(source_settings.suite, SUITES[source_settings.suite])
        passed = failed = warnings = 0
        quarantined: list[dict] = []
        for batch in batches:
            frame = con.execute(f"select * exclude (_batch) from {table} where _batch = ?", [batch]).df()
            result = validate(frame)
            rows, reasons = [], []
            for r in result.results:
                config = r.expectation_config
                severity = (config.meta or {}).get("severity", "error")
                stats = r.result or {}
                column = config.kwargs.get("column")
                rows.append([cycle_id, source_settings.suite, source, batch, config.type, column, severity, bool(r.success),
                             stats.get("element_count"), stats.get("unexpected_count"),
                             json.dumps(stats.get("partial_unexpected_list", [])[:5], default=str), datetime.now()])
                if not r.success:
                    if severity == "error":
                        reasons.append(f"{config.type} on {column}: {stats.get('unexpected_count', '?')} unexpected")
                    else:
                        warnings += 1
            with transaction(con):
                con.executemany(f"insert into quality_results values ({', '.join('?' * 12)})", rows)
                if reasons:
                    con.execute("update batches set status = 'quarantined', reason = ? where source = ? and file = ?",
                                ["; ".join(reasons), source, batch])
            if reasons:
                failed += 1
                quarantined.append({"batch": batch, "reasons": reasons})
                logger.warning("quality: quarantined %s: %s", batch, "; ".join(reasons))
            else:
                passed += 1
    logger.info("quality %s: %d batch(es) passed, %d quarantined, %d warning(s)", source, passed, failed, warnings)
    return {**summary, "passed": passed, "failed": failed, "quarantined": len(quarantined), "warnings": warnings,
            "batches": quarantined}
