"""Quality gate: check each new batch against its source's declared suite; an error quarantines it."""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Literal

import pyarrow as pa
from prefect import task
from prefect.artifacts import create_table_artifact
from prefect.context import TaskRunContext
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from reverie.config import SourceSettings, yaml_files
from reverie.logs import run_logger
from reverie.warehouse import Warehouse, rows_as_dicts, sql_file, transaction

ROW_CHECKS = {  # reverie's names for the great-expectations expectations people use most
    "not_null": "ExpectColumnValuesToNotBeNull",
    "unique": "ExpectColumnValuesToBeUnique",
    "in_set": "ExpectColumnValuesToBeInSet",
    "between": "ExpectColumnValuesToBeBetween",
}
HISTORY_CHECKS = ("freshness", "volume")
MIN_VOLUME_HISTORY = 7
CHUNK_ROWS = 1_000_000  # rows validated together: bounded memory, and few great-expectations runs
SOURCE_WIDE = "(source)"  # the batch name of results about a whole source


class QualityError(ValueError):
    """A quality declaration that cannot be used; the message names the file and the field."""


class Check(BaseModel):
    """One check of a suite."""
    model_config = ConfigDict(extra="forbid")
    check: Literal["not_null", "unique", "in_set", "between", "expectation", "freshness", "volume"]
    column: str | None = None
    values: list | None = None
    min: float | None = None
    max: float | None = None
    mostly: float = Field(1.0, gt=0, le=1)
    expectation: str | None = None
    kwargs: dict = Field(default_factory=dict)
    max_age_hours: float | None = Field(None, gt=0)
    min_ratio: float = Field(0.5, ge=0)
    max_ratio: float = Field(2.0, gt=0)
    history: int = Field(28, ge=MIN_VOLUME_HISTORY)
    severity: Literal["error", "warning"] = "error"

    @model_validator(mode="after")
    def _complete(self):
        needs = {"in_set": ["column", "values"], "between": ["column"], "not_null": ["column"], "unique": ["column"],
                 "expectation": ["expectation"], "freshness": ["max_age_hours"]}.get(self.check, [])
        missing = [name for name in needs if getattr(self, name) is None]
        if missing:
            raise ValueError(f"{self.check} needs {' and '.join(missing)}")
        if self.check == "between" and self.min is None and self.max is None:
            raise ValueError("between needs min, max or both")
        return self

    @property
    def label(self) -> str:
        return self.expectation if self.check == "expectation" else self.check

    def ge_kwargs(self) -> dict:
        """The great-expectations arguments of a row check."""
        kwargs = dict(self.kwargs)
        if self.column:
            kwargs["column"] = self.column
        if self.check == "in_set":
            kwargs["value_set"] = self.values
        if self.check == "between":
            kwargs.update(min_value=self.min, max_value=self.max)
        if self.mostly < 1:
            kwargs["mostly"] = self.mostly
        return kwargs


class MetricCheck(BaseModel):
    """A sanity check of computed metric values."""
    model_config = ConfigDict(extra="forbid")
    check: Literal["between", "no_missing_periods"]
    metrics: list[str] = Field(min_length=1)
    min: float | None = None
    max: float | None = None
    severity: Literal["error", "warning"] = "error"

    @model_validator(mode="after")
    def _bounds(self):
        if self.check == "between" and self.min is None and self.max is None:
            raise ValueError("between needs min, max or both")
        return self


@dataclass
class QualityConfig:
    suites: dict[str, list[Check]] = field(default_factory=dict)
    suite_files: dict[str, str] = field(default_factory=dict)
    metric_checks: list[MetricCheck] = field(default_factory=list)

    def metric_checks_for(self, metric: str) -> list[MetricCheck]:
        return [c for c in self.metric_checks if metric in c.metrics]


def _problems(exc: ValidationError) -> str:
    return "; ".join((f"{'.'.join(str(p) for p in e['loc'])}: " if e["loc"] else "") + e["msg"].removeprefix("Value error, ")
                     for e in exc.errors())


def load_quality(folder: Path) -> QualityConfig:
    """Every suite and metric check declared in folder/*.yml; errors name the file, the suite and the field."""
    config = QualityConfig()
    for path, document in yaml_files(folder, QualityError):
        if not isinstance(document, dict) or set(document) - {"suites", "metrics"}:
            raise QualityError(f"{path}: expected top-level 'suites:' and/or 'metrics:'")
        suites = document.get("suites") or {}
        if not isinstance(suites, dict):
            raise QualityError(f"{path}: suites: expected a mapping of suite name to a list of checks")
        for name, checks in suites.items():
            if name in config.suites:
                raise QualityError(f"{path}: suite '{name}' is already declared in {config.suite_files[name]}")
            if not isinstance(checks, list):
                raise QualityError(f"{path}: suites.{name}: expected a list of checks")
            parsed = []
            for i, entry in enumerate(checks):
                try:
                    parsed.append(Check.model_validate(entry))
                except ValidationError as exc:
                    raise QualityError(f"{path}: suites.{name}[{i}]: {_problems(exc)}") from exc
            config.suites[name], config.suite_files[name] = parsed, str(path)
        for i, entry in enumerate(document.get("metrics") or []):
            try:
                config.metric_checks.append(MetricCheck.model_validate(entry))
            except ValidationError as exc:
                raise QualityError(f"{path}: metrics[{i}]: {_problems(exc)}") from exc
    return config


@dataclass
class Outcome:
    """One check on one batch."""
    batch: str
    check: Check
    success: bool
    element_count: int | None = None
    unexpected_count: int | None = None
    sample: list = field(default_factory=list)
    message: str = ""


def _examples(sample: list) -> str:
    shown = ", ".join(repr(v) for v in sample[:3])
    return f" (e.g. {shown})" if shown else ""


def describe(check: Check, unexpected: int, total: int, sample: list) -> str:
    """A row check's failure in words a person understands."""
    share = f"{unexpected / total:.1%} of rows ({unexpected:,} of {total:,})" if total else f"{unexpected:,} rows"
    column = check.column
    if check.check == "not_null":
        return f"{share} have no {column}"
    if check.check == "unique":
        return f"{share} repeat a {column} value{_examples(sample)}"
    if check.check == "in_set":
        allowed = ", ".join(str(v) for v in check.values)
        return f"{share} have a {column} outside {allowed}{_examples(sample)}"
    if check.check == "between":
        low = "" if check.min is None else f"{check.min:g}"
        high = "" if check.max is None else f"{check.max:g}"
        return f"{share} have {column} outside [{low}, {high}]{_examples(sample)}"
    return f"{check.expectation}{f' on {column}' if column else ''}: {share} unexpected{_examples(sample)}"


def _history_outcomes(con, source: str, cycle_id: str, checks: list[Check], now: datetime) -> list[Outcome]:
    """Freshness and volume, computed in DuckDB from what reverie remembers of the source's batches."""
    outcomes = []
    params = {"source": source, "cycle_id": cycle_id}
    for check in checks:
        if check.check == "freshness":
            for b in rows_as_dicts(con.execute(sql_file("quality/stale_batches.sql"), params)):
                stale = b["hours_behind"] is not None and b["hours_behind"] > check.max_age_hours
                outcomes.append(Outcome(b["file"], check, not stale, b["rows"], b["rows"] if stale else 0, message=(
                    f"stale: its newest row ({b['last_event']:%Y-%m-%d %H:%M}) is {b['hours_behind']:,.0f} h behind "
                    f"the data already loaded ({b['watermark']:%Y-%m-%d %H:%M}); allowed: {check.max_age_hours:g} h"
                ) if stale else ""))
            newest = con.execute("select max(last_event) from batches where source = ? and status = 'loaded'",
                                 [source]).fetchone()[0]
            if newest is not None:
                age = (now - newest).total_seconds() / 3600
                old = age > check.max_age_hours
                outcomes.append(Outcome(SOURCE_WIDE, check.model_copy(update={"severity": "warning"}), not old, message=(
                    f"no fresh data: the newest row is from {newest:%Y-%m-%d %H:%M}, {age / 24:,.1f} days ago; "
                    f"allowed: {check.max_age_hours:g} h") if old else ""))
        elif check.check == "volume":
            for b in rows_as_dicts(con.execute(sql_file("quality/batch_volume.sql"), {**params, "history": check.history})):
                if b["history"] < MIN_VOLUME_HISTORY or b["ratio"] is None:
                    continue
                odd = not check.min_ratio <= b["ratio"] <= check.max_ratio
                outcomes.append(Outcome(b["file"], check, not odd, b["rows"], b["rows"] if odd else 0, message=(
                    f"volume: {b['rows']:,} rows, {b['rows_per_hour']:,.0f} an hour of data, {b['ratio']:.0%} of the "
                    f"usual {b['usual_per_hour']:,.0f} (median of the {b['history']} batches before it); "
                    f"allowed: {check.min_ratio:.0%}–{check.max_ratio:.0%}"
                ) if odd else ""))
    return outcomes


def preload() -> None:
    """Import great-expectations ahead of the gate (~5 s), e.g. while Prefect's API starts."""
    import great_expectations  # noqa: F401


def _validator(checks: list[Check], where: str):
    """An ephemeral great-expectations context, one pandas asset and the suite (imported lazily: ~5 s)."""
    import great_expectations as gx

    # GE pins some of its loggers to INFO; a clean cycle log wants only its warnings
    for name in ("great_expectations", "great_expectations.data_context.types.base"):
        logging.getLogger(name).setLevel(logging.WARNING)
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = gx.data_context.types.base.ProgressBarsConfig(globally=False)
    batch_definition = context.data_sources.add_pandas("reverie").add_dataframe_asset("batch") \
        .add_batch_definition_whole_dataframe("batch")
    suite = gx.ExpectationSuite(name="reverie")
    for i, check in enumerate(checks):
        expectation = getattr(gx.expectations, ROW_CHECKS.get(check.check, check.expectation or ""), None)
        if expectation is None:
            raise QualityError(f"{where}[{i}]: expectation '{check.expectation}' is not a great-expectations "
                               "1.x expectation class")
        try:
            suite.add_expectation(expectation(**check.ge_kwargs(), meta={"check": i}))
        except Exception as exc:  # GE reports bad arguments as several exception types
            raise QualityError(f"{where}[{i}]: {exc}") from exc
    # unexpected rows come back with their batch, so many small batches can be validated in one frame
    result_format = {"result_format": "COMPLETE", "unexpected_index_column_names": ["_batch"]}

    def validate(frame):
        return batch_definition.get_batch(batch_parameters={"dataframe": frame}).validate(suite, result_format=result_format)

    return validate


def _chunks(batches: list[dict]) -> list[list[dict]]:
    """Batches grouped into frames of at most CHUNK_ROWS rows (a bigger batch is a frame of its own)."""
    chunks, current, size = [], [], 0
    for batch in batches:
        if current and size + batch["rows"] > CHUNK_ROWS:
            chunks.append(current)
            current, size = [], 0
        current.append(batch)
        size += batch["rows"]
    return chunks + ([current] if current else [])


def _row_outcomes(con, table: str, batches: list[dict], checks: list[Check], where: str) -> list[Outcome]:
    """The row checks, run by great-expectations on pandas frames read from DuckDB, one frame per chunk."""
    validate = _validator(checks, where)
    columns = sorted({c.column for c in checks if c.column} | {k for c in checks for k in
                                                               (c.kwargs.get("column_list") or [])})
    selected = ", ".join(f'"{c}"' for c in columns) if columns else "*"
    outcomes = []
    for chunk in _chunks(batches):
        names = [b["file"] for b in chunk]
        frame = con.execute(f"select {selected}, _batch from {table} where _batch in (select unnest(?::varchar[]))",
                            [names]).to_arrow_table().to_pandas()  # through Arrow: 3x faster than .df() here
        result = validate(frame)
        for r in result.results:
            check = checks[int(r.expectation_config.meta["check"])]
            stats = r.result or {}
            per_batch: dict[str, list] = defaultdict(list)
            for row in stats.get("unexpected_index_list") or []:
                per_batch[row["_batch"]].append(row.get(check.column) if check.column else None)
            for b in chunk:
                if "unexpected_index_list" in stats or r.success:
                    unexpected = per_batch.get(b["file"], [])
                    success = r.success or not unexpected
                else:  # a table-level expectation: its verdict is the frame's
                    unexpected, success = [], bool(r.success)
                sample = list(dict.fromkeys(str(v) for v in unexpected))[:5]
                outcomes.append(Outcome(b["file"], check, success, b["rows"], len(unexpected), sample,
                                        "" if success else describe(check, len(unexpected), b["rows"], sample)))
    return outcomes


def _save(con, cycle_id: str, suite: str, source: str, outcomes: list[Outcome], now: datetime) -> dict[str, list[str]]:
    """Store every outcome and quarantine the batches with an error; returns each quarantined batch's reasons."""
    reasons: dict[str, list[str]] = defaultdict(list)
    for o in outcomes:
        if not o.success and o.check.severity == "error" and o.batch != SOURCE_WIDE:
            reasons[o.batch].append(o.message)
    if not outcomes:
        return reasons
    results = pa.Table.from_pylist([  # one insert from Arrow: executemany takes a second for a few thousand rows
        {"cycle_id": cycle_id, "suite": suite, "source": source, "batch": o.batch, "expectation": o.check.label,
         "column_name": o.check.column, "severity": o.check.severity, "success": o.success,
         "element_count": o.element_count, "unexpected_count": o.unexpected_count, "sample": json.dumps(o.sample),
         "checked_at": now, "message": o.message or None} for o in outcomes])
    with transaction(con):
        con.register("new_quality_results", results)
        con.execute("insert into quality_results by name select * from new_quality_results")
        con.unregister("new_quality_results")
        for batch, why in reasons.items():
            con.execute("update batches set status = 'quarantined', reason = ? where source = ? and file = ?",
                        ["; ".join(why), source, batch])
    return reasons


def _publish(source: str, outcomes: list[Outcome]) -> None:
    """A Prefect table artifact of what did not pass (or that everything did), when run as a Prefect task."""
    if TaskRunContext.get() is None:
        return
    failed = [o for o in outcomes if not o.success]
    table = [{"batch": o.batch, "check": o.check.label, "column": o.check.column or "", "severity": o.check.severity,
              "unexpected": o.unexpected_count, "reason": o.message} for o in failed]
    summary = f"{len({o.batch for o in outcomes})} batch(es) checked, {len(failed)} failed check(s)"
    create_table_artifact(key=f"reverie-quality-{source}".replace("_", "-").lower(),
                          table=table or [{"batch": "all", "check": "all", "reason": "every check passed"}],
                          description=f"quality gate for source {source}: {summary}")


@task(name="quality-gate")
def run_quality_gate(warehouse: Warehouse, source_settings: SourceSettings, cycle_id: str, quality_dir: str) -> dict:
    """Check the batches loaded this cycle against the source's suite; quarantine those with an error."""
    logger = run_logger()
    source, table, suite_name = source_settings.name, source_settings.raw_table, source_settings.suite
    summary = {"passed": 0, "failed": 0, "quarantined": 0, "warnings": 0, "unchecked": 0, "batches": [], "errors": []}
    with warehouse.connect() as con:
        batches = rows_as_dicts(con.execute(
            "select file, rows from batches where source = ? and cycle_id = ? and status = 'loaded' order by file",
            [source, cycle_id]))
        if not suite_name:
            return {**summary, "unchecked": len(batches)}
        try:
            config = load_quality(Path(quality_dir))
            if suite_name not in config.suites:
                raise QualityError(f"source '{source}': suite '{suite_name}' is not declared in {quality_dir}/*.yml "
                                   f"(declared: {', '.join(config.suites) or 'none'})")
            checks = config.suites[suite_name]
            where = f"{config.suite_files[suite_name]}: suites.{suite_name}"
            now = datetime.now()
            outcomes = _history_outcomes(con, source, cycle_id, [c for c in checks if c.check in HISTORY_CHECKS], now)
            row_checks = [c for c in checks if c.check not in HISTORY_CHECKS]
            if batches and row_checks:
                logger.info("quality %s: validating %d new batch(es) with great-expectations", source, len(batches))
                outcomes += _row_outcomes(con, table, batches, row_checks, where)
        except QualityError as exc:  # a broken suite checks nothing, and says so; it does not hold data back
            logger.warning("quality %s: %s; batches pass unchecked", source, exc)
            return {**summary, "unchecked": len(batches), "errors": [str(exc)]}
        reasons = _save(con, cycle_id, suite_name, source, outcomes, now)
    if outcomes:
        _publish(source, outcomes)
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
