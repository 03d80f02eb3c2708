"""Each detector on its own fixture (tests/detectors/<name>.yaml): metric values in, exactly the findings expected out.

A fixture names its detector and lists the metrics and metric values to load into a fresh warehouse, optional
[detect] overrides, the day findings count from (`since`) and the findings expected: every other finding fails
the test, so the rows a detector must stay silent on (weekly seasonality, too little history, small slices) are
checked as well as the ones it must report. `detectors_dir` loads a project's detectors folder next to reverie's.
"""

from __future__ import annotations

import json
import shutil
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from dateutil.relativedelta import relativedelta

from reverie.config import DetectSettings, load_settings
from reverie.queries import rows_as_dicts
from reverie.tasks.detect import candidates, detect_candidates
from reverie.tasks.detect.registry import load_detectors
from reverie.warehouse import Warehouse

pytestmark = pytest.mark.without_prefect

FIXTURES = Path(__file__).parent / "detectors"
FIXTURE_FIELDS = {"detector", "detectors_dir", "settings", "since", "as_of", "metrics", "metric_values", "findings"}
METRIC_FIELDS = {"name", "measure", "favourability", "goal", "scale"}
SERIES_FIELDS = {"metric", "grain", "dimension", "member", "start", "values", "numerators", "denominators", "volumes",
                 "complete"}
FINDING_FIELDS = {"metric", "grain", "dimension", "member", "period_start", "observed", "expected"}
SLICE = {"grain": "day", "dimension": "overall", "member": "all"}  # what a series or finding is unless it says
STEP = {"day": timedelta(days=1), "week": timedelta(days=7), "month": relativedelta(months=1)}
TOLERANCE = 1e-6  # relative: observed and expected are written out by hand, to as many digits as they need


def _fixture(path: Path) -> dict:
    fixture = yaml.safe_load(path.read_text())
    unknown = set(fixture) - FIXTURE_FIELDS
    assert not unknown, f"{path}: unknown field(s) {sorted(unknown)} (known: {sorted(FIXTURE_FIELDS)})"
    assert fixture["findings"], f"{path}: findings: a fixture expects at least one (a detector that finds nothing passes)"
    for i, metric in enumerate(fixture["metrics"]):
        assert set(metric) <= METRIC_FIELDS, f"{path}: metrics[{i}]: unknown {sorted(set(metric) - METRIC_FIELDS)}"
    for i, series in enumerate(fixture["metric_values"]):
        assert set(series) <= SERIES_FIELDS, f"{path}: metric_values[{i}]: unknown {sorted(set(series) - SERIES_FIELDS)}"
    for i, finding in enumerate(fixture["findings"]):
        assert set(finding) <= FINDING_FIELDS, f"{path}: findings[{i}]: unknown {sorted(set(finding) - FINDING_FIELDS)}"
    return fixture


def _rows(series: dict) -> list[tuple]:
    """metric_values rows of one series: a value per consecutive period from `start`; null is no row that period."""
    s = {**SLICE, "complete": True, **series}
    count = len(s["values"])
    numerators, denominators = s.get("numerators", [None] * count), s.get("denominators", [None] * count)
    volumes = s.get("volumes", [None] * count)  # the rows behind each value (default: as stored before there were)
    assert len(numerators) == len(denominators) == len(volumes) == count, \
        f"{s['metric']}: one numerator, denominator and volume per value"
    start = datetime.combine(s["start"], datetime.min.time())
    return [(s["metric"], s["grain"], start + i * STEP[s["grain"]], s["dimension"], s["member"], value,
             numerator, denominator, volume, s["complete"])
            for i, (value, numerator, denominator, volume) in enumerate(zip(s["values"], numerators, denominators,
                                                                            volumes))
            if value is not None]


def _warehouse(path: Path, fixture: dict) -> None:
    rows = [row for series in fixture["metric_values"] for row in _rows(series)]
    with Warehouse(path).connect() as con:
        con.executemany("insert into metric_values (metric, grain, period_start, dimension, member, value, numerator, "
                        "denominator, volume, complete, cycle_id) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'fixture')", rows)
        for metric in fixture["metrics"]:
            mine = [r for r in rows if r[0] == metric["name"]]
            con.execute("""insert into metrics (name, description, measure, favourability, grains, dimensions, goal,
                           definition, fingerprint, scale) values (?, null, ?, ?, ?, ?, ?, 'fixture', 'fixture', ?)""",
                        [metric["name"], metric["measure"], metric.get("favourability", "up"),
                         sorted({r[1] for r in mine}), sorted({r[3] for r in mine} - {"overall"}),
                         json.dumps(metric["goal"]) if "goal" in metric else None,
                         metric.get("scale", "points" if metric["measure"] == "ratio" else "relative")])


def _key(finding: dict) -> tuple:
    f = {**SLICE, **finding}
    return f["metric"], f["grain"], f["dimension"], f["member"], f["period_start"]


@pytest.mark.parametrize("path", sorted(FIXTURES.glob("*.yaml")), ids=lambda p: p.stem)
def test_a_detector_reports_exactly_the_findings_its_fixture_expects(path, tmp_path):
    fixture = _fixture(path)
    detectors_dir = path.parent / fixture["detectors_dir"] if "detectors_dir" in fixture else None
    detector = load_detectors(detectors_dir)[fixture["detector"]]
    settings = DetectSettings.of(fixture.get("settings", {}))
    _warehouse(tmp_path / "warehouse.duckdb", fixture)
    with Warehouse(tmp_path / "warehouse.duckdb").connect() as con:
        found = {_key(f): f for f in detector.run(con, fixture["since"], settings, fixture.get("as_of"))}
    expected = {_key(f): f for f in fixture["findings"]}
    assert sorted(found) == sorted(expected)
    for key, want in expected.items():
        got = found[key]
        assert (got["observed"], got["expected"]) == (
            pytest.approx(want["observed"], rel=TOLERANCE), pytest.approx(want["expected"], rel=TOLERANCE)), key


def test_every_detector_of_reverie_has_a_fixture():
    assert set(load_detectors()) <= {p.stem for p in FIXTURES.glob("*.yaml")}


def test_the_example_project_detector_is_picked_up_from_the_project_folder_and_fires_through_candidates(tmp_path):
    """zero_day dropped into a project's detectors/ (the default [paths] detectors) sees a day no data landed for,
    which reverie's own detectors cannot: they compare the rows there are."""
    project = tmp_path / "shop"
    (project / "detectors").mkdir(parents=True)
    shutil.copy(FIXTURES / "project" / "zero_day.sql", project / "detectors")
    settings = load_settings(project)
    _warehouse(settings.warehouse, _fixture(FIXTURES / "zero_day.yaml"))
    summary = detect_candidates(settings.warehouse, "c1", "2025-02-03", settings.detect,
                                   detectors_dir=str(settings.detectors_dir))
    assert summary["by_detector"]["zero_day"] == 3 and summary["errors"] == []
    with settings.warehouse.connect() as con:
        stored = rows_as_dicts(con.execute("select * from candidates where cycle_id = 'c1' order by rank"))
        without_it = candidates(con, "c2", date(2025, 2, 3), settings.detect)
    missing_day = [c for c in stored if c["period_start"] == date(2025, 2, 5)]
    assert len(missing_day) == 1
    c = missing_day[0]
    assert (c["kind"], c["dimension"], c["observed"], c["favourable"]) == ("zero_day", "overall", 0, "bad")
    assert "zero_day" in c["detectors"] and c["headline"].startswith("orders down 100.0% (overall) on 2025-02-05")
    assert json.loads(c["drivers"])["lead"]["member"] == "US"  # the largest country lost the most
    with settings.warehouse.connect() as con:  # its evidence returns the zero it reports
        assert 0 in [v for row in con.execute(c["evidence_sql"]).fetchall() for v in row]
    assert not [f for other in without_it for f in (other, *other["related"]) if f["period_start"] == date(2025, 2, 5)]


def test_a_run_of_days_in_a_small_slice_is_one_candidate_over_its_days(tmp_path):
    """Two days at four times a small region's usual: one candidate whose headline names both days and their totals,
    covering them in memory, with evidence that returns the days it reports."""
    fixture = _fixture(FIXTURES / "unusual_change_small_slices.yaml")
    _warehouse(tmp_path / "warehouse.duckdb", fixture)
    with Warehouse(tmp_path / "warehouse.duckdb").connect() as con:
        found = candidates(con, "c1", fixture["since"], DetectSettings())
        north = [c for c in found if c["member"] == "north"]
        assert len(north) == 1, [c["headline"] for c in found]
        c = north[0]
        assert c["headline"].startswith("cancelled up 450.0% (region north) from 2025-02-11 to 2025-02-12: 33 against "
                                        "the sum of each day's median of the same weekday over the previous 4 weeks, 6")
        assert (c["valid_from"], c["valid_to"], c["favourable"]) == (date(2025, 2, 11), date(2025, 2, 12), "bad")
        values = dict(con.execute(c["evidence_sql"]).fetchall())
        assert values[datetime(2025, 2, 11)] + values[datetime(2025, 2, 12)] == 33

