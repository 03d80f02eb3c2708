"""The cold path: the question answered from the warehouse with the analyst's SQL tools and no memory at all —
what a question costs when nothing was prepared. Its answer is grounded like an insight: every number must be
a value its evidence queries return (re-run at the end), about what the sentence names."""

from __future__ import annotations

import json

import openai

from reverie.analyst.evidence import load_catalog
from reverie.analyst.loop import EMBEDDED_MAX_TOKENS, complete, tool_calls_in
from reverie.analyst.run import AnalystRun
from reverie.analyst.sandbox import SandboxError
from reverie.analyst.tool_calls import check_insight, run_tool
from reverie.analyst.tool_schemas import EVIDENCE, function_tool, tool_schemas
from reverie.config import LLMSettings
from reverie.llm import LLM
from reverie.prompts import prompt
from reverie.warehouse import Warehouse

SQL_TOOLS = ("run_sql", "describe_metric")  # no memory: that is the point of the cold path
ANSWER_TOOL = function_tool("answer", "Give the answer: two or three sentences, numbers as references to the evidence "
                              "queries' results.", {
    "answer": {"type": "string", "maxLength": 600}, "evidence_queries": EVIDENCE}, ["answer", "evidence_queries"])


def _arguments(text: str | None) -> dict:
    try:
        parsed = json.loads(text or "{}")
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def cold_tools() -> list[dict]:
    return [t for t in tool_schemas([]) if t["function"]["name"] in SQL_TOOLS] + [ANSWER_TOOL]


def _grounded(args: dict, run: AnalystRun) -> tuple[str | None, str]:
    """Why the answer cannot be kept (None if it can), and its text with the references filled in."""
    text = str(args.get("answer", "")).strip()
    if not text:
        return "the model wrote no answer", text
    queries = args.get("evidence_queries")
    if not queries:
        return "the answer gives no evidence query", text
    reason, checked = check_insight({"title": text, "body": "", "evidence_queries": queries}, run, {})
    return reason, checked.title if checked else text


def answer_cold(llm: LLM, warehouse: Warehouse, question: str, latest_day, settings: LLMSettings) -> tuple[str, bool, AnalystRun]:
    """The answer, whether it grounded, and the run (its ledger rows) — SQL turns, then an answer forced last."""
    run = AnalystRun(warehouse=warehouse)
    try:
        run.catalog = load_catalog(warehouse)
    except SandboxError as exc:
        return f"The warehouse cannot be read now: {exc}", False, run
    messages: list[dict] = [{"role": "user", "content": prompt("ask_cold", question=question, latest_day=latest_day)}]
    tools = cold_tools()
    forced = {"type": "function", "function": {"name": "answer"}}
    # the embedded model: one query, then the answer, each forced (llama.cpp's "auto" ignores max_tokens)
    turns, max_tokens = (2, EMBEDDED_MAX_TOKENS) if llm.embedded else (settings.max_turns, settings.max_tokens)
    for turn in range(turns):
        last = turn == turns - 1 or run.tool_calls >= settings.max_tool_calls
        choice = forced if last else ({"type": "function", "function": {"name": "run_sql"}} if llm.embedded else "auto")
        try:
            response = complete(llm, messages, tools, choice, max_tokens, run)
        except openai.OpenAIError as exc:
            return f"The model did not answer: {type(exc).__name__}.", False, run
        calls, as_text = tool_calls_in(response.choices[0].message)
        answer = next((_arguments(a) for _, name, a in calls if name == "answer"), None)
        if answer is not None or not calls or last:
            if answer is None:  # a reply in words, not the answer tool: nothing to verify it with
                content = response.choices[0].message.content
                answer = {"answer": content or "", "evidence_queries": []}
            reason, text = _grounded(answer, run)
            if reason:
                return f"I could not verify an answer from the warehouse ({reason}).", False, run
            return text, True, run
        messages.append({"role": "assistant", "content": response.choices[0].message.content or "",
                         **({} if as_text else {"tool_calls": [tc.model_dump(include={"id", "type", "function"})
                                                               for tc in response.choices[0].message.tool_calls]})})
        for call_id, name, arguments in calls:
            run.tool_calls += 1
            result = run_tool(name, arguments, {}, llm.model, run) if name in SQL_TOOLS else \
                f"error: use {', '.join(SQL_TOOLS)} or answer"
            messages.append({"role": "user", "content": f"Result of {name}: {result}"} if as_text
                            else {"role": "tool", "tool_call_id": call_id, "content": result})
    return "I could not answer within the turns allowed.", False, run
