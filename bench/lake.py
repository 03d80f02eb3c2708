"""The shared store's cost on one process: the same cycles on the DuckDB file and on a DuckLake.

    uv run python -m bench.lake                      # 120 days at --scale 2 (~2.6M events)
    uv run python -m bench.lake --days 60 --scale 1 --json

Two projects from `reverie init`, the same generated events, analysts off (no model: the data stages are
timed); one keeps the DuckDB file, the other sets `[lake] catalog` to a SQLite file. Each runs `reverie run
--full-refresh --json` twice, alternating: a first cycle that loads everything, then a full refresh with
nothing new. Reported: each cycle's seconds (as the cycle records them) and its stages, and lake/file.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from bench import report

REVERIE = [str(Path(sys.executable).parent / "reverie")]  # the installed command, as a person runs it
TEMPLATE_CATALOG = '# catalog = "sqlite:.reverie/lake.sqlite"'


def reverie(*args: str, cwd: Path) -> str:
    return subprocess.run([*REVERIE, *args], cwd=cwd, capture_output=True, text=True, check=True).stdout


def project(workdir: Path, store: str, days: int, scale: float) -> Path:
    reverie("init", store, cwd=workdir)
    folder = workdir / store
    config = folder / "reverie.toml"
    text = config.read_text().replace("[llm]\n", "[llm]\nanalysts = 0\n", 1)
    if store == "lake":
        text = text.replace(TEMPLATE_CATALOG, TEMPLATE_CATALOG.removeprefix("# "), 1)
    config.write_text(text)
    reverie("generate", "--days", str(days), "--seed", "3", "--scale", str(scale), cwd=folder)
    return folder


def cycle(folder: Path) -> dict:
    result = json.loads(reverie("run", "--full-refresh", "--json", cwd=folder))
    assert result["status"] == "completed", result
    return {"seconds": result["seconds"], "rows": result["stages"]["ingest"]["rows"],
            "values": result["stages"]["metrics"]["rows"],
            "stages": {name: stage.get("seconds") for name, stage in result["stages"].items()}}


def table(result: dict) -> tuple[tuple, list[tuple]]:
    runs = result["results"]
    stages = list(runs[0]["stages"]["file"])
    return (("cycle", "store", "seconds", *stages, "lake/file"),
            [(r["cycle"], store, r[store], *(r["stages"][store][s] for s in stages),
              r["lake_over_file"] if store == "lake" else "") for r in runs for store in ("file", "lake")])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=int, default=120)
    parser.add_argument("--scale", type=float, default=2.0)
    report.output_options(parser)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="reverie-bench-lake-"))
    folders = {store: project(workdir, store, args.days, args.scale) for store in ("file", "lake")}
    runs = []
    for night in ("first cycle", "full refresh, nothing new"):
        measured = {store: cycle(folder) for store, folder in folders.items()}  # file, then lake: alternating
        assert measured["file"]["values"] == measured["lake"]["values"], measured
        runs.append({"cycle": night, "events": measured["file"]["rows"], "metric_values": measured["file"]["values"],
                     **{store: m["seconds"] for store, m in measured.items()},
                     "lake_over_file": round(measured["lake"]["seconds"] / measured["file"]["seconds"], 2),
                     "stages": {store: m["stages"] for store, m in measured.items()}})
    machine = report.machine()
    result = {"benchmark": "lake", "machine": machine, "days": args.days, "scale": args.scale, "results": runs}
    report.keep(args, "lake", result)
    if args.json:
        print(json.dumps(result))
        return
    print(f"lake vs file · {machine['cpus']} cores · {machine['platform']}")
    report.print_table(*table(result), width=9)
    for r in runs:
        print(f"{r['cycle']}: lake/file {r['lake_over_file']} ({r['events']:,} events loaded, "
              f"{r['metric_values']:,} metric values)")


if __name__ == "__main__":
    main()
