"""The analyst's conversation: completions within its budgets of turns, tool calls and tokens, tool calls written
as text carried out too, and the embedded model's one short note."""

from __future__ import annotations

import json
import time

import openai

from reverie.analyst.candidates import describe_candidates
from reverie.analyst.evidence import load_catalog
from reverie.analyst.run import AnalystRun
from reverie.analyst.tool_calls import WAREHOUSE_LOCK, run_tool
from reverie.analyst.tool_schemas import tool_schemas
from reverie.config import LLMSettings
from reverie.llm import LLM
from reverie.llm_calls import ledger_row
from reverie.prompts import embedded_prompt, prompt

MAX_INSIGHTS = 3
EMBEDDED_INSIGHTS = 1  # the embedded model writes about the top candidate: reflect stays under a third of a cycle
EMBEDDED_MAX_TOKENS = 160


def complete(llm: LLM, messages: list[dict], tools: list[dict], tool_choice, max_tokens: int, run: AnalystRun):
    """One chat completion, recorded in the ledger; a failed one (openai.OpenAIError) is recorded and raised."""
    started = time.monotonic()
    try:
        response = llm.chat(messages=messages, tools=tools, tool_choice=tool_choice, max_tokens=max_tokens,
                            temperature=0.2)
    except openai.OpenAIError as exc:
        run.calls.append(ledger_row(llm.model, None, time.monotonic() - started, f"error: {type(exc).__name__}"))
        raise
    run.calls.append(ledger_row(llm.model, response.usage, time.monotonic() - started, "ok"))
    return response


def _calls_in_text(content: str) -> list[tuple[str, str]]:
    """Tool calls written as JSON in a reply's text ({"name": ..., "arguments": {...}}, one or a list)."""
    start = min((i for i in (content.find("{"), content.find("[")) if i >= 0), default=-1)
    if start < 0:
        return []
    try:
        parsed, _ = json.JSONDecoder().raw_decode(content[start:])
    except ValueError:
        return []
    calls = parsed if isinstance(parsed, list) else [parsed]
    return [(str(c.get("name") or c.get("tool")), json.dumps(c.get("arguments") or c.get("parameters") or {}))
            for c in calls if isinstance(c, dict) and (c.get("name") or c.get("tool"))]


def tool_calls_in(message) -> tuple[list[tuple[str | None, str, str]], bool]:
    """The tool calls in a reply as (id, name, arguments), and whether they were written as JSON text."""
    if message.tool_calls:
        return [(tc.id, tc.function.name, tc.function.arguments) for tc in message.tool_calls], False
    return [(None, name, arguments) for name, arguments in _calls_in_text(message.content or "")], True


def _spent(run: AnalystRun, settings: LLMSettings) -> bool:
    """Whether the run has finished or spent its tool calls or tokens."""
    return run.finished or run.tool_calls > settings.max_tool_calls or \
        run.prompt_tokens + run.completion_tokens >= settings.max_cycle_tokens


def _budgeted(name: str, arguments: str, by_id: dict[str, dict], model: str, run: AnalystRun,
              settings: LLMSettings) -> str:
    """Carry out one tool call unless the cycle's tool-call budget is spent (calls written as text count too)."""
    run.tool_calls += 1
    if run.tool_calls > settings.max_tool_calls:
        return "error: the tool-call budget of this cycle is spent; call finish"
    return run_tool(name, arguments, by_id, model, run)


def run_analyst(llm: LLM, candidates: list[dict], watermark: str, settings: LLMSettings, run: AnalystRun,
                quality_findings: str = "none") -> None:
    """The tool-calling loop, within the cycle's budgets of turns, tool calls and tokens; it ends when the model
    calls finish or stops calling tools. The embedded model gets a small prompt per candidate instead."""
    with WAREHOUSE_LOCK:
        run.catalog = load_catalog(run.warehouse)
    by_id = {f"c{i}": c for i, c in enumerate(candidates, start=1)}
    if llm.embedded:
        _embedded_notes(llm, by_id, settings, run)
        return
    messages: list[dict] = [
        {"role": "system", "content": prompt("analyst_system")},
        {"role": "user", "content": prompt("analyst_task", watermark=watermark, quality=quality_findings,
                                           candidates=describe_candidates(by_id, run.catalog.metrics),
                                           max_insights=MAX_INSIGHTS)},
    ]
    tools = tool_schemas(list(by_id))
    for _ in range(settings.max_turns):
        if _spent(run, settings):
            break
        response = complete(llm, messages, tools, "auto", settings.max_tokens, run)
        message = response.choices[0].message
        calls, as_text = tool_calls_in(message)
        if not calls:
            break
        if as_text:  # a server without tool calling: the calls were written as JSON in the reply's text
            messages.append({"role": "assistant", "content": message.content or ""})
        else:
            messages.append({"role": "assistant", "content": message.content or "",
                             "tool_calls": [tc.model_dump(include={"id", "type", "function"}) for tc in message.tool_calls]})
        for call_id, name, arguments in calls:
            result = _budgeted(name, arguments, by_id, llm.model, run, settings)
            messages.append({"role": "user", "content": f"Result of {name}: {result}"} if as_text
                            else {"role": "tool", "tool_call_id": call_id, "content": result})


def _embedded_notes(llm: LLM, by_id: dict[str, dict], settings: LLMSettings, run: AnalystRun) -> None:
    """The embedded model: one short call per top candidate, which it sees alone as c1, after one worked example.

    llama.cpp's "auto" tool mode ignores max_tokens for arguments, so write_insight is forced; a small
    prompt is what keeps a 135M model on 2 cores fast (the whole-task prompt was ~1,400 tokens a call)."""
    tools = tool_schemas(["c1"], embedded=True)
    for candidate in list(by_id.values())[:min(EMBEDDED_INSIGHTS, settings.max_turns)]:
        if _spent(run, settings):
            break
        alone = {"c1": candidate}
        messages = [{"role": "user", "content": embedded_prompt(describe_candidates(alone, run.catalog.metrics))}]
        response = complete(llm, messages, tools, {"type": "function", "function": {"name": "write_insight"}},
                             min(settings.max_tokens, EMBEDDED_MAX_TOKENS), run)
        calls, _ = tool_calls_in(response.choices[0].message)
        for _, name, arguments in calls[:1]:  # the note is about the one candidate it was shown, cited or not
            _budgeted(name, _citing(arguments, "c1"), alone, llm.model, run, settings)


def _citing(arguments: str, alias: str) -> str:
    """Tool arguments with `alias` among the cited candidates (the embedded model's one candidate)."""
    try:
        args = json.loads(arguments or "{}")
    except ValueError:
        return arguments
    if isinstance(args, dict) and not args.get("candidate_ids"):
        args["candidate_ids"] = [alias]
    return json.dumps(args)
