"""The detector catalogue on real DuckDB files: planted events, guards, drivers, merging, evidence; detectors'
headers and a project's own detectors."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta

import numpy as np
import pytest

from reverie.config import DetectSettings, load_settings
from reverie.generator import LABELS_FILE, generate
from reverie.project import scaffold
from reverie.queries import sql_file
from reverie.tasks.consolidate import _from_candidate
from reverie.tasks.detect import candidates, detect_candidates
from reverie.tasks.detect.detector import DetectorError
from reverie.tasks.detect.registry import BUILTIN_SQL_DIR, load_detectors
from reverie.tasks.ingest import ingest_source
from reverie.tasks.metrics import refresh_metrics
from reverie.warehouse import Warehouse

pytestmark = pytest.mark.without_prefect

START = date(2025, 1, 6)  # a Monday
WEEKDAY = np.array([1.0, 1.02, 1.03, 1.0, 0.95, 0.6, 0.65])  # strong weekends: seasonality that must not fire


def _demo(project, days: int, seed: int, since: date):
    """`days` of the demo shop through the real ingest and refresh, its labels, and the candidates since `since`."""
    scaffold(project)
    settings = load_settings(project)
    generate(settings.landing_dir, days, start=START, seed=seed, scale=1.0)
    for source in settings.sources.values():
        ingest_source.fn(settings.warehouse, str(project), source, "load")
    refresh_metrics(settings.warehouse, "load", settings.sources, str(settings.models_dir), str(settings.metrics_dir))
    labels = [json.loads(line) for line in (settings.landing_dir / LABELS_FILE).read_text().splitlines()]
    with settings.warehouse.connect() as con:
        found = candidates(con, "test", since, DetectSettings())
    return settings, labels, found


@pytest.fixture(scope="module")
def demo_year(tmp_path_factory):
    """180 days of the demo shop, its labels and every candidate."""
    return _demo(tmp_path_factory.mktemp("detect") / "shop", 180, 3, START)


def _describes(finding: dict, label: dict) -> bool:
    effects = dict(zip(label["metrics"], label["directions"]))
    start = date.fromisoformat(label["start"])
    end = min(date.fromisoformat(label["end"]), start + timedelta(days=35))
    slice_ok = finding["dimension"] in ("overall", label["dimension"]) or finding["dimension"] != label["dimension"]
    if finding["dimension"] == label["dimension"]:
        slice_ok = finding["member"] == label["member"]
    return (effects.get(finding["metric"]) == finding["direction"] and slice_ok
            and finding["period_start"] <= end and finding["period_end"] >= start - timedelta(days=7))


def test_every_planted_event_is_found_and_most_candidates_are_planted(demo_year):
    _, labels, found = demo_year
    assert len(labels) >= 8
    every_finding = [f for c in found for f in (c, *c["related"])]
    for label in labels:
        assert any(_describes(f, label) for f in every_finding), label
    changes = [c for c in found if c["kind"] not in ("concentration", "pace_to_goal")]
    planted = [c for c in changes if any(_describes(c, label) for label in labels)]
    assert len(planted) / len(changes) >= 0.6, [c["headline"] for c in changes if c not in planted][:10]


def test_the_demos_price_rise_is_a_new_level_three_weeks_before_its_last_day_and_reads_the_same_a_night_later(
        tmp_path):
    """`reverie demo`'s 90 days (seed 42) plant a +25% price rise in one category whose last 19 days are at the new
    price: with every day after it as evidence, the category's average order value moved to a new level. A night
    later it is found again with the same numbers (the first two weeks after it), so memory confirms it."""
    settings, labels, found = _demo(tmp_path / "shop", 90, 42, START + timedelta(days=60))
    rise = next(label for label in labels if label["kind"] == "price_change")
    assert (START + timedelta(days=89) - date.fromisoformat(rise["start"])).days + 1 == 19  # days at the new price

    def new_level(found: list[dict]) -> list[tuple]:
        return [(f["period_start"], f["period_end"], f["direction"], f["observed"], f["expected"])
                for c in found for f in (c, *c["related"]) if f["detector"] == "trend_change"
                and (f["metric"], f["dimension"], f["member"]) == ("average_order_value", "category", rise["member"])]

    (level,) = new_level(found)
    assert level[:3] == (date.fromisoformat(rise["start"]), date.fromisoformat(rise["start"]) + timedelta(days=13), "up")
    assert level[3] / level[4] == pytest.approx(1.2, abs=0.08)
    generate(settings.landing_dir, 1)
    for source in settings.sources.values():
        ingest_source.fn(settings.warehouse, str(settings.project_dir), source, "refresh")
    refresh_metrics(settings.warehouse, "refresh", settings.sources, str(settings.models_dir), str(settings.metrics_dir))
    with settings.warehouse.connect() as con:
        newest = con.execute("select max(period_start)::date from metric_values where grain = 'day' and complete")
        assert newest.fetchone()[0] == START + timedelta(days=90)  # the night's day is in
        assert new_level(candidates(con, "test", START + timedelta(days=60), DetectSettings())) == [level]


def test_one_change_is_one_candidate_with_its_detectors_slices_and_drivers(demo_year):
    _, labels, found = demo_year
    outages = [label for label in labels if label["kind"] == "payment_outage"]
    for outage in outages:
        day = date.fromisoformat(outage["start"])
        orders = [c for c in found if c["metric"] == "orders" and c["period_start"] == day and c["direction"] == "down"]
        assert len(orders) == 1, outage  # the overall drop, the country's drop and other slices: one candidate
        c = orders[0]
        country = [f for f in (c, *c["related"]) if (f["dimension"], f["member"]) == ("country", outage["member"])]
        assert len(country) >= 1 and c["favourable"] == "bad" and str(day) in c["headline"]
    for spike in [label for label in labels if label["kind"] == "refund_spike"]:  # three days, one change
        start, end = date.fromisoformat(spike["start"]), date.fromisoformat(spike["end"])
        refunds = [c for c in found if c["metric"] == "refund_rate" and c["direction"] == "up"
                   and c["period_start"] <= end and c["period_end"] >= start]
        assert len(refunds) == 1, [c["headline"] for c in refunds]
    # a change of the whole business names the planted slice as what drove it
    led = [(c, label) for label in labels for c in found
           if c["dimension"] == "overall" and c["drivers"] and _describes(c, label)
           and label["dimension"] in [d["dimension"] for d in c["drivers"]["dimensions"]]]
    assert len(led) >= 3
    for c, label in led:
        assert (c["drivers"]["lead"]["dimension"], c["drivers"]["lead"]["member"]) == (label["dimension"], label["member"])
        assert c["drivers"]["lead"]["share_of_change"] > 0.5
    assert any(len(c["detectors"]) >= 2 and c["related"] for c, _ in led)  # several detectors, several slices: one
    assert [x["rank"] for x in found] == list(range(1, len(found) + 1))
    assert [x["score"] for x in found] == sorted((x["score"] for x in found), reverse=True)
    assert 0 <= min(x["score"] for x in found) and max(x["score"] for x in found) <= 1


def test_every_candidate_carries_evidence_that_reproduces_its_numbers(demo_year):
    settings, _, found = demo_year
    kinds = {c["kind"] for c in found} | {f["detector"] for c in found for f in c["related"]}
    assert {"unusual_change", "period_over_period", "record", "trend_change", "concentration", "pace_to_goal"} <= kinds
    with settings.warehouse.connect() as con:
        for f in [*found, *(r for c in found for r in c["related"])][:400]:
            values = [v for row in con.execute(f["evidence_sql"]).fetchall() for v in row if isinstance(v, float | int)]
            assert any(v == pytest.approx(f["observed"]) for v in values), f
            assert {"metric", "dimension", "member", "period_start", "expected", "magnitude", "direction",
                    "favourable", "score"} <= set(f)


def test_the_planted_concentration_and_the_goal_are_reported(demo_year):
    _, _, found = demo_year
    concentration = [c for c in found if c["kind"] == "concentration"]
    assert concentration and {(c["metric"], c["dimension"], c["member"]) for c in concentration} == {
        ("revenue", "category", "electronics")}
    assert all(c["observed"] > 0.5 for c in concentration)
    pace = [c for c in found if c["kind"] == "pace_to_goal"]
    assert len(pace) == 1 and pace[0]["metric"] == "revenue" and pace[0]["expected"] == 1_000_000
    up = pace[0]["observed"] > pace[0]["expected"]
    assert (pace[0]["direction"], pace[0]["favourable"]) == (("up", "good") if up else ("down", "bad"))
    assert abs(pace[0]["magnitude"]) >= load_detectors()["pace_to_goal"].values(DetectSettings())["goal_tolerance"]


# --- hand-made series: guards and mix versus rate ----------------------------------------------------

def _warehouse(tmp_path, rows: list[tuple], catalogue: list[tuple]) -> str:
    path = str(tmp_path / "warehouse.duckdb")
    with Warehouse(path).connect() as con:
        con.executemany("insert into metric_values (metric, grain, period_start, dimension, member, value, numerator, "
                        "denominator, complete, cycle_id) values (?, 'day', ?, ?, ?, ?, ?, ?, ?, 'test')", rows)
        con.executemany("""insert into metrics (name, description, measure, favourability, grains, dimensions, goal,
                           definition, fingerprint) values (?, null, ?, ?, ['day'], [], null, 'test', 'test')""",
                        catalogue)
    return path


def _days(n: int) -> list[datetime]:
    return [datetime.combine(START + timedelta(days=i), datetime.min.time()) for i in range(n)]


def test_weekly_seasonality_noise_partial_days_and_small_slices_do_not_fire(tmp_path):
    rng = np.random.default_rng(0)
    rows = []
    for i, day in enumerate(_days(120)):
        level = 5000 * WEEKDAY[day.weekday()]
        rows.append(("visits", day, "overall", "all", float(rng.poisson(level)), None, None, True))
        # a tiny slice doubling is not news; a huge partial day is not a finished day
        rows.append(("visits", day, "country", "LU", float(rng.poisson(4) * (3 if i == 100 else 1)), None, None, True))
    rows.append(("visits", _days(121)[-1], "overall", "all", 20000.0, None, None, False))
    path = _warehouse(tmp_path, rows, [("visits", "count", "up")])
    with Warehouse(path).connect() as con:
        assert candidates(con, "test", START, DetectSettings()) == []


def test_a_drop_in_a_ratio_caused_by_mix_is_told_apart_from_a_drop_in_rates(tmp_path):
    """Every channel converts as before; more traffic from the weak channel lowers the overall rate."""
    rng = np.random.default_rng(1)
    rows = []
    days = _days(70)
    for i, day in enumerate(days):
        sessions = {"search": 1000, "social": 1000} if i < 69 else {"search": 1000, "social": 4000}
        rates = {"search": 0.10, "social": 0.02}
        num_total = den_total = 0.0
        for channel, n in sessions.items():
            den = float(rng.poisson(n))
            num = float(rng.binomial(int(den), rates[channel]))
            rows.append(("conversion", day, "channel", channel, num / den, num, den, True))
            num_total, den_total = num_total + num, den_total + den
        rows.append(("conversion", day, "overall", "all", num_total / den_total, num_total, den_total, True))
    path = _warehouse(tmp_path, rows, [("conversion", "ratio", "up")])
    with Warehouse(path).connect() as con:
        found = candidates(con, "test", days[-1].date(), DetectSettings())
    overall = [c for c in found if c["metric"] == "conversion" and c["dimension"] == "overall"]
    assert len(overall) == 1 and overall[0]["direction"] == "down" and overall[0]["favourable"] == "bad"
    channel = overall[0]["drivers"]["dimensions"][0]
    assert channel["dimension"] == "channel" and channel["explained_by"] == "mix"
    assert abs(channel["mix"]) > 3 * abs(channel["rate"])
    for member in channel["drivers"]:  # neither channel's own rate moved: its part is mix
        assert abs(member["rate"]) < 0.25 * abs(member["mix"])


def test_a_level_shift_is_found_as_a_trend_change_where_it_happened(tmp_path):
    rng = np.random.default_rng(2)
    rows = []
    days = _days(120)
    for i, day in enumerate(days):
        level = 3000 * WEEKDAY[day.weekday()] * (1.4 if i >= 80 else 1.0)
        rows.append(("signups", day, "overall", "all", float(rng.poisson(level)), None, None, True))
    path = _warehouse(tmp_path, rows, [("signups", "count", "up")])
    with Warehouse(path).connect() as con:
        found = candidates(con, "test", days[100].date(), DetectSettings())
    trend = [f for c in found for f in (c, *c["related"]) if f["detector"] == "trend_change"]
    assert len(trend) == 1 and abs((trend[0]["period_start"] - days[80].date()).days) <= 3
    assert trend[0]["direction"] == "up" and trend[0]["observed"] / trend[0]["expected"] == pytest.approx(1.4, abs=0.08)


def test_a_failing_detector_is_reported_and_the_others_still_run(tmp_path):
    rng = np.random.default_rng(3)
    days = _days(90)
    rows = [("visits", day, "overall", "all", float(rng.poisson(4000 * WEEKDAY[day.weekday()]) * (3 if i == 89 else 1)),
             None, None, True) for i, day in enumerate(days)]
    path = _warehouse(tmp_path, rows, [("visits", "count", "up")])
    with Warehouse(path).connect() as con:  # a catalogue edited by hand: pace to goal cannot read this goal
        con.execute("""update metrics set goal = '{"value": "lots", "grain": "month"}'""")
        errors: list[str] = []
        found = candidates(con, "test", days[-1].date(), DetectSettings(), errors=errors)
        with pytest.raises(Exception, match="lots"):
            candidates(con, "test", days[-1].date(), DetectSettings())
    assert len(errors) == 1 and errors[0].startswith("pace_to_goal:") and "lots" in errors[0]
    assert len(found) == 1 and "unusual_change" in found[0]["detectors"] and found[0]["period_start"] == days[-1].date()


# --- the registry: headers checked, a project's detectors next to reverie's ------------------------------------

HEADER = """/* detector:
name: quiet_day
weight: 0.5
describes_change: true
baseline: same_weekday_weeks
settings: [min_volume]
*/
"""
QUERY = """select metric, grain, dimension, member, period_start::date as period_start, period_start::date as period_end,
       value as observed, value as expected, 'itself' as comparison, 0.0 as strength, 'select 1' as evidence_sql
from metric_values where value < $min_volume and period_start >= $since
"""


@pytest.mark.parametrize("text, message", [
    (QUERY, r"no detector header: the file must start with /\* detector: \.\.\. \*/"),
    (HEADER.replace("weight: 0.5\n", "") + QUERY, r"the detector header has no weight"),
    (HEADER.replace("weight:", "wieght:") + QUERY, r"unknown field\(s\) in the detector header: wieght"),
    (HEADER.replace("name: quiet_day", "name: calm_day") + QUERY, r"name = 'calm_day': a detector is named after its file"),
    (HEADER.replace("weight: 0.5", "weight: high") + QUERY, r"weight = 'high': must be a number"),
    (HEADER.replace("describes_change: true", "describes_change: maybe") + QUERY, r"describes_change = 'maybe'"),
    (HEADER.replace("same_weekday_weeks", "weekly") + QUERY, r"baseline = 'weekly': use one of previous_period, "),
    (HEADER.replace("[min_volume]", "[min_volume, min_volum]") + QUERY, r"settings: min_volum not a shared \[detect\] setting"),
    (HEADER + QUERY.replace("$min_volume", "$min_abs_z"),
     r"settings: the query reads \$min_abs_z, declared neither in settings nor in own_settings, nor a standard "
     r"parameter \(\$since, \$as_of\)"),
    (HEADER.replace("[min_volume]", "[min_volume, noise_days]") + QUERY,
     r"settings: noise_days declared, but the query never reads \$noise_days"),
    (HEADER + QUERY + "; delete from metric_values", r"a detector is one select query \(found 2 statement\(s\)\)"),
    (HEADER.replace("weight: 0.5", "weight: [0.5") + QUERY, r"the detector header is not valid YAML"),
    (HEADER.replace("*/", 'headline: "{metric} fell by {drop}"\n*/') + QUERY, r"headline: \{drop\} is not one of \{metric\}"),
    (HEADER.replace("*/", "neutral: sometimes\n*/") + QUERY, r"neutral = 'sometimes': must be true or false"),
    (HEADER.replace("*/", "own_settings: [quiet_below]\n*/") + QUERY, r"own_settings must map each name to its default"),
    (HEADER.replace("*/", "own_settings:\n  quiet_below: low\n*/") + QUERY,
     r"own_settings: quiet_below: the default must be a number or true or false, got 'low'"),
    (HEADER.replace("*/", "own_settings:\n  quiet_below: {default: 5, most: 9}\n*/") + QUERY,
     r"own_settings: quiet_below: declare a default, and at_least or at_most if it has bounds"),
    (HEADER.replace("*/", "own_settings:\n  quiet_below: {default: 50, at_most: 9}\n*/") + QUERY,
     r"own_settings: quiet_below = 50: must be at least 0 and at most 9"),
    (HEADER.replace("[min_volume]", "[]").replace("*/", "own_settings:\n  min_volume: 5\n*/") + QUERY,
     r"own_settings: min_volume is a shared \[detect\] setting: list it in settings"),
])
def test_a_detector_header_that_cannot_be_used_names_the_file_and_the_field(tmp_path, text, message):
    (tmp_path / "quiet_day.sql").write_text(text)
    with pytest.raises(DetectorError, match=message) as info:
        load_detectors(tmp_path)
    assert str(tmp_path / "quiet_day.sql") in str(info.value)


def test_a_project_detector_named_like_one_of_reveries_is_an_error_naming_both_files(tmp_path):
    (tmp_path / "record.sql").write_text(HEADER.replace("quiet_day", "record") + QUERY)
    with pytest.raises(DetectorError, match="name = 'record' is already the detector declared in") as info:
        load_detectors(tmp_path)
    assert str(tmp_path / "record.sql") in str(info.value) and str(BUILTIN_SQL_DIR / "record.sql") in str(info.value)


def test_a_project_detector_that_cannot_be_used_is_reported_and_the_others_still_run(tmp_path):
    (tmp_path / "quiet_day.sql").write_text(HEADER + QUERY)
    (tmp_path / "broken_day.sql").write_text(HEADER.replace("quiet_day", "broken_day") + "selec 1")
    errors: list[str] = []
    detectors = load_detectors(tmp_path, errors)
    assert len(errors) == 1 and errors[0].startswith(str(tmp_path / "broken_day.sql")) and "syntax error" in errors[0]
    assert {"quiet_day", "unusual_change", "trend_change"} <= set(detectors) and "broken_day" not in detectors


OWN = HEADER.replace("[min_volume]", "[]").replace("*/", "own_settings:\n  quiet_below: {default: 50, at_least: 1}\n*/")


@pytest.mark.parametrize("detect, found, error", [
    ("", 10, None),  # the header's default: the ten days below 50
    ("quiet_below = 150", 30, None),  # [detect] sets it like a shared threshold
    ("quiet_below = 0", 0, "quiet_day: reverie.toml: [detect] quiet_below = 0: must be at least 1"),
    ("quiet_below = true", 0, "quiet_day: reverie.toml: [detect] quiet_below = True: expected an integer"),
    ("quiet_belw = 150", 10, "reverie.toml: [detect]: unknown field 'quiet_belw' — did you mean 'quiet_below'?"),
])
def test_a_detector_declares_a_threshold_of_its_own_that_detect_in_reverie_toml_sets(tmp_path, detect, found, error):
    """A new threshold needs no change to reverie: the detector's header declares it with its default, [detect]
    sets it by name; a value it cannot use leaves that detector out with one line, a name no detector reads is named
    with the nearest one."""
    (tmp_path / "detectors").mkdir()
    (tmp_path / "detectors" / "quiet_day.sql").write_text(OWN + QUERY.replace("$min_volume", "$quiet_below"))
    (tmp_path / "reverie.toml").write_text(f"[detect]\n{detect}\n")
    settings = load_settings(tmp_path)
    path = _warehouse(tmp_path, [("visits", day, "overall", "all", 40.0 if i < 10 else 100.0, None, None, True)
                                 for i, day in enumerate(_days(30))], [("visits", "count", "up")])
    summary = detect_candidates(Warehouse(path), "c1", str(START), settings.detect, str(settings.detectors_dir))
    assert summary["by_detector"].get("quiet_day", 0) == found
    assert summary["errors"] == ([error] if error else [])


def test_a_detector_query_must_return_the_columns_of_a_finding(tmp_path):
    (tmp_path / "quiet_day.sql").write_text(HEADER + QUERY.replace("value as expected", "value as baseline"))
    detector = load_detectors(tmp_path)["quiet_day"]
    with Warehouse(tmp_path / "warehouse.duckdb").connect() as con, pytest.raises(DetectorError, match="a detector returns exactly"):
        detector.run(con, START, DetectSettings())


def test_a_record_claims_only_the_history_there_is(tmp_path):
    rng = np.random.default_rng(5)
    days = _days(80)
    rows = [("visits", day, "overall", "all", float(rng.normal(1000, 10)) if i < 79 else 2000.0, None, None, True)
            for i, day in enumerate(days)]
    path = _warehouse(tmp_path, rows, [("visits", "count", "up")])
    with Warehouse(path).connect() as con:
        found = candidates(con, "test", days[-1].date(), DetectSettings(own={"record_days": 365}))
    records = [f for c in found for f in (c, *c["related"]) if f["detector"] == "record"]
    assert [r["comparison"] for r in records] == ["the highest value of the previous 79 days"]


def test_a_days_collapse_within_a_new_level_is_a_change_of_its_own():
    """The new level of a weather-driven series was found from two days before a storm's one-day collapse, and took
    the collapse in as a part of itself: the day was never said. The level's first day stays one change with it."""
    from reverie.tasks.detect.ranking import merged
    from reverie.tasks.detect.registry import load_detectors

    detectors = load_detectors()

    def finding(detector: str, start: date, end: date, score: float) -> dict:
        return {"detector": detector, "metric": "rides", "grain": "day", "dimension": "overall", "member": "all",
                "direction": "down", "period_start": start, "period_end": end, "score": score, "strength": -5.0,
                "severity": "warning"}

    level = finding("trend_change", date(2025, 3, 6), date(2025, 4, 2), 0.8)
    collapse = finding("unusual_change", date(2025, 3, 8), date(2025, 3, 8), 0.6)
    first_day = finding("unusual_change", date(2025, 3, 6), date(2025, 3, 6), 0.5)
    found = merged([level, collapse, first_day], detectors)
    assert [(c["detector"], c["period_start"], [r["period_start"] for r in c["related"]]) for c in found] == [
        ("trend_change", date(2025, 3, 6), [date(2025, 3, 6)]), ("unusual_change", date(2025, 3, 8), [])]


def test_members_that_moved_with_the_whole_business_are_one_change_with_it():
    """On a holiday the whole city's entries fell 28% and so did 17 stations, most of them further than the city:
    one change of the whole business with its stations, not one per station."""
    from reverie.tasks.detect.ranking import merged
    from reverie.tasks.detect.registry import load_detectors

    def finding(dimension: str, member: str, score: float) -> dict:
        return {"detector": "unusual_change", "metric": "entries", "grain": "day", "dimension": dimension,
                "member": member, "direction": "down", "period_start": date(2001, 12, 27),
                "period_end": date(2001, 12, 27), "score": score, "strength": -6.0, "severity": "warning"}

    stations = [finding("station", name, 0.7 - i / 100) for i, name in enumerate(("Addison", "Belmont", "Kedzie"))]
    elsewhere = {**finding("station", "Clark_Lake", 0.6), "period_start": date(2001, 12, 20),
                 "period_end": date(2001, 12, 20)}
    found = merged([*stations, finding("overall", "all", 0.5), elsewhere], load_detectors())
    assert [(c["dimension"], sorted(r["member"] for r in c["related"])) for c in found] == [
        ("overall", ["Addison", "Belmont", "Kedzie"]), ("station", [])]



def test_members_of_one_dimension_that_moved_the_same_days_are_one_change(tmp_path):
    """On 11 September three Loop stations fell by a third while the city as a whole moved less than it takes to be
    news: one change naming the three (its headline and memory say each), not three items; a station that moved
    on another day is a change of its own."""
    rng = np.random.default_rng(3)
    days = _days(70)
    stations = [f"S{i:02d}" for i in range(12)]
    rows = []
    for i, day in enumerate(days):
        total = 0.0
        for station in stations:
            value = float(rng.poisson(5000))
            if i == 69 and station in ("S00", "S01", "S02"):
                value *= 0.66
            if i == 68 and station == "S05":
                value *= 0.5
            rows.append(("entries", day, "station", station, value, None, None, True))
            total += value
        rows.append(("entries", day, "overall", "all", total, None, None, True))
    path = _warehouse(tmp_path, rows, [("entries", "count", "up")])
    with Warehouse(path).connect() as con:
        found = candidates(con, "test", days[-2].date(), DetectSettings())
    by_day = {c["period_start"]: c for c in found if c["detector"] == "unusual_change"}
    loop = by_day[days[-1].date()]
    assert loop["dimension"] == "station" and sorted({loop["member"], *(r["member"] for r in loop["related"])}) == [
        "S00", "S01", "S02"]
    others = sorted({"S00", "S01", "S02"} - {loop["member"]})
    assert loop["headline"].endswith(f"; also station {others[0]} and {others[1]}.")
    body = _from_candidate({**loop, "candidate_id": "cand-test"}, None)["body"]
    assert f"Moved with it on the same days: station {others[0]} " in body and f"; station {others[1]} " in body
    assert by_day[days[-2].date()]["member"] == "S05"
    assert {r["member"] for r in by_day[days[-2].date()]["related"]} <= {"S05"}
    assert len(by_day) == 2 and all(c["dimension"] == "station" for c in by_day.values())


def test_what_reads_memory_asks_the_detectors_header_whether_its_findings_are_a_change(tmp_path):
    """A project detector whose header says its findings describe no change (like a concentration) is recorded so
    by the detect stage, and a question about a metric's change leaves its items out — no reader names it."""
    detectors_dir = tmp_path / "detectors"
    detectors_dir.mkdir()
    (detectors_dir / "quiet_day.sql").write_text(HEADER.replace("describes_change: true", "describes_change: false")
                                                 + QUERY)
    path = _warehouse(tmp_path, [("visits", day, "overall", "all", 100.0, None, None, True) for day in _days(30)],
                      [("visits", "count", "up")])
    warehouse = Warehouse(path)
    detect_candidates(warehouse, "c1", None, DetectSettings(), str(detectors_dir))
    with warehouse.connect() as con:
        catalogue = dict(con.execute("select name, describes_change from detectors").fetchall())
        assert catalogue == {name: d.describes_change for name, d in load_detectors(detectors_dir).items()}
        assert catalogue["quiet_day"] is False and catalogue["unusual_change"] is True
        for kind in ("quiet_day", "unusual_change"):
            con.execute("""insert into memory (id, fingerprint, kind, title, metric, dimension, member, period_start,
                           severity, status, recorded_at, first_seen, last_confirmed, source, cycle_id)
                           values ($id, $id, $kind, $kind, 'visits', 'overall', 'all', date '2026-01-20', 'warning',
                           'active', now(), now(), now(), 'detector:' || $kind, 'c1')""", {"id": f"mem-{kind}",
                                                                                          "kind": kind})
        changes = con.execute(sql_file("ask/change_items.sql"), {"metric": "visits", "dimension": "overall",
                                                                  "member": "all", "day": None}).fetchall()
    assert [row[1] for row in changes] == ["unusual_change"]
