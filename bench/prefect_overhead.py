"""A sleep cycle's fixed overhead — everything but its stages' own work — as a local run, a served run and a worker run.

    uv run python -m bench.prefect_overhead               # 3 cycles each way on a demo project of 40 days
    uv run python -m bench.prefect_overhead --runs 5 --json

A Prefect server is started on loopback (its own PREFECT_HOME); the project runs as a user runs it, with the
embedded model. Each cycle lands one new day first (`reverie generate --days 1`).
- local: `reverie run` (Prefect's ephemeral API, as by default), timed around the command;
- local + server: `reverie run` with PREFECT_API_URL pointing at the server (no ephemeral API to start);
- served: `reverie serve`, the nightly deployment's run scheduled 12 s ahead (as a schedule's run is: the runner
  sees it coming), timed from its scheduled start to its end by the server's clock; "served, now": created to run
  at once (as an event's run is), so the time to notice it (polling every 2 s here) and start it counts;
- worker, worker now: the same with `prefect deploy` from deployments/prefect.yaml and a process worker.
Overhead = that time − the sum of the stages' own seconds (from the cycle's row in the warehouse). `late` is the
run's start minus its scheduled start. A process that starts cold also imports great-expectations in the quality
stage and matplotlib in the deliver stage: those columns show what that adds inside the stages.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import tempfile
import time
from datetime import datetime
from pathlib import Path

import duckdb

from bench import report
from tests.helpers.prefect_server import BIN, Server  # shared with the tests on purpose: one way to start a server

ROOT = Path(__file__).resolve().parent.parent


def reverie(*args: str, cwd: Path, env: dict) -> subprocess.CompletedProcess:
    done = subprocess.run([BIN / "reverie", *args], cwd=cwd, env=env, capture_output=True, text=True)
    if done.returncode != 0 or "Traceback" in done.stderr:
        raise SystemExit(f"reverie {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return done


def stage_seconds(project: Path, flow_run_id: str) -> dict[str, float]:
    """The seconds of each stage of the cycle a flow run wrote."""
    with duckdb.connect(str(project / ".reverie" / "warehouse.duckdb"), read_only=True) as con:
        (stages,) = con.execute("select stages from cycles where flow_run_id = $id", {"id": flow_run_id}).fetchone()
    return {name: stage["seconds"] for name, stage in json.loads(stages).items()}


def measured_run(total: float, stages: dict[str, float], late: float = 0.0) -> dict:
    # quality and deliver carry the first import of great-expectations and matplotlib in a cold process
    return {"total": total, "stages": sum(stages.values()), "overhead": total - sum(stages.values()),
            "quality": stages["quality"], "deliver": stages["deliver"], "late": late}


def local_runs(project: Path, env: dict, runs: int) -> list[dict]:
    measured = []
    for _ in range(runs):
        reverie("generate", "--days", "1", cwd=project, env=env)
        started = time.monotonic()
        result = json.loads(reverie("run", "--json", cwd=project, env=env).stdout)
        wall = time.monotonic() - started
        measured.append(measured_run(wall, {name: stage["seconds"] for name, stage in result["stages"].items()}))
    return measured


def deployed_runs(server: Server, project: Path, env: dict, runs: int, ahead: float) -> list[dict]:
    """The nightly deployment's runs, each scheduled `ahead` seconds on (0: triggered now, as an event's run is),
    timed by the server from the scheduled start to the end."""
    measured = []
    for _ in range(runs):
        reverie("generate", "--days", "1", cwd=project, env=env)
        flow_run_id = server.run("sleep-cycle", "nightly", in_seconds=ahead)
        done = server.wait(flow_run_id)
        if done["state_type"] != "COMPLETED":
            raise SystemExit(f"flow run {flow_run_id} ended {done['state_type']}")
        scheduled = datetime.fromisoformat(done["expected_start_time"])
        total = (datetime.fromisoformat(done["end_time"]) - scheduled).total_seconds()
        late = (datetime.fromisoformat(done["start_time"]) - scheduled).total_seconds()
        measured.append(measured_run(total, stage_seconds(project, flow_run_id), late))
    return measured


def summary(mode: str, measured: list[dict]) -> dict:
    overheads = [m["overhead"] for m in measured]
    return {"mode": mode, "runs": len(measured), "total_median": statistics.median(m["total"] for m in measured),
            "stages_median": statistics.median(m["stages"] for m in measured),
            "quality_median": statistics.median(m["quality"] for m in measured),
            "deliver_median": statistics.median(m["deliver"] for m in measured),
            "late_median": statistics.median(m["late"] for m in measured),
            "overhead_median": statistics.median(overheads), "overhead_min": min(overheads),
            "overhead_max": max(overheads), "measured": measured}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--days", type=int, default=40)
    report.output_options(parser)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="reverie-bench-prefect-"))
    server = Server(folder / "server-home")
    project = folder / "shop"
    project.mkdir()
    local_env = {k: v for k, v in server.env.items() if k != "PREFECT_API_URL"}
    local_env["PREFECT_HOME"] = str(folder / "local-home")
    results = []
    try:
        reverie("demo", "--days", str(args.days), "--json", cwd=project, env=local_env)
        results.append(summary("local", local_runs(project, local_env, args.runs)))
        results.append(summary("local + server", local_runs(project, server.env, args.runs)))

        log = folder / "serve.log"  # a file, not a pipe: a pipe nobody reads fills up and stalls the server
        with open(log, "w") as out:
            serve = subprocess.Popen([BIN / "reverie", "serve"], cwd=project, env=server.env, stdout=out, stderr=out)
        try:
            while "Ctrl-C stops" not in log.read_text():
                if serve.poll() is not None:
                    raise SystemExit(f"reverie serve stopped:\n{log.read_text()[-3000:]}")
                time.sleep(0.2)
            results.append(summary("served", deployed_runs(server, project, server.env, args.runs, ahead=12)))
            results.append(summary("served, now", deployed_runs(server, project, server.env, args.runs, ahead=0)))
        finally:
            serve.terminate()
            serve.wait(timeout=60)

        server.cli("work-pool", "create", "reverie-process", "--type", "process", "--overwrite")
        server.cli("--no-prompt", "deploy", "--all", "--prefect-file", "deployments/prefect.yaml",
                   REVERIE_PROJECT_DIR=str(project))
        worker = subprocess.Popen([BIN / "prefect", "worker", "start", "--pool", "reverie-process"], cwd=ROOT,
                                  env=server.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            results.append(summary("worker", deployed_runs(server, project, server.env, args.runs, ahead=12)))
            results.append(summary("worker, now", deployed_runs(server, project, server.env, args.runs, ahead=0)))
        finally:
            worker.terminate()
            worker.wait(timeout=60)
    finally:
        server.stop()
    local = results[0]["overhead_median"]
    for r in results:
        r["overhead_vs_local"] = r["overhead_median"] / local
    result = {"machine": report.machine(), "days": args.days, "results": results}
    report.keep(args, "prefect_overhead", result)
    if args.json:
        print(json.dumps(result, default=str))
        return
    print(f"a sleep cycle's fixed overhead on {report.machine()['cpus']} cores (median of {args.runs} runs, seconds)")
    report.print_table(*table(result), width=12)


def table(result: dict) -> tuple[tuple, list[tuple]]:
    return (("mode", "total", "stages", "overhead", "min", "max", "vs local", "late", "quality", "deliver"), [
        (r["mode"], f"{r['total_median']:.1f}", f"{r['stages_median']:.1f}", f"{r['overhead_median']:.2f}",
         f"{r['overhead_min']:.2f}", f"{r['overhead_max']:.2f}", f"{r['overhead_vs_local']:.3f}",
         f"{r['late_median']:.2f}", f"{r['quality_median']:.2f}", f"{r['deliver_median']:.2f}")
        for r in result["results"]])


if __name__ == "__main__":
    main()
