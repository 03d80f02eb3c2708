"""Metrics refresh benchmark: reverie's full and incremental refresh against hand-written DuckDB queries.

    uv run python -m bench.metrics_refresh                    # 1M and 10M events
    uv run python -m bench.metrics_refresh --events 1M,10M,100M --json

For each size: 365 days of demo events (`reverie generate --scale`), every demo metric with all its
dimensions at day grain. It reports, measured in the same process:
  full / hand   reverie's full refresh against one hand-written DuckDB query per metric (target <= 1.3)
  incr / full   refreshing after one more day is appended, against a full refresh (target <= 0.05)
  peak RSS      the peak resident memory of the process that refreshes (data is built in another one)
Timings are the median of --repeat runs, taken alternately so both sides see the same machine state.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import yaml

from bench import report
from reverie.config import load_settings
from reverie.generator import generate
from reverie.project import scaffold
from reverie.tasks.ingest import ingest_source
from reverie.tasks.metrics import refresh_metrics
from reverie.tasks.metrics.declarations import load_metric_specs
from reverie.warehouse import Warehouse

DAYS = 365
EVENTS_PER_SCALE = 4_270_000  # 365 days at --scale 1
PAID = "event_type = 'order' and status = 'paid'"

# One query per metric, written by hand: the same values reverie computes, straight from the staging model — each
# value per day and member with the rows behind it (its volume), sums and averages of exact decimals as reverie adds
# them. Per metric: value, volume, rows it reads, dimensions, and a ratio's denominator.
HAND_WRITTEN = {
    "sessions": ("count(*)", "count(*)", "event_type = 'session'", "country, channel, device", None),
    "signups": ("count(*)", "count(*)", "event_type = 'signup'", "country, channel", None),
    "orders": ("count(*) filter (where status = 'paid')", "count(*) filter (where status = 'paid')",
               "event_type = 'order'", "country, channel, device, category", None),
    "revenue": ("sum(amount::decimal(38, 9)) filter (where status = 'paid')", "count(amount) filter (where status = 'paid')",
                "event_type = 'order'", "country, channel, device, category", None),
    "average_order_value": ("avg(amount::decimal(38, 9)) filter (where status = 'paid')",
                            "count(amount) filter (where status = 'paid')", "event_type = 'order'", "country, category",
                            None),
    "conversion_rate": (f"count(*) filter (where {PAID})", "count(*) filter (where event_type = 'session')",
                        "event_type in ('session', 'order')", "country, channel, device",
                        "count(*) filter (where event_type = 'session')"),
    "refund_rate": ("count(*) filter (where status = 'refunded')", "count(*)", "event_type = 'order'",
                    "country, channel, device, category", "count(*)"),
}


def hand_query(metric: str) -> str:
    value, volume, where, dims, denominator = HAND_WRITTEN[metric]
    sets = ", ".join(["(day)"] + [f"(day, {d})" for d in dims.split(", ")])
    return f"""
        select day, {dims}, {value} {'/ nullif(' + denominator + ', 0)' if denominator else ''} as value,
            {volume} as volume
        from (select event_time::date as day, * from stg_events where {where})
        group by grouping sets ({sets})"""


def run_hand(warehouse: Warehouse) -> float:
    """The hand-written job, timed like reverie's refresh: open the warehouse, compute and store, close."""
    started = time.perf_counter()
    with warehouse.connect() as con:
        for metric in HAND_WRITTEN:
            con.execute(f"create or replace table bench_hand_{metric} as {hand_query(metric)}")
    return time.perf_counter() - started


def different_metrics(warehouse: Warehouse) -> list[str]:
    """Metrics whose hand-written result differs from reverie's in its values that are not zero (their count, total
    and rows behind them; a sanity check). Zeros aside: reverie also stores a member's day without a row as 0 (a
    platform's day without purchases), which one grouped query cannot produce, and its refresh is timed with that
    work in it."""
    different = []
    with warehouse.connect() as con:
        for metric in HAND_WRITTEN:
            totals = "select count(*) filter (where value <> 0), sum(value)::double, sum(volume) from"
            hand = con.execute(f"{totals} bench_hand_{metric}").fetchone()
            ours = con.execute(f"{totals} metric_values where metric = $metric and grain = 'day'",
                               {"metric": metric}).fetchone()
            if hand[0] != ours[0] or hand[2] != ours[2] or abs(hand[1] - ours[1]) > 1e-6 * abs(ours[1]):
                different.append(metric)
    return different


def run_reverie(settings, cycle_id: str, full: bool) -> tuple[float, dict]:
    started = time.perf_counter()
    result = refresh_metrics(settings.warehouse, cycle_id, settings.sources, str(settings.models_dir),
                                str(settings.metrics_dir), full_refresh=full)
    return time.perf_counter() - started, result


def ingest(settings, cycle_id: str) -> float:
    started = time.perf_counter()
    for source in settings.sources.values():
        ingest_source.fn(settings.warehouse, str(settings.project_dir), source, cycle_id)
    return time.perf_counter() - started


def day_grain_only(settings) -> None:
    """The benchmark's metrics: every demo metric with all its dimensions, at day grain."""
    path = settings.metrics_dir / "shop.yml"
    document = yaml.safe_load(path.read_text())
    for metric in document["metrics"]:
        metric["grains"] = ["day"]
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    assert {s.name for s in load_metric_specs(settings.metrics_dir)} == set(HAND_WRITTEN)


def prepare(events: int, workdir: Path) -> dict:
    """365 days of events, ingested: done in a process of its own, so the timings below start clean."""
    project = workdir / f"bench-{events}"
    scaffold(project)
    settings = load_settings(project)
    day_grain_only(settings)
    started = time.perf_counter()
    generated = generate(settings.landing_dir, DAYS, start=date(2025, 1, 1), seed=1, scale=events / EVENTS_PER_SCALE)
    generate_s = time.perf_counter() - started
    return {"project": str(project), "events": generated["rows"], "generate_s": round(generate_s, 2),
            "ingest_s": round(ingest(settings, "bench-load"), 2)}


def measure(project: Path, repeat: int) -> dict:
    """Full refresh against the hand-written queries, then one more day and an incremental refresh."""
    settings = load_settings(project)
    _, first = run_reverie(settings, "bench-load", full=True)  # warms caches, builds the catalogue
    full, hand = [], []
    for i in range(repeat):
        full.append(run_reverie(settings, f"bench-full-{i}", full=True)[0])
        hand.append(run_hand(settings.warehouse))
    mismatched = different_metrics(settings.warehouse)
    generate(settings.landing_dir, 1)
    ingest(settings, "bench-incremental")
    incremental_s, incremental = run_reverie(settings, "bench-incremental", full=False)
    full_s, hand_s = statistics.median(full), statistics.median(hand)
    return {
        "days": DAYS, "metrics": first["metrics"], "values": first["rows"],
        "full_refresh_s": round(full_s, 3), "hand_written_s": round(hand_s, 3), "full_over_hand": round(full_s / hand_s, 3),
        "incremental_s": round(incremental_s, 3), "incremental_values": incremental["rows"],
        "incremental_over_full": round(incremental_s / full_s, 4),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "mismatched": mismatched,
    }


def in_subprocess(*args: str) -> dict:
    out = subprocess.run([sys.executable, "-m", "bench.metrics_refresh", *args], capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def parse_size(text: str) -> int:
    text = text.strip().upper()
    factor = {"K": 1_000, "M": 1_000_000}.get(text[-1], 1)
    return int(float(text.rstrip("KM")) * factor)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", default="1M,10M", help="comma-separated sizes, e.g. 1M,10M,100M")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=None, help="where to build the projects (default: a temp dir)")
    report.output_options(parser)
    parser.add_argument("--prepare", type=int, metavar="EVENTS", help="only build one size's project under --workdir")
    parser.add_argument("--measure", type=Path, metavar="PROJECT", help="only time an already built project")
    args = parser.parse_args()
    if args.prepare:
        print(json.dumps(prepare(args.prepare, args.workdir)))
        return
    if args.measure:
        print(json.dumps(measure(args.measure, args.repeat)))
        return
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="reverie-bench-"))
    rows = []
    for size in [parse_size(s) for s in args.events.split(",")]:
        prepared = in_subprocess("--prepare", str(size), "--workdir", str(workdir))
        os.sync()  # the data just written must not be flushed to disk while the refresh is timed
        rows.append({**prepared, **in_subprocess("--measure", prepared["project"], "--repeat", str(args.repeat))})
    machine = report.machine()
    result = {"benchmark": "metrics_refresh", "machine": machine, "results": rows}
    report.keep(args, "metrics_refresh", result)
    if args.json:
        print(json.dumps(result))
        return
    print(f"metrics refresh · {machine['cpus']} cores · {machine['platform']}")
    report.print_table(*table(result))


def table(result: dict) -> tuple[tuple, list[tuple]]:
    header = ("events", "values", "full s", "hand s", "full/hand", "incr s", "incr/full", "ingest s", "peak RSS MB",
              "values differ")
    return header, [(f"{r['events']:,}", f"{r['values']:,}", r["full_refresh_s"], r["hand_written_s"],
                     r["full_over_hand"], r["incremental_s"], r["incremental_over_full"], r["ingest_s"],
                     r["peak_rss_mb"], ", ".join(r["mismatched"]) or "none") for r in result["results"]]


if __name__ == "__main__":
    main()
