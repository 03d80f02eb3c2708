"""Quality gate benchmark: validation cost per million rows, and the gate against the metric refresh.

    uv run python -m bench.quality_gate                  # 1M and 10M events
    uv run python -m bench.quality_gate --events 10M --json

For each size: 365 days of demo events, ingested (one batch per day), checked by the demo suite
(`quality/demo.yml`: 7 row checks by great-expectations, freshness and volume in DuckDB) the way a
first cycle checks them, then one more day the way a nightly cycle does. Reported, in one process:
  gate s / Mrows    the gate's wall time per million rows checked (great-expectations imported before)
  gate / refresh    the gate against a full metric refresh of the same data (target <= 0.25 at 10M)
  day gate          the gate on one new day, against the incremental refresh that follows it
and the two floors under the gate that its target (<= 0.25 of the refresh) meets:
  unique / refresh  exact uniqueness alone (`count(distinct)` of the suite's unique columns over every row checked)
  fixed / day refresh  the row checks on no rows (great-expectations' suite, context and validation), per source
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import report
from bench.metrics_refresh import ingest, parse_size, prepare, run_reverie
from reverie.config import load_settings
from reverie.generator import generate
from reverie.models import local_time
from reverie.queries import quoted
from reverie.suites import load_quality
from reverie.tasks.quality import run_quality_gate
from reverie.tasks.quality.expectations import row_outcomes
from reverie.tasks.quality.history_checks import HISTORY_CHECKS


def run_gate(settings, cycle_id: str) -> tuple[float, dict]:
    started = time.perf_counter()
    result = {name: run_quality_gate.fn(settings.warehouse, source, cycle_id, str(settings.quality_dir))
              for name, source in settings.sources.items()}
    return time.perf_counter() - started, result["events"]


def forget_checks(settings) -> None:
    """As if the gate had never run: so each repeat checks the same batches from scratch."""
    with settings.warehouse.connect() as con:
        con.execute("delete from quality_results")
        con.execute("update batches set status = 'loaded', reason = null")


def floors(settings) -> dict:
    """What the gate cannot go below with exact checks by great-expectations: uniqueness over every row checked,
    and a validation's fixed cost, the row checks run on no rows."""
    source = settings.sources["events"]
    checks = load_quality(settings.quality_dir).suites[source.suite]
    row_checks = [c for c in checks if c.check not in HISTORY_CHECKS]  # as the gate picks them
    unique = ", ".join(f"count(distinct {quoted(c.column)})" for c in checks if c.check == "unique")
    no_rows = [{"file": "(no file)", "rows": 0, "first_event": None, "last_event": None}]
    with settings.warehouse.connect() as con:
        started = time.perf_counter()
        con.execute(f"select {unique} from {quoted(source.raw_table)}").fetchall()
        unique_s = time.perf_counter() - started
        fixed = []
        for _ in range(5):
            started = time.perf_counter()
            row_outcomes(con, source.raw_table, local_time(con, source), no_rows, row_checks, "bench")
            fixed.append(time.perf_counter() - started)
    return {"unique_s": unique_s, "fixed_s": statistics.median(fixed)}


def measure(project: Path, repeat: int) -> dict:
    settings = load_settings(project)
    started = time.perf_counter()
    import great_expectations  # noqa: F401  (the gate imports it lazily; timed apart)
    import_s = time.perf_counter() - started
    with settings.warehouse.connect() as con:
        rows = con.execute("select sum(rows) from batches where cycle_id = 'bench-load'").fetchone()[0]
    gate, refresh = [], []
    for i in range(repeat):
        forget_checks(settings)
        seconds, summary = run_gate(settings, "bench-load")
        gate.append(seconds)
        refresh.append(run_reverie(settings, f"bench-full-{i}", full=True)[0])
    generate(settings.landing_dir, 1)
    ingest(settings, "bench-day")
    day_gate_s, day = run_gate(settings, "bench-day")
    day_refresh_s, _ = run_reverie(settings, "bench-day", full=False)
    gate_s, refresh_s = statistics.median(gate), statistics.median(refresh)
    floor = floors(settings)
    return {"rows_checked": rows, "batches": summary["passed"] + summary["quarantined"],
            "quarantined": summary["quarantined"], "ge_import_s": round(import_s, 2),
            "gate_s": round(gate_s, 3), "gate_s_per_million_rows": round(gate_s / rows * 1e6, 3),
            "full_refresh_s": round(refresh_s, 3), "gate_over_refresh": round(gate_s / refresh_s, 3),
            "day_gate_s": round(day_gate_s, 3), "day_refresh_s": round(day_refresh_s, 3),
            "day_gate_over_refresh": round(day_gate_s / day_refresh_s, 2), "day_quarantined": day["quarantined"],
            "unique_s": round(floor["unique_s"], 3), "unique_over_refresh": round(floor["unique_s"] / refresh_s, 3),
            "fixed_s": round(floor["fixed_s"], 3),
            "fixed_over_day_refresh": round(floor["fixed_s"] / day_refresh_s, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", default="1M,10M")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=None)
    report.output_options(parser)
    parser.add_argument("--measure", type=Path, metavar="PROJECT", help="only time an already built project")
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure, args.repeat)))
        return
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="reverie-bench-"))
    rows = []
    for size in [parse_size(s) for s in args.events.split(",")]:
        prepared = prepare(size, workdir)
        os.sync()
        rows.append({**prepared, **measure_in_subprocess(prepared["project"], args.repeat)})
    machine = report.machine()
    result = {"benchmark": "quality_gate", "machine": machine, "results": rows}
    report.keep(args, "quality_gate", result)
    if args.json:
        print(json.dumps(result))
        return
    print(f"quality gate · {machine['cpus']} cores · {machine['platform']}")
    report.print_table(*table(result), width=12)


def table(result: dict) -> tuple[tuple, list[tuple]]:
    header = ("events", "batches", "gate s", "s / Mrows", "refresh s", "gate/refresh", "day gate s", "day refresh s",
              "unique/refresh", "fixed/day")
    return header, [(f"{r['events']:,}", r["batches"], r["gate_s"], r["gate_s_per_million_rows"], r["full_refresh_s"],
                     r["gate_over_refresh"], r["day_gate_s"], r["day_refresh_s"], r["unique_over_refresh"],
                     r["fixed_over_day_refresh"]) for r in result["results"]]


def measure_in_subprocess(project: str, repeat: int) -> dict:
    """Timed in a fresh process, like the metrics benchmark: the data was written by this one."""
    out = subprocess.run([sys.executable, "-m", "bench.quality_gate", "--measure", project, "--repeat", str(repeat)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    main()
