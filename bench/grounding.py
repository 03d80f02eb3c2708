"""Grounding benchmark: how many made-up numbers the verifier catches, and how many true ones it refuses.

    uv run python bench/grounding.py                  # 400 insights
    uv run python bench/grounding.py --insights 2000 --json

A real warehouse (60 days of demo data, ingested and refreshed) and a scripted liar: each insight
quotes two to four numbers that an evidence query returns — written the ways people write them
(1,234.56, 1.2k, 3.4M, 12.5% for a ratio of 0.125, rounded, dates) — and half of the insights also
quote one number that is not there (the true value moved by 2% to 60%, up or down, or a number from
nowhere). Every insight goes through the analyst's own check (evidence queries re-run in the
sandbox, then every number matched). Reported: the share of made-up numbers caught (insights
rejected for them) and the share of honest insights wrongly rejected.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import report  # noqa: E402

from reverie.config import load_settings  # noqa: E402
from reverie.generator import generate  # noqa: E402
from reverie.project import scaffold  # noqa: E402
from tasks.agent import Investigation, _check  # noqa: E402
from tasks.ingest import ingest_source  # noqa: E402
from tasks.metrics import refresh_metrics  # noqa: E402

QUERY = ("select period_start::date as day, value from metric_values where metric = '{metric}' and grain = 'day' "
         "and dimension = 'overall' order by period_start desc limit 5")


def written(value: float, rng: random.Random) -> str:
    """A true value as a person would write it."""
    if abs(value) < 1:
        return rng.choice([f"{100 * value:.1f}%", f"{100 * value:.2f}%", f"{value:.3f}"])
    return rng.choice([f"{value:,.2f}", f"{value:,.0f}", f"{value / 1e3:.1f}k" if value >= 1e3 else f"{value:.1f}",
                       f"{value / 1e6:.2f}M" if value >= 1e6 else f"{value:,.1f}"])


def made_up(value: float, rng: random.Random) -> str:
    """A number the evidence does not hold."""
    if rng.random() < 0.2:
        return f"{rng.uniform(10, 99):.1f}"
    moved = value * (1 + rng.choice([-1, 1]) * rng.uniform(0.02, 0.6))
    return written(moved, rng)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--insights", type=int, default=400)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    project = Path(tempfile.mkdtemp(prefix="reverie-bench-grounding-")) / "shop"
    scaffold(project)
    settings = load_settings(project)
    generate(settings.landing_dir, 60, start=date(2026, 1, 5), seed=3, scale=0.3)
    for source in settings.sources.values():
        ingest_source.fn(str(settings.warehouse), str(project), source, "bench")
    refresh_metrics.fn(str(settings.warehouse), "bench", settings.sources, str(settings.models_dir),
                       str(settings.metrics_dir))
    run = Investigation(warehouse=str(settings.warehouse))
    rng = random.Random(7)
    metrics = ["sessions", "orders", "revenue", "conversion_rate", "refund_rate", "signups", "average_order_value"]
    from tasks.sandbox import run_query

    results = {metric: run_query(settings.warehouse, QUERY.format(metric=metric)) for metric in metrics}
    lies = caught = honest = refused = 0
    started = time.perf_counter()
    for i in range(args.insights):
        metric = rng.choice(metrics)
        rows = results[metric].rows
        quoted = [written(v, rng) for _, v in rng.sample(rows, rng.randint(2, 4))]
        day = rng.choice(rows)[0]
        lying = i % 2 == 1
        if lying:
            quoted.insert(rng.randrange(len(quoted) + 1), made_up(rng.choice(rows)[1], rng))
        title = f"{metric} on {day}: " + ", then ".join(quoted)
        reason, _ = _check({"title": title, "body": "", "evidence_queries": [QUERY.format(metric=metric)]}, run, [])
        if lying:
            lies += 1
            caught += reason is not None
        else:
            honest += 1
            refused += reason is not None
    seconds = time.perf_counter() - started
    result = {"insights": args.insights, "made_up_numbers": lies, "caught": caught,
              "caught_share": round(caught / lies, 3), "honest_insights": honest, "wrongly_refused": refused,
              "wrongly_refused_share": round(refused / honest, 3), "ms_per_check": round(1000 * seconds / args.insights, 1)}
    machine = report.machine()
    if args.json:
        print(json.dumps({"benchmark": "grounding", "machine": machine, "result": result}))
        return
    print(f"grounding · {machine['cpus']} cores")
    for key, value in result.items():
        print(f"{key:>22}: {value}")


if __name__ == "__main__":
    main()
