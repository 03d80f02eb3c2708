"""The benchmark tables in docs/, made from the benchmarks' recorded JSON (bench/results/NAME.json, written by a
benchmark run with --record); each row says the date and commit it was measured on.

    uv run python -m bench.tables            # rewrite every table between <!-- bench: NAME --> and <!-- /bench -->
    uv run python -m bench.tables --check    # exit 1, naming them, when tables differ from their JSON
"""

from __future__ import annotations

import argparse
import importlib
import json
import re
import sys
from pathlib import Path

from bench.report import RESULTS_DIR

DOCS = Path(__file__).parent.parent / "docs"
BLOCK = re.compile(r"(<!-- bench: (?P<name>[\w-]+) -->\n).*?(<!-- /bench -->)", re.DOTALL)


def markdown(name: str) -> str:
    """One recorded result as a markdown table (its module's `table`), the command and machine beneath."""
    recorded = json.loads((RESULTS_DIR / f"{name}.json").read_text())
    header, rows = importlib.import_module(f"bench.{recorded['module']}").table(recorded["result"])
    lines = ["| " + " | ".join([*header, "date", "commit"]) + " |", "|---" * (len(header) + 2) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in (*row, recorded["date"], recorded["commit"])) + " |"
              for row in rows]
    machine = recorded["machine"]
    return "\n".join(lines) + f"\n\n`{recorded['command']}` ({machine['cpus']} cores, {machine['platform']})\n"


def rewritten(text: str) -> str:
    return BLOCK.sub(lambda m: m.group(1) + markdown(m.group("name")) + m.group(3), text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="only say whether the tables are up to date")
    args = parser.parse_args()
    stale = []
    for doc in sorted(DOCS.glob("*.md")):
        text = doc.read_text()
        new = rewritten(text)
        stale += [f"{doc.name}: {m.group('name')}" for m, n in zip(BLOCK.finditer(text), BLOCK.finditer(new))
                  if m.group(0) != n.group(0)]
        if not args.check and new != text:
            doc.write_text(new)
    if args.check and stale:
        sys.exit(f"out of date with bench/results/: {', '.join(stale)} (run: uv run python -m bench.tables)")


if __name__ == "__main__":
    main()
