"""The reliability suite's figures: faults injected and survived, bad inputs tried and handled, escape attempts
blocked, attacks on secrets and instructions held, rows lost — counted from a run of the suite. Never typed by hand:
with --record the figures go to bench/results/reliability.json, from which `python -m bench.tables` makes the table
in docs/reliability-and-security.md.

    uv run python -m bench.reliability --record                       # runs every test marked `reliability`
    uv run python -m bench.reliability --json
    uv run python -m bench.reliability --from default.xml heavy.xml   # counts earlier runs' JUnit reports instead

A case is one test (one parametrized case) marked `@pytest.mark.reliability(kind)`, of either tier; it holds when it
passes. An escape attempt is one statement against one lock of the sandbox (the statement check, the connection, or
both): tried on a warehouse file and on a lake, or by two tests, it still counts once, and holds when every case of
it passed. Rows lost are what the cases report through their `rows_lost` fixture (rows stored before a case, gone
after it).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

from bench import report

ROOT = Path(__file__).resolve().parent.parent
KINDS = {  # kind: (what a case is, what holding means)
    "fault": ("faults injected", "survived"),
    "bad_input": ("bad inputs tried", "handled"),
    "escape": ("SQL escape attempts", "blocked"),
    "secret": ("injections and secret leaks tried", "held"),
}


def run_suite(junit: Path) -> float:
    """Every reliability case, as `uv run pytest` runs it; returns the seconds it took."""
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "pytest", "-m", "reliability", "--tier", "all", "-q", "-p", "no:cacheprovider",
                    f"--junitxml={junit}"], cwd=ROOT, check=False)
    return time.monotonic() - started


def count(reports: list[Path]) -> dict:
    """Per kind: cases (escape attempts: statements per lock), those that held, rows lost, and the modules they live
    in; from JUnit XML reports (a tier's each)."""
    tried, held, lost, failed = Counter(), Counter(), Counter(), []
    modules: dict[str, set] = {kind: set() for kind in KINDS}
    attempts: dict[tuple[str, str], bool] = {}  # (lock, statement): every case of it held
    for case in (case for junit in reports for case in ET.parse(junit).iter("testcase")):
        properties = {p.get("name"): p.get("value") for p in case.iter("property")}
        kind = properties.get("reliability")
        if kind is None or case.find("skipped") is not None:
            continue
        ok = case.find("failure") is None and case.find("error") is None
        modules[kind].add(case.get("classname", "").removeprefix("tests.").split(".")[-1])
        lost[kind] += int(properties.get("rows_lost", 0))
        if not ok:
            failed.append(f"{case.get('classname')}::{case.get('name')}")
        if "lock" in properties:
            attempt = (properties["lock"], properties["statement"])
            attempts[attempt] = attempts.get(attempt, True) and ok
            continue
        tried[kind] += 1
        held[kind] += ok
    locks = Counter(lock for lock, _ in attempts)
    tried["escape"] += len(attempts)
    held["escape"] += sum(attempts.values())
    return {"kinds": {kind: {"tried": tried[kind], "held": held[kind], "rows_lost": lost[kind],
                             "modules": sorted(modules[kind])} for kind in KINDS},
            "escape_locks": dict(sorted(locks.items())), "rows_lost": sum(lost.values()), "failed": failed}


def table(result: dict) -> tuple[tuple, list[tuple]]:
    """A row per kind of case and one for all; the escape attempts' row says how many each lock of the sandbox met
    (a statement tried on a warehouse file and on a lake counts once)."""
    locks = ", ".join(f"{lock} {n}" for lock, n in result["escape_locks"].items())
    rows = []
    for kind, (what, holding) in KINDS.items():
        k = result["kinds"][kind]
        rows.append((what + (f" (per lock: {locks})" if kind == "escape" else ""), k["tried"],
                     f"{k['held']} {holding}", k["rows_lost"], ", ".join(k["modules"])))
    rows.append(("**all**", sum(k["tried"] for k in result["kinds"].values()),
                 sum(k["held"] for k in result["kinds"].values()), f"**{result['rows_lost']}**", ""))
    return ("", "tried", "held", "rows lost", "where (tests/)"), rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--from", dest="reports", type=Path, nargs="+", help="JUnit XML reports of earlier runs")
    report.output_options(parser)
    args = parser.parse_args()
    seconds = None
    if args.reports is None:
        args.reports = [Path(tempfile.mkdtemp(prefix="reverie-reliability-")) / "report.xml"]
        seconds = run_suite(args.reports[0])
    result = {**count(args.reports), "machine": report.machine(), "seconds": round(seconds, 1) if seconds else None}
    report.keep(args, "reliability", result)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    report.print_table(*table(result))
    for case in result["failed"]:
        print(f"did not hold: {case}")


if __name__ == "__main__":
    main()
