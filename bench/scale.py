"""Scale-out: one process on the DuckDB file against two workers on a DuckLake, the same many sources and metrics.

    uv run python -m bench.scale                                   # 100M events, 20 sources, 200 metrics
    uv run python -m bench.scale --events 10M --days 30 --json
    uv run python -m bench.scale --events 10M --days 30 --on pool   # two Prefect workers of a work pool instead

The events are the demo generator's, written once (`--days` daily files) and linked into each source's landing
folder; each source has ten metrics at day grain (200 for 20 sources) and the demo quality suite; analysts off
(no model: the data stages are timed). Two projects from `reverie init`: one keeps the DuckDB file and one
process; the other a DuckLake with a PostgreSQL catalog (a server this script starts, Debian's `postgresql`) and
`[lake] workers = 2` (or, `--on pool`, `[lake] pool` with a Prefect server and two `prefect worker start --limit 1`
this script starts, each source's ingest and gate a flow run). Each runs `reverie run --json` twice, alternating:
a first cycle that loads everything, then one more day. Reported: each cycle's seconds, the wall time of all sources' ingest and gates ("sources"), the
slowest source's, each stage's seconds summed over sources, the commits of groups of metrics tried again after losing
a race with the other worker's ("retried"), and file/lake (the speed-up); the metric values must be equal.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from datetime import date
from pathlib import Path

import yaml

from bench import report
from bench.metrics_refresh import parse_size
from reverie.config import load_settings
from reverie.generator import generate
from tests.helpers.postgres import postgres_server  # shared with the tests on purpose, as the Prefect server
from tests.helpers.prefect_server import Server

REVERIE = [str(Path(sys.executable).parent / "reverie")]
TEMPLATE_CATALOG = '# catalog = "sqlite:.reverie/lake.sqlite"'
START = date(2026, 1, 1)
EVENTS_PER_SCALE_DAY = 11_700  # the generator's events per day at --scale 1
METRICS_PER_SOURCE = [  # (name, measure, filter, dimensions)
    ("sessions", {"agg": "count"}, "event_type = 'session'", ["country", "channel", "device"]),
    ("signups", {"agg": "count"}, "event_type = 'signup'", ["country", "channel"]),
    ("orders", {"agg": "count"}, "event_type = 'order'", ["country", "category"]),
    ("revenue", {"agg": "sum", "expr": "amount"}, "status = 'paid'", ["country", "category"]),
    ("order_value", {"agg": "avg", "expr": "amount"}, "status = 'paid'", ["category"]),
    ("failed_payments", {"agg": "count"}, "status = 'failed'", ["country"]),
    ("refunds", {"agg": "count"}, "status = 'refunded'", ["category"]),
    ("visitors", {"agg": "count_distinct", "expr": "session_id"}, None, ["device"]),
    ("largest_order", {"agg": "max", "expr": "amount"}, None, []),
    ("events", {"agg": "count"}, None, ["channel"]),
]


SPREAD = {"workers": "workers = 2", "pool": 'pool = "reverie-process"'}  # the lake's [lake] line, by --on


def reverie(*args: str, cwd: Path, env: dict | None = None) -> str:
    done = subprocess.run([*REVERIE, *args], cwd=cwd, capture_output=True, text=True, env=env)
    if done.returncode:
        raise SystemExit(f"reverie {' '.join(args)} in {cwd} failed ({done.returncode}):\n{done.stderr}{done.stdout}")
    return done.stdout


def sources_toml(sources: list[str]) -> str:
    return "".join(f'\n[sources.{name}]\nformat = "parquet"\npath = "landing/{name}/*.parquet"\n'
                   f'time_column = "event_time"\nsuite = "demo_events"\n' for name in sources)


def metrics_yaml(sources: list[str]) -> str:
    metrics = [{"name": f"{source}_{name}", "description": f"{name.replace('_', ' ')} of {source}", "model": source,
                "time_column": "event_time", "measure": measure, **({"filter": where} if where else {}),
                "grains": ["day"], "dimensions": dimensions}
               for source in sources for name, measure, where, dimensions in METRICS_PER_SOURCE]
    return yaml.safe_dump({"metrics": metrics}, sort_keys=False)


def project(workdir: Path, store: str, sources: list[str], catalog: str | None, spread: str = "") -> Path:
    """A project of `sources` and their metrics, its landing folders empty."""
    reverie("init", store, cwd=workdir)
    folder = workdir / store
    config = folder / "reverie.toml"
    text = config.read_text().replace("[llm]\n", "[llm]\nanalysts = 0\n", 1)
    text = text[:text.index("[sources.events]")] + text[text.index("[llm]"):]  # the demo's source goes
    if catalog:
        text = text.replace(TEMPLATE_CATALOG, f"catalog = {json.dumps(catalog)}\n{spread}", 1)
    config.write_text(text + sources_toml(sources))
    shutil.rmtree(folder / "models")
    (folder / "metrics" / "shop.yml").write_text(metrics_yaml(sources))
    return folder


def land(generated: Path, folders: list[Path], sources: list[str], days: list[str]) -> None:
    """Link the generated files of `days` into every source's landing folder of every project."""
    for folder in folders:
        for source in sources:
            (folder / "landing" / source).mkdir(parents=True, exist_ok=True)
            for day in days:
                os.link(generated / day, folder / "landing" / source / day)


@contextmanager
def work_pool(workdir: Path) -> Iterator[dict]:
    """A Prefect server with reverie's deployments and two process workers taking one flow run at a time each;
    yields the environment a `reverie run` reporting to it needs."""
    server = Server(workdir / "prefect")
    try:
        with server.pool_workers([workdir / "prefect" / f"worker-{i}.log" for i in (1, 2)]):
            yield server.env
    finally:
        server.stop()


def cycle(folder: Path, env: dict | None = None) -> dict:
    result = json.loads(reverie("run", "--json", cwd=folder, env=env))
    assert result["status"] == "completed", result
    stages = result["stages"]
    per_source = [stages["ingest"]["sources"][name]["seconds"] + stages["quality"]["sources"][name]["seconds"]
                  for name in stages["ingest"]["sources"]]
    after = sum(stage.get("seconds") or 0 for name, stage in stages.items() if name not in ("ingest", "quality"))
    return {"seconds": result["seconds"], "events": stages["ingest"]["rows"], "values": stages["metrics"]["rows"],
            "slowest_source": round(max(per_source), 2), "source_sum": round(sum(per_source), 2),
            "sources_wall": round(result["seconds"] - after, 2),  # ingest + gates of all sources, start to end
            "commits_retried": stages["metrics"]["commits_retried"],  # a group's writes after its commit lost a race
            "stages": {name: stage.get("seconds") for name, stage in stages.items()}}


def metric_values(folder: Path) -> list[tuple]:
    with load_settings(folder).warehouse.connect() as con:
        return con.execute("select metric, period_start, dimension, member, round(value, 6) from metric_values "
                           "order by all").fetchall()


def table(result: dict) -> tuple[tuple, list[tuple]]:
    runs = result["results"]
    stages = list(runs[0]["file"]["stages"])
    return (("cycle", "store", "events", "seconds", "sources", "slowest source", *stages, "retried"), [
        (r["cycle"], store, r["events"], r[store]["seconds"], r[store]["sources_wall"], r[store]["slowest_source"],
         *(r[store]["stages"][s] for s in stages), r[store]["commits_retried"]) for r in runs for store in ("file", "lake")])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", default="100M", help="events in all sources together, e.g. 10M or 100M")
    parser.add_argument("--sources", type=int, default=20)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--on", choices=sorted(SPREAD), default="workers",
                        help="the lake's workers: a Dask cluster of two processes, or two workers of a work pool")
    report.output_options(parser)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="reverie-bench-scale-"))
    sources = [f"s{i:02d}" for i in range(1, args.sources + 1)]
    per_day = parse_size(args.events) / args.sources / args.days
    generated = workdir / "generated"
    generate(generated, args.days + 1, start=START, seed=5, scale=per_day / EVENTS_PER_SCALE_DAY)
    flat = workdir / "days"  # one file per day: date=2026-01-01/part-0.parquet becomes 2026-01-01.parquet
    flat.mkdir()
    for path in (generated / "events").glob("date=*/*.parquet"):
        path.rename(flat / f"{path.parent.name.removeprefix('date=')}.parquet")
    files = sorted(path.name for path in flat.iterdir())
    with postgres_server() as dsn, (work_pool(workdir) if args.on == "pool" else nullcontext(None)) as env:
        folders = {"file": project(workdir, "file", sources, None),
                   "lake": project(workdir, "lake", sources, f"postgres:{dsn}", SPREAD[args.on])}
        runs = []
        for night, days in (("first cycle", files[:-1]), ("one more day", files[-1:])):
            land(flat, list(folders.values()), sources, days)
            # file, then lake: alternating
            measured = {store: cycle(folder, env if store == "lake" else None) for store, folder in folders.items()}
            runs.append({"cycle": night, "events": measured["file"]["events"], **measured,
                         "file_over_lake": round(measured["file"]["seconds"] / measured["lake"]["seconds"], 2)})
        equal = metric_values(folders["file"]) == metric_values(folders["lake"])
    assert equal, "the two workers on the lake computed other metric values than one process on the file"
    machine = report.machine()
    result = {"benchmark": "scale", "machine": machine, "lake_on": args.on, "sources": args.sources,
              "metrics": args.sources * len(METRICS_PER_SOURCE), "days": args.days, "results": runs}
    report.keep(args, "scale" if args.on == "workers" else f"scale-{args.on}", result)
    if args.json:
        print(json.dumps(result))
        return
    print(f"scale-out · lake on two {args.on} · {args.sources} sources · "
          f"{args.sources * len(METRICS_PER_SOURCE)} metrics · {machine['cpus']} cores · {machine['platform']}")
    report.print_table(*table(result), width=9)
    for r in runs:
        print(f"{r['cycle']}: file / two workers on the lake = {r['file_over_lake']} (speed-up)")


if __name__ == "__main__":
    main()
