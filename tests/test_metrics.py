"""The metrics layer: declarations, incremental refresh equal to a full rebuild, your own sources, bad input."""

from __future__ import annotations

import textwrap
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from reverie.flows.local_run import run_cycle
from reverie.generator import generate
from reverie.tasks.metrics.declarations import MetricError, check_columns, load_metric_specs

VALUES = "select * exclude (cycle_id) from metric_values order by metric, grain, period_start, dimension, member"


def query(settings, sql: str, params=None):
    with duckdb.connect(str(settings.warehouse), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


METRIC = """\
    metrics:
      - name: revenue
        model: orders
        time_column: created_at
        measure: {agg: sum, expr: amount}
        dimensions: [country]
"""


@pytest.mark.parametrize("text, message", [
    (METRIC.replace("agg: sum", "agg: total"), r"metrics\[0\] \(revenue\): measure.agg: Input should be 'sum'"),
    (METRIC.replace("        time_column: created_at\n", ""), r"metrics\[0\] \(revenue\): time_column: Field required"),
    (METRIC.replace("measure: {agg: sum, expr: amount}", "measure: {agg: sum}"), r"sum needs expr"),
    (METRIC + "        ratio: {numerator: {agg: count}, denominator: {agg: count}}\n", r"exactly one of measure or ratio"),
    (METRIC.replace("dimensions", "dimension"), r"dimension: Extra inputs are not permitted"),
    (METRIC + "        grains: [fortnight]\n", r"grains.0: Input should be 'hour', 'day', 'week' or 'month'"),
    ("metrics: [\n", r"not valid YAML"),
    ("revenue: {}\n", r"expected a top-level 'metrics:' list"),
])
@pytest.mark.reliability("bad_input")
def test_bad_declarations_name_the_file_metric_and_field(tmp_path, text, message):
    path = write(tmp_path / "metrics" / "shop.yml", text)
    with pytest.raises(MetricError, match=message) as info:
        load_metric_specs(tmp_path / "metrics")
    assert str(path) in str(info.value)


@pytest.mark.reliability("bad_input")
def test_duplicate_names_across_files_name_both(tmp_path):
    write(tmp_path / "metrics" / "a.yml", METRIC)
    write(tmp_path / "metrics" / "b.yml", METRIC)
    with pytest.raises(MetricError, match=r"b.yml: metrics\[0\] \(revenue\): duplicate name 'revenue', already declared in .*a.yml"):
        load_metric_specs(tmp_path / "metrics")


@pytest.mark.parametrize("change, message", [
    (("time_column: created_at", "time_column: created"), r"time_column: 'created' is not a column of orders"),
    (("dimensions: [country]", "dimensions: [region]"), r"dimensions: 'region' is not a column of orders"),
    (("expr: amount", "expr: amont * 2"), r"measure.expr 'amont \* 2': .*amont"),
])
@pytest.mark.reliability("bad_input")
def test_unknown_columns_are_caught_before_anything_is_computed(tmp_path, change, message):
    write(tmp_path / "metrics" / "shop.yml", METRIC.replace(*change))
    (spec,) = load_metric_specs(tmp_path / "metrics")
    con = duckdb.connect()
    con.execute("create table orders (created_at timestamp, amount double, country varchar)")
    with pytest.raises(MetricError, match=message):
        check_columns(con, spec)


@pytest.mark.parametrize("change, message", [
    (("expr: amount", "expr: note"), r"measure.expr: note is VARCHAR, but sum needs a number \(cast it"),
    (("agg: sum, expr: amount", "agg: avg, expr: paid"), r"measure.expr: paid is BOOLEAN, but avg needs a number"),
    (("agg: sum, expr: amount", "agg: sum, expr: created_at"), r"measure.expr: created_at is TIMESTAMP, but sum needs a number"),
    (("agg: sum, expr: amount", "agg: max, expr: note"), r"measure.expr: note is VARCHAR, but max needs a number"),
    (("agg: sum, expr: amount", "agg: min, expr: created_at::date"), r"measure.expr: created_at::date is DATE, but min needs"),
    (("measure: {agg: sum, expr: amount}", "ratio: {numerator: {agg: sum, expr: upper(country)}, denominator: {agg: count}}"),
     r"ratio.numerator.expr: upper\(country\) is VARCHAR, but sum needs a number"),
])
@pytest.mark.reliability("bad_input")
def test_a_measure_over_text_or_time_is_caught_by_type_before_anything_is_computed(tmp_path, change, message):
    write(tmp_path / "metrics" / "shop.yml", METRIC.replace(*change))
    (spec,) = load_metric_specs(tmp_path / "metrics")
    con = duckdb.connect()  # note holds 'NA' where a number is missing, so it was read as text
    con.execute("create table orders as select '2026-03-01'::timestamp as created_at, 12.5 as amount, 'NA' as note, "
                "true as paid, 'DE' as country")
    with pytest.raises(MetricError, match=message) as error:
        check_columns(con, spec)
    assert str(error.value).startswith(f"{spec.path}: metric 'revenue': ")


@pytest.mark.parametrize("measure", ["{agg: sum, expr: amount}", "{agg: avg, expr: amount * 2}", "{agg: max, expr: paid}",
                                     "{agg: sum, expr: paid::int}", "{agg: count_distinct, expr: note}",
                                     "{agg: sum, expr: try_cast(note as double)}"])
def test_measures_over_numbers_pass_the_type_check(tmp_path, measure):
    write(tmp_path / "metrics" / "shop.yml", METRIC.replace("{agg: sum, expr: amount}", measure))
    (spec,) = load_metric_specs(tmp_path / "metrics")
    con = duckdb.connect()
    con.execute("create table orders as select '2026-03-01'::timestamp as created_at, 12.5 as amount, 'NA' as note, "
                "true as paid, 'DE' as country")
    check_columns(con, spec)


def test_incremental_refresh_with_late_rows_equals_a_full_rebuild(make_project, scripted_llm):
    settings = make_project(days=30, scale=0.1, base_url=scripted_llm.base_url)
    # late rows are welcome here: without the demo suite's freshness and volume checks, which would hold back
    # a small file for a day three weeks behind the data
    suite = settings.quality_dir / "demo.yml"
    suite.write_text("\n".join(line for line in suite.read_text().splitlines()
                               if "check: freshness" not in line and "check: volume" not in line))
    # a filter whose `or` must not reach rows before the periods being recomputed
    with (settings.metrics_dir / "shop.yml").open("a") as metrics:
        metrics.write("  - {name: visits, model: stg_events, time_column: event_time, measure: {agg: count},\n"
                      "     filter: event_type = 'session' or event_type = 'signup'}\n")
    run_cycle(settings.project_dir)
    generate(settings.landing_dir, 4)
    run_cycle(settings.project_dir)
    # late rows: a second file for a day ingested three cycles ago
    day = settings.landing_dir / "events" / "date=2026-01-20"
    duckdb.sql(f"""copy (select * replace (event_id || '-late' as event_id, event_time + interval 1 minute as event_time)
                         from read_parquet('{day}/part-0.parquet', hive_partitioning = false) using sample 40 percent (bernoulli, 7))
                   to '{day}/part-late.parquet' (format parquet)""")
    generate(settings.landing_dir, 1)
    late = run_cycle(settings.project_dir)
    assert late["stages"]["ingest"]["files"] == 2 and late["stages"]["metrics"]["since"] == "2026-01-19"
    incremental = query(settings, VALUES)

    duplicates = """select count(*) from (select metric, grain, period_start, dimension, member from metric_values
                                         group by all having count(*) > 1)"""
    assert query(settings, duplicates) == [(0,)]
    full = run_cycle(settings.project_dir, full_refresh=True)
    assert full["stages"]["metrics"]["since"] == "1900-01-01"
    assert query(settings, VALUES) == incremental

    # and equal to hand-written queries over the landing files, at every grain
    landing = settings.landing_dir / "events"
    for grain in ("day", "week", "month"):
        expected = duckdb.sql(f"""
            select date_trunc('{grain}', event_time)::timestamp, sum(amount)
            from read_parquet('{landing}/*/*.parquet', hive_partitioning = false)
            where event_type = 'order' and status = 'paid' group by 1 order by 1""").fetchall()
        computed = query(settings, f"""select period_start, value from metric_values where metric = 'revenue'
                                       and grain = '{grain}' and dimension = 'overall' order by 1""")
        assert [(p, round(v, 6)) for p, v in computed] == [(p, round(v, 6)) for p, v in expected], grain


def test_a_partial_period_is_flagged_and_never_detected_on(make_project, scripted_llm):
    settings = make_project(days=45, scale=0.1, base_url=scripted_llm.base_url)
    last = settings.landing_dir / "events" / "date=2026-02-18" / "part-0.parquet"
    duckdb.sql(f"""copy (select * from read_parquet('{last}', hive_partitioning = false)
                         where event_time < timestamp '2026-02-18 12:00') to '{last}.tmp' (format parquet)""")
    Path(f"{last}.tmp").replace(last)
    run_cycle(settings.project_dir)
    flags = dict(query(settings, """select grain || ' ' || strftime(period_start, '%Y-%m-%d'), bool_and(complete)
                                    from metric_values where metric = 'sessions' group by all"""))
    assert flags["day 2026-02-18"] is False and flags["day 2026-02-17"] is True
    assert flags["week 2026-02-16"] is False and flags["week 2026-02-09"] is True
    assert flags["month 2026-02-01"] is False and flags["month 2026-01-01"] is True
    assert query(settings, "select count(*) from candidates where period_start = '2026-02-18'") == [(0,)]


def _own_project(tmp_path: Path, base_url: str) -> Path:
    """The README's bring-your-own-data steps: a CSV source, a DuckDB table source, metrics in YAML."""
    write(tmp_path / "reverie.toml", f"""\
        [sources.spend]
        format = "csv"
        path = "exports/spend_*.csv"
        time_column = "day"

        [sources.accounts]
        format = "duckdb"
        database = "crm.duckdb"
        table = "accounts"
        time_column = "updated_at"

        [llm]
        base_url = "{base_url}"
        """)
    write(tmp_path / "metrics" / "marketing.yml", """\
        metrics:
          - name: ad_spend
            model: spend
            time_column: day
            measure: {agg: sum, expr: cost}
            dimensions: [channel]
            favourability: down
          - name: active_accounts
            model: accounts
            time_column: updated_at
            measure: {agg: count_distinct, expr: account_id}
            grains: [day, month]
            dimensions: [plan]
            favourability: up
        """)
    for i in range(3):
        day = datetime(2026, 3, 1) + timedelta(days=i)
        rows = "".join(f"{day:%Y-%m-%d},{channel},{10 * (i + 1) + k}.5\n" for k, channel in enumerate(["search", "social"]))
        write(tmp_path / "exports" / f"spend_{day:%Y%m%d}.csv", "day,channel,cost\n" + rows)
    with duckdb.connect(str(tmp_path / "crm.duckdb")) as crm:
        crm.execute("create table accounts (account_id int, plan varchar, updated_at timestamp)")
        crm.execute("""insert into accounts values (1, 'pro', '2026-03-01 10:00'), (2, 'free', '2026-03-01 11:00'),
                       (1, 'pro', '2026-03-02 09:00'), (3, 'pro', '2026-03-02 12:00')""")
    return tmp_path


def test_your_own_csv_and_duckdb_sources_with_late_rows(tmp_path, scripted_llm):
    project = _own_project(tmp_path, scripted_llm.base_url)
    from reverie.config import load_settings

    settings = load_settings(project)
    first = run_cycle(project)
    assert first["status"] == "completed", first
    assert first["stages"]["metrics"]["metrics"] == 2
    assert query(settings, """select period_start::date::varchar, member, value from metric_values
                              where metric = 'ad_spend' and dimension = 'channel' and period_start = '2026-03-03'
                              order by member""") == [("2026-03-03", "search", 30.5), ("2026-03-03", "social", 31.5)]
    # new and late rows in the CRM table, within the one-day lookback of its watermark
    with duckdb.connect(str(project / "crm.duckdb")) as crm:
        crm.execute("insert into accounts values (4, 'free', '2026-03-02 08:00'), (5, 'pro', '2026-03-03 09:00')")
    second = run_cycle(project)
    assert second["stages"]["ingest"]["sources"]["accounts"]["rows"] == 4  # re-read from 2026-03-01 12:00 on
    counts = query(settings, """select period_start::date::varchar, value from metric_values
                                where metric = 'active_accounts' and grain = 'day' and dimension = 'overall' order by 1""")
    assert counts == [("2026-03-01", 2.0), ("2026-03-02", 3.0), ("2026-03-03", 1.0)]


@pytest.mark.reliability("bad_input")
def test_bad_batches_fail_alone_with_a_clear_error_and_keep_earlier_values(tmp_path, scripted_llm):
    project = _own_project(tmp_path, scripted_llm.base_url)
    from reverie.config import load_settings

    settings = load_settings(project)
    run_cycle(project)
    before = query(settings, VALUES)
    exports = project / "exports"
    write(exports / "spend_20260304.csv", "day,channel,cost\n2026-03-04,search,cheap\n")  # wrong type
    write(exports / "spend_20260305.csv", "day,channel\n2026-03-05,search\n")  # a column went missing
    write(exports / "spend_20260306.csv", "day,channel,cost,currency\n2026-03-06,search,3.5,EUR\n")  # drift
    write(exports / "spend_20260307.csv", "day,channel,cost\n")  # empty
    write(exports / "spend_20260302.csv", "\x00\x01 not a csv \xff")  # a replaced file that is now unreadable
    with duckdb.connect(str(project / "crm.duckdb")) as crm:
        crm.execute("alter table accounts rename column plan to tier")  # the table drifted too

    result = run_cycle(project)
    assert result["status"] == "degraded"
    errors = {Path(f["file"]).name: f["error"] for f in result["stages"]["ingest"]["failed"]}
    # read as the column's type in the warehouse, the value that does not convert is named with its column
    assert 'converting column "cost". Could not convert string "cheap" to \'DOUBLE\'' in errors["spend_20260304.csv"]
    assert "column 'cost' is missing (expected DOUBLE)" in errors["spend_20260305.csv"]
    assert "unexpected column 'currency' (VARCHAR)" in errors["spend_20260306.csv"]
    assert "the file has no rows" in errors["spend_20260307.csv"]
    assert "spend_20260302.csv" in errors["spend_20260302.csv"]
    assert "column 'plan' is missing" in errors["crm.duckdb: table accounts"]
    assert all(str(project) in f["error"] for f in result["stages"]["ingest"]["failed"])  # the whole path, to act on
    assert query(settings, "select source, status from source_state order by 1") == [("accounts", "failed"), ("spend", "failed")]
    assert query(settings, VALUES) == before  # nothing computed before was lost


@pytest.mark.reliability("bad_input")
def test_a_metric_failing_while_computing_fails_alone(tmp_path, scripted_llm):
    project = _own_project(tmp_path, scripted_llm.base_url)
    from reverie.config import load_settings

    settings = load_settings(project)
    run_cycle(project)
    spend = "select period_start, dimension, member, value from metric_values where metric = 'ad_spend' order by all"
    before = query(settings, spend)
    with (project / "metrics" / "marketing.yml").open("a") as f:  # binds fine, fails on the first row it casts
        f.write("  - name: channel_number\n    model: spend\n    time_column: day\n"
                "    measure: {agg: sum, expr: cast(channel as integer)}\n")
    (project / "exports" / "spend_20260304.csv").write_text("day,channel,cost\n2026-03-04,search,40.5\n")
    result = run_cycle(project)
    assert result["status"] == "degraded"
    (error,) = result["stages"]["metrics"]["errors"]
    assert "marketing.yml: metric 'channel_number'" in error and "Conversion Error" in error
    assert result["stages"]["metrics"]["metrics"] == 2
    after = query(settings, spend)
    assert set(before) < set(after)  # the new day landed; nothing before it changed
    assert query(settings, "select count(*) from metric_values where metric = 'channel_number'") == [(0,)]


def test_a_metric_that_fails_to_compute_is_a_data_quality_finding_until_it_computes_again(tmp_path, scripted_llm):
    project = _own_project(tmp_path, scripted_llm.base_url)
    from reverie.config import load_settings

    settings = load_settings(project)
    run_cycle(project)
    declarations = project / "metrics" / "marketing.yml"
    declarations.write_text(declarations.read_text() + "  - name: channel_number\n    model: spend\n    time_column: day\n"
                            "    measure: {agg: sum, expr: cast(channel as integer)}\n")  # an integer: fails on its first row
    failed = run_cycle(project)
    assert failed["status"] == "degraded"
    [(status, title)] = query(settings, "select status, title from memory where kind = 'data_quality' "
                                        "and metric = 'channel_number'")
    assert status == "active" and title.startswith("metric channel_number — kept its earlier values: not computed: ")
    assert f"{declarations}: metric 'channel_number': Conversion Error: Could not convert string" in title
    brief = Path(failed["stages"]["deliver"]["brief"]).read_text()
    opening, quality_section = brief.split("## Key metrics")[0], brief.split("## Data quality")[1]
    assert "## This cycle is degraded" in opening and f"- metrics: {declarations}: metric 'channel_number'" in opening
    [line] = [line for line in quality_section.splitlines() if "channel_number" in line]
    assert line.startswith("- **held back** — metric channel_number: not computed: ") and "Conversion Error" in line

    declarations.write_text(declarations.read_text().replace("cast(channel as integer)", "length(channel)"))
    fixed = run_cycle(project)
    assert fixed["status"] == "completed" and fixed["stages"]["consolidate"]["expired"] == 1
    assert query(settings, "select status from memory where kind = 'data_quality' and metric = 'channel_number'") == \
        [("expired",)]
    fixed_brief = Path(fixed["stages"]["deliver"]["brief"]).read_text()
    quality_section = fixed_brief.split("## Data quality")[1].split("## ")[0]
    assert "degraded" not in fixed_brief and "not computed" not in quality_section
    # the accounts table is read again each cycle and its source declares no suite: unchecked, never "passed"
    assert quality_section.strip() == ("- **unchecked** — source accounts: 1 of 1 new batch(es) loaded without checks "
                                       "— source accounts declares no suite")


@pytest.mark.reliability("bad_input")
def test_a_measure_over_a_column_holding_na_is_refused_by_type_and_reported(tmp_path, scripted_llm):
    project = _own_project(tmp_path, scripted_llm.base_url)
    from reverie.config import load_settings

    (project / "exports" / "spend_20260301.csv").write_text("day,channel,cost\n2026-03-01,search,NA\n")  # read as text
    declarations = project / "metrics" / "marketing.yml"
    result = run_cycle(project)
    assert result["status"] == "degraded"
    (error,) = result["stages"]["metrics"]["errors"]
    assert error == (f"{declarations}: metric 'ad_spend': measure.expr: cost is VARCHAR, but sum needs a number "
                     "(cast it in the expression or in a model, e.g. try_cast(cost as double))")
    settings = load_settings(project)
    assert query(settings, "select count(*) from metric_values where metric = 'ad_spend'") == [(0,)]
    assert query(settings, "select title from memory where kind = 'data_quality' and metric = 'ad_spend'") == \
        [(f"metric ad_spend — kept its earlier values: not computed: {error}",)]


def test_models_wait_for_sources_without_data_and_unknown_names_are_errors(tmp_path):
    from reverie.config import SourceSettings
    from reverie.models import ModelError, build_models

    con = duckdb.connect()
    con.execute("create table batches (source varchar, file varchar, status varchar, batch_id bigint)")
    con.execute("create table raw_orders as select 1 as id, now()::timestamp as created_at, 1 as _batch")
    sources = {name: SourceSettings(name=name) for name in ("orders", "events")}
    write(tmp_path / "models" / "stg_events.sql", "select * from events")
    write(tmp_path / "models" / "daily_events.sql", "with d as (select * from stg_events) select * from d")
    write(tmp_path / "models" / "stg_orders.sql", "with o as (select * from orders) select id from o")
    lineage = build_models(con, sources, tmp_path / "models")
    assert lineage.sources == {"orders"} and lineage.sources_of("stg_orders") == {"orders"}
    assert lineage.sources_of("daily_events") == set()  # waits for events' first data
    write(tmp_path / "models" / "broken.sql", "select * from stg_ordres")
    with pytest.raises(ModelError, match=r"broken.sql: reads stg_ordres, which is neither a source with data nor a model"):
        build_models(con, sources, tmp_path / "models")


def test_an_integer_column_that_starts_carrying_decimals_is_widened(tmp_path, scripted_llm):
    project = _own_project(tmp_path, scripted_llm.base_url)
    from reverie.config import load_settings

    for path in (project / "exports").glob("*.csv"):  # whole numbers only: the CSV reader infers BIGINT
        path.write_text(path.read_text().replace(".5", ""))
    run_cycle(project)
    write(project / "exports" / "spend_20260304.csv", "day,channel,cost\n2026-03-04,search,2.25\n")
    result = run_cycle(project)
    assert result["stages"]["ingest"]["failed"] == []
    settings = load_settings(project)
    assert query(settings, "select data_type from information_schema.columns where table_name = 'raw_spend' "
                           "and column_name = 'cost'") == [("DOUBLE",)]
    assert query(settings, """select value from metric_values where metric = 'ad_spend' and grain = 'day'
                              and dimension = 'overall' and period_start = '2026-03-04'""") == [(2.25,)]


PURCHASES = """\
    metrics:
      - name: purchases
        model: orders
        time_column: created_at
        filter: status = 'paid'
        measure: {agg: count}
        dimensions: [platform]
      - name: basket
        model: orders
        time_column: created_at
        filter: status = 'paid'
        measure: {agg: avg, expr: amount}
        dimensions: [platform]
"""


def test_a_member_with_no_rows_in_a_complete_day_is_zero_and_every_value_carries_its_rows(tmp_path):
    """A metric's filter leaves no row for a platform whose payments all failed (an outage): that day is 0 for a
    count, no value for an average, and the rows behind each value travel with it."""
    from reverie.config import load_settings
    from reverie.tasks.ingest import ingest_source
    from reverie.tasks.metrics import refresh_metrics

    write(tmp_path / "reverie.toml", '[sources.orders]\nformat = "csv"\npath = "exports/*.csv"\n'
                                     'time_column = "created_at"\n')
    write(tmp_path / "metrics" / "shop.yml", PURCHASES)
    days = {1: ["paid", "paid", "paid"], 2: ["paid", "paid"], 3: ["failed", "failed"], 4: ["paid"]}
    for day, statuses in days.items():
        lines = [f"2026-03-0{day} 1{k}:00:00,{status},ios,{10 * (k + 1)}" for k, status in enumerate(statuses)]
        lines.append(f"2026-03-0{day} 09:00:00,paid,web,5")
        write(tmp_path / "exports" / f"0{day}.csv", "created_at,status,platform,amount\n" + "\n".join(lines) + "\n")
    settings = load_settings(tmp_path)
    ingest_source.fn(settings.warehouse, str(tmp_path), settings.sources["orders"], "c1")
    refresh_metrics(settings.warehouse, "c1", settings.sources, str(settings.models_dir), str(settings.metrics_dir))
    ios = query(settings, "select metric, strftime(period_start, '%d'), value, volume from metric_values "
                          "where grain = 'day' and member = 'ios' order by 1, 2")
    assert ios == [("basket", "01", 20.0, 3.0), ("basket", "02", 15.0, 2.0), ("basket", "04", 10.0, 1.0),
                   ("purchases", "01", 3.0, 3.0), ("purchases", "02", 2.0, 2.0), ("purchases", "03", 0.0, 0.0),
                   ("purchases", "04", 1.0, 1.0)]
    # the day the data has not finished yet is not filled in (web's last row is at 09:00 on the 4th)
    assert query(settings, "select count(*) from metric_values where period_start >= '2026-03-05'") == [(0,)]


def test_a_member_missing_for_a_while_is_zero_for_a_week_and_a_held_back_day_stays_missing(tmp_path):
    """A platform without purchases is 0 for the seven days after its last one, then has no value (gone, not
    zero); a day whose file the quality gate held back is missing for every member, not 0; an incremental refresh
    fills exactly what a full one does."""
    from reverie.config import load_settings
    from reverie.tasks.ingest import ingest_source
    from reverie.tasks.metrics import refresh_metrics
    from reverie.tasks.quality import run_quality_gate

    write(tmp_path / "reverie.toml", '[sources.orders]\nformat = "csv"\npath = "exports/*.csv"\n'
                                     'time_column = "created_at"\nsuite = "orders"\n')
    write(tmp_path / "quality" / "orders.yml", "suites:\n  orders:\n"
                                               "    - {check: in_set, column: status, values: [paid, failed]}\n")
    write(tmp_path / "metrics" / "shop.yml", PURCHASES)
    ios_days, held_back = {1, 2, 13, 14}, 5

    def land(day: int) -> None:
        lines = [f"2026-03-{day:02d} 09:00:00,paid,web,5"]
        lines += [f"2026-03-{day:02d} 10:00:00,paid,ios,10"] if day in ios_days else []
        lines += [f"2026-03-{day:02d} 11:00:00,chargeback,web,5"] if day == held_back else []
        write(tmp_path / "exports" / f"{day:02d}.csv", "created_at,status,platform,amount\n" + "\n".join(lines) + "\n")

    def cycle(cycle_id: str, full: bool = False) -> None:
        ingest_source.fn(settings.warehouse, str(tmp_path), settings.sources["orders"], cycle_id)
        run_quality_gate.fn(settings.warehouse, settings.sources["orders"], cycle_id, str(settings.quality_dir))
        refresh_metrics(settings.warehouse, cycle_id, settings.sources, str(settings.models_dir),
                        str(settings.metrics_dir), full_refresh=full)

    def purchases() -> dict[str, dict[int, float]]:
        rows = query(settings, "select member, day(period_start), value from metric_values "
                               "where metric = 'purchases' and grain = 'day' order by all")
        return {member: {day: value for m, day, value in rows if m == member} for member in ("all", "ios", "web")}

    for day in range(1, 15):
        land(day)
    settings = load_settings(tmp_path)
    cycle("c1")
    values = purchases()
    # ios: its two days, 0 for the week after (the held-back 5th aside), nothing from the 10th until it is back
    assert values["ios"] == {1: 1, 2: 1, 3: 0, 4: 0, 6: 0, 7: 0, 8: 0, 9: 0, 13: 1, 14: 1}
    assert values["web"] == {day: 1 for day in range(1, 15) if day != held_back}
    land(15)  # a new day: the 14th is complete now, ios has no row on the 15th (not complete: not filled)
    cycle("c2")
    incremental = purchases()
    cycle("c3", full=True)
    assert incremental == purchases() and incremental["ios"][14] == 1 and 15 not in incremental["ios"]
