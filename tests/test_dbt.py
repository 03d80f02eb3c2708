"""A dbt project's semantic layer as reverie's metrics: a small dbt-duckdb project (tests/dbt_shop) built with
`dbt build` here, offline; reverie computes its metrics from the relations dbt built, and each value equals what
MetricFlow itself (`mf query`) returns for the same metric, grain and dimension. What reverie cannot compute is named
once each; a model dbt failed to build is never read."""

from __future__ import annotations

import csv
import json
import math
import random
import shutil
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from reverie.config import ConfigError, load_settings
from reverie.flows.local_run import run_cycle
from reverie.tasks.metrics import plan_metrics
from tests.helpers.landing import write
from tests.helpers.processes import reverie
from tests.helpers.warehouse import query

DBT_SHOP = Path(__file__).parent / "dbt_shop"
BIN = Path(sys.executable).parent
COMPUTED = ["revenue", "orders", "buyers", "average_amount", "large_orders", "paid_revenue", "refund_rate",
            "average_order_value"]
NOT_COMPUTED = {"revenue_growth": "offset", "cumulative_revenue": "cumulative", "median_order": "median"}
FIRST_DAY = datetime(2026, 1, 1)


def seed(dbt_dir: Path, days: int, start: datetime = FIRST_DAY, seed_value: int = 1) -> None:
    """Orders over `days` days from `start` as the dbt project's seed, appended to what is there; a region is now
    and then missing."""
    path = dbt_dir / "seeds" / "raw_orders.csv"
    rows = list(csv.reader(path.open())) if path.exists() else [
        ["order_id", "customer_id", "ordered_at", "status", "region", "amount"]]
    rng = random.Random(seed_value)
    for day in range(days):
        for _ in range(rng.randint(5, 30)):
            moment = start + timedelta(days=day, seconds=rng.randint(0, 86_399))
            rows.append([str(len(rows)), str(rng.randint(1, 80)), f"{moment:%Y-%m-%d %H:%M:%S}",
                         rng.choice(["paid", "paid", "paid", "refunded"]), rng.choice(["north", "south", "east"] * 10 + [""]),
                         f"{rng.randint(500, 25_000) / 100:.2f}"])
    path.parent.mkdir(exist_ok=True)
    with path.open("w", newline="") as out:
        csv.writer(out).writerows(rows)


def dbt(dbt_dir: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "dbt"), *args, "--profiles-dir", str(dbt_dir)], cwd=dbt_dir, capture_output=True,
                          text=True, timeout=300, env={"DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "PATH": str(BIN)})


def metricflow(dbt_dir: Path, metrics: list[str], group_by: list[str]) -> list[dict]:
    """What MetricFlow returns for these metrics and group-bys, each row as a dict of CSV fields."""
    out = dbt_dir / f"mf-{'-'.join(group_by)}.csv"
    done = subprocess.run([str(BIN / "mf"), "query", "--metrics", ",".join(metrics), "--group-by", ",".join(group_by),
                           "--csv", str(out)], cwd=dbt_dir, capture_output=True, text=True, timeout=300,
                          env={"DBT_PROFILES_DIR": str(dbt_dir), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
                               "PATH": str(BIN), "HOME": str(dbt_dir)})
    assert done.returncode == 0, done.stdout + done.stderr
    return list(csv.DictReader(out.open()))


def differences(settings, dbt_dir: Path, metrics: list[str], grain: str, dimension: str | None) -> list[str]:
    """Every value of reverie's that differs from MetricFlow's for one grain and dimension (or overall). Where
    MetricFlow has no value (no rows in the period or slice), reverie's is 0 or none (a sum over no rows)."""
    group_by = [f"metric_time__{grain}"] + ([f"order__{dimension}"] if dimension else [])
    theirs = {}
    for row in metricflow(dbt_dir, metrics, group_by):
        when = datetime.fromisoformat(row[group_by[0]]).date()
        member = (row[group_by[1]] or "(missing)").lower() if dimension else "all"  # reverie's name of a null
        for metric in metrics:
            theirs[(metric, when, member)] = float(row[metric]) if row[metric] != "" else None
    ours = {(metric, start.date(), member.lower()): value for metric, start, member, value in query(
        settings, "select metric, period_start, member, value from metric_values where grain = ? and dimension = ? "
                  "and metric in (select unnest(?::varchar[]))", [grain, dimension or "overall", metrics])}
    problems = [f"{key}: MetricFlow {value}, reverie {ours.get(key, 'nothing')}" for key, value in theirs.items()
                if not (value is None and ours.get(key) in (None, 0.0))
                and not (value is not None and ours.get(key) is not None
                         and math.isclose(ours[key], value, rel_tol=1e-9, abs_tol=1e-9))]
    problems += [f"{key}: reverie {value}, MetricFlow nothing" for key, value in ours.items()
                 if key not in theirs and value not in (None, 0.0)]
    assert theirs, f"MetricFlow returned nothing for {group_by}"
    return problems


def compared(settings, dbt_dir: Path, cases: list[tuple[str, str | None]]) -> list[str]:
    """The differences of every (grain, dimension) case (one `mf query` at a time: each opens the file to write)."""
    return [problem for case in cases for problem in differences(settings, dbt_dir, COMPUTED, *case)]


def reverie_project(folder: Path, base_url: str, extra: str = "") -> Path:
    write(folder / "reverie.toml", f'[dbt]\nproject_dir = "../dbt"\n{extra}\n[llm]\nbase_url = "{base_url}"\n'
                                   'model = "scripted-analyst"\nanalysts = 0\n')
    return folder


@pytest.fixture(scope="module")
def shop(tmp_path_factory, session_llm):
    """A dbt project with 120 days of orders, built; a reverie project reading it, after one cycle; its summary."""
    root = tmp_path_factory.mktemp("dbt")
    dbt_dir = root / "dbt"
    shutil.copytree(DBT_SHOP, dbt_dir)
    seed(dbt_dir, 120)
    built = dbt(dbt_dir, "build")
    assert built.returncode == 0, built.stdout
    folder = reverie_project(root / "reverie", session_llm.base_url)
    session_llm.script()
    summary = run_cycle(folder)
    return load_settings(folder), dbt_dir, summary


def test_reverie_computes_the_dbt_metrics_as_metricflow_does_value_for_value(shop):
    settings, dbt_dir, summary = shop
    assert summary["status"] == "completed", summary
    assert set(settings.sources) == {"orders"} and settings.sources["orders"].format == "dbt"
    catalogue = dict(query(settings, "select name, [measure, model, array_to_string(grains, ','), "
                                     "array_to_string(dimensions, ','), favourability] from metrics"))
    assert catalogue == {name: [kind, "orders", "day,week,month", "status,order_region,is_large", favourability]
                         for name, kind, favourability in [
                             ("revenue", "sum", "up"), ("orders", "sum", "neutral"),
                             ("buyers", "count_distinct", "neutral"), ("average_amount", "avg", "neutral"),
                             ("large_orders", "sum", "neutral"), ("paid_revenue", "sum", "neutral"),
                             ("refund_rate", "ratio", "down"), ("average_order_value", "ratio", "neutral")]}
    assert compared(settings, dbt_dir, [("day", None), ("day", "status"), ("day", "order_region"),
                                        ("day", "is_large"), ("week", None), ("week", "status"), ("month", None),
                                        ("month", "order_region")]) == []
    # the comparison is not empty, and rows without a region are compared as reverie names them
    assert query(settings, "select count(*) from metric_values where dimension = 'order_region' "
                           "and member = '(missing)'")[0][0] > 10
    assert query(settings, "select count(*) from metric_values where metric = 'refund_rate' and grain = 'week' "
                           "and dimension = 'status' and value > 0")[0][0] >= 17


def test_what_reverie_cannot_compute_is_named_once_each_with_the_reason(shop):
    settings, _, summary = shop
    unsupported = summary["stages"]["metrics"]["unsupported"]
    assert len(unsupported) == 3
    for metric, reason in NOT_COMPUTED.items():
        assert [line for line in unsupported if f"dbt metric '{metric}'" in line and reason in line
                and line.startswith("semantic.yml: ")], unsupported
    assert not summary["stages"]["metrics"]["errors"]
    assert not {name for name, in query(settings, "select name from metrics")} & set(NOT_COMPUTED)


def test_ask_answers_a_dbt_metric_and_declines_one_reverie_does_not_compute_saying_why(shop):
    settings, _, _ = shop
    answered = json.loads(reverie("ask", "--json", "what", "was", "paid", "revenue", "last", "week?",
                                  cwd=settings.project_dir).stdout)
    assert answered["path"] in ("prepared", "computed") and answered["numbers"][0]["metric"] == "paid_revenue"
    declined = json.loads(reverie("ask", "--json", "what", "was", "cumulative_revenue", "last", "month?",
                                  cwd=settings.project_dir).stdout)
    assert declined["path"] == "declined" and declined["answer"].startswith(
        "reverie does not compute cumulative_revenue (a cumulative metric of the dbt project: a cumulative metric adds "
        "periods up over a window; reverie computes each period on its own). Its metrics are ")


def test_a_metric_declared_in_both_places_is_an_error_and_neither_is_computed(shop, tmp_path):
    settings, _, _ = shop
    shutil.copytree(settings.project_dir.parent / "dbt", tmp_path / "dbt")
    folder = shutil.copytree(settings.project_dir, tmp_path / "reverie")
    write(folder / "metrics" / "mine.yml", "metrics:\n  - name: revenue\n    model: orders\n"
                                           "    time_column: ordered_at\n    measure: {agg: count}\n")
    copied = load_settings(folder)
    plan = plan_metrics(copied.warehouse, "c-test", copied.sources, str(copied.models_dir), str(copied.metrics_dir),
                        dbt=copied.dbt)
    assert plan.errors == [f"{folder / 'metrics' / 'mine.yml'}: metric 'revenue' is also a metric of the dbt project "
                           f"({tmp_path / 'dbt' / 'models' / 'semantic.yml'}); rename one (neither is computed)"]
    planned = {m.spec.name for group in plan.groups for m in group.metrics}
    assert planned == set(COMPUTED) - {"revenue"}


def test_init_from_dbt_writes_a_project_that_reads_it_and_lists_its_metrics(shop, tmp_path):
    _, dbt_dir, _ = shop
    done = reverie("init", str(tmp_path / "new"), "--from-dbt", str(dbt_dir), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "  revenue: sum of orders, day/week/month, by status, order_region, is_large" in lines
    assert "  refund_rate: ratio of orders, day/week/month, by status, order_region, is_large" in lines
    assert sum("not computed" in line for line in lines) == 3
    assert lines[-1].startswith(f"8 metric(s) from {dbt_dir / 'shop.duckdb'}")
    settings = load_settings(tmp_path / "new")
    assert settings.dbt.project_dir == dbt_dir and set(settings.sources) == {"orders"}
    assert not (tmp_path / "new" / "metrics").exists()  # the demo's examples are not a dbt project's
    refused = reverie("init", str(tmp_path / "other"), "--from-dbt", str(tmp_path), cwd=tmp_path)
    assert refused.returncode == 2 and refused.stderr.strip() == (
        f"error: {tmp_path}: no dbt_project.yml there (--from-dbt takes a dbt project's folder)")


def test_a_dbt_project_is_read_as_its_profile_and_the_settings_say_what_is_wrong(shop, tmp_path):
    _, dbt_dir, _ = shop
    project = shutil.copytree(dbt_dir, tmp_path / "dbt")
    folder = reverie_project(tmp_path / "reverie", "http://127.0.0.1:9/v1")
    settings = load_settings(folder)
    assert settings.dbt.problem is None, settings.dbt.problem
    assert settings.sources["orders"].options.database == str(project / "shop.duckdb")
    # the profile's env_var() is rendered as dbt renders it: another file than the one dbt parsed the project for
    with pytest.MonkeyPatch.context() as env:
        env.setenv("SHOP_DUCKDB", "elsewhere.duckdb")
        settings = load_settings(folder)
    assert settings.sources == {} and settings.dbt.skipped == (
        "dbt semantic model 'orders' not read: its relation is in database 'shop', not the target's elsewhere.duckdb",)
    # a semantic model named like a declared source
    write(folder / "reverie.toml", (folder / "reverie.toml").read_text().replace(
        "[llm]", '[sources.orders]\nformat = "csv"\npath = "x/*.csv"\ntime_column = "t"\n[llm]'))
    with pytest.raises(ConfigError, match=r"\[sources.orders\] and the dbt semantic model 'orders' .* same name"):
        load_settings(folder)
    # a suite for a semantic model it has not got
    reverie_project(folder, "http://127.0.0.1:9/v1", 'suites = { order = "orders" }')
    with pytest.raises(ConfigError, match=r"\[dbt\] suites: order is not a semantic model .* \(semantic models: "
                                          r"orders\)"):
        load_settings(folder)
    # a profile that is not dbt-duckdb's: no dbt source, and the problem kept for the cycle to report
    reverie_project(folder, "http://127.0.0.1:9/v1")
    write(project / "profiles.yml", "shop:\n  target: dev\n  outputs:\n    dev:\n      type: postgres\n")
    settings = load_settings(folder)
    assert settings.sources == {} and settings.dbt.problem == (
        f"dbt project {project}: reverie reads dbt-duckdb projects; target type is 'postgres'")


def test_a_changed_semantic_model_is_parsed_again_before_it_is_read(shop, tmp_path):
    _, dbt_dir, _ = shop
    project = shutil.copytree(dbt_dir, tmp_path / "dbt")
    folder = reverie_project(tmp_path / "reverie", "http://127.0.0.1:9/v1")
    semantic = project / "models" / "semantic.yml"
    semantic.write_text(semantic.read_text().replace("      - name: is_large\n        type: categorical\n", ""))
    from reverie.tasks.metrics.dbt import dbt_metric_specs

    # reverie's own fields in a metric's meta: its slices chosen, and a value reverie refuses named
    semantic.write_text(semantic.read_text().replace(
        "      measure: buyers\n", "      measure: buyers\n    config:\n      meta:\n        reverie: {dimensions: [status]}\n"
    ).replace("      measure: large\n", "      measure: large\n    config:\n      meta:\n        reverie: {favourability: sideways}\n"))
    settings = load_settings(folder)  # dbt parse ran: the manifest is newer than the file
    read = dbt_metric_specs(settings.dbt, settings.sources)
    specs, unsupported = read.specs, read.unsupported
    assert {s.name: s.dimensions for s in specs if s.name in ("buyers", "revenue")} == {
        "buyers": ["status"], "revenue": ["status", "order_region"]}
    assert "semantic.yml: dbt metric 'large_orders' (simple) not computed: favourability: Input should be 'up', " \
           "'down' or 'neutral'" in unsupported
    semantic.write_text(semantic.read_text().replace("    dimensions:\n", "    dimensions: [\n"))
    settings = load_settings(folder)
    assert settings.sources == {} and settings.dbt.problem.startswith(f"dbt project {project}: dbt parse failed: ")
    assert "\n" not in settings.dbt.problem


@pytest.mark.heavy("dbt build three times, three sleep cycles through the dbt-nightly deployment's flow, MetricFlow")
def test_the_dbt_nightly_flow_builds_then_cycles_and_never_reads_a_model_dbt_failed_to_build(shop, tmp_path,
                                                                                               session_llm):
    from reverie.flows.dbt_cycle import dbt_build_then_cycle
    from reverie.flows.serve import served_flows

    settings, dbt_dir, _ = shop
    dbt_dir = shutil.copytree(dbt_dir, tmp_path / "dbt")
    folder = shutil.copytree(settings.project_dir, tmp_path / "reverie")
    settings = load_settings(folder)
    # `reverie serve` runs the night that starts with dbt build, on its schedule, instead of the plain one
    served = {options["name"]: options for _, options in served_flows(settings)}
    assert "nightly" not in served and served["dbt-nightly"]["schedules"][0].active
    before = query(settings, "select * from metric_values order by all")

    # a model that fails to build, over a seed with ten more days: the old view would read the new rows
    seed(dbt_dir, 10, start=FIRST_DAY + timedelta(days=120), seed_value=2)
    model = dbt_dir / "models" / "orders.sql"
    good = model.read_text()
    model.write_text(good.replace("amount > 100 as is_large", "amount > 100 as is_large, no_such_column"))
    session_llm.script()
    summary = dbt_build_then_cycle(project_dir=str(folder))
    assert summary["status"] == "degraded"
    [failure] = summary["stages"]["ingest"]["failed"]
    assert failure["error"].startswith("dbt's last build (") and (
        "error on model.shop.orders: " in failure["error"] and "no_such_column" in failure["error"]
        and failure["error"].endswith("not read, what was loaded before is kept")), failure
    assert query(settings, "select * from metric_values order by all") == before

    # built again, with an order of the first day corrected too (dbt rebuilds whole; the look-back is a day): the ten
    # days are read, the first day's values change, and every value is MetricFlow's again
    model.write_text(good)
    raw = dbt_dir / "seeds" / "raw_orders.csv"
    rows = raw.read_text().splitlines()
    rows[1] = ",".join(rows[1].split(",")[:3] + ["refunded", "west", "999.99"])
    raw.write_text("\n".join(rows) + "\n")
    first_day = "select value from metric_values where metric = 'revenue' and grain = 'day' and dimension = 'overall' "\
                "and period_start = '2026-01-01'"
    old_first_day = query(settings, first_day)
    session_llm.script()
    summary = dbt_build_then_cycle(project_dir=str(folder))
    assert summary["status"] == "completed", summary
    assert query(settings, "select max(period_start)::date::varchar from metric_values")[0][0] == "2026-05-10"
    assert query(settings, first_day) != old_first_day
    assert compared(settings, dbt_dir, [("day", None), ("week", "status"), ("month", "order_region")]) == []

    # a test of the model that fails: its rows are not read either (its model built, but dbt says it is wrong)
    seed(dbt_dir, 3, start=FIRST_DAY + timedelta(days=130), seed_value=3)
    raw.write_text(raw.read_text() + raw.read_text().splitlines()[-1] + "\n")  # an order id twice
    session_llm.script()
    summary = dbt_build_then_cycle(project_dir=str(folder))
    assert summary["status"] == "degraded"
    assert "fail on test.shop.unique_orders_order_id" in summary["stages"]["ingest"]["failed"][0]["error"]
    assert query(settings, "select max(period_start)::date::varchar from metric_values")[0][0] == "2026-05-10"

    # the order fixed, and the model changing a column's type: read whole into a table made anew, not refused
    raw.write_text("\n".join(raw.read_text().splitlines()[:-1]) + "\n")
    model.write_text(good.replace("amount, amount > 100", "amount::decimal(12, 2) as amount, amount > 100"))
    session_llm.script()
    summary = dbt_build_then_cycle(project_dir=str(folder))
    assert summary["status"] == "completed", summary
    assert query(settings, "select data_type from information_schema.columns where table_name = 'raw_orders' "
                           "and column_name = 'amount'") == [("DECIMAL(12,2)",)]
    assert compared(settings, dbt_dir, [("day", None)]) == []
