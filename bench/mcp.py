"""What reverie's MCP server is worth to an outside agent: the same agent loop and model answer the ask benchmark's
questions once with reverie's MCP tools and once with only read-only SQL on the warehouse; and each tool's latency
as a client sees it from `reverie mcp` running as a process.

    uv run python -m bench.mcp                          # the embedded model, a demo project of 60 days + 2 nights
    uv run python -m bench.mcp --json
    uv run python -m bench.mcp --questions 20           # 20 of the questions, spread over their kinds (quicker)
    OPENAI_BASE_URL=... REVERIE_MODEL=... uv run python -m bench.mcp   # any OpenAI-compatible endpoint

The questions and their truth are bench.ask's (tune phrasings). The agent (bench/agent.py) gets a system prompt,
the question and its tools, and calls tools until it answers in words or six turns pass. With MCP its tools are
the server's, listed by the SDK's client over stdio, with the server's instructions; with SQL its one tool is the
analyst's `run_sql` (reverie's sandbox: one read-only SELECT, 200 rows, 5 s). The embedded model gets two short
turns, the first made to call `ask` or `run_sql` (left to choose, it calls no tool at all), the last to answer.

Reported per side: correct (the truth is in the answer; for a question to decline, an answer that says it
cannot), honest declines, wrong, tool calls, tokens and seconds per question. As the ceiling of the MCP side, each
question is also passed to `ask` as it was asked and its answer said as it came (no model: what an agent that
relays gets). Tool latency: each tool called `--calls` times over one stdio session, p50 and p95 as the client
measures them (the process's start-up apart).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import sys
import time
from pathlib import Path

from mcp import Client
from mcp.client.stdio import StdioServerParameters
from openai import AsyncOpenAI

from bench import report
from bench.agent import MAX_TURNS, AgentRun, mcp_call, mcp_tools, run_agent
from bench.ask import DECLINE, demo_project, questions

REVERIE = str(Path(sys.executable).parent / "reverie")
SAYS_IT_CANNOT = re.compile(r"\b(cannot|can't|can not|unable|not able|no (data|value|metric|way)|does not|doesn't|"
                            r"do not have|don't have|declin\w*|not (available|possible)|at a time|nothing on)\b",
                            re.IGNORECASE)
SQL_INSTRUCTIONS = ("The warehouse's tables: metric_values (metric, grain, period_start, dimension, member, value, "
                    "numerator, denominator, complete; dimension 'overall' and member 'all' is the total), metrics "
                    "(name, description, measure, grains, dimensions) and memory (verified insights).")


def verdict(truth: str, answer: str) -> str:
    """right, decline (said it cannot) or wrong — for an agent's words, as bench.ask scores reverie's."""
    cannot = bool(SAYS_IT_CANNOT.search(answer))
    if truth == DECLINE:
        return "right" if cannot else "wrong"
    if truth.lower() in answer.lower():
        return "right"
    return "decline" if cannot else "wrong"


def tool_examples(listed_metrics: dict, item_id: str | None) -> dict[str, dict]:
    """One representative call of each tool on the demo project."""
    metric = listed_metrics["metrics"][0]
    return {"ask": {"question": "what was revenue last week?"}, "list_metrics": {},
            "search_memory": {"query": "revenue", "limit": 10}, "get_item": {"item_id": item_id or "mem-none"},
            "metric_history": {"metric": metric["name"], "grain": "day"}, "latest_brief": {}}


async def tool_latencies(folder: Path, calls: int) -> dict:
    """Each tool called `calls` times over one stdio session: p50/p95 in ms; and the session's start-up."""
    started = time.monotonic()
    async with Client(StdioServerParameters(command=REVERIE, args=["mcp", "--project", str(folder)])) as client:
        start_up = time.monotonic() - started
        listed = json.loads((await client.call_tool("list_metrics", {})).content[0].text)
        found = json.loads((await client.call_tool("search_memory", {"limit": 1})).content[0].text)["items"]
        timings = {}
        for tool, args in tool_examples(listed, found[0]["id"] if found else None).items():
            spent = []
            for _ in range(calls):
                begun = time.monotonic()
                result = await client.call_tool(tool, args)
                spent.append((time.monotonic() - begun) * 1000)
                assert not result.is_error, (tool, result.content)
            spent.sort()
            timings[tool] = {"calls": calls, "p50_ms": round(statistics.median(spent), 1),
                             "p95_ms": round(spent[min(calls - 1, int(0.95 * calls))], 1)}
    return {"start_up_s": round(start_up, 2), "tools": timings}


async def answered(folder: Path, asked: list[dict], llm: AsyncOpenAI, model: str, embedded: bool) -> list[dict]:
    """Every question asked of the agent twice: with reverie's MCP tools, then with read-only SQL. The embedded model
    gets two short turns, the first made to call the side's first tool (`ask`, `run_sql`): left to choose, it calls
    none (reverie's own cold path cuts it so too)."""
    from reverie.analyst.loop import EMBEDDED_MAX_TOKENS

    max_tokens, turns = (EMBEDDED_MAX_TOKENS, 2) if embedded else (None, MAX_TURNS)
    from reverie.analyst.run import AnalystRun
    from reverie.analyst.tool_calls import run_tool
    from reverie.analyst.tool_schemas import tool_schemas
    from reverie.config import load_settings

    rows = []
    async with Client(StdioServerParameters(command=REVERIE, args=["mcp", "--project", str(folder)])) as client:
        tools, call = mcp_tools(await client.list_tools()), mcp_call(client)
        for q in asked:  # the ceiling of an agent with the tools: the question passed to `ask` as asked, its answer said
            started = time.monotonic()
            answer = json.loads(await call("ask", {"question": q["tune"]}))["answer"]
            relayed = AgentRun(answer, [{"tool": "ask"}], seconds=round(time.monotonic() - started, 3))
            rows.append({"side": "relay", **_scored(q, relayed)})
        for q in asked:
            run = await run_agent(llm, model, q["tune"], tools, call, client.instructions or "", turns, max_tokens,
                                  first="ask" if embedded else None)
            rows.append({"side": "mcp", **_scored(q, run)})
    warehouse = load_settings(folder).warehouse
    sql_tools = [t for t in tool_schemas([]) if t["function"]["name"] == "run_sql"]

    async def sql_call(name: str, args: dict) -> str:
        return await asyncio.to_thread(run_tool, name, json.dumps(args), {}, model, AnalystRun(warehouse=warehouse))

    for q in asked:
        run = await run_agent(llm, model, q["tune"], sql_tools, sql_call, SQL_INSTRUCTIONS, turns, max_tokens,
                              first="run_sql" if embedded else None)
        rows.append({"side": "sql", **_scored(q, run)})
    return rows


def _scored(q: dict, run) -> dict:
    return {"question": q["tune"], "truth": q["truth"], "kind": q["kind"], "answer": run.answer,
            "verdict": verdict(q["truth"], run.answer), "tool_calls": len(run.calls),
            "tools": [c["tool"] for c in run.calls], "tokens": run.prompt_tokens + run.completion_tokens,
            "seconds": run.seconds}


def summary(rows: list[dict]) -> list[dict]:
    sides = []
    for side, name in (("relay", "ask, question as asked"), ("mcp", "agent + reverie MCP"),
                       ("sql", "agent + read-only SQL")):
        got = [r for r in rows if r["side"] == side]
        if got:
            sides.append({"side": name, "questions": len(got),
                          **{v: round(sum(r["verdict"] == v for r in got) / len(got), 2) for v in ("right", "decline", "wrong")},
                          "tool_calls": round(statistics.mean(r["tool_calls"] for r in got), 2),
                          "tokens": round(statistics.mean(r["tokens"] for r in got)),
                          "seconds": round(statistics.mean(r["seconds"] for r in got), 2)})
    return sides


def table(result: dict) -> tuple[tuple, list[tuple]]:
    header = ("what", "n", "right", "decline", "wrong", "tool calls/q", "tokens/q", "s/q or p50 ms", "p95 ms")
    rows = [(s["side"], s["questions"], s["right"], s["decline"], s["wrong"], s["tool_calls"], s["tokens"],
             s["seconds"], "") for s in result["summary"]]
    rows += [(f"tool {tool}", t["calls"], "", "", "", "", "", t["p50_ms"], t["p95_ms"])
             for tool, t in result["latency"]["tools"].items()]
    return header, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--questions", type=int, default=0, help="ask N of the questions, spread over their kinds "
                                                                 "(0: all)")
    parser.add_argument("--calls", type=int, default=50, help="calls of each tool for its latency")
    parser.add_argument("--no-agents", action="store_true", help="tool latency only (no model)")
    report.output_options(parser)
    args = parser.parse_args()
    from reverie.config import load_settings
    from reverie.llm import open_llm

    folder = demo_project(args.days)
    asked = questions(folder / ".reverie" / "warehouse.duckdb")
    asked = asked[:: max(1, len(asked) // args.questions)][: args.questions] if args.questions else asked
    latency = asyncio.run(tool_latencies(folder, args.calls))
    rows, model = [], None
    if not args.no_agents:
        settings = load_settings(folder)
        with open_llm(settings.llm, folder / ".reverie" / "logs") as llm:
            model = llm.model
            client = AsyncOpenAI(base_url=llm.base_url, api_key=settings.llm.api_key or "embedded",
                                 timeout=settings.llm.timeout_seconds, max_retries=0)
            rows = asyncio.run(answered(folder, asked, client, llm.model, llm.embedded))
    result = {"machine": report.machine(), "model": model, "questions": len(asked), "summary": summary(rows),
              "latency": latency, "rows": rows}
    report.keep(args, "mcp", result)
    if args.json:
        print(json.dumps(result, default=str))
        return
    report.print_table(*table(result))
    print(f"model: {model or 'none'}; `reverie mcp` start-up over stdio: {latency['start_up_s']} s")


if __name__ == "__main__":
    main()
