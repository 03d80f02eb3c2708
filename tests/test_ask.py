"""`reverie ask` and `reverie stats` on a project after real cycles: prepared answers, memory, cold, the ledger."""

from __future__ import annotations

import json
import os
import re
import sys
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pycountry
import pytest
from typer.testing import CliRunner

from reverie.ask.questions import Lexicon, parse_question
from reverie.cli.commands import app
from reverie.flows.local_run import run_cycle
from reverie.generator import generate
from reverie.snapshot import RUNNING_FILE
from reverie.wording import show
from tests.helpers import processes
from tests.helpers.projects import new_project
from tests.helpers.scripted_llm import tool_call
from tests.helpers.warehouse import held_by_another_process

ROOT = Path(__file__).resolve().parents[1]
LATEST_REVENUE = ("select cast(period_start as date), value from metric_values where metric = 'revenue' and grain = 'day' "
                  "and dimension = 'overall' and complete order by period_start desc limit 1")


CHANNEL_ALIASES = ('[aliases]\npaid_search = ["google ads"]\nemail = ["newsletter"]\norganic = ["seo"]\n'
                   'social = ["social media"]\nreferral = ["partner sites"]\n')


@pytest.fixture(scope="module")
def project(tmp_path_factory, session_llm):
    """A demo project after one cycle with no analyst: memory holds the detectors' insights and prepared answers."""
    folder = tmp_path_factory.mktemp("ask")
    settings = new_project(folder, base_url=session_llm.base_url)
    config = folder / "reverie.toml"
    config.write_text(config.read_text().replace("[llm]\n", "[llm]\nanalysts = 0\n", 1)
                      .replace("[aliases]\n", CHANNEL_ALIASES, 1))
    assert run_cycle(folder)["status"] == "completed"
    return settings


@pytest.fixture(autouse=True)
def in_the_project(request, monkeypatch):
    """`reverie ask` runs where the project is, as a person runs it (for the tests that use the project)."""
    if "project" in request.fixturenames:
        monkeypatch.chdir(request.getfixturevalue("project").project_dir)


def query(settings, sql: str, params=None):
    with duckdb.connect(str(settings.warehouse), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def ask(*words: str) -> dict:
    result = CliRunner().invoke(app, ["ask", "--json", *words])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_questions_are_read_into_an_intent_a_metric_a_slice_and_a_day():
    from datetime import date

    lexicon = Lexicon(metrics=["average_order_value", "orders", "refund_rate", "revenue"],
                      members={"DE": "country", "apparel": "category"}, latest_day=date(2026, 3, 1))
    keys = {text: (q.key() if (q := parse_question(text, lexicon)) else None) for text in (
        "What was revenue yesterday?", "how much revenue did we make on 2026-03-01", "Why did orders drop in DE?",
        "What drove the refund rate on Feb 25?", "since when is average order value down", "is revenue on pace",
        "what happened last Tuesday", "what is the highest revenue ever", "tell me a joke")}
    assert keys == {
        "What was revenue yesterday?": "level|revenue|overall:all|latest",
        "how much revenue did we make on 2026-03-01": "level|revenue|overall:all|latest",
        "Why did orders drop in DE?": "driver|orders|country:DE|latest",
        "What drove the refund rate on Feb 25?": "driver|refund_rate|overall:all|2026-02-25",
        "since when is average order value down": "since|average_order_value|overall:all|latest",
        "is revenue on pace": "pace|revenue|overall:all|latest",
        "what happened last Tuesday": "day||overall:all|2026-02-24",
        "what is the highest revenue ever": "record|revenue|overall:all|latest",
        "tell me a joke": None,
    }


def test_questions_are_read_into_all_their_parts_or_declined_with_what_can_be_answered():
    from datetime import date

    lexicon = Lexicon(metrics=["average_order_value", "orders", "refund_rate", "revenue"],
                      members={"DE": "country", "FR": "country", "apparel": "category", "email": "channel"},
                      latest_day=date(2026, 3, 5), first_day=date(2025, 12, 1), today=date(2026, 3, 6),
                      catalogue={"revenue": {"dimensions": ["country", "channel", "category"], "goal": True,
                                             "favourability": "up"},
                                 "refund_rate": {"dimensions": ["channel"], "favourability": "down"},
                                 "average_order_value": {"dimensions": ["country", "category"], "goal": False}})
    read = {text: parse_question(text, lexicon) for text in (
        "Which channel brings the most revenue?", "which country has the fewest orders last month",
        "Compare revenue this week to last week", "Revenue last week?", "revenue this month vs last month",
        "What will revenue be next month?", "Is anything wrong with refunds?", "How many customers churned?",
        "revenue in DE vs FR", "orders in Q3", "average order value by channel", "revenue and orders last week",
        "what was revenue today", "revenue in November 2025", "which country drove the revenue drop",
        "what was the highest revenue last month", "what drove revenue last week",
        "How is revenue doing this week versus the prior week?")}
    understood = {text: (q.intent, q.metric, q.by, q.period.span() if q.period else None,
                         q.period.before().span() if q.period and q.intent == "compare" else None)
                  for text, q in read.items()}
    assert understood == {
        "Which channel brings the most revenue?": ("rank", "revenue", "channel", "2025-12-01..2026-03-05", None),
        "which country has the fewest orders last month": ("rank", "orders", "country", "2026-02-01..2026-02-28", None),
        "Compare revenue this week to last week": ("compare", "revenue", None, "2026-03-02..2026-03-05",
                                                   "2026-02-23..2026-02-26"),
        "Revenue last week?": ("level", "revenue", None, "2026-02-23..2026-03-01", None),
        "revenue this month vs last month": ("compare", "revenue", None, "2026-03-01..2026-03-05",
                                             "2026-02-01..2026-02-05"),
        "What will revenue be next month?": ("decline", None, None, None, None),
        "Is anything wrong with refunds?": ("review", "refund_rate", None, "2025-12-06..2026-03-05", None),
        "How many customers churned?": ("decline", None, None, None, None),
        "revenue in DE vs FR": ("decline", None, None, None, None),
        "orders in Q3": ("decline", None, None, None, None),
        "average order value by channel": ("decline", None, None, None, None),
        "revenue and orders last week": ("decline", None, None, None, None),
        "what was revenue today": ("level", "revenue", None, None, None),
        "revenue in November 2025": ("decline", None, None, None, None),
        "which country drove the revenue drop": ("driver", "revenue", None, None, None),
        "what was the highest revenue last month": ("record", "revenue", None, "2026-02-01..2026-02-28", None),
        "what drove revenue last week": ("decline", None, None, None, None),
        "How is revenue doing this week versus the prior week?": ("compare", "revenue", None, "2026-03-02..2026-03-05",
                                                                  "2026-02-23..2026-02-26"),
    }
    assert "is revenue on pace for its goal" in read["What will revenue be next month?"].reason
    # "worst" and "best" follow which way is good: the worst refund rate is the highest, the worst revenue the lowest
    worst = {text: parse_question(text, lexicon).fewest for text in (
        "which channel has the worst refund rate", "which channel has the best refund rate",
        "which channel had the worst revenue", "which channel had the best revenue")}
    assert worst == {"which channel has the worst refund rate": False, "which channel has the best refund rate": True,
                     "which channel had the worst revenue": True, "which channel had the best revenue": False}
    assert "average_order_value, orders, refund_rate, revenue" in read["How many customers churned?"].reason
    assert "country, category" in read["average order value by channel"].reason
    assert "2025-12-01" in read["revenue in November 2025"].reason  # the data begins after it starts
    assert read["what was revenue today"].note.startswith("Today (2026-03-06) is not in the data yet")


def daily_sum(settings, metric: str, start: str, end: str, dimension: str = "overall") -> dict:
    """A metric over a span of days per member, from the warehouse's own rows (a ratio from its parts)."""
    rows = query(settings, "select member, case when any_value(m.measure) = 'ratio' then sum(numerator) / "
                           "sum(denominator) else sum(value) end from metric_values v join metrics m on m.name = "
                           "v.metric where metric = ? and grain = 'day' and complete and dimension = ? and "
                           "cast(period_start as date) between ? and ? group by member",
                 [metric, dimension, start, end])
    return dict(rows)


def test_rankings_spans_and_comparisons_are_answered_exactly_from_the_data(project):
    ranked = ask("Which channel brings the most revenue?")
    assert ranked["path"] in ("prepared", "computed") and ranked["grounded"] and ranked["prompt_tokens"] == 0
    period = ranked["understood"]["period"]
    truth = sorted(daily_sum(project, "revenue", period["start"], period["end"], "channel").items(),
                   key=lambda kv: -kv[1])
    assert period["label"] == "all the data" and ranked["data_through"] == period["end"]
    assert ranked["answer"].startswith(f"Over all the data ({period['start']} to {period['end']}), channel "
                                       f"{truth[0][0]} had the most revenue: {truth[0][0]} {show(truth[0][1])}")

    fewest = ask("which country had the lowest conversion rate last month?")
    period = fewest["understood"]["period"]
    rates = daily_sum(project, "conversion_rate", period["start"], period["end"], "country")
    lowest = min(rates, key=rates.get)
    assert f"country {lowest} had the least conversion_rate: {lowest} {show(rates[lowest], 'percent')}" in fewest["answer"]

    compared = ask("Compare revenue this week to last week")
    now, before = compared["understood"]["period"], compared["understood"]["against"]
    assert before["label"] == "the same days of last week"
    this_week = daily_sum(project, "revenue", now["start"], now["end"])["all"]
    last_week = daily_sum(project, "revenue", before["start"], before["end"])["all"]
    assert f": {show(this_week)}, against {show(last_week)} over the same days of last week" in compared["answer"]
    # each number with the metric, slice and days it comes from: this week's, last week's, the change between them
    spans = [{"start": p["start"], "end": p["end"]} for p in (now, before)]
    assert [(n["value"], {k: n.get(k) for k in ("start", "end")}) for n in compared["numbers"][:2]] == [
        (pytest.approx(this_week), spans[0]), (pytest.approx(last_week), spans[1])]
    assert compared["numbers"][2]["between"] == spans[::-1] and {n["metric"] for n in compared["numbers"]} == {"revenue"}
    assert [(n["dimension"], n["member"]) for n in ranked["numbers"]] == [("channel", m) for m, _ in truth[:5]]

    week = ask("What was revenue last week?")
    period = week["understood"]["period"]
    assert date.fromisoformat(period["start"]).weekday() == 0 and period["label"] == "last week"
    assert week["answer"] == (f"revenue over last week ({period['start']} to {period['end']}): "
                              f"{show(daily_sum(project, 'revenue', period['start'], period['end'])['all'])}.")


def test_a_day_not_in_the_data_yet_is_said_and_the_newest_complete_day_answered(project):
    newest, revenue = query(project, LATEST_REVENUE)[0]
    today = project.warehouse.now().date()
    assert newest < today  # the test's data ends before the clock's today
    result = ask("What was revenue today?")
    assert result["answer"].startswith(f"Today ({today.isoformat()}) is not in the data yet (not complete, or not "
                                       f"loaded); the newest complete day is {newest.isoformat()}: revenue on "
                                       f"{newest.isoformat()}: {show(revenue)}")
    assert result["data_through"] == newest.isoformat()


def test_what_cannot_be_answered_is_declined_at_once_saying_what_can(project, scripted_llm):
    asked = len(scripted_llm.requests)
    for question, says in (("What will revenue be next month?", "does not forecast"),
                           ("How many customers churned last month?", "no metric for that"),
                           ("revenue in DE vs FR", "one slice at a time"),
                           ("what were orders in Q3", "which days \"q3\" means")):
        result = ask(question)
        assert result["path"] == "declined" and not result["grounded"] and says in result["answer"], result
        assert result["understood"]["declined"] == result["answer"]
    assert len(scripted_llm.requests) == asked  # no model call


def test_anything_wrong_lists_the_open_items_about_the_metric_not_todays_value(project):
    result = ask("Is anything wrong with refunds?")
    period = result["understood"]["period"]
    ids = [i for (i,) in query(project, "select id from memory where status = 'active' and metric = 'refund_rate' "
                                        "and kind not in ('prepared_answer', 'pace_to_goal') and cast(coalesce("
                                        "valid_to, period_start) as date) >= ? order by case severity when 'critical' "
                                        "then 0 when 'warning' then 1 else 2 end, period_start desc, score desc",
                                [period["start"]])]
    prepared = {i for (i,) in query(project, "select id from memory where kind = 'prepared_answer'")}
    assert result["understood"]["intent"] == "review"
    assert [i for i in result["cited"] if i not in prepared] == ids[:5]
    assert result["answer"].startswith(f"Over the last 90 days ({period['start']} to {period['end']}), memory holds "
                                       f"{len(ids)} open item(s) about refund_rate" if ids else "Memory holds no open")


def search(*words: str) -> list[dict]:
    result = CliRunner().invoke(app, ["memory", "search", "--json", *words])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)["items"]


def test_search_meets_peoples_words_plurals_country_names_and_the_projects_aliases(project):
    metric = query(project, "select metric from memory where kind = 'unusual_change' "
                                "order by score desc limit 1")[0][0]
    word = max(metric.split("_"), key=len)  # 'refund' of refund_rate, written as people write it: 'refunds'
    singular = word.removesuffix("s")
    plural = search(f"{singular}s")
    assert plural and plural == search(singular)
    # a member by its other name: the project's aliases, and every country's name for its code
    member, alias, items = query(project, "select m.member, any_value(a.alias), count(distinct m.id) from memory m join "
                                          "member_aliases a using (member) where m.status = 'active' and m.kind <> "
                                          "'prepared_answer' group by m.member order by 3 desc")[0]
    by_alias = search(alias)
    assert by_alias and all(f["member"] == member for f in by_alias[:items])
    countries = query(project, "select distinct member from metric_values where dimension = 'country'")
    assert all((pycountry.countries.get(alpha_2=code).name.lower(),) in
               query(project, "select alias from member_aliases where member = ?", [code]) for (code,) in countries)
    # the subject first: an item about the metric ranks above one that only mentions it
    about = search(metric.replace("_", " "))
    assert about[0]["metric"] == metric


def test_a_slice_is_named_by_its_alias_in_a_question(project):
    code = query(project, "select member from member_aliases where alias = 'germany'")[0][0]
    result = ask("What was revenue in Germany last week?")
    assert result["understood"]["slice"] == f"country:{code}"


def test_a_prepared_answer_needs_no_model_and_is_recorded(project, scripted_llm):
    day, revenue = query(project, LATEST_REVENUE)[0]
    result = ask("What was", "revenue", "yesterday?")  # words unquoted, as they come
    assert result["path"] == "prepared" and result["grounded"]
    assert f"{day.isoformat()}: {show(revenue)}" in result["answer"]
    assert (result["numbers"][0]["day"], result["numbers"][0]["value"]) == (day.isoformat(), revenue)  # kept overnight
    shown = CliRunner().invoke(app, ["memory", "show", result["cited"][0]])  # the prepared answer, whole
    assert shown.exit_code == 0 and f"number {show(revenue)} = {revenue:g}, revenue on {day.isoformat()} from daily_values" in shown.stdout
    assert result["prompt_tokens"] == result["completion_tokens"] == 0 and scripted_llm.requests == []
    # how fast: bench/ask.py; that it starts neither Prefect nor a model client:
    # test_ask_starts_no_prefect_and_no_model_client_for_a_prepared_answer
    assert result["recorded"] == "pending"  # kept aside: no warehouse opened to write; `reverie stats` moves it in
    assert CliRunner().invoke(app, ["stats", "--json"]).exit_code == 0
    assert query(project, "select path, question, grounded from asks where ask_id = ?", [result["ask_id"]]) == [
        ("prepared", "What was revenue yesterday?", True)]


def test_memory_answers_in_one_call_citing_memory_with_its_numbers(project, scripted_llm):
    item_id, title = query(project, "select id, title from memory where status = 'active' and kind = "
                                    "'unusual_change' order by score desc limit 1")[0]
    quoted = title.split(":")[0]  # "revenue down 92.6% (country DE) on 2026-02-18"
    scripted_llm.script(lambda request: {"role": "assistant", "content": f"{quoted} [{item_id}]."})
    result = ask("Summarise the big story for me")  # no metric named: memory reads it
    assert result["path"] == "memory" and result["grounded"], result
    assert result["cited"] == [item_id] and result["answer"] == f"{quoted} [{item_id}]."
    assert (result["prompt_tokens"], result["completion_tokens"]) == (100, 20)
    assert len(scripted_llm.requests) == 1 and item_id in scripted_llm.requests[0]["messages"][0]["content"]
    assert query(project, "select count(*) from llm_calls where purpose = 'ask' and cycle_id is null")[0][0] >= 1


def test_a_made_up_number_is_not_said_and_memory_is_listed_instead(project, scripted_llm):
    item_id, metric = query(project, "select id, metric from memory where status = 'active' and kind = "
                                     "'unusual_change' order by score desc limit 1")[0]
    scripted_llm.script(lambda request: {"role": "assistant", "content": f"{metric} fell 42.5% [{item_id}]."})
    result = ask("Give me the headline story")
    assert result["path"] == "memory" and not result["grounded"]
    assert result["answer"].startswith("I could not ground an answer in memory's values (42.5%")
    assert "42.5" not in result["answer"].split(")", 1)[1] and result["cited"]


def test_an_answer_that_does_not_name_its_metric_is_not_kept(project, scripted_llm):
    item_id, member, period, observed = query(
        project, "select id, member, period_start, evidence->>'observed' from memory where status = 'active' and "
                 "kind = 'unusual_change' and dimension <> 'overall' order by score desc limit 1")[0]
    scripted_llm.script(lambda request: {"role": "assistant", "content": f"In {member} it was {show(float(observed))} "
                                                                         f"on {period.isoformat()} [{item_id}]."})
    result = ask(f"Summarise the {member} story")
    assert not result["grounded"] and "does not name what it is about" in result["answer"]


def test_cold_answers_from_sql_alone_and_grounds_its_numbers(project, scripted_llm):
    day, revenue = query(project, LATEST_REVENUE)[0]
    sql = ("select value from metric_values where metric = 'revenue' and grain = 'day' and dimension = 'overall' "
           f"and period_start = date '{day.isoformat()}'")
    scripted_llm.script(lambda request: tool_call("run_sql", {"sql": sql}),
                        lambda request: tool_call("answer", {"answer": f"revenue was {{q1.value}} on {day.isoformat()}.",
                                                             "evidence_queries": [sql]}))
    result = ask("--no-memory", "What was revenue yesterday?")
    assert result["path"] == "cold" and result["grounded"], result
    assert result["answer"] == f"revenue was {show(revenue)} on {day.isoformat()}."
    assert result["prompt_tokens"] == 200 and "mem-" not in json.dumps(scripted_llm.requests)


def test_ask_answers_while_a_cycle_holds_the_warehouse_and_records_it_after(project, scripted_llm):
    item_id, title = query(project, "select id, title from memory where status = 'active' and kind = "
                                    "'unusual_change' order by score desc limit 1")[0]
    scripted_llm.script(lambda request: {"role": "assistant", "content": f"{title.split(':')[0]} [{item_id}]."})
    before = query(project, "select count(*) from asks")[0][0]
    with held_by_another_process(project.warehouse):
        held = ask("What was revenue yesterday?")
        assert held["path"] == "prepared" and held["recorded"] == "pending"
        torn = project.warehouse.folder / "pending-asks.jsonl"
        with open(torn, "a") as pending:
            pending.write('{"ask_id": "ask-killed-while-wri')  # an ask killed in the middle of its line
        with_model = ask("Summarise the big story for me")
        assert with_model["path"] == "memory" and with_model["recorded"] == "pending"
    after = ask("Summarise the big story for me")  # it opens the warehouse for its model call: all are moved in
    assert after["recorded"] == "warehouse"
    assert query(project, "select count(*) from asks")[0][0] == before + 3
    assert not any((project.warehouse.folder / name).exists() for name in ("pending-asks.jsonl", "pending-asks.jsonl.moving"))


def test_the_cold_path_says_which_cycle_holds_the_warehouse(project):
    marker = project.warehouse.folder / RUNNING_FILE
    marker.write_text(json.dumps({"cycle_id": "c-busy", "started_at": "2026-03-02T03:00:00", "pid": os.getpid()}))
    try:
        result = CliRunner().invoke(app, ["ask", "--no-memory", "What was revenue yesterday?"])
    finally:
        marker.unlink()
    assert result.exit_code == 2 and "c-busy" in result.output and "since 2026-03-02T03:00:00" in result.output
    assert "Traceback" not in result.output


def _entry(project, *args: str) -> tuple[object, list[str]]:
    """`reverie ARGS` through the command's entry as a process; what it did and the heavy modules it imported."""
    script = ("import sys\nfrom reverie.main import main\nsys.argv = ['reverie', *sys.argv[1:]]\n"
              "try:\n    main()\nexcept SystemExit as exit:\n    code = exit.code\n"
              "print([m for m in ('prefect', 'openai', 'great_expectations', 'typer', 'rich') if m in sys.modules], "
              "file=sys.stderr)\nsys.exit(code)")
    done = processes.run([sys.executable, "-c", script, *args], cwd=project.project_dir,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    return done, json.loads(done.stderr.strip().splitlines()[-1].replace("'", '"'))


def test_ask_starts_no_prefect_no_model_client_and_no_full_command_line_for_a_prepared_answer(project):
    done, imported = _entry(project, "ask", "What was revenue", "yesterday?", "--json")
    assert done.returncode == 0 and imported == [], done.stderr
    assert json.loads(done.stdout)["path"] == "prepared"
    done, imported = _entry(project, "ask", "--help")  # what the fast entry does not read, the full command line does
    assert done.returncode == 0 and "--no-prepared" in done.stdout and "typer" in imported
    done, imported = _entry(project, "ask", "--bogus", "revenue?")
    assert done.returncode == 2 and "No such option" in done.stderr


def test_an_unexpected_error_is_one_line_and_its_traceback_a_file(tmp_path):
    (tmp_path / "reverie.toml").write_text("")
    (tmp_path / ".reverie").mkdir()
    (tmp_path / ".reverie" / "warehouse.duckdb").write_text("not a database")
    done = processes.run([sys.executable, "-c", "from reverie.main import main; main()", "memory", "list"],
                         cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    assert done.returncode == 1 and len(done.stderr.splitlines()) == 1, done.stderr
    log = re.search(r"details in (\S+)\)$", done.stderr.strip()).group(1)
    assert done.stderr.startswith("error: IOException: ") and "Traceback" in (tmp_path / log).read_text()


def test_ask_before_any_cycle_says_so_in_one_line(tmp_path):
    (tmp_path / "reverie.toml").write_text("")
    done = processes.run([sys.executable, "-c", "from reverie.main import main; main()", "ask", "revenue?"],
                         cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith("error: no warehouse at ") and len(done.stderr.splitlines()) == 1


def test_the_night_prepares_again_the_questions_asked_and_replaces_last_nights(project, scripted_llm):
    (day,) = query(project, "select max(cast(period_start as date)) from metric_values where complete")[0]
    question = f"How many orders in DE on {(day - timedelta(days=3)).isoformat()}?"
    assert ask(question)["path"] == "computed"  # not prepared: nobody asked it before
    (member,) = query(project, "select member from memory where status = 'active' and kind = 'unusual_change' "
                               "and dimension <> 'overall' order by score desc limit 1")[0]
    unreadable = f"Summarise the {member} story"  # names no metric: reverie cannot read it
    stories = []

    def reply(request):  # a model that answers with the first fact it is shown, and says nothing as an analyst
        text = request["messages"][0]["content"]
        if "Answer the question below" not in text:
            return {"role": "assistant", "content": "nothing to add"}
        item_id, title = re.search(r"\[(mem-\w+)\] ([^:\n]+)", text).groups()
        stories.append(f"{title} [{item_id}].")
        return {"role": "assistant", "content": stories[-1]}

    scripted_llm.script(*[reply] * 12)
    assert ask(unreadable)["path"] == "memory"
    prepared_before = query(project, "select count(*) from memory where kind = 'prepared_answer' and status = 'active'")[0][0]
    config = project.project_dir / "reverie.toml"
    config.write_text(config.read_text().replace("analysts = 0", "analysts = 1"))  # a model at night
    try:
        generate(project.landing_dir, 1)
        result = run_cycle(project.project_dir)
    finally:
        config.write_text(config.read_text().replace("analysts = 1", "analysts = 0"))
    prepare = result["stages"]["prepare"]
    assert prepare["from_asks"] >= 2 and prepare["superseded"] == prepared_before and prepare["calls"] >= 1
    again = ask(question)
    assert again["path"] == "prepared" and again["prompt_tokens"] == 0
    orders = query(project, "select value from metric_values where metric = 'orders' and grain = 'day' and "
                            "dimension = 'country' and member = 'DE' and cast(period_start as date) = ?",
                   [day - timedelta(days=3)])[0][0]
    assert show(orders) in again["answer"]
    # the question reverie cannot read was answered at night by the model, grounded, and costs nothing now
    story_again = ask(f"{unreadable.upper()}!")
    assert story_again["path"] == "prepared" and story_again["answer"] == stories[-1] and story_again["prompt_tokens"] == 0
    assert query(project, "select count(*) from llm_calls where purpose = 'prepare' and cycle_id = ?",
                 [result["cycle_id"]]) == [(prepare["calls"],)]
    # prepared answers are memory items of their own kind, out of the list, search and the brief
    listed = CliRunner().invoke(app, ["memory", "list", "--json", "--limit", "500"])
    assert all(i["kind"] != "prepared_answer" for i in json.loads(listed.stdout)["items"])
    searched = CliRunner().invoke(app, ["memory", "search", "--json", "orders"])
    assert all(i["kind"] != "prepared_answer" for i in json.loads(searched.stdout)["items"])
    brief = Path(result["stages"]["deliver"]["brief"]).read_text()
    assert "What was" not in brief and "prepared" not in brief


def test_stats_count_asks_by_path_and_what_the_nights_saved(project):
    result = CliRunner().invoke(app, ["stats", "--json", "--days", "3650"])
    assert result.exit_code == 0, result.output
    stats = json.loads(result.stdout)
    by_path = {p["path"]: p for p in stats["asks"]}
    recorded = dict(query(project, "select path, count(*) from asks group by path"))
    assert {p: by_path[p]["asks"] for p in by_path} == recorded
    nights = query(project, "select coalesce(sum(prompt_tokens + completion_tokens), 0) from llm_calls where cycle_id is not null")
    a = stats["amortisation"]
    assert a["night_tokens"] == nights[0][0] and len(stats["cycles"]) >= 1
    # a saving is claimed only against cold asks that answered, for asks that answered
    ((cold_answered, cold_mean),) = query(project, "select count(*), avg(prompt_tokens + completion_tokens) from asks "
                                                   "where path = 'cold' and grounded")
    assert a["cold_answered"] == cold_answered
    if cold_answered:
        warm = query(project, "select count(*), coalesce(sum(prompt_tokens + completion_tokens), 0) from asks "
                              "where path in ('prepared', 'computed', 'memory') and grounded")[0]
        assert a["saved_tokens"] == round(warm[0] * cold_mean - warm[1])
        assert a["net_tokens"] == a["saved_tokens"] - a["night_tokens"]
    else:
        assert a["saved_tokens"] is None and "not measured" in CliRunner().invoke(app, ["stats"]).output
    human = CliRunner().invoke(app, ["stats", "--days", "3650"])
    assert "amortisation" in human.output and "prepared" in human.output
