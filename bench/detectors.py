"""Detector benchmark: precision and recall per insight type against the generator's labels, and speed.

    uv run python -m bench.detectors                                  # seeds 1-3, accuracy and speed
    uv run python -m bench.detectors --seeds 4,5,6,7,8 --json         # other seeds, one JSON object
    uv run python -m bench.detectors --speed-only

Accuracy: for each seed, a year of demo events (`reverie generate`) goes through reverie's real
ingest, metric refresh and detectors (all periods, as if every day were new). The generator writes
what it planted in `labels.jsonl`: a payment outage in a country, a traffic surge in a channel, a
refund spike or a price increase in a category, with every metric each one moves and which way.
A finding matches a label when its metric moved the labelled way, its period overlaps the event
(a price increase: its first 35 days; one in the last two weeks of data is not judged), and its slice is the event's, the whole business, or
another dimension (an outage in the US also lowers mobile orders). Everything else — weekly
seasonality, trend, noise — must not fire: a finding that matches no label is a false positive.
  concentration  truth from the generator's design: electronics carries more than half of revenue
                 (expected share by month, with the price increases; months within 3 points of
                 50% are not judged); news the month it first does, or when its share moves 10
                 points — a concentration reported again every month is a false positive
  pace_to_goal   revenue and orders get a monthly goal (the median month); on the 10th and 20th of
                 each month the projection's verdict (behind / ahead by 5% or more) is judged
                 against the month's actual total (months within 2.5-7.5% of the goal not judged)
  drivers        a change of the whole business matched to a label: its lead driver must be the
                 label's member
Per type: recall over the labels that type can see (a record needs 8 weeks of history and is set
once per kind of event and member; price
increases are trends and period-over-period changes, one-off events the other three), precision
over that type's findings. Overall: the merged candidates (one per change) against all labels.

Speed: 50 metrics x 3 dimensions x 20 members x 365 days (plus their weeks and months) written
straight into metric_values; the whole catalogue is timed over the full year and over one new day.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections import defaultdict
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import yaml

from bench import report
from reverie import generator
from reverie.config import DetectSettings, load_settings
from reverie.project import scaffold
from reverie.tasks.detect import candidates, run_detector
from reverie.tasks.detect.registry import load_detectors
from reverie.tasks.ingest import ingest_source
from reverie.tasks.metrics import refresh_metrics
from reverie.warehouse import Warehouse

START = date(2025, 1, 1)
PRICE_WINDOW_DAYS = 35
RECORD_HISTORY_DAYS = 56
ONE_OFF = {"unusual_change", "period_over_period", "record"}
EXPECTED_TYPES = {"payment_outage": ONE_OFF, "channel_surge": ONE_OFF, "refund_spike": ONE_OFF,
                  "price_change": {"trend_change", "period_over_period"}}
TYPES = ("unusual_change", "period_over_period", "trend_change", "record", "drivers", "concentration", "pace_to_goal")


# --- building a seed's warehouse ---------------------------------------------------------------

def refresh(settings, cycle_id: str) -> None:
    result = refresh_metrics(settings.warehouse, cycle_id, settings.sources, str(settings.models_dir),
                                str(settings.metrics_dir))
    assert not result["errors"], result["errors"]


def build(seed: int, days: int, scale: float, workdir: Path) -> Path:
    """A demo project with `days` of events for `seed`, ingested and refreshed, with goals on revenue and orders."""
    project = workdir / f"seed-{seed}"
    scaffold(project)
    settings = load_settings(project)
    generator.generate(settings.landing_dir, days, start=START, seed=seed, scale=scale)
    for source in settings.sources.values():
        ingest_source.fn(settings.warehouse, str(project), source, "bench")
    refresh(settings, "bench")
    with settings.warehouse.connect() as con:
        medians = dict(con.execute(
            """select metric, median(value) from metric_values
               where grain = 'month' and dimension = 'overall' and complete and metric in ('revenue', 'orders')
               group by metric""").fetchall())
    path = settings.metrics_dir / "shop.yml"
    document = yaml.safe_load(path.read_text())
    for metric in document["metrics"]:
        if metric["name"] in medians:
            metric["goal"] = {"value": round(medians[metric["name"]], 2), "grain": "month"}
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    refresh(settings, "bench-goals")
    return project


# --- matching findings to labels -----------------------------------------------------------------

def read_labels(project: Path, last_day: date) -> list[dict]:
    """The planted events the data can show: a price increase needs two weeks after it to be told from noise."""
    labels = []
    for line in (project / "landing" / generator.LABELS_FILE).read_text().splitlines():
        label = json.loads(line)
        if label["kind"] == "price_change" and date.fromisoformat(label["start"]) > last_day - timedelta(days=14):
            continue
        label["start"] = date.fromisoformat(label["start"])
        end = date.fromisoformat(label["end"])
        label["window_end"] = label["start"] + timedelta(days=PRICE_WINDOW_DAYS) if end == date.max else end
        label["effects"] = dict(zip(label["metrics"], label["directions"]))
        labels.append(label)
    return labels


def matches(finding: dict, label: dict) -> bool:
    """Whether a finding describes this planted event (metric, direction, period and slice)."""
    if label["effects"].get(finding["metric"]) != finding["direction"]:
        return False
    if finding["detector"] == "trend_change":
        on_time = abs((finding["period_start"] - label["start"]).days) <= 7
    else:
        on_time = finding["period_start"] <= label["window_end"] and finding["period_end"] >= label["start"]
    same_slice = finding["dimension"] in ("overall", *(() if finding["dimension"] == label["dimension"] else
                                                        (finding["dimension"],)))
    return on_time and (same_slice or (finding["dimension"], finding["member"]) == (label["dimension"], label["member"]))


def electronics_share(labels: list[dict], month: date) -> float:
    """The share of revenue electronics is designed to carry in a month, with the price increases then in force."""
    days = [month + timedelta(days=i) for i in range(31) if (month + timedelta(days=i)).month == month.month]
    base = {c: generator.CATEGORIES[c] * generator.MEAN_AMOUNT[c] for c in generator.CATEGORIES}
    shares = []
    for day in days:
        weight = {c: base[c] * 1.25 ** sum(1 for other in labels if other["kind"] == "price_change"
                                           and other["member"] == c and other["start"] <= day) for c in base}
        shares.append(weight["electronics"] / sum(weight.values()))
    return statistics.fmean(shares)


def can_set_record(label: dict, labels: list[dict]) -> bool:
    """A record needs 8 weeks of history, and is set once: the second surge in a channel is not a new high."""
    earlier = [other for other in labels if other["kind"] == label["kind"] and other["member"] == label["member"]
               and other["start"] < label["start"]]
    return (label["start"] - START).days >= RECORD_HISTORY_DAYS and not earlier


class Tally:
    """True positives, false positives and misses per insight type."""

    def __init__(self) -> None:
        self.found = defaultdict(int)
        self.expected = defaultdict(int)
        self.correct = defaultdict(int)
        self.claimed = defaultdict(int)

    def recall(self, kind: str, hit: bool) -> None:
        self.expected[kind] += 1
        self.found[kind] += hit

    def precision(self, kind: str, right: bool) -> None:
        self.claimed[kind] += 1
        self.correct[kind] += right

    def row(self, kind: str) -> dict:
        p = self.correct[kind] / self.claimed[kind] if self.claimed[kind] else None
        r = self.found[kind] / self.expected[kind] if self.expected[kind] else None
        return {"type": kind, "findings": self.claimed[kind], "true_positives": self.correct[kind],
                "labels": self.expected[kind], "found": self.found[kind],
                "precision": round(p, 3) if p is not None else None, "recall": round(r, 3) if r is not None else None}


def evaluate(project: Path, tally: Tally, settings: DetectSettings) -> None:
    """Judge one seed's findings, merged candidates, concentration and pace against the labels."""
    warehouse = load_settings(project).warehouse
    with warehouse.connect() as con:
        last_day = con.execute("select max(period_start)::date from metric_values where grain = 'day'").fetchone()[0]
    labels = read_labels(project, last_day)
    with warehouse.connect() as con:
        merged = candidates(con, "bench", START, settings)
        months = [m for (m,) in con.execute(
            "select distinct period_start::date from metric_values where grain = 'month' and complete order by 1").fetchall()]
        pace = {}
        for month in months[2:]:
            for day in (10, 20):
                as_of = month.replace(day=day)
                for f in run_detector(con, "pace_to_goal", as_of, settings, as_of):
                    pace[(f["metric"], month, day)] = f
        actual = {(metric, month): (value, goal) for metric, month, value, goal in con.execute(
            """select v.metric, v.period_start::date, v.value, (m.goal ->> 'value')::double
               from metric_values v join metrics m on m.name = v.metric
               where v.grain = 'month' and v.dimension = 'overall' and v.complete and m.goal is not null""").fetchall()}

    findings = [f for c in merged for f in (c, *c["related"])]
    changes = [f for f in findings if f["detector"] not in ("concentration", "pace_to_goal")]
    for f in changes:
        tally.precision(f["detector"], any(matches(f, label) for label in labels))
    for label in labels:
        for kind in EXPECTED_TYPES[label["kind"]]:
            if kind == "record" and not can_set_record(label, labels):
                continue
            tally.recall(kind, any(f["detector"] == kind and matches(f, label) for f in changes))

    # drivers: a whole-business change matched to a label names the label's member first
    for label in labels:
        relevant = [c for c in merged if c["drivers"] and matches(c, label)
                    and label["dimension"] in [d["dimension"] for d in c["drivers"]["dimensions"]]]
        right = [c["drivers"]["lead"]["dimension"] == label["dimension"] and c["drivers"]["lead"]["member"] == label["member"]
                 for c in relevant]
        for r in right:
            tally.precision("drivers", r)
        if relevant:
            tally.recall("drivers", any(right))

    # concentration: electronics' designed share of revenue, month by month; news when it appears or moves 10 points
    truth, shares = {}, {}
    for month in months:
        share = shares[month] = electronics_share(labels, month)
        if abs(share - 0.5) >= 0.03:
            truth[month] = share > 0.5
    news = {month for i, month in enumerate(months) if truth.get(month)
            and (i == 0 or shares[months[i - 1]] <= 0.5 or abs(shares[month] - shares[months[i - 1]]) >= 0.1)}
    concentration = [f for f in findings if f["detector"] == "concentration"]
    for month in truth:
        fired = [f for f in concentration if f["period_start"] == month]
        for f in fired:
            tally.precision("concentration", month in news and (f["metric"], f["dimension"], f["member"])
                            == ("revenue", "category", "electronics"))
        if month in news:
            tally.recall("concentration", any(f["metric"] == "revenue" and f["member"] == "electronics" for f in fired))
    for f in concentration:  # any other metric or dimension is not concentrated by design
        if f["period_start"] not in truth and not (f["metric"] == "revenue" and f["dimension"] == "category"):
            tally.precision("concentration", False)

    # pace to goal: the mid-month verdict against the month's actual total
    tolerance = load_detectors()["pace_to_goal"].values(settings)["goal_tolerance"]
    for (metric, month), (value, goal) in actual.items():
        off = value / goal - 1
        if month not in months[2:] or 0.5 * tolerance <= abs(off) < 1.5 * tolerance:
            continue
        for day in (10, 20):
            f = pace.get((metric, month, day))
            if f is not None:
                tally.precision("pace_to_goal", abs(off) >= 1.5 * tolerance and (f["observed"] > f["expected"]) == (off > 0))
            if abs(off) >= 1.5 * tolerance:
                tally.recall("pace_to_goal", f is not None and (f["observed"] > f["expected"]) == (off > 0))

    # overall: the merged candidates, one per change, against every label
    for c in merged:
        if c["detector"] == "pace_to_goal" or (c["detector"] == "concentration" and c["period_start"] not in truth):
            continue
        if c["detector"] == "concentration":
            right = c["period_start"] in news and (c["metric"], c["member"]) == ("revenue", "electronics")
        else:
            right = any(matches(c, label) for label in labels)
        tally.precision("overall", right)
    for label in labels:
        tally.recall("overall", any(matches(f, label) for c in merged for f in (c, *c["related"])
                                    if f["detector"] not in ("concentration", "pace_to_goal")))


def accuracy(seeds: list[int], days: int, scale: float, workdir: Path) -> list[dict]:
    settings = DetectSettings()
    tally = Tally()
    for seed in seeds:
        evaluate(build(seed, days, scale, workdir), tally, settings)
    return [tally.row(kind) for kind in (*TYPES, "overall")]


# --- speed ------------------------------------------------------------------------------------------

def synthetic_warehouse(path: Path, metrics: int, dimensions: int, members: int, days: int) -> int:
    """metric_values for a wide catalogue: weekly seasonality, trend, noise, a few planted shifts; weeks and months too."""
    rng = np.random.default_rng(0)
    day0 = np.datetime64(START.isoformat(), "D")
    dates = day0 + np.arange(days)
    weekday = (np.arange(days) + START.weekday()) % 7
    season = np.array([1.0, 1.02, 1.03, 1.0, 0.95, 0.8, 0.85])[weekday]
    columns = defaultdict(list)
    catalogue = []
    for m in range(metrics):
        name, ratio = f"metric_{m:02d}", m % 3 == 2
        catalogue.append((name, "ratio" if ratio else ("sum" if m % 3 else "count"), "up" if m % 2 else "down"))
        for d in range(dimensions):
            shares = rng.dirichlet(np.ones(members))
            for k in range(members):
                level = 2000 * shares[k] * season * (1 + 0.0005 * np.arange(days))
                if rng.random() < 0.05:
                    level[rng.integers(60, days):] *= 1.5
                counts = rng.poisson(level)
                numerator = rng.binomial(counts, 0.05).astype(float) if ratio else None
                value = numerator / np.maximum(counts, 1) if ratio else counts.astype(float)
                columns["metric"] += [name] * days
                columns["dimension"] += [f"dimension_{d}"] * days
                columns["member"] += [f"member_{k:02d}"] * days
                columns["period_start"].append(dates)
                columns["value"].append(value)
                columns["numerator"].append(numerator if ratio else np.full(days, np.nan))
                columns["denominator"].append(counts.astype(float) if ratio else np.full(days, np.nan))
    table = pa.table({
        "metric": columns["metric"], "grain": ["day"] * len(columns["metric"]),
        "period_start": np.concatenate(columns["period_start"]).astype("datetime64[us]"),
        "dimension": columns["dimension"], "member": columns["member"],
        "value": np.concatenate(columns["value"]),
        "numerator": pa.array(np.concatenate(columns["numerator"]), from_pandas=True),
        "denominator": pa.array(np.concatenate(columns["denominator"]), from_pandas=True),
    })
    with Warehouse(path).connect() as con:
        con.register("members", table)
        con.execute("""insert into metric_values by name
                       select *, true as complete, 'bench' as cycle_id from members""")
        con.execute("""insert into metric_values by name  -- the whole business: members of the first dimension added up
                       select metric, grain, period_start, 'overall' as dimension, 'all' as member,
                              if(count(numerator) > 0, sum(numerator) / nullif(sum(denominator), 0), sum(value)) as value,
                              if(count(numerator) > 0, sum(numerator), null) as numerator,
                              if(count(numerator) > 0, sum(denominator), null) as denominator,
                              true as complete, 'bench' as cycle_id
                       from metric_values where dimension = 'dimension_0' group by all""")
        for grain in ("week", "month"):
            con.execute(f"""insert into metric_values by name
                            select metric, '{grain}' as grain, date_trunc('{grain}', period_start) as period_start,
                                   dimension, member,
                                   if(count(numerator) > 0, sum(numerator) / nullif(sum(denominator), 0), sum(value)) as value,
                                   if(count(numerator) > 0, sum(numerator), null) as numerator,
                                   if(count(numerator) > 0, sum(denominator), null) as denominator,
                                   count(*) = if('{grain}' = 'week', 7, day(last_day(min(period_start)))) as complete,
                                   'bench' as cycle_id
                            from metric_values where grain = 'day' group by all""")
        con.executemany("""insert into metrics (name, description, measure, favourability, grains, dimensions, goal,
                           definition, fingerprint) values (?, null, ?, ?, ['day', 'week', 'month'], ?, null, 'bench',
                           'bench')""",
                        [(name, measure, favourability, [f"dimension_{d}" for d in range(dimensions)])
                         for name, measure, favourability in catalogue])
        return con.execute("select count(*) from metric_values").fetchone()[0]


def speed(workdir: Path, repeat: int) -> dict:
    path = workdir / "speed.duckdb"
    rows = synthetic_warehouse(path, 50, 3, 20, 365)
    settings = DetectSettings()
    last_day = START + timedelta(days=364)
    timings = {"full_year": [], "one_new_day": []}
    for _ in range(repeat):
        for label, since in (("full_year", START), ("one_new_day", last_day)):
            with Warehouse(path).connect() as con:
                started = time.perf_counter()
                found = candidates(con, "bench", since, settings)
                timings[label].append(time.perf_counter() - started)
                timings[f"{label}_candidates"] = len(found)
    return {"metric_values": rows, "series": 50 * (3 * 20 + 1),
            "full_year_s": round(statistics.median(timings["full_year"]), 2),
            "one_new_day_s": round(statistics.median(timings["one_new_day"]), 2),
            "full_year_candidates": timings["full_year_candidates"],
            "one_new_day_candidates": timings["one_new_day_candidates"]}


def table(result: dict) -> tuple[tuple, list[tuple]]:
    """Accuracy by type; with no accuracy measured (--speed-only), the speed."""
    if not result["accuracy"]:
        s = result["speed"]
        return (("series", "metric values", "full year s", "candidates", "one new day s", "candidates"),
                [(f"{s['series']:,}", f"{s['metric_values']:,}", s["full_year_s"], s["full_year_candidates"],
                  s["one_new_day_s"], s["one_new_day_candidates"])])
    keys = ("type", "findings", "true_positives", "labels", "found", "precision", "recall")
    return (("type", "findings", "true pos", "labels", "found", "precision", "recall"),
            [tuple(r[k] for k in keys) for r in result["accuracy"]])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", default="1,2,3", help="comma-separated generator seeds")
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--scale", type=float, default=1.0, help="generator scale (1 = 10,000 sessions a day)")
    parser.add_argument("--repeat", type=int, default=3, help="speed: median of this many runs")
    parser.add_argument("--speed-only", action="store_true")
    parser.add_argument("--workdir", type=Path, default=None)
    report.output_options(parser)
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="reverie-bench-detect-"))
    seeds = [int(s) for s in args.seeds.split(",")]
    rows = [] if args.speed_only else accuracy(seeds, args.days, args.scale, workdir)
    timing = speed(workdir, args.repeat)
    machine = report.machine()
    result = {"benchmark": "detectors", "machine": machine, "seeds": seeds, "days": args.days, "scale": args.scale,
              "accuracy": rows, "speed": timing}
    report.keep(args, "detectors-speed" if args.speed_only else "detectors", result)
    if args.json:
        print(json.dumps(result, default=str))
        return
    if rows:
        print(f"detector accuracy · seeds {args.seeds} · {args.days} days · scale {args.scale}")
        report.print_table(*table(result), width=18)
    print(f"\ndetector speed · {machine['cpus']} cores · {timing['series']:,} series · {timing['metric_values']:,} metric values")
    print(f"full year {timing['full_year_s']} s ({timing['full_year_candidates']} candidates) · "
          f"one new day {timing['one_new_day_s']} s ({timing['one_new_day_candidates']} candidates)")


if __name__ == "__main__":
    main()
