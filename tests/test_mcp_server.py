"""`reverie mcp` driven by the MCP SDK's own client, over stdio and streamable HTTP, against a demo project after two
nights: every tool and resource, the prompt, bad arguments, a cycle holding the warehouse, the token, and a scripted
agent answering the ask benchmark's questions through the tools."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import time
from contextlib import asynccontextmanager

import duckdb
import httpx
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from openai import AsyncOpenAI

from bench.agent import mcp_call, mcp_tools, run_agent
from bench.ask import DECLINE, questions, score
from reverie.flows.local_run import run_cycle
from reverie.generator import generate
from reverie.snapshot import SNAPSHOT_FILE
from reverie.wording import show
from tests.helpers import processes
from tests.helpers.scripted_llm import tool_call, tool_results
from tests.helpers.warehouse import held_by_another_process

TOOLS = {"ask", "search_memory", "get_item", "metric_history", "list_metrics", "latest_brief"}


@pytest.fixture(scope="module")
def project(tmp_path_factory, cycled, session_llm):
    """A demo project after two nights: the second lands a new day, and the night prepares answers for it."""
    settings = cycled(tmp_path_factory.mktemp("mcp") / "shop")
    generate(settings.landing_dir, 1)
    session_llm.script()
    assert run_cycle(settings.project_dir)["status"] == "completed"
    return settings


def stdio(settings) -> Client:
    """A client session with `reverie mcp` started the way the docs say, as a desktop client starts it."""
    return Client(StdioServerParameters(command=processes.REVERIE, args=["mcp", "--project", str(settings.project_dir)]))


def run(session: Client, steps):
    """Run `steps(client)` in a session of its own; what it returns."""
    async def main():
        async with session as client:
            return await steps(client)

    return asyncio.run(main())


async def called(client, tool: str, **arguments) -> dict | str:
    """A tool's result (its JSON read back), or the error text it gave, prefixed 'error: '."""
    result = await client.call_tool(tool, arguments)
    text = "\n".join(c.text for c in result.content)
    if result.is_error:
        return f"error: {text}"
    return json.loads(text) if text.startswith("{") else text


def sql(settings, statement: str, params=None) -> list[tuple]:
    with duckdb.connect(str(settings.warehouse.folder / SNAPSHOT_FILE), read_only=True) as con:
        return con.execute(statement, params or []).fetchall()


def recorded_asks(settings, warehouse: bool = True) -> set[str]:
    """The ask ids in the ledger: kept aside in the pending file, or (`warehouse`) moved into the asks table."""
    pending = settings.warehouse.folder / "pending-asks.jsonl"
    ids = {json.loads(line)["ask_id"] for line in pending.read_text().splitlines()} if pending.exists() else set()
    if warehouse:
        with duckdb.connect(str(settings.warehouse), read_only=True) as con:
            ids |= {i for (i,) in con.execute("select ask_id from asks").fetchall()}
    return ids


def test_the_tools_are_listed_with_schemas_an_agent_can_fill(project):
    async def steps(client):
        return await client.list_tools(), client.instructions

    listed, instructions = run(stdio(project), steps)
    tools = {t.name: t for t in listed.tools}
    assert set(tools) == TOOLS
    for tool in tools.values():
        assert tool.description and tool.input_schema["type"] == "object"
        assert tool.annotations.read_only_hint is (tool.name != "ask")  # ask writes its ledger, nothing else
    assert tools["metric_history"].input_schema["properties"]["grain"]["enum"] == ["day", "week", "month"]
    assert tools["metric_history"].input_schema["required"] == ["metric"]
    assert "cite" in instructions and "data_through" in instructions


def test_list_metrics_is_the_warehouse_s_catalogue_with_latest_values(project):
    listed = run(stdio(project), lambda client: called(client, "list_metrics"))
    expected = dict(sql(project, "select name, dimensions from metrics"))
    assert {m["name"]: m["dimensions"] for m in listed["metrics"]} == expected
    latest = dict(sql(project, "select metric, value from daily_values where dimension = 'overall' and day = "
                               "(select latest_day from snapshot_info)"))
    assert {m["name"]: m["latest_value"] for m in listed["metrics"]} == latest
    assert listed["data_through"] == str(sql(project, "select latest_day from snapshot_info")[0][0])
    assert all(m["grains"] and m["definition"].endswith(".yml") for m in listed["metrics"])


def test_ask_answers_with_the_period_its_freshness_and_ids_that_resolve(project, scripted_llm):
    async def steps(client):
        answer = await called(client, "ask", question="what was revenue last week?")
        declined = await called(client, "ask", question="What will revenue be next month?")
        items = [await called(client, "get_item", item_id=i) for i in answer["cited"]]
        from_memory = await called(client, "ask", question="why are customers unhappy with apparel?")
        return answer, declined, items, from_memory, await called(client, "list_metrics")

    answer, declined, items, from_memory, after = run(stdio(project), steps)
    period = answer["understood"]["period"]
    (week,) = sql(project, "select sum(value) from daily_values where metric = 'revenue' and dimension = 'overall' "
                           "and day between ? and ?", [period["start"], period["end"]])[0]
    assert answer["path"] in ("prepared", "computed") and answer["grounded"]
    assert show(week, "number") in answer["answer"] and period["label"] == "last week"
    assert [(n["metric"], n["dimension"], n["start"], n["end"]) for n in answer["numbers"]] == [
        ("revenue", "overall", period["start"], period["end"])] and answer["numbers"][0]["value"] == pytest.approx(week)
    assert answer["data_through"] == str(sql(project, "select latest_day from snapshot_info")[0][0])
    assert answer["cited"] and [i["id"] for i in items] == answer["cited"]
    assert declined["path"] == "declined" and declined["cited"] == []
    # the model was called on the memory path (its server's output kept off the protocol: the session went on)
    assert from_memory["path"] == "memory" and scripted_llm.requests and after["metrics"]
    assert {answer["ask_id"], declined["ask_id"], from_memory["ask_id"]} <= recorded_asks(project)


def test_search_memory_filters_by_metric_slice_kind_severity_and_period(project):
    metric, dimension, member, kind, severity, day = sql(
        project, "select metric, dimension, member, kind, severity, period_start::date::varchar from memory where status "
                 "= 'active' and kind <> 'prepared_answer' and dimension <> 'overall' order by period_start desc")[0]
    filters = [{"severity": severity}, {"metric": metric, "dimension": dimension},
               {"kind": kind, "since": day}, {"dimension": dimension, "member": member}]

    async def steps(client):
        return [await called(client, "search_memory", limit=50, **f) for f in filters]

    for given, found in zip(filters, run(stdio(project), steps)):
        where = " and ".join(["status = 'active'", "kind <> 'prepared_answer'", *(
            f"period_start >= '{v}'" if k == "since" else f"{k} = '{v}'" for k, v in given.items())])
        expected = {i for (i,) in sql(project, f"select id from memory where {where}")}
        assert expected and {i["id"] for i in found["items"]} == expected, given


def test_get_item_shows_evidence_provenance_and_history(project):
    (item_id,) = sql(project, "select id from memory where status = 'active' and kind = 'unusual_change' limit 1")[0]

    async def steps(client):
        return await called(client, "get_item", item_id=item_id), await client.read_resource(f"reverie://memory/{item_id}")

    item, resource = run(stdio(project), steps)
    assert item["id"] == item_id and item["evidence"] and item["source"].startswith("detector:")
    assert item["cycle_id"] and item["history"][0]["change"] == "insert"
    assert json.loads(resource.contents[0].text)["id"] == item_id


def test_metric_history_is_the_warehouse_s_values_with_a_usual_range(project):
    async def steps(client):
        return (await called(client, "metric_history", metric="revenue", grain="week", last=8),
                await called(client, "metric_history", metric="orders", dimension="country", member="Germany", last=7))

    weeks, germany = run(stdio(project), steps)
    with duckdb.connect(str(project.warehouse), read_only=True) as con:
        expected = con.execute("select cast(period_start as date)::varchar, value, complete from metric_values where "
                               "metric = 'revenue' and grain = 'week' and dimension = 'overall' order by period_start "
                               "desc limit 8").fetchall()[::-1]
        days = con.execute("select cast(period_start as date)::varchar, value from metric_values where metric = "
                           "'orders' and grain = 'day' and dimension = 'country' and member = 'DE' order by "
                           "period_start desc limit 7").fetchall()[::-1]
    assert [(p["period_start"], p["value"], p["complete"]) for p in weeks["points"]] == expected
    usual = weeks["usual_range"]
    assert usual["low"] <= usual["median"] <= usual["high"] and "complete" in usual["from"]
    assert germany["member"] == "DE" and [(p["period_start"], p["value"]) for p in germany["points"]] == days


def test_the_brief_resources_and_the_prompt(project):
    async def steps(client):
        return (await called(client, "latest_brief"), await client.list_resources(),
                await client.list_resource_templates(), await client.read_resource("reverie://brief/latest"),
                await client.read_resource("reverie://metrics/revenue"),
                await client.get_prompt("use_reverie", {"question": "how did revenue do last week?"}))

    brief, resources, templates, brief_resource, metric, prompt = run(stdio(project), steps)
    written = (project.briefs_dir / "latest.md").read_text()
    assert brief == written and brief_resource.contents[0].text == written
    assert [str(r.uri) for r in resources.resources] == ["reverie://brief/latest"]
    assert {t.uri_template for t in templates.resource_templates} == {"reverie://metrics/{name}",
                                                                      "reverie://memory/{item_id}"}
    assert json.loads(metric.contents[0].text)["measure"] == "sum"
    text = prompt.messages[0].content.text
    assert "how did revenue do last week?" in text and "cite" in text.lower()


def test_bad_arguments_get_one_line_that_says_what_to_do(project):
    metrics = sorted(m for (m,) in sql(project, "select name from metrics"))
    asked = [("metric_history", {"metric": "revenu"}), ("metric_history", {"metric": "revenue", "grain": "year"}),
             ("metric_history", {}), ("metric_history", {"metric": "revenue", "dimension": "planet"}),
             ("get_item", {"item_id": "mem-000000000000"}), ("search_memory", {"kind": "gossip"}),
             ("search_memory", {"since": "yesterday"}), ("ask", {"question": ""})]

    async def steps(client):
        answers = [await called(client, tool, **args) for tool, args in asked]
        try:
            await client.read_resource("reverie://metrics/revenu")
        except Exception as exc:  # the SDK raises the server's error
            answers.append(f"error: {exc}")
        return answers

    answers = run(stdio(project), steps)
    assert all(a.startswith("error: ") and "\n" not in a and "Traceback" not in a for a in answers), answers
    unknown, grain, missing, dimension, item, kind, since, empty, resource = answers
    assert all(m in unknown for m in metrics) and all(m in resource for m in metrics)
    assert "grain" in grain and "'day', 'week' or 'month'" in grain
    assert "metric: Field required" in missing
    assert "country" in dimension and "channel" in dimension
    assert "mem-000000000000" in item and "search_memory" in item
    assert "unusual_change" in kind and "not a date" in since and "question" in empty


def test_before_the_first_cycle_every_tool_says_so_in_one_line(make_project):
    settings = make_project(days=3)

    async def steps(client):
        return [await called(client, tool, **args) for tool, args in (
            ("ask", {"question": "what was revenue yesterday?"}), ("list_metrics", {}), ("search_memory", {}),
            ("metric_history", {"metric": "revenue"}), ("get_item", {"item_id": "mem-1"}), ("latest_brief", {}))]

    answers = run(stdio(settings), steps)
    assert all(a.startswith("error: ") and "\n" not in a for a in answers), answers
    assert all("reverie run" in a for a in answers), answers


def test_the_tools_answer_while_a_cycle_holds_the_warehouse(project):
    (item_id,) = sql(project, "select id from memory where status = 'active' and kind <> 'prepared_answer' limit 1")[0]

    async def steps(client):
        return [await called(client, "ask", question="what was orders last week?"),
                await called(client, "search_memory", query="revenue"),
                await called(client, "metric_history", metric="orders"), await called(client, "get_item", item_id=item_id),
                await called(client, "list_metrics")]

    with held_by_another_process(project.warehouse):
        with pytest.raises(duckdb.IOException):  # held: nobody else opens it
            duckdb.connect(str(project.warehouse), read_only=True)
        answers = run(stdio(project), steps)
    assert not any(isinstance(a, str) for a in answers), answers
    assert answers[0]["path"] in ("prepared", "computed") and answers[1]["items"] and answers[2]["points"]
    assert answers[0]["ask_id"] in recorded_asks(project, warehouse=False)


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@asynccontextmanager
async def over_http(port: int, token: str | None):
    """The SDK's streamable HTTP transport, with the header a deployment's clients send."""
    headers = {"Authorization": f"Bearer {token}"} if token else None
    async with create_mcp_http_client(headers=headers) as http, \
            streamable_http_client(f"http://127.0.0.1:{port}/mcp", http_client=http) as streams:
        yield streams


def test_over_http_with_a_token_and_without_one(project):
    port = processes.free_port()
    with processes.started([processes.REVERIE, "mcp", "--http", "--port", str(port)], cwd=project.project_dir,
                           env={**os.environ, "REVERIE_MCP_TOKEN": "t0ken-for-the-test"},
                           stderr=subprocess.PIPE, text=True) as server:
        deadline = time.monotonic() + 60
        while not _listening(port):
            assert server.poll() is None and time.monotonic() < deadline, server.stderr.read()
            time.sleep(0.05)
        answer = run(Client(over_http(port, "t0ken-for-the-test")),
                     lambda client: called(client, "ask", question="what was revenue last week?"))
        assert answer["path"] in ("prepared", "computed")
        for token in (None, "wrong"):
            refused = httpx.post(f"http://127.0.0.1:{port}/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "ping"},
                                  headers={"Authorization": f"Bearer {token}"} if token else {})
            assert refused.status_code == 401 and "REVERIE_MCP_TOKEN" in refused.text
        with pytest.raises(Exception):  # noqa: B017 -- whatever the SDK raises, the client gets no session
            run(Client(over_http(port, None)), lambda client: client.list_tools())
        assert server.poll() is None  # refusing a call did not stop the server
    said = server.stderr.read()
    assert "a bearer token is required" in said and "t0ken-for-the-test" not in said


def test_off_loopback_without_a_token_it_refuses_to_start(project):
    done = processes.reverie("mcp", "--http", "--host", "0.0.0.0", cwd=project.project_dir, timeout=60,
                             REVERIE_MCP_TOKEN="")
    assert done.returncode == 2 and "REVERIE_MCP_TOKEN" in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_a_scripted_agent_answers_the_ask_benchmark_through_the_tools(project, scripted_llm):
    """The agent of bench/mcp.py, its model scripted to call `ask` with the question and then say the answer."""
    asked = [q | {"question": q[phrasing]} for q in questions(project.warehouse.path) for phrasing in ("tune", "held")]
    ask = lambda request: tool_call("ask", {"question": request["messages"][-1]["content"]})  # noqa: E731
    say = lambda request: {"role": "assistant", "content": json.loads(tool_results(request)[-1])["answer"]}  # noqa: E731
    scripted_llm.script(*[step for _ in asked for step in (ask, say)])

    async def steps(client):
        llm = AsyncOpenAI(base_url=scripted_llm.base_url, api_key="scripted")
        tools, call = mcp_tools(await client.list_tools()), mcp_call(client)
        return [await run_agent(llm, "scripted", q["question"], tools, call) for q in asked]

    runs = run(stdio(project), steps)
    verdicts = []
    for q, agent in zip(asked, runs):
        result = json.loads(agent.calls[0]["result"])
        assert agent.answer == result["answer"] and len(agent.calls) == 1
        verdicts.append(score(q["truth"], {**result, "answer": agent.answer}))
    wrong = [(q["question"], a.answer) for q, a, v in zip(asked, runs, verdicts) if v == "wrong"]
    assert not wrong
    assert verdicts.count("right") >= 0.9 * len(asked)
    assert sum(q["truth"] == DECLINE for q in asked) == 10  # the declines were asked, and declined (none wrong)


def test_a_result_too_long_for_an_agent_is_cut_and_says_so():
    from reverie.mcp_server.tools import MOST_CHARS, bounded

    items = [{"id": f"mem-{i}", "body": "x" * 1000} for i in range(100)]
    cut = bounded({"cycle_id": "c1", "items": items}, "items")
    assert len(json.dumps(cut)) <= MOST_CHARS and cut["items"] == items[: len(cut["items"])]
    assert cut["truncated"] == f"{len(cut['items'])} of 100 items shown"
    assert bounded({"items": items[:3]}, "items") == {"items": items[:3]}
