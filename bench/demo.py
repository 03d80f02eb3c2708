"""The README's first command, measured: `reverie demo` as a newcomer runs it, night after night.

    uv run python -m bench.demo                              # 5 cycles: set-up + 90 days, then 4 nights
    uv run python -m bench.demo --cycles 5 --json
    uv run python -m bench.demo --reverie /other/checkout/.venv/bin/reverie   # another version, same data
    uv run python -m bench.demo --start-up                   # Prefect's start-up: cold, warm, busy CPU

Each cycle is one `reverie demo` process in a fresh folder, on the embedded model (no key, no
network): per cycle the analyst's notes written and rejected by the grounding check, its tokens,
reflect's share of the cycle, and the wall time. With --start-up, the time from launching `reverie
demo --days 30` to its flow running (Prefect's API, imports, the demo data) against a one-line
Prefect flow in a new process — the part of Prefect's start-up reverie cannot remove — each in a fresh
PREFECT_HOME (cold), again in the same one (warm), and cold with two other processes saturating
both cores (busy).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import report

BARE_FLOW = "from prefect import flow\n@flow\ndef one():\n    return 1\none()\n"


def run(command: list[str], cwd: Path, env: dict, must: bool = True) -> tuple[float, subprocess.CompletedProcess]:
    started = time.monotonic()
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=1800)
    if done.returncode != 0 and must:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    return time.monotonic() - started, done


def failure(done: subprocess.CompletedProcess) -> str | None:
    """Why a run failed, in one line (None if it did not)."""
    if done.returncode == 0:
        return None
    lines = [line for line in done.stderr.splitlines() if "Error" in line or "error" in line]
    return (lines[-1] if lines else done.stderr.strip().splitlines()[-1])[:160]


def cycles(reverie: str, count: int, env: dict) -> list[dict]:
    """`reverie demo` `count` times in one new folder: the first sets the project up, each later one lands a night."""
    folder = Path(tempfile.mkdtemp(prefix="reverie-bench-demo-"))
    rows = []
    for _ in range(count):
        seconds, done = run([reverie, "demo", "--json"], folder, env)
        result = json.loads(done.stdout)
        reflect = result["stages"]["reflect"]
        rows.append({"written": reflect["written"], "rejected": reflect["rejected"],
                     "prompt_tokens": reflect["prompt_tokens"], "completion_tokens": reflect["completion_tokens"],
                     "reflect_seconds": reflect["seconds"], "cycle_seconds": result["seconds"],
                     "reflect_share": round(reflect["seconds"] / result["seconds"], 2), "wall_seconds": round(seconds, 1),
                     "candidates": result["stages"]["detect"]["candidates"], "status": result["status"]})
    return rows


def start_up(reverie: str, env: dict) -> list[dict]:
    """Time to a running flow for reverie and for a bare one-line Prefect flow: cold, warm and busy."""
    rows = []
    for condition in ("cold", "warm", "busy"):
        load = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2 if condition == "busy" else 0)]
        try:
            row = {"condition": condition}
            for who in ("prefect", "reverie"):
                own = {**env, "PREFECT_HOME": tempfile.mkdtemp(prefix=f"reverie-bench-home-{who}-")}
                command = ([sys.executable, "-c", BARE_FLOW] if who == "prefect"
                           else [reverie, "demo", "--days", "30", "--json"])
                seconds, done = run(command, Path(tempfile.mkdtemp(prefix="reverie-bench-start-")), own, must=False)
                if condition == "warm" and not failure(done):  # the same PREFECT_HOME again, in a new folder
                    seconds, done = run(command, Path(tempfile.mkdtemp(prefix="reverie-bench-start-")), own, must=False)
                row[f"{who}_seconds"] = round(seconds, 1)
                row[f"{who}_failed"] = failure(done)
                if who == "reverie" and not failure(done):
                    result = json.loads(done.stdout)
                    row["reverie_ready_seconds"] = result.get("ready_seconds")  # not reported before 2026-11-25
                    row["reverie_cycle_seconds"] = result["seconds"]
            row["demo_over_bare_flow"] = round(row["reverie_seconds"] / row["prefect_seconds"], 2)
            rows.append(row)
        finally:
            for process in load:
                process.kill()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cycles", type=int, default=5)
    parser.add_argument("--reverie", default=str(Path(sys.executable).parent / "reverie"),
                        help="the reverie command to measure (default: this checkout's)")
    parser.add_argument("--start-up", action="store_true", help="measure Prefect's start-up instead")
    report.output_options(parser)
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "OPENAI_", "REVERIE_"))}
    env["PREFECT_HOME"] = tempfile.mkdtemp(prefix="reverie-bench-home-")
    rows = start_up(args.reverie, env) if args.start_up else cycles(args.reverie, args.cycles, env)
    machine = report.machine()
    result = {"benchmark": "start-up" if args.start_up else "demo", "reverie": args.reverie, "machine": machine,
              "result": rows}
    report.keep(args, "demo-start-up" if args.start_up else "demo", result)
    if args.json:
        print(json.dumps(result))
        return
    print(f"{'start-up' if args.start_up else 'demo'} · {args.reverie} · {machine['cpus']} cores")
    report.print_table(*table(result), width=9)


def table(result: dict) -> tuple[tuple, list[tuple]]:
    columns = list(dict.fromkeys(key for row in result["result"] for key in row))
    return tuple(columns), [tuple(row.get(c) for c in columns) for row in result["result"]]


if __name__ == "__main__":
    main()
