"""Sanity checks of metric values (declared ranges and gaps, judged on the values just recomputed) and failures to
compute, stored as the metrics' quality results."""

from __future__ import annotations

import json

import duckdb

from reverie.commits import transaction
from reverie.queries import quoted, sql_file
from reverie.suites import MetricCheck
from reverie.tasks.metrics.declarations import MetricSpec


def sanity_outcomes(con: duckdb.DuckDBPyConnection, spec: MetricSpec, checks: list[MetricCheck], cycle_id: str) -> list[dict]:
    """The declared sanity checks on a metric's values just recomputed (range) and on its whole series (gaps)."""
    outcomes = []
    for check in checks:
        if check.check == "between":
            total, outside, sample = con.execute(sql_file("quality/metric_out_of_range.sql"), {
                "metric": spec.name, "cycle_id": cycle_id, "min": check.min, "max": check.max}).fetchone()
            low, high = ("" if b is None else f"{b:g}" for b in (check.min, check.max))
            message = f"{outside:,} of {total:,} values outside [{low}, {high}]: {'; '.join(sample or [])}"
        else:
            missing = con.execute(sql_file("quality/missing_periods.sql"), {"metric": spec.name}).fetchall()
            total, outside, sample = None, len(missing), [f"{g} {p:%Y-%m-%d}" for g, p in missing[:5]]
            message = f"no value for {outside} period(s): {', '.join(sample)}{' …' if outside > 5 else ''}"
        outcomes.append({"metric": spec.name, "check": check.check, "severity": check.severity, "success": not outside,
                         "total": total, "unexpected": outside, "sample": sample or [], "message": message if outside else None})
    return outcomes


FILTER_EVIDENCE_ROWS = 1000  # rows of a model after which a filter that never matched is worth a warning


def filters_never_matching(con: duckdb.DuckDBPyConnection, specs: list[MetricSpec]) -> dict[str, dict]:
    """Metrics whose filter matched none of their model's rows (a column of 'NA' text is never null, a status
    compared with a number never equal), each as a warning, not a silent 0 every day; not those that match or
    cannot tell."""
    filtered = {spec.name: (spec, filters) for spec in specs if (filters := _filters(spec))}
    if not filtered:
        return {}
    totals = {metric: (matched, numerator) for metric, matched, numerator in con.execute(
        sql_file("quality/metric_matched_rows.sql"), {"metrics": sorted(filtered)}).fetchall()}
    warnings = {}
    for name, (spec, filters) in filtered.items():
        matched, numerator = totals.get(name, (0, 0))
        if matched and not (spec.ratio and spec.ratio.numerator.filter and numerator == 0):
            continue
        rows = con.execute(f"select count(*) from {quoted(spec.model)}").fetchone()[0]
        if rows < FILTER_EVIDENCE_ROWS:
            continue
        shown = " and ".join(f"`{f}`" for f in filters)
        warnings[name] = {
            "metric": name, "check": "matches", "severity": "warning", "success": False, "total": rows,
            "unexpected": rows, "sample": filters,
            "message": f"its filter {shown} matched none of the {rows:,} rows of {spec.model}: every value is 0 "
                       "(text such as 'NA' is not null: declare the source's null_strings, or cast the column)"}
    return warnings


def _filters(spec: MetricSpec) -> list[str]:
    """The filters of a metric and of its measures."""
    measures = [spec.measure] if spec.measure else [spec.ratio.numerator, spec.ratio.denominator]
    return [f for f in (spec.filter, *(m.filter for m in measures)) if f]


def failed_to_compute(spec: MetricSpec, error: str) -> dict:
    """A metric that could not be computed, as a failed check: the first line of the error, which names file and metric."""
    message = f"not computed: {error.splitlines()[0]}"
    return {"metric": spec.name, "check": "computes", "severity": "error", "success": False, "total": None,
            "unexpected": None, "sample": [], "message": message}


def save_metric_outcomes(con: duckdb.DuckDBPyConnection, cycle_id: str, outcomes: list[dict]) -> None:
    """Store the metrics' check outcomes in quality_results, with the batch checks."""
    if not outcomes:
        return
    with transaction(con):
        # a cycle taken up again checks its metrics again: their earlier results give way
        con.execute("delete from quality_results where cycle_id = $cycle_id and source = 'metrics' "
                    "and batch in (select unnest($metrics::varchar[]))",
                    {"cycle_id": cycle_id, "metrics": sorted({o["metric"] for o in outcomes})})
        con.executemany(sql_file("quality/insert_metric_check_results.sql"),
                        [{**o, "sample": json.dumps(o["sample"]), "cycle_id": cycle_id} for o in outcomes])
