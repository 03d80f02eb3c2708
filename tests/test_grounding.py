"""Grounding on a real warehouse: evidence must read the data, numbers must be what the words say, references render.

One cycle builds the warehouse (metrics, candidates); each test hands the analyst's write_insight tool
one call, as the model would, and reads the verdict.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta

import duckdb
import pytest

from reverie.analyst.evidence import load_catalog
from reverie.analyst.grounding import numbers_in
from reverie.analyst.run import AnalystRun
from reverie.analyst.tool_calls import run_tool
from reverie.analyst.tool_schemas import EMBEDDED_TITLE
from reverie.flows.local_run import run_cycle
from reverie.queries import rows_as_dicts
from reverie.tasks.reflect import analyst
from reverie.warehouse import Warehouse
from tests.helpers.projects import new_project

REVENUE_DAY = ("select period_start, value from metric_values where metric = 'revenue' and grain = 'day' "
               "and dimension = 'overall' order by period_start desc limit 3")


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    settings = new_project(tmp_path_factory.mktemp("grounding"), base_url="http://127.0.0.1:9/v1")
    run_cycle(settings.project_dir)  # nothing listens at the LLM's address: detector candidates only
    return settings.warehouse


@pytest.fixture(scope="module")
def candidates(warehouse):
    with duckdb.connect(str(warehouse), read_only=True) as con:
        rows = rows_as_dicts(con.execute("select * from candidates order by rank"))
    return {f"c{i}": c for i, c in enumerate(rows, start=1)}


def write(warehouse: Warehouse, candidates: dict, title: str, body: str = "", cite: tuple = (), queries: tuple = ()) -> tuple[str, AnalystRun]:
    """One write_insight call through the analyst's tool dispatcher: its answer and what was kept."""
    run = AnalystRun(warehouse=warehouse)
    run.catalog = load_catalog(warehouse)
    arguments = {"kind": "pattern", "severity": "info", "title": title, "body": body, "candidate_ids": list(cite),
                 "evidence_queries": list(queries)}
    return run_tool("write_insight", json.dumps(arguments), candidates, "test-model", run), run


def first_sliced(candidates: dict) -> str:
    return next(a for a, c in candidates.items() if c["dimension"] != "overall")


@pytest.mark.parametrize("evidence", [
    "select 37.5::double as x, 4321 as y",
    "select * from (values (37.5, 4321)) t(x, y)",
    "select range * 0 + 37.5 as x, 4321 as y from range(2)",
    "with t as (select 37.5 as x, 4321 as y) select x, y from t",
    "select 37.5 as x, 4321 as y from metric_values where metric = 'revenue' limit 1",
    "select max(37.5) as x, min(4321) as y from metric_values where metric = 'revenue'",
    "select 37.5 as x, 4321 as y union all select value, value from metric_values where metric = 'revenue'",
    "select value * 0 + 37.5 as x, value - value + 4321 as y from metric_values where metric = 'revenue' limit 1",
    "select coalesce(null, 37.5) as x, if(value > 0, 4321, 0) as y from metric_values where metric = 'revenue' limit 1",
    "select x, y from metric_values, (select 37.5 as x, 4321 as y) c where metric = 'revenue' limit 1",
])
def test_evidence_made_of_constants_grounds_nothing(warehouse, candidates, evidence):
    answer, run = write(warehouse, candidates, "Revenue will grow 37.5%", "Because 4,321 customers said so.",
                        queries=(evidence,))
    assert answer.startswith("rejected:") and not run.written
    assert "37.5%" in answer and "4,321" in answer


@pytest.mark.parametrize("evidence", [
    "select value - value + 37.5 as x from metric_values where metric = 'revenue' limit 1",
    "select abs(37.5) + value - value as x from metric_values where metric = 'revenue' limit 1",
    "select value / value * 37.5 as x from metric_values where metric = 'revenue' limit 1",
    "select length('{}') / 2.0 + value - value as x from metric_values where metric = 'revenue' limit 1".format("x" * 75),
    "with t as (select sum(value) - sum(value) + 37.5 as x from metric_values where metric = 'revenue') select x from t",
    "select greatest(value, 37.5) - greatest(value, 37.5) + 37.5 as x from metric_values where metric = 'revenue' limit 1",
])
def test_arithmetic_that_brings_a_constant_back_grounds_nothing(warehouse, candidates, evidence):
    """However a result is written, one that comes out the same whatever the data holds is not evidence."""
    answer, run = write(warehouse, candidates, "Revenue will grow {q1.x}%", queries=(evidence,))
    assert answer.startswith("rejected:") and not run.written
    assert "q1.x is a constant of the query" in answer or "comes out the same whatever the data holds" in answer
    answer, run = write(warehouse, candidates, "Revenue will grow 37.5%", queries=(evidence,))
    assert answer.startswith("rejected:") and "37.5%: a constant of q1, not a value of the data" in answer


ONE_DAY = ("select period_start::date as day, value from metric_values where metric = '{metric}' and grain = 'day' "
           "and dimension = 'overall' order by period_start desc limit 1")


@pytest.mark.parametrize("label", ["'revenue' as metric", "'overall' as dimension", "date '{day_before}' as day"])
def test_a_literal_label_does_not_change_what_a_value_is_about(warehouse, candidates, label):
    """A number's metric, slice and date come from its lineage (filters, the stored columns of its rows), never from
    a literal column: orders' value labelled 'revenue' stays orders'; a slice's value labelled overall stays a
    slice's; a day's value labelled with another day stays that day's."""
    base = "select value, {label} from metric_values where metric = '{metric}' and grain = 'day' and {where} limit 1"
    if "metric" in label:
        sql, title = base.format(label=label, metric="orders", where="dimension = 'overall'"), "Revenue was {q1.value}"
    elif "dimension" in label:
        sql, title = base.format(label=label, metric="revenue", where="dimension <> 'overall'"), "Revenue was {q1.value}"
    else:
        with duckdb.connect(str(warehouse), read_only=True) as con:
            latest, before = [d for d, _ in con.execute(REVENUE_DAY).fetchall()][:2]
        where = f"dimension = 'overall' and period_start = date '{latest:%Y-%m-%d}'"
        sql = base.format(label=label.format(day_before=f"{before:%Y-%m-%d}"), metric="revenue", where=where)
        title = "Revenue on {q1.day} was {q1.value}"
    answer, run = write(warehouse, candidates, title, queries=(sql,))
    assert answer.startswith("rejected:") and not run.written, answer
    honest = ONE_DAY.format(metric="revenue")
    answer, run = write(warehouse, candidates, "Revenue on {q1.day} was {q1.value}", queries=(honest,))
    assert answer.startswith("stored:"), answer


def test_a_label_of_another_row_does_not_name_a_value(warehouse, candidates):
    """A join's other side is other rows: their metric column says nothing about this value."""
    sql = ("select a.value, b.metric from metric_values a join metric_values b on a.period_start = b.period_start "
           "and b.metric = 'revenue' and b.grain = 'day' and b.dimension = 'overall' where a.metric = 'orders' "
           "and a.grain = 'day' and a.dimension = 'overall' limit 1")
    answer, run = write(warehouse, candidates, "Revenue was {q1.value}", queries=(sql,))
    assert answer.startswith("rejected:") and "it is orders for the whole business" in answer


def test_evidence_that_reads_another_metric_or_no_metric_is_refused(warehouse, candidates):
    answer, _ = write(warehouse, candidates, "Revenue rows: {q1.n}", queries=("select count(*) as n from metric_values",))
    assert "q1 does not read revenue" in answer
    answer, _ = write(warehouse, candidates, "Revenue was {q1.value}",
                      queries=("select value from metric_values where metric = 'orders' and dimension = 'overall' limit 1",))
    assert "q1 does not read revenue" in answer and "it is orders for the whole business" in answer
    answer, _ = write(warehouse, candidates, "Revenue had {q1.n} batches", queries=("select count(*) as n from batches",))
    assert answer.startswith("rejected:")  # reverie's own bookkeeping is nobody's metric


def test_words_must_name_the_metric_and_slice_their_numbers_come_from(warehouse, candidates):
    alias = first_sliced(candidates)
    c = candidates[alias]
    other = next(m for m in ("revenue", "orders", "sessions") if m != c["metric"])
    # a real candidate's number, titled as another metric for the whole business: the review's failure
    answer, run = write(warehouse, candidates, f"{other} changed {{{alias}.change}} on {{{alias}.period}}", cite=(alias,))
    assert answer.startswith("rejected:") and not run.written
    assert f"it is {c['metric']} for {c['member']}" in answer and "the text does not name" in answer
    answer, _ = write(warehouse, candidates, f"{c['metric']} changed {{{alias}.change}} on {{{alias}.period}}",
                      cite=(alias,))
    assert f"the text does not name {c['member']}" in answer
    answer, run = write(warehouse, candidates, f"{c['metric']} in {c['member']} changed {{{alias}.change}} on {{{alias}.period}}",
                        "It follows the price rise announced that week.", cite=(alias,))
    assert answer.startswith("stored:") and run.written


def test_a_note_that_only_restates_its_candidate_is_not_kept(warehouse, candidates):
    """The embedded model's notes as they were stored: its candidate's line again, and words that say nothing."""
    alias, c = next(iter(candidates.items()))
    restated = f"{{{alias}.metric}} ({{{alias}.slice}}) {{{alias}.direction}} {{{alias}.change}} on {{{alias}.period}}"
    for body in ("This is a note about the change in a business metric.",
                 "A change in a business metric has been reported.", "Your note is here."):
        answer, run = write(warehouse, candidates, restated, body, cite=(alias,))
        assert answer.startswith("rejected:") and "says nothing its candidates do not" in answer and not run.written
    answer, run = write(warehouse, candidates, restated, "Expect refunds to follow: the returns window is a month.",
                        cite=(alias,))
    assert answer.startswith("stored:"), answer


def test_the_embedded_models_title_cannot_write_a_value_as_arithmetic():
    """It wrote "refund_rate (overall) up 11.2 pp on 2026-11-05 - 2.52%": the baseline read as a subtraction."""
    title = re.compile(EMBEDDED_TITLE)
    assert not title.match("{c1.metric} ({c1.slice}) up {c1.change} on {c1.period} - {c1.expected}")
    assert title.match("{c1.metric} ({c1.slice}) up {c1.change} on {c1.period} against {c1.expected}")
    assert title.match("{c1.metric} ({c1.slice}) rose (year-over-year) {c1.change}")


def test_a_note_is_at_most_one_severity_above_what_it_cites(warehouse, candidates):
    """The embedded model called an `info` change critical in boilerplate; a note's severity rests on its evidence."""
    alias, c = next(iter(candidates.items()))
    restated = f"{{{alias}.metric}} ({{{alias}.slice}}) {{{alias}.direction}} {{{alias}.change}} on {{{alias}.period}}"
    answer, run = write(warehouse, candidates, restated, "A new trend, which may be influenced by various factors.",
                        cite=(alias,))
    assert answer.startswith("rejected:") and "says nothing its candidates do not" in answer
    for cited, asked, kept in (("info", "critical", "warning"), ("info", "info", "info"),
                               ("warning", "critical", "critical"), (None, "critical", "critical")):
        arguments = {"kind": "risk", "severity": asked, "title": restated, "candidate_ids": [alias],
                     "body": "Expect refunds to follow: the returns window is a month."}
        run = AnalystRun(warehouse=warehouse)
        run.catalog = load_catalog(warehouse)
        answer = run_tool("write_insight", json.dumps(arguments), {alias: {**c, "severity": cited}}, "test-model", run)
        assert answer.startswith("stored:") and run.written[0]["severity"] == kept, (cited, asked, answer)


def test_a_number_about_no_metric_is_refused_however_real_it_is(warehouse, candidates):
    """A value the data holds, in words that name no metric, could pass for anything: "sales collapsed 99%"."""
    evidence = ("select value from metric_values where metric = 'orders' and grain = 'day' and dimension = 'overall' "
                "order by period_start desc limit 1")
    answer, run = write(warehouse, candidates, "Sales collapsed {q1.value}% overnight", "Shut the shop down.",
                        queries=(evidence,))
    assert answer.startswith("rejected:") and not run.written
    assert "the text does not say which metric it is about (name one: " in answer and "orders" in answer
    answer, run = write(warehouse, candidates, "Orders were {q1.value} on the latest day", queries=(evidence,))
    assert answer.startswith("stored:") and run.written  # the same number, said of what it is


@pytest.mark.parametrize("written", ["{q1.value}k", "{q1.value}000", "{q1.value}M", "{q1.value} million",
                                     "-{q1.value}"])
def test_text_written_onto_a_reference_does_not_change_its_value(warehouse, candidates, written):
    answer, run = write(warehouse, candidates, f"Revenue on {{q1.period_start}} was {written}", queries=(REVENUE_DAY,))
    assert answer.startswith("rejected:") and not run.written
    assert "written onto a reference change its value" in answer
    answer, run = write(warehouse, candidates, "Revenue on {q1.period_start} was {q1.value}", queries=(REVENUE_DAY,))
    assert answer.startswith("stored:"), answer


def test_every_numeric_form_is_read_with_its_sign_and_scale_or_refused(warehouse, candidates):
    """A number a sentence carries is read — sign, unit, scale — and must fit its cell; a form reverie cannot read is
    refused, never let through unread."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        day, value = con.execute(REVENUE_DAY).fetchone()
    on = f"on {day:%Y-%m-%d}"
    for lie, why in [(f"-{value:,.2f}", "no evidence returned this number"),  # a sign the value does not have
                     (f"{value:.0f},7", "cannot read"),  # a decimal comma: 217,7 is not 2,177
                     ("0M", "no evidence returned this number"),  # rounds to nothing: not the value
                     (f"{value:.0f}x", "cannot read"), (f"{value:.0f}e0", "cannot read"),
                     (f"{value:_.0f}", "cannot read"), (f"EUR{value:.0f}", "cannot read"),
                     (f".{value:.0f}", "cannot read"), ("10⁶", "cannot read"), ("forty-two thousand", "cannot read"),
                     ("zero", "cannot read")]:
        answer, run = write(warehouse, candidates, f"Revenue {on} was {lie}", queries=(REVENUE_DAY,))
        assert answer.startswith("rejected:") and why in answer, (lie, answer)
    for honest in (f"{value:,.2f}", f"{value:.2f}", f"+{value:,.2f}", f"{value / 1e3:.1f}k",
                   f"{value / 1e3:.1f} thousand"):
        answer, run = write(warehouse, candidates, f"Revenue {on} was {honest} at 03:00, one of six slices",
                            queries=(REVENUE_DAY,))
        assert answer.startswith("stored:"), (honest, answer)


def test_an_aggregate_is_a_new_quantity_it_grounds_only_a_sentence_that_says_so(warehouse, candidates):
    """count(*) of a metric's rows is not its value, a 20-day sum is not a day's value, a model's row count is not a
    rate: an aggregate grounds a sentence that says what it is (a total, a count), or nothing."""
    day_rows = "from metric_values where metric = 'revenue' and grain = 'day' and dimension = 'overall'"
    with duckdb.connect(str(warehouse), read_only=True) as con:
        (last,) = con.execute(f"select max(period_start)::date {day_rows}").fetchone()
    twenty = f"select sum(value) as s, count(*) as n {day_rows} and period_start > date '{last}' - 20"
    for title in ("Revenue on {q1.day} was {q1.s}", "Revenue was {q1.n}", "Revenue reached {q1.s}"):
        answer, run = write(warehouse, candidates, title.replace("{q1.day}", f"{last}"), queries=(twenty,))
        assert answer.startswith("rejected:") and not run.written, (title, answer)
        assert "over many values" in answer and "not one value" in answer
    answer, run = write(warehouse, candidates, "Revenue totalled {q1.s} over the last {q1.n} days", queries=(twenty,))
    assert answer.startswith("stored:"), answer
    answer, run = write(warehouse, candidates, "The conversion rate was {q1.n}",
                        queries=("select count(*) as n from stg_events where event_type = 'session'",))
    assert answer.startswith("rejected:") and "does not read conversion_rate" in answer, answer
    answer, run = write(warehouse, candidates, "Sessions were {q1.n} in all the data",
                        queries=("select count(*) as n from stg_events where event_type = 'session'",))
    assert answer.startswith("stored:"), answer  # a count over the model's rows is what sessions counts


def _latest(warehouse, metric: str, where: str = "dimension = 'overall'") -> tuple:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(f"select period_start::date, value, member from metric_values where metric = '{metric}' "
                           f"and grain = 'day' and {where} order by period_start desc, member limit 2").fetchall()


def test_each_number_binds_to_the_metric_and_slice_of_its_own_clause(warehouse, candidates):
    """Two real values swapped between two named metrics, a slice's value in a sentence that names no slice, a
    whole-business value in a sentence about a slice: each refused."""
    (day, revenue, _), _ = _latest(warehouse, "revenue")
    (_, orders, _), _ = _latest(warehouse, "orders")
    both = (ONE_DAY.format(metric="revenue"), ONE_DAY.format(metric="orders"))
    answer, run = write(warehouse, candidates, f"On {day}, revenue was {orders:,.0f} and orders were {revenue:,.2f}",
                        queries=both)
    assert answer.startswith("rejected:") and "it is orders for the whole business" in answer, answer
    answer, run = write(warehouse, candidates, f"On {day}, revenue was {revenue:,.2f} and orders were {orders:,.0f}",
                        queries=both)
    assert answer.startswith("stored:"), answer
    (day, value, member), _ = _latest(warehouse, "revenue", "dimension = 'country'")
    sliced = (f"select period_start::date as day, value from metric_values where metric = 'revenue' and grain = 'day' "
              f"and dimension = 'country' and member = '{member}' and period_start = date '{day}'")
    answer, _ = write(warehouse, candidates, f"Revenue on {day} was {{q1.value}}",
                      f"{member} is one of the countries we sell in.", queries=(sliced,))
    assert answer.startswith("rejected:") and f"the text does not name {member}" in answer, answer
    answer, _ = write(warehouse, candidates, f"Revenue in {member} on {day} was {{q1.value}}", queries=(sliced,))
    assert answer.startswith("stored:"), answer
    overall = ONE_DAY.format(metric="revenue")
    answer, _ = write(warehouse, candidates, f"In {member}, revenue on {{q1.day}} was {{q1.value}}", queries=(overall,))
    assert answer.startswith("rejected:") and f"the sentence is about {member}" in answer, answer
    answer, _ = write(warehouse, candidates, f"In {member} sales held; overall revenue on {{q1.day}} was {{q1.value}}",
                      queries=(overall,))
    assert answer.startswith("stored:"), answer


def test_a_change_written_next_to_its_values_is_computed_from_them(warehouse, candidates):
    """"Fell 32.8% from 32,825.94 to 25,397.41": the change the two values give is -22.6%; 32.8 found elsewhere in
    the evidence does not make it true."""
    rows = _latest(warehouse, "revenue")
    (day, last, _), (before, first, _) = rows
    evidence = ONE_DAY.format(metric="revenue").replace("limit 1", "limit 2")
    change = 100 * abs(last - first) / first
    wrong = change + 7.3
    answer, run = write(warehouse, candidates, f"Revenue moved {wrong:.1f}% from {first:,.2f} on {before} to "
                        f"{last:,.2f} on {day}", queries=(evidence,))
    assert answer.startswith("rejected:") and f"is a change of {change:.1f}%" in answer, answer
    answer, run = write(warehouse, candidates, f"Revenue moved {change:.1f}% from {first:,.2f} on {before} to "
                        f"{last:,.2f} on {day}", queries=(evidence,))
    assert answer.startswith("stored:"), answer
    assert run.written[0]["evidence"]["numbers"][0]["from"] == "computed"


def test_relative_dates_resolve_against_the_newest_complete_day(warehouse, candidates):
    """"Yesterday", "last <weekday>", "last week" are dates too: a value of ten days before is not yesterday's."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        (latest,) = con.execute("select max(period_start::date) from metric_values where grain = 'day' and complete"
                                ).fetchone()
    series = ("select period_start::date as day, value from metric_values where metric = 'revenue' and grain = 'day' "
              f"and dimension = 'overall' and period_start <= date '{latest}' order by period_start desc limit 14")
    weekday = (latest - timedelta(days=3)).strftime("%A")
    for title in ("Revenue yesterday was {q1[10].value}", f"Revenue last {weekday} was {{q1.value}}",
                  "Revenue last week peaked at {q1.value}"):
        answer, run = write(warehouse, candidates, title, queries=(series,))
        assert answer.startswith("rejected:") and "it is the value for" in answer, (title, answer)
    for title in ("Revenue yesterday was {q1.value}", f"Revenue last {weekday} was {{q1[4].value}}",
                  "Revenue last week peaked at {q1[8].value}"):
        answer, run = write(warehouse, candidates, title, queries=(series,))
        assert answer.startswith("stored:"), (title, answer)


def test_a_sentence_about_a_date_takes_the_value_of_that_date(warehouse, candidates):
    answer, _ = write(warehouse, candidates, "Revenue on {q1[2].period_start} was {q1.value}", queries=(REVENUE_DAY,))
    assert "not for " in answer and "it is the value for" in answer
    answer, run = write(warehouse, candidates, "Revenue on {q1[2].period_start} was {q1[2].value}", queries=(REVENUE_DAY,))
    assert answer.startswith("stored:")
    with duckdb.connect(str(warehouse), read_only=True) as con:
        day, value = con.execute(REVENUE_DAY).fetchall()[1]
    assert run.written[0]["title"] == f"Revenue on {day:%Y-%m-%d} was {value:,.2f}"
    with duckdb.connect(str(warehouse), read_only=True) as con:
        (day1, value1), (day2, value2) = con.execute(REVENUE_DAY).fetchall()[:2]
    answer, _ = write(warehouse, candidates, f"Revenue: {value1:,.2f} on {day2:%Y-%m-%d}, then {value2:,.2f} on "
                                             f"{day1:%Y-%m-%d}", queries=(REVENUE_DAY,))  # each day's value swapped
    assert answer.startswith("rejected:") and f"it is the value for {day1:%Y-%m-%d}" in answer
    answer, _ = write(warehouse, candidates, f"Revenue: {value1:,.2f} on {day1:%Y-%m-%d}, then {value2:,.2f} on "
                                             f"{day2:%Y-%m-%d}", queries=(REVENUE_DAY,))
    assert answer.startswith("stored:"), answer


def test_references_render_and_every_number_keeps_its_cell(warehouse, candidates):
    alias, c = next(iter(candidates.items()))
    where = "overall" if c["dimension"] == "overall" else f"{c['dimension']} {c['member']}"
    series = (f"select period_start, value from metric_values where metric = '{c['metric']}' and grain = 'day' "
              f"and dimension = '{c['dimension']}' and member = '{c['member']}' order by period_start desc limit 3")
    answer, run = write(warehouse, candidates, f"{{{alias}.metric}} ({{{alias}.slice}}) {{{alias}.direction}} "
                        f"{{{alias}.change}} on {{{alias}.period}}", "On {q1.period_start} it was {q1.value}, after the price rise.",
                        cite=(alias,), queries=(series,))
    assert answer.startswith("stored:"), answer
    insight = run.written[0]
    assert insight["title"] == (f"{c['metric']} ({where}) {c['direction']} {abs(100 * c['magnitude']):.1f}% on "
                                f"{c['period_start']:%Y-%m-%d}")
    assert "{" not in insight["body"]
    numbers = insight["evidence"]["numbers"]
    assert [n["from"] for n in numbers] == [alias, "q1"]
    assert numbers[0]["candidate_id"] == c["candidate_id"] and numbers[0]["column"] == "change"
    assert numbers[1]["row"] == 1 and numbers[1]["column"] == "value" and numbers[1]["query"] == series


@pytest.mark.parametrize(("title", "reason"), [
    ("Revenue was {q2.value}", "there is no q2"),
    ("Revenue was {q1.amount}", "q1 has no 'amount'"),
    ("Revenue was {q1[9].value}", "q1 returned 3 row(s); rows count from 1"),
    ("Revenue was {q1[0].value}", "rows count from 1"),
    ("Revenue was {value}", "is not a reference"),
])
def test_a_reference_to_nothing_is_refused_with_what_there_is(warehouse, candidates, title, reason):
    answer, _ = write(warehouse, candidates, title, queries=(REVENUE_DAY,))
    assert answer.startswith("rejected:") and reason in answer


def test_decimal_and_timestamp_evidence_grounds_numbers_and_dates(warehouse, candidates):
    with duckdb.connect(str(warehouse), read_only=True) as con:
        day, value = con.execute(REVENUE_DAY).fetchone()
    decimal = REVENUE_DAY.replace("select period_start, value", "select period_start::timestamptz as day, "
                                                               "value::decimal(18, 2) as value")
    answer, _ = write(warehouse, candidates, f"Revenue on {day:%Y-%m-%d} was {value:,.2f}", queries=(decimal,))
    assert answer.startswith("stored:"), answer
    huge = "select sum(value)::hugeint as total from metric_values where metric = 'revenue' and dimension = 'overall' and grain = 'day'"
    with duckdb.connect(str(warehouse), read_only=True) as con:
        total = con.execute(huge).fetchone()[0]
    answer, _ = write(warehouse, candidates, f"Revenue added up to {total:,} over the period", queries=(huge,))
    assert answer.startswith("stored:"), answer


def test_names_that_start_with_digits_are_not_numbers():
    """Carrier 9E (nycflights13) is a member, not the number 9; units still count."""
    assert [(w, v) for w, v, *_ in numbers_in("carrier 9E had 12 flights, 1.2k seats, 57.46% cancelled, c3_48")] == [
        ("12", 12.0), ("1.2k", 1200.0), ("57.46%", 57.46)]


def test_an_impossible_date_is_rejected_not_a_crash(warehouse, candidates):
    answer, run = write(warehouse, candidates, "Revenue on 2026-02-30 was {q1.value}", queries=(REVENUE_DAY,))
    assert answer.startswith("rejected:") and "2026-02-30 is not a date" in answer and not run.written


def test_arguments_of_the_wrong_type_go_back_to_the_model(warehouse, candidates):
    run = AnalystRun(warehouse=warehouse)
    run.catalog = load_catalog(warehouse)
    answer = run_tool("write_insight", json.dumps({"kind": "risk", "title": "x", "body": "", "severity": "info",
                                                   "candidate_ids": 5}), candidates, "m", run)
    assert answer == "error: candidate_ids must be a list of strings"


def test_an_analyst_that_fails_is_reported_not_swallowed(tmp_path, scripted_llm):
    from reverie.config import LLMSettings
    from reverie.llm import open_llm

    broken = tmp_path / "broken.duckdb"
    broken.write_text("not a database")  # the warehouse was overwritten under it
    settings = LLMSettings(base_url=scripted_llm.base_url, model="scripted-analyst")
    with open_llm(settings, tmp_path) as llm:
        run = analyst.fn(Warehouse(broken), "c1", ["revenue"], settings, str(tmp_path), llm)
    assert run["error"].startswith("the analyst failed: IOException:") and "broken.duckdb" in run["error"], run
    assert run["written"] == run["calls"] == []
