"""Query time, measured: `reverie ask` as a process on each path, against answers computed by SQL.

    uv run python bench/ask.py                    # the embedded model, a demo project of 60 days + 2 nights
    uv run python bench/ask.py --json
    OPENAI_BASE_URL=... REVERIE_MODEL=... uv run python bench/ask.py   # any OpenAI-compatible endpoint

A demo project gets two cycles (the second lands a new day: the night prepares answers). Questions come
from templates over its data: a level on a day, what drove a change, since when, the highest value, what
happened on a day, pace to goal; each has its true value or member from SQL on the warehouse. Each is
asked in the phrasing reverie was developed with ("tune") and in phrasings held back from that work
("held back"). Every question is asked three times as a process: by default (a prepared answer if one
matches), with --no-prepared (memory), with --no-memory (cold). Reported per path: correct (the true value
or member is in the answer), query-time tokens, latency p50/p95 of the whole process and inside it; and the
share of held-back questions a prepared answer answered (the hit rate).
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

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import duckdb  # noqa: E402

from bench import report  # noqa: E402
from reverie.analyst.grounding import show  # noqa: E402

REVERIE = [str(Path(sys.executable).parent / "reverie")]
PATHS = {"default": [], "memory": ["--no-prepared"], "cold": ["--no-memory"]}


def sh(args: list[str], cwd: Path) -> tuple[float, dict]:
    started = time.monotonic()
    done = subprocess.run(REVERIE + args, cwd=cwd, capture_output=True, text=True, timeout=900)
    wall = time.monotonic() - started
    if done.returncode != 0:
        return wall, {"answer": done.stderr.strip()[-300:], "path": "error", "prompt_tokens": 0,
                      "completion_tokens": 0, "seconds": wall, "cited": []}
    return wall, json.loads(done.stdout)


def questions(warehouse: Path) -> list[dict]:
    """Questions with their truth, in a tune phrasing and a held-back one."""
    con = duckdb.connect(str(warehouse), read_only=True)
    latest = con.execute("select max(cast(period_start as date)) from metric_values where grain = 'day' and complete").fetchone()[0]
    qs = []
    metrics = [m for (m,) in con.execute("select name from metrics order by name").fetchall()]
    for metric in metrics:
        (value,) = con.execute("select value from metric_values where metric = ? and grain = 'day' and dimension = "
                               "'overall' and cast(period_start as date) = ?", [metric, latest]).fetchone()
        style = "percent" if con.execute("select measure from metrics where name = ?", [metric]).fetchone()[0] == "ratio" else "number"
        words = metric.replace("_", " ")
        qs.append({"kind": "level", "group": "every metric", "truth": show(value, style),
                   "tune": f"What was {metric} yesterday?", "held": f"How much {words} did we do on {latest.isoformat()}?"})
        (highest,) = con.execute("select max(value) from metric_values where metric = ? and grain = 'day' and "
                                 "dimension = 'overall' and complete", [metric]).fetchone()
        qs.append({"kind": "record", "group": "every metric", "truth": show(highest, style),
                   "tune": f"What is the highest {metric} ever?", "held": f"Tell me the peak daily {words} so far"})
    # the changes the last night found or confirmed (what people ask about in the morning), and older ones
    night = con.execute("select metric, dimension, member, period_start, evidence from memory where status = 'active' "
                        "and kind = 'unusual_change' and id in (select memory_id from memory_history where cycle_id = "
                        "(select max(cycle_id) from cycles)) order by score desc limit 4").fetchall()
    older = con.execute("select metric, dimension, member, period_start, evidence from memory where status = 'active' "
                        "and kind = 'unusual_change' order by score desc limit 8").fetchall()
    older = [c for c in older if c not in night][:4]
    for group, changes in (("tonight's changes", night), ("older changes", older)):
        for metric, dimension, member, day, evidence in changes:
            lead = (json.loads(evidence).get("drivers") or {}).get("lead")
            truth = member if dimension != "overall" else (lead["member"] if lead else metric)
            qs.append({"kind": "driver", "group": group, "truth": truth,
                       "tune": f"What drove the change in {metric} on {day.isoformat()}?",
                       "held": f"Which segment was behind the {metric.replace('_', ' ')} move on {day:%b %d}?"})
            qs.append({"kind": "day", "group": group, "truth": metric, "tune": f"What happened on {day.isoformat()}?",
                       "held": f"Anything notable on {day:%B %d}?"})
    qs.append({"kind": "pace", "group": "every metric", "truth": "goal", "tune": "Is revenue on pace for its goal?",
               "held": "Are we on track to hit the revenue target?"})
    return qs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    env = {**os.environ, "PREFECT_HOME": tempfile.mkdtemp(prefix="bench-ask-prefect-")}
    folder = Path(tempfile.mkdtemp(prefix="bench-ask-"))
    for command in (["demo", "--days", str(args.days), "--json"], ["demo", "--json"]):
        done = subprocess.run(REVERIE + command, cwd=folder, env=env, capture_output=True, text=True, timeout=1800)
        if done.returncode != 0:
            raise SystemExit(done.stderr[-2000:])
    qs = questions(folder / ".reverie" / "warehouse.duckdb")
    rows = []
    for q in qs:
        for phrasing in ("tune", "held"):
            for name, flags in PATHS.items():
                wall, r = sh(["ask", "--json", *flags, q[phrasing]], folder)
                rows.append({"kind": q["kind"], "group": q["group"], "phrasing": phrasing, "asked": name, "question": q[phrasing],
                             "truth": q["truth"], "path": r["path"], "correct": q["truth"].lower() in r["answer"].lower(),
                             "tokens": r["prompt_tokens"] + r["completion_tokens"], "seconds": r["seconds"],
                             "process_seconds": round(wall, 3), "grounded": r.get("grounded"), "answer": r["answer"]})
    summary = []
    for path in ("prepared", "memory", "cold"):
        got = [r for r in rows if r["path"] == path]
        if not got:
            continue
        walls = sorted(r["process_seconds"] for r in got)
        summary.append({"path": path, "asks": len(got), "correct": round(sum(r["correct"] for r in got) / len(got), 2),
                        "tokens_per_ask": round(statistics.mean(r["tokens"] for r in got)),
                        "inside_p50": round(statistics.median(r["seconds"] for r in got), 3),
                        "process_p50": round(statistics.median(walls), 2),
                        "process_p95": round(walls[min(len(walls) - 1, int(0.95 * len(walls)))], 2)})
    held = [r for r in rows if r["phrasing"] == "held" and r["asked"] == "default"]
    tune = [r for r in rows if r["phrasing"] == "tune" and r["asked"] == "default"]
    groups = dict.fromkeys(q["group"] for q in qs)
    hits = {g: round(statistics.mean(r["path"] == "prepared" for r in held if r["group"] == g), 2) for g in groups}
    result = {"machine": report.machine(), "questions": len(qs), "summary": summary,
              "hit_rate_held_back": round(sum(r["path"] == "prepared" for r in held) / len(held), 2),
              "hit_rate_tune": round(sum(r["path"] == "prepared" for r in tune) / len(tune), 2),
              "hit_rate_held_back_by_group": hits,
              "wrong": [r for r in rows if not r["correct"]], "rows": rows}
    if args.json:
        print(json.dumps(result, default=str))
        return
    report.print_table(("path", "asks", "correct", "tokens/ask", "in p50 s", "proc p50 s", "proc p95 s"),
                       [tuple(s.values()) for s in summary])
    print(f"prepared-answer hit rate: held-back phrasings {result['hit_rate_held_back']:.0%}, "
          f"tune phrasings {result['hit_rate_tune']:.0%} ({len(qs)} questions); held back by group: "
          + ", ".join(f"{g} {h:.0%}" for g, h in hits.items()))
    for r in result["wrong"]:
        print(f"  wrong ({r['path']}, {r['kind']}): {r['question']!r} -> {r['answer'][:100]!r} (truth {r['truth']!r})")


if __name__ == "__main__":
    main()
