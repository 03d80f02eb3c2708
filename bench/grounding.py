"""Grounding benchmark: how many made-up numbers the verifier catches, and how many true ones it refuses.

    uv run python -m bench.grounding                  # 400 insights of each kind
    uv run python -m bench.grounding --insights 1000 --json

A real warehouse (60 days of demo data, ingested and refreshed) and a scripted liar. Honest insights
quote two to four values an evidence query returns, each with its day, written the ways people write
them (1,234.56, 1.2k, 3.4M, 12.5% for a ratio of 0.125), or by reference ({q1[2].value}). Lies, one
kind per insight, each otherwise honest:
  made_up     one number that is not there (a true value moved by 2% to 60%, or a number from nowhere);
  constant    a made-up number, with an evidence query that returns it as a constant in one of six
              shapes (a literal, VALUES, range(), a CTE, a constant column over a real table, data x 0 + n);
  mislabelled a true value of another metric, and that metric's query as evidence too;
  wrong_day   a true value of this metric, said to be another day's;
  no_subject  true values of this metric with their days, in words that name no metric ("sales" stands for
              whatever it is: a number about nothing named can pass for anything);
  literal_label a true value put in the wrong place by a literal column: another metric's value with
              'this metric' as metric, a slice's value with 'overall' as dimension, or a day's value with
              another day as a literal date;
  constant_arithmetic a made-up number from arithmetic the data does not move (value - value + n,
              abs(n) + value - value, value / value * n, sum(value) - sum(value) + n);
  aggregate   a total or a count of this metric's stored values (over 20 days), said to be one day's value;
  swapped     two true values of two metrics on one day, each said to be the other metric's;
  yesterday   a true value of this metric of an earlier day, said to be yesterday's (the newest complete day);
  wrong_change a percentage next to two true values ("moved 31.2% from A to B") that is not their change;
  honest_change the same with the right change, which is computed from the two values, not found (a lie
              of no kind: it should pass);
  numeric_form a true value written so that it changes or cannot be read: a scale or digits written onto
              a reference ({q1.value}k, {q1.value}000), a minus sign it does not have, a decimal comma,
              5.1e+04, 51_234, EUR51234.
Every insight goes through the analyst's own tool (evidence re-run in the sandbox, every number traced
and matched). Reported per kind: the share caught; for honest insights, the share wrongly refused.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from datetime import date
from pathlib import Path

from bench import report
from reverie.analyst.evidence import load_catalog
from reverie.analyst.run import AnalystRun
from reverie.analyst.sandbox import run_query
from reverie.analyst.tool_calls import check_insight
from reverie.config import load_settings
from reverie.generator import generate
from reverie.project import scaffold
from reverie.tasks.ingest import ingest_source
from reverie.tasks.metrics import refresh_metrics

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


CONSTANTS = [  # evidence that returns a number of its own: {n} is the made-up value
    "select {n} as value",
    "select * from (values ({n})) t(value)",
    "select range * 0 + {n} as value from range(1)",
    "with t as (select {n} as value) select value from t",
    "select {n} as value from metric_values where metric = '{metric}' limit 1",
    "select value * 0 + {n} as value from metric_values where metric = '{metric}' limit 1",
]


ONE_SERIES = "from metric_values where metric = '{metric}' and grain = 'day' and dimension = 'overall'"
CONSTANT_ARITHMETIC = [  # evidence that reads the data and brings a number of its own back: {n}
    f"select value - value + {{n}} as value {ONE_SERIES} limit 1",
    f"select abs({{n}}) + value - value as value {ONE_SERIES} limit 1",
    f"select value / value * {{n}} as value {ONE_SERIES} and value <> 0 limit 1",
    f"select sum(value) - sum(value) + {{n}} as value {ONE_SERIES}",
]
LABELLED = {  # evidence whose literal column says the value is about something it is not
    "metric": ("select period_start::date as day, value, '{metric}' as metric from metric_values where metric = "
               "'{other}' and grain = 'day' and dimension = 'overall' order by period_start desc limit 5"),
    "dimension": ("select period_start::date as day, value, 'overall' as dimension from metric_values where metric = "
                  "'{metric}' and grain = 'day' and dimension <> 'overall' order by period_start desc, value desc "
                  "limit 5"),
    "day": ("select date '{said}' as day, value from metric_values where metric = '{metric}' and grain = 'day' "
            "and dimension = 'overall' and period_start = date '{day}'"),
}


AGGREGATED = ("select {agg} as value from metric_values where metric = '{metric}' and grain = 'day' and dimension = "
              "'overall' and period_start > (select max(period_start) from metric_values) - interval 20 day")


def misread(value: float, reference: str, rng: random.Random) -> str:
    """A true value written so that its number changes, or cannot be read."""
    forms = [f"{reference}k", f"{reference}000", f"-{written(abs(value), rng)}", f"{abs(value):.2e}",
             f"EUR{abs(value):.0f}"]
    if abs(value) >= 1000:
        forms.append(f"{abs(value):_.0f}")
    if abs(value) >= 10:
        forms.append(f"{int(abs(value))},{int(abs(value) * 10) % 10}")  # a decimal comma: 217,7
    return rng.choice(forms)


def mislabelled_by_literal(metric: str, rows: list, other: tuple, warehouse, rng: random.Random) -> tuple[str, str]:
    """(a true number with a day, written as this metric's, and the labelling query that returns it)."""
    label = rng.choice(sorted(LABELLED))
    if label == "day":
        (day, value), (said, _) = rng.sample(rows, 2)
        return f"{written(value, rng)} on {said}", LABELLED[label].format(metric=metric, said=said, day=day)
    query = LABELLED[label].format(metric=metric, other=other[0])
    found = run_query(warehouse, query).rows
    day, value = rng.choice(found)[:2]
    return f"{written(value, rng)} on {day}", query


def insight(kind: str, metric: str, rows: list, other: tuple, rng: random.Random,
            warehouse=None) -> tuple[str, list[str], bool]:
    """(title, evidence queries, lying) for one insight of a kind."""
    query = QUERY.format(metric=metric)
    picked = rng.sample(range(len(rows)), rng.randint(2, 4))
    if kind == "reference":
        return (f"{metric}: " + ", then ".join(f"{{q1[{i + 1}].value}} on {{q1[{i + 1}].day}}" for i in picked),
                [query], False)
    parts = [f"{written(rows[i][1], rng)} on {rows[i][0]}" for i in picked]
    queries = [query]
    if kind == "made_up":
        parts.insert(rng.randrange(len(parts) + 1), f"{made_up(rng.choice(rows)[1], rng)} on {rng.choice(rows)[0]}")
    elif kind == "constant":
        lie = round(rng.choice(rows)[1] * rng.uniform(1.1, 1.6), 2)
        parts.append(f"{written(lie, rng)} on {rng.choice(rows)[0]}")
        queries.append(rng.choice(CONSTANTS).format(n=lie, metric=metric))
    elif kind == "mislabelled":
        other_metric, other_rows = other
        day, value = rng.choice(other_rows)
        parts.append(f"{written(value, rng)} on {day}")
        queries.append(QUERY.format(metric=other_metric))
    elif kind == "wrong_day":
        i = rng.randrange(len(rows))
        j = (i + rng.randint(1, len(rows) - 1)) % len(rows)
        if rows[i][1] == rows[j][1]:
            return insight(kind, metric, rows, other, rng, warehouse)
        parts.append(f"{written(rows[i][1], rng)} on {rows[j][0]}")
    elif kind == "constant_arithmetic":
        lie = round(rng.choice(rows)[1] * rng.uniform(1.1, 1.6), 2)
        parts.append(f"{written(lie, rng)} on {rng.choice(rows)[0]}")
        queries.append(rng.choice(CONSTANT_ARITHMETIC).format(n=lie, metric=metric))
    elif kind == "literal_label":
        part, labelling = mislabelled_by_literal(metric, rows, other, warehouse, rng)
        parts.append(part)
        queries.append(labelling)
    elif kind == "aggregate":
        query = AGGREGATED.format(agg=rng.choice(["sum(value)", "count(*)"]), metric=metric)
        total = run_query(warehouse, query).rows[0][0]
        parts.append(f"{written(total, rng)} on {rows[0][0]}")
        queries.append(query)
    elif kind == "numeric_form":
        i = rng.randrange(len(rows))
        parts.append(f"{misread(rows[i][1], f'{{q1[{i + 1}].value}}', rng)} on {{q1[{i + 1}].day}}")
    elif kind == "swapped":
        other_metric, other_rows = other
        (day, value), (_, other_value) = rows[0], other_rows[0]
        if abs(value - other_value) <= 0.01 * max(abs(value), abs(other_value)):
            return insight(kind, metric, rows, other, rng, warehouse)
        return (f"On {day}, {metric} was {written(other_value, rng)} and {other_metric} was {written(value, rng)}",
                [query, QUERY.format(metric=other_metric)], True)
    elif kind == "yesterday":
        j = rng.randrange(1, len(rows))
        if abs(rows[j][1] - rows[0][1]) <= 0.01 * abs(rows[0][1]):
            return insight(kind, metric, rows, other, rng, warehouse)
        return f"{metric} yesterday was {written(rows[j][1], rng)}", [query], True
    elif kind in ("wrong_change", "honest_change"):
        (last_day, last), (first_day, first) = rows[0], rows[rng.randrange(1, len(rows))]
        change = 100 * abs(last - first) / abs(first) if first else 0.0
        said = change if kind == "honest_change" else change + rng.choice([-1, 1]) * rng.uniform(3, 20)
        if not first or said <= 0 or (kind == "wrong_change" and abs(said - change) < 1):
            return insight(kind, metric, rows, other, rng, warehouse)
        return (f"{metric} moved {said:.1f}% from {written(first, rng)} on {first_day} to {written(last, rng)} on "
                f"{last_day}", [query], kind == "wrong_change")
    elif kind == "no_subject":
        return "Sales: " + ", then ".join(parts), queries, True
    return f"{metric}: " + ", then ".join(parts), queries, kind not in ("honest", "honest_change")


KINDS = ("honest", "reference", "honest_change", "made_up", "constant", "mislabelled", "wrong_day", "no_subject",
         "literal_label", "constant_arithmetic", "aggregate", "numeric_form", "swapped", "yesterday", "wrong_change")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--insights", type=int, default=400, help="insights of each kind")
    report.output_options(parser)
    args = parser.parse_args()
    project = Path(tempfile.mkdtemp(prefix="reverie-bench-grounding-")) / "shop"
    scaffold(project)
    settings = load_settings(project)
    generate(settings.landing_dir, 60, start=date(2026, 1, 5), seed=3, scale=0.3)
    for source in settings.sources.values():
        ingest_source.fn(settings.warehouse, str(project), source, "bench")
    refresh_metrics(settings.warehouse, "bench", settings.sources, str(settings.models_dir),
                       str(settings.metrics_dir))
    run = AnalystRun(warehouse=settings.warehouse)
    run.catalog = load_catalog(settings.warehouse)
    rng = random.Random(7)
    metrics = ["sessions", "orders", "revenue", "conversion_rate", "refund_rate", "signups", "average_order_value"]
    results = {metric: run_query(settings.warehouse, QUERY.format(metric=metric)).rows for metric in metrics}
    outcomes = {kind: {"insights": 0, "refused": 0} for kind in KINDS}
    started = time.perf_counter()
    for i in range(args.insights * len(KINDS)):
        kind, metric = KINDS[i % len(KINDS)], rng.choice(metrics)
        other = rng.choice([m for m in metrics if m != metric])
        title, queries, _ = insight(kind, metric, results[metric], (other, results[other]), rng, settings.warehouse)
        reason, _ = check_insight({"title": title, "body": "", "evidence_queries": queries}, run, {})
        outcomes[kind]["insights"] += 1
        outcomes[kind]["refused"] += reason is not None
    seconds = time.perf_counter() - started
    result = {kind: {**o, "share": round(o["refused"] / o["insights"], 3)} for kind, o in outcomes.items()}
    result["ms_per_check"] = round(1000 * seconds / (args.insights * len(KINDS)), 1)
    machine = report.machine()
    report.keep(args, "grounding", {"benchmark": "grounding", "machine": machine, "result": result})
    if args.json:
        print(json.dumps({"benchmark": "grounding", "machine": machine, "result": result}))
        return
    print(f"grounding · {machine['cpus']} cores · {result['ms_per_check']} ms a check")
    report.print_table(*table({"result": result}), width=12)


def table(result: dict) -> tuple[tuple, list[tuple]]:
    return (("insights", "kind", "refused", "share"),
            [(o["insights"], kind, o["refused"], o["share"]) for kind, o in result["result"].items() if kind in KINDS])


if __name__ == "__main__":
    main()
