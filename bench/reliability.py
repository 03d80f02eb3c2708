"""The reliability suite's figures: faults injected and survived, bad inputs tried and handled, escape attempts
blocked, attacks on secrets and instructions held, rows lost — counted from a run of the suite, written into the
table in docs/reliability-and-security.md. Never typed by hand:

    uv run python -m bench.reliability                    # runs every test marked `reliability`, updates the doc
    uv run python -m bench.reliability --json
    uv run python -m bench.reliability --from report.xml  # counts an earlier run's JUnit report instead

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
from datetime import date
from pathlib import Path

from bench import report

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "reliability-and-security.md"
START, END = "<!-- reliability figures: bench/reliability.py writes this table -->", "<!-- end of reliability figures -->"
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
                    "-o", "junit_family=legacy", f"--junitxml={junit}"], cwd=ROOT, check=False)  # legacy: properties
    return time.monotonic() - started


def count(junit: Path) -> dict:
    """Per kind: cases (escape attempts: statements per lock), those that held, rows lost, and the modules they live
    in; from a JUnit XML report."""
    tried, held, lost, failed = Counter(), Counter(), Counter(), []
    modules: dict[str, set] = {kind: set() for kind in KINDS}
    attempts: dict[tuple[str, str], bool] = {}  # (lock, statement): every case of it held
    for case in ET.parse(junit).iter("testcase"):
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


def table(figures: dict) -> str:
    """The doc's table, in Markdown."""
    lines = ["| | tried | held | rows lost | where (tests/) |", "|---|---:|---:|---:|---|"]
    for kind, (what, holding) in KINDS.items():
        k = figures["kinds"][kind]
        lines.append(f"| {what} | {k['tried']} | {k['held']} {holding} | {k['rows_lost']} | "
                     f"{', '.join(k['modules'])} |")
    lines.append(f"| **all** | {sum(k['tried'] for k in figures['kinds'].values())} | "
                 f"{sum(k['held'] for k in figures['kinds'].values())} | **{figures['rows_lost']}** | |")
    locks = ", ".join(f"{lock} {n}" for lock, n in figures["escape_locks"].items())
    lines += ["", f"SQL escape attempts are distinct statements per lock of the sandbox ({locks}): a statement tried "
                  f"on a warehouse file and on a lake counts once."]
    machine, seconds = figures["machine"], figures.get("seconds")
    took = f", in {seconds:.0f} s" if seconds else ""
    lines += ["", f"Measured {figures['date']} on {machine['cpus']} cores ({machine['platform']}, Python "
                  f"{machine['python']}){took} by `uv run python -m bench.reliability`."]
    return "\n".join(lines)


def write_doc(text: str) -> None:
    doc = DOC.read_text()
    if START not in doc or END not in doc:
        raise SystemExit(f"{DOC.relative_to(ROOT)} has no {START!r} … {END!r} block to write the table into")
    head, rest = doc.split(START, 1)
    _, tail = rest.split(END, 1)
    DOC.write_text(f"{head}{START}\n{text}\n{END}{tail}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--from", dest="report", type=Path, help="a JUnit XML report of an earlier run")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--print-only", action="store_true", help="print only; leave the doc as it is")
    args = parser.parse_args()
    seconds = None
    if args.report is None:
        args.report = Path(tempfile.mkdtemp(prefix="reverie-reliability-")) / "report.xml"
        seconds = run_suite(args.report)
    figures = {**count(args.report), "machine": report.machine(), "date": date.today().isoformat(),
               "seconds": round(seconds, 1) if seconds else None}
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        print(table(figures))
        for case in figures["failed"]:
            print(f"did not hold: {case}")
    if not args.print_only:
        write_doc(table(figures))


if __name__ == "__main__":
    main()
