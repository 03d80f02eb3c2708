"""Query time, measured: `reverie ask` as a process on each path, against answers computed by SQL.

    uv run python -m bench.ask                    # the embedded model, a demo project of 60 days + 2 nights
    uv run python -m bench.ask --json
    uv run python -m bench.ask --paths default    # only as a person asks (no model: quick)
    OPENAI_BASE_URL=... REVERIE_MODEL=... uv run python -m bench.ask   # any OpenAI-compatible endpoint

Each answer is scored **right** (its true value or member is in it; for a question reverie should decline,
a decline), an **honest decline** (declined, or an answer that says it could not ground one), or **wrong**
(anything else: an answer to another question). The questions people ask first — rankings of members, a
week's total, this week against the same days of last week, anything wrong with a metric — and questions
reverie must decline (forecasts, metrics it does not have, time words it cannot read) are asked in a tune
phrasing and a held-back one written after the rules and never used to tune them.

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
from datetime import datetime, timedelta, timezone
from pathlib import Path

import duckdb

from bench import report
from reverie.wording import show

REVERIE = [str(Path(sys.executable).parent / "reverie")]
PATHS = {"default": [], "memory": ["--no-prepared"], "cold": ["--no-memory"]}
DECLINE = "(declined)"  # the truth of a question reverie must decline


def sh(args: list[str], cwd: Path) -> tuple[float, dict]:
    started = time.monotonic()
    done = subprocess.run(REVERIE + args, cwd=cwd, capture_output=True, text=True, timeout=900)
    wall = time.monotonic() - started
    if done.returncode != 0:
        return wall, {"answer": done.stderr.strip()[-300:], "path": "error", "prompt_tokens": 0,
                      "completion_tokens": 0, "seconds": wall, "cited": []}
    return wall, json.loads(done.stdout)


def demo_project(days: int) -> Path:
    """A demo project of `days` after two nights (the second lands a new day: the night prepares answers)."""
    env = {**os.environ, "PREFECT_HOME": tempfile.mkdtemp(prefix="bench-ask-prefect-")}
    folder = Path(tempfile.mkdtemp(prefix="bench-ask-"))
    for command in (["demo", "--days", str(days), "--json"], ["demo", "--json"]):
        done = subprocess.run(REVERIE + command, cwd=folder, env=env, capture_output=True, text=True, timeout=1800)
        if done.returncode != 0:
            raise SystemExit(done.stderr[-2000:])
    return folder


def questions(warehouse: Path) -> list[dict]:
    """Questions with their truth, in a tune phrasing and a held-back one."""
    con = duckdb.connect(str(warehouse), read_only=True)
    latest = con.execute("select max(cast(period_start as date)) from metric_values where grain = 'day' and complete").fetchone()[0]
    qs = []
    metrics = [m for (m,) in con.execute("select name from metrics order by name").fetchall()]
    # "yesterday" is the calendar's (the project's zone is UTC): the demo's newest day may be today
    yesterday = min(latest, datetime.now(timezone.utc).date() - timedelta(days=1))
    for metric in metrics:
        (value,) = con.execute("select value from metric_values where metric = ? and grain = 'day' and dimension = "
                               "'overall' and cast(period_start as date) = ?", [metric, yesterday]).fetchone()
        (newest,) = con.execute("select value from metric_values where metric = ? and grain = 'day' and dimension = "
                                "'overall' and cast(period_start as date) = ?", [metric, latest]).fetchone()
        style = "percent" if con.execute("select measure from metrics where name = ?", [metric]).fetchone()[0] == "ratio" else "number"
        words = metric.replace("_", " ")
        qs.append({"kind": "level", "group": "every metric", "truth": show(value, style),
                   "tune": f"What was {metric} yesterday?", "held": f"How much {words} did we have yesterday?"})
        qs.append({"kind": "level", "group": "every metric", "truth": show(newest, style),
                   "tune": f"What was {metric} on {latest.isoformat()}?",
                   "held": f"How much {words} did we do on {latest.isoformat()}?"})
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
    return qs + first_questions(con, latest) + declines()


def span_value(con, metric: str, start, end, dimension: str = "overall") -> dict:
    """A metric over days per member, as its measure aggregates (a ratio from its parts, an average by its rows)."""
    return dict(con.execute(
        "select member, case any_value(m.measure) when 'ratio' then sum(numerator) / sum(denominator) when 'avg' "
        "then sum(value * volume) / sum(volume) else sum(value) end from metric_values v join metrics m on m.name = "
        "v.metric where metric = ? and grain = 'day' and complete and dimension = ? and cast(period_start as date) "
        "between ? and ? group by member", [metric, dimension, start, end]).fetchall())


def first_questions(con, latest) -> list[dict]:
    """The questions people ask first, with their truth from SQL: rankings, last week, week against week, anything
    wrong."""
    monday = latest - timedelta(days=latest.weekday())
    last_monday = monday - timedelta(days=7)
    first = con.execute("select min(cast(period_start as date)) from metric_values where grain = 'day' and "
                        "complete").fetchone()[0]
    qs = []
    for metric, measure, dimensions in con.execute("select name, measure, dimensions from metrics order by name").fetchall():
        style = "percent" if measure == "ratio" else "number"
        words = metric.replace("_", " ")
        for dimension in dimensions[:2]:
            ranked = span_value(con, metric, first, latest, dimension)
            top = max(ranked, key=ranked.get)
            qs.append({"kind": "rank", "group": "asked first", "truth": f"{dimension} {top} had the most",
                       "tune": f"Which {dimension} brings the most {words}?",
                       "held": f"Top {dimension} for {words} so far?"})
        if measure != "count_distinct":
            week = span_value(con, metric, last_monday, monday - timedelta(days=1))["all"]
            qs.append({"kind": "last week", "group": "asked first", "truth": show(week, style),
                       "tune": f"What was {words} last week?", "held": f"Give me last week's {words}"})
            this = span_value(con, metric, monday, latest)["all"]
            before = span_value(con, metric, last_monday, latest - timedelta(days=7))["all"]
            qs.append({"kind": "week on week", "group": "asked first", "truth": f"{show(this, style)}, against {show(before, style)}",
                       "tune": f"Compare {words} this week to last week",
                       "held": f"How is {words} doing this week versus the prior week?"})
        items = [i for (i,) in con.execute(
            "select id from memory where status = 'active' and metric = ? and kind not in ('prepared_answer', "
            "'pace_to_goal') and cast(coalesce(valid_to, period_start) as date) >= ? order by case severity when "
            "'critical' then 0 when 'warning' then 1 else 2 end, period_start desc, score desc limit 1",
            [metric, latest - timedelta(days=89)]).fetchall()]
        qs.append({"kind": "anything wrong", "group": "asked first", "truth": items[0] if items else "no open item",
                   "tune": f"Is anything wrong with {words}?", "held": f"Any problems with {words} lately?"})
    return qs


def declines() -> list[dict]:
    """Questions reverie has no answer to: it must say so, not answer another question."""
    asked = [("forecast", "What will revenue be next month?", "Can you predict orders for tomorrow?"),
             ("no such metric", "How many customers churned last month?", "What is our net promoter score?"),
             ("no such metric", "What was profit last week?", "How much did we spend on ads yesterday?"),
             ("unread time", "Revenue in Q3?", "What were orders over the holidays?"),
             ("two slices", "Revenue in DE vs FR last week", "Compare orders in the US and GB")]
    return [{"kind": kind, "group": "declines", "truth": DECLINE, "tune": tune, "held": held}
            for kind, tune, held in asked]


def score(truth: str, answer: dict) -> str:
    """right, decline (honest: said it cannot) or wrong (an answer to another question, or a number not true)."""
    declined = answer["path"] == "declined" or not answer.get("grounded", False)
    if truth == DECLINE:
        return "right" if declined else "wrong"
    if truth.lower() in answer["answer"].lower():
        return "right"
    return "decline" if declined else "wrong"


def table(result: dict) -> tuple[tuple, list[tuple]]:
    return (("path", "asks", "correct", "tokens/ask", "in p50 s", "process p50 s", "process p95 s"),
            [tuple(s.values()) for s in result["summary"]])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=int, default=60)
    report.output_options(parser)
    parser.add_argument("--paths", default=",".join(PATHS), help="which of default, memory, cold to ask on")
    args = parser.parse_args()
    paths = {name: PATHS[name] for name in args.paths.split(",")}
    folder = demo_project(args.days)
    qs = questions(folder / ".reverie" / "warehouse.duckdb")
    rows = []
    for q in qs:
        for phrasing in ("tune", "held"):
            for name, flags in paths.items():
                wall, r = sh(["ask", "--json", *flags, q[phrasing]], folder)
                verdict = score(q["truth"], r)
                rows.append({"kind": q["kind"], "group": q["group"], "phrasing": phrasing, "asked": name, "question": q[phrasing],
                             "truth": q["truth"], "path": r["path"], "verdict": verdict, "correct": verdict == "right",
                             "tokens": r["prompt_tokens"] + r["completion_tokens"], "seconds": r["seconds"],
                             "process_seconds": round(wall, 3), "grounded": r.get("grounded"), "answer": r["answer"]})
    summary = []
    for path in ("prepared", "computed", "declined", "memory", "cold"):
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
    answerable = [r for r in held if r["truth"] != DECLINE]
    hits = {g: round(statistics.mean(r["path"] == "prepared" for r in held if r["group"] == g), 2)
            for g in groups if g != "declines"}
    verdicts = {phrasing: {v: sum(r["verdict"] == v for r in got) for v in ("right", "decline", "wrong")}
                for phrasing, got in (("tune", tune), ("held back", held))}
    result = {"machine": report.machine(), "questions": len(qs), "summary": summary, "verdicts": verdicts,
              "right_or_decline_held_back": round(sum(r["verdict"] != "wrong" for r in held) / len(held), 2),
              "hit_rate_held_back": round(sum(r["path"] == "prepared" for r in answerable) / len(answerable), 2),
              "hit_rate_tune": round(sum(r["path"] == "prepared" for r in tune if r["truth"] != DECLINE)
                                     / sum(r["truth"] != DECLINE for r in tune), 2),
              "hit_rate_held_back_by_group": hits,
              "wrong": [r for r in rows if r["verdict"] == "wrong"],
              "declined": [r for r in rows if r["verdict"] == "decline"], "rows": rows}
    report.keep(args, "ask" if set(paths) == set(PATHS) else "ask-" + "-".join(paths), result)
    if args.json:
        print(json.dumps(result, default=str))
        return
    report.print_table(*table(result))
    print(f"prepared-answer hit rate: held-back phrasings {result['hit_rate_held_back']:.0%}, "
          f"tune phrasings {result['hit_rate_tune']:.0%} ({len(qs)} questions); held back by group: "
          + ", ".join(f"{g} {h:.0%}" for g, h in hits.items()))
    for phrasing, counts in verdicts.items():
        print(f"{phrasing} (default path): " + ", ".join(f"{v} {n}" for v, n in counts.items()))
    for verdict in ("wrong", "declined"):
        for r in result[verdict]:
            print(f"  {verdict} ({r['asked']} -> {r['path']}, {r['kind']}): {r['question']!r} -> {r['answer'][:110]!r} "
                  f"(truth {r['truth']!r})")


if __name__ == "__main__":
    main()
