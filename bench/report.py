"""What every benchmark prints and keeps: the machine it ran on, a table, and (`--record`) its JSON stamped with the
date and commit in bench/results/, from which `python -m bench.tables` makes the tables in docs/."""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from datetime import date
from pathlib import Path

RESULTS_DIR = Path(__file__).parent / "results"


def machine() -> dict:
    return {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()}


def print_table(header: tuple, rows: list[tuple], width: int = 11) -> None:
    """Right-aligned columns separated by bars, header first."""
    for cells in (header, *rows):
        print(" | ".join(f"{c!s:>{width}}" for c in cells))


def output_options(parser: argparse.ArgumentParser) -> None:
    """--json and --record, the same in every benchmark."""
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--record", action="store_true",
                        help="keep the JSON in bench/results/ with the date and commit: the docs' tables are made "
                             "from it (python -m bench.tables)")


def commit() -> str:
    """The checkout's commit, with `+changes` when its files differ from it (bench/results/ aside)."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=RESULTS_DIR.parent.parent, capture_output=True, text=True).stdout

    changed = [line for line in git("status", "--porcelain").splitlines() if "bench/results/" not in line]
    return git("rev-parse", "--short", "HEAD").strip() + ("+changes" if changed else "")


def keep(args: argparse.Namespace, name: str, result: dict) -> None:
    """With --record: the result as bench/results/NAME.json, stamped with what made it."""
    if not args.record:
        return
    module = Path(sys.argv[0]).stem if sys.argv[0].endswith(".py") else name
    stamped = {"name": name, "module": module, "date": date.today().isoformat(), "commit": commit(),
               "command": "uv run python -m bench." + " ".join([module, *sys.argv[1:]]), "machine": machine(),
               "result": result}
    RESULTS_DIR.mkdir(exist_ok=True)
    (RESULTS_DIR / f"{name}.json").write_text(json.dumps(stamped, indent=1, default=str) + "\n")
