"""Detect: the deterministic insight catalogue over metric_values, merged into ranked candidates."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
from dateutil.relativedelta import relativedelta
from prefect import task
from prefect.cache_policies import NO_CACHE

from reverie.commits import transaction
from reverie.config import DetectSettings
from reverie.logs import run_logger
from reverie.queries import execute_script, rows_as_dicts, sql_file
from reverie.summaries import DetectSummary
from reverie.tasks.detect.detector import Detector, DetectorError
from reverie.tasks.detect.ranking import headline, judged, merged, with_feedback
from reverie.tasks.detect.registry import load_detectors, unclaimed_settings
from reverie.tasks.detect.trend import SEGMENT_DAYS, WINDOW_DAYS
from reverie.units import RunUnits, Unit, run_here
from reverie.warehouse import Warehouse

DRIVEN_MEASURES = ("sum", "count", "count_distinct", "ratio")  # members' parts add up to the whole
CANDIDATE_COLUMNS = ("candidate_id", "cycle_id", "detector", "kind", "metric", "grain", "dimension", "member",
                     "period_start", "period_end", "observed", "expected", "magnitude", "direction", "favourable",
                     "score", "rank", "evidence_sql", "comparison", "headline", "detectors", "drivers", "related",
                     "scale", "difference", "severity", "valid_from", "valid_to", "same_change_days")


def run_detector(con, detector: str, since: date, settings: DetectSettings, as_of: date | None = None,
                 detectors_dir: str | Path | None = None) -> list[dict]:
    """One detector's raw findings for periods that ended on or after `since` (data up to `as_of`, default all)."""
    detectors = load_detectors(detectors_dir)
    if detector not in detectors:
        raise DetectorError(f"no detector named {detector!r} (known: {', '.join(detectors)})")
    return detectors[detector].run(con, since, settings, as_of)


def raw_findings(con, detectors: Mapping[str, Detector], since: date, settings: DetectSettings,
                 as_of: date | None = None, errors: list[str] | None = None) -> list[dict]:
    """Every detector's findings for periods that ended on or after `since`, as they found them.
    With `errors`, a detector that fails is noted there and the others still run."""
    raw = []
    for detector in detectors.values():
        try:
            raw += detector.run(con, since, settings, as_of)
        except (duckdb.Error, ValueError, ArithmeticError) as exc:
            if errors is None:
                raise
            errors.append(f"{detector.name}: {exc}")
    return raw


def findings(con, detectors: Mapping[str, Detector], raw: list[dict]) -> list[dict]:
    """The detectors' raw findings judged and scored against the metrics' catalogue."""
    catalogue = {name: (favourability, scale) for name, favourability, scale in
                 con.execute("select name, favourability, metric_scale(scale, measure) from metrics").fetchall()}
    return [judged(f, *catalogue.get(f["metric"], ("neutral", "relative")), detectors[f["detector"]])
            for f in raw if f["expected"] is not None]


def same_change_days(detector: Detector) -> int:
    """How far apart two findings of a detector may lie and still be one change found again: a changepoint may be
    placed up to a week later as data comes in, a spike may grow by a day; a detector of no change, 0."""
    if not detector.describes_change:
        return 0
    return SEGMENT_DAYS if detector.baseline == "trend_window" else 1


def _compared_periods(c: dict, detector: Detector,
                      settings: DetectSettings) -> tuple[list[datetime], list[datetime]] | None:
    """The periods a change covers and the ones it is measured against, for working out its drivers (None: the
    detector compares no periods)."""
    start = datetime.combine(c["period_start"], datetime.min.time())
    step = relativedelta(months=1) if c["grain"] == "month" else timedelta(days=7)
    match detector.baseline:
        case "trend_window":
            return ([start + timedelta(days=i) for i in range(WINDOW_DAYS)],
                    [start - timedelta(days=i) for i in range(1, WINDOW_DAYS + 1)])
        case "previous_period":
            return [start], [start - step]
        case "same_weekday_weeks":  # a run of days read together: each day against its own weekdays
            days = [start + timedelta(days=i) for i in range((c["period_end"] - c["period_start"]).days + 1)] \
                if c["grain"] == "day" else [start]
            return days, [day - k * step for day in days for k in range(1, settings.baseline_weeks + 1)]
    return None


def drivers(con, c: dict, detector: Detector, measure: str, settings: DetectSettings) -> dict | None:
    """Which members of each dimension carried a change of the whole business (mix and rate for ratios)."""
    compared = _compared_periods(c, detector, settings)
    if c["dimension"] != "overall" or compared is None or measure not in DRIVEN_MEASURES:
        return None
    current, baseline = compared
    grain = "day" if detector.baseline == "trend_window" else c["grain"]
    parts = rows_as_dicts(con.execute(sql_file("detect/member_contributions.sql"), {
        "metric": c["metric"], "grain": grain, "current": current, "baseline": baseline, "ratio": measure == "ratio"}))
    dimensions = []
    for dimension in dict.fromkeys(p["dimension"] for p in parts):
        members = [p for p in parts if p["dimension"] == dimension]
        change = sum(p["contribution"] for p in members)
        along = sorted((p for p in members if p["contribution"] * change > 0), key=lambda p: -abs(p["contribution"]))
        against = sorted((p for p in members if p["contribution"] * change < 0), key=lambda p: -abs(p["contribution"]))
        entry = {"dimension": dimension, "change": change,
                 "drivers": [_part(p) for p in along[:3]], "detractors": [_part(p) for p in against[:1]]}
        if measure == "ratio":
            mix, rate = sum(p["mix"] for p in members), sum(p["rate"] for p in members)
            entry |= {"mix": mix, "rate": rate, "explained_by": "mix" if abs(mix) > abs(rate) else "rate"}
        dimensions.append(entry)
    led = [d for d in dimensions if d["drivers"]]
    if not led:
        return None
    lead = max(led, key=lambda d: min(d["drivers"][0]["share_of_change"] or 0, 1.0))
    return {"lead": {"dimension": lead["dimension"], "member": lead["drivers"][0]["member"],
                     "share_of_change": lead["drivers"][0]["share_of_change"]},
            "dimensions": sorted(dimensions, key=lambda d: d is not lead)}


def _part(p: dict) -> dict:
    return {k: p[k] for k in ("member", "observed", "expected", "contribution", "share_of_change", "mix", "rate")
            if p[k] is not None or k in ("observed", "expected")}


def candidates(con, cycle_id: str, since: date, settings: DetectSettings, as_of: date | None = None,
               errors: list[str] | None = None, detectors: Mapping[str, Detector] | None = None,
               raw: list[dict] | None = None) -> list[dict]:
    """This cycle's ranked candidates: findings (or the `raw` ones found already) merged per underlying change, with
    drivers and a headline (`detectors`: by name, default reverie's own)."""
    detectors = load_detectors() if detectors is None else detectors
    measures = dict(con.execute("select name, measure from metrics").fetchall())
    verdicts = {tuple(row[:4]): row[4] for row in con.execute(sql_file("memory/latest_feedback.sql")).fetchall()}
    if raw is None:
        raw = raw_findings(con, detectors, since, settings, as_of, errors)
    ranked = with_feedback(merged(findings(con, detectors, raw), detectors), verdicts)
    for rank, c in enumerate(ranked, start=1):
        key = "|".join(str(c[k]) for k in ("detector", "metric", "grain", "dimension", "member", "period_start"))
        c.update(candidate_id="cand-" + hashlib.md5(f"{cycle_id}|{key}".encode()).hexdigest()[:12],
                 cycle_id=cycle_id, kind=c["detector"], rank=rank,
                 drivers=drivers(con, c, detectors[c["detector"]], measures.get(c["metric"], ""), settings))
        c["headline"] = headline(c, detectors[c["detector"]])
        c["same_change_days"] = same_change_days(detectors[c["detector"]])
    return ranked


def record_detectors(con: duckdb.DuckDBPyConnection, detectors: Mapping[str, Detector]) -> None:
    """The detector catalogue, written whole: what readers of memory ask about a kind instead of naming it."""
    execute_script(con, sql_file("detect/record_detectors.sql"), {
        "name": list(detectors), "describes_change": [d.describes_change for d in detectors.values()],
        "neutral": [d.neutral for d in detectors.values()], "weight": [float(d.weight) for d in detectors.values()],
        "baseline": [d.baseline for d in detectors.values()], "source": [str(d.source) for d in detectors.values()]})


@task(name="detector", task_run_name="detect-{detector.name}", cache_policy=NO_CACHE)  # data changes each cycle
def detector_findings(warehouse: Warehouse, detector: Detector, since: date,
                      settings: DetectSettings) -> tuple[list[dict], list[str]]:
    """One detector's findings over the metric values, as one unit of work for a worker; its error if it failed."""
    errors: list[str] = []
    with warehouse.connect() as con:
        return raw_findings(con, {detector.name: detector}, since, settings, errors=errors), errors


DETECTOR_UNIT = Unit(
    detector_findings,
    sent=lambda call: (call["detector"].name, {"detector": call["detector"].name, "since": call["since"].isoformat()}),
    rebuilt=lambda settings, sent: {"warehouse": settings.warehouse, "settings": settings.detect,
                                    "detector": load_detectors(settings.detectors_dir)[sent["detector"]],
                                    "since": date.fromisoformat(sent["since"])})


def detect_candidates(warehouse: Warehouse, cycle_id: str, since: str | None, settings: DetectSettings,
                      detectors_dir: str | None = None, run_units: RunUnits = run_here) -> DetectSummary:
    """Run the detector catalogue (reverie's and the project's in `detectors_dir`) over the periods recomputed
    this cycle — each detector a unit of work (`run_units`: one after another, or at once on the cycle's workers) —
    and store the ranked candidates."""
    logger = run_logger()
    errors: list[str] = []
    detectors = load_detectors(detectors_dir, errors)
    errors += unclaimed_settings(detectors, settings)
    if since is None:
        with warehouse.connect() as con, transaction(con, "detectors"):
            record_detectors(con, detectors)
        return {"candidates": 0, "findings": 0, "by_detector": {}, "errors": errors}
    day = date.fromisoformat(since)
    done = run_units(detector_findings, [{"warehouse": warehouse, "detector": detector, "since": day,
                                       "settings": settings} for detector in detectors.values()])
    errors += [error for _, failed in done for error in failed]
    with warehouse.connect() as con:
        found = candidates(con, cycle_id, day, settings, errors=errors, detectors=detectors,
                           raw=[finding for found, _ in done for finding in found])
    for error in errors:
        logger.error("detect: %s", error)
    with warehouse.connect() as con, transaction(con, "detect"):  # the catalogue with the candidates: one commit
        record_detectors(con, detectors)
        con.execute("delete from candidates where cycle_id = $cycle_id", {"cycle_id": cycle_id})
        for c in found:
            row = {**c, "drivers": json.dumps(c["drivers"], default=str),
                   "related": json.dumps(c["related"], default=str)}
            con.execute(f"insert into candidates ({', '.join(CANDIDATE_COLUMNS)}) values "
                        f"({', '.join('$' + k for k in CANDIDATE_COLUMNS)})", {k: row[k] for k in CANDIDATE_COLUMNS})
    by_detector = {d: sum(1 for c in found for f in [c, *c["related"]] if f["detector"] == d) for d in detectors}
    findings_total = sum(by_detector.values())
    logger.info("detect: %d finding(s) since %s, merged into %d candidate(s)", findings_total, since, len(found))
    return {"candidates": len(found), "findings": findings_total, "by_detector": by_detector, "errors": errors}
