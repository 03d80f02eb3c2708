"""Reflect: the LLM analyst reads the top candidates and writes grounded insights through tools."""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import openai
from prefect import task
from prefect.cache_policies import NO_CACHE

from reverie.analyst.evidence import Catalog, load_catalog, query_cells
from reverie.analyst.grounding import Cell, Subject, ground, show
from reverie.analyst.sandbox import SandboxError, run_query
from reverie.config import LLMSettings
from reverie.llm import LLM, LLMUnavailable, open_llm
from reverie.logs import run_logger
from reverie.memory.search import search_memory
from reverie.prompts import embedded_prompt, prompt
from reverie.warehouse import (
    Warehouse,
    data_watermark,
    rows_as_dicts,
    sql_file,
    transaction,
)

MAX_INSIGHTS = 3
EMBEDDED_INSIGHTS = 1  # the embedded model writes about the top candidate: reflect stays under a third of a cycle
EMBEDDED_MAX_TOKENS = 160
# The embedded model's title names its subject first, then words and references to its candidate's values (no
# digits); its body is words only. [.]: llama.cpp's grammar keeps a \. as it is.
EMBEDDED_TITLE = (r"^\{c1[.]metric\} \(\{c1[.]slice\}\)"
                  r"( [A-Za-z,;:()'-]+| \{c1[.](observed|expected|change|period|direction)\}){1,8}$")
EMBEDDED_BODY = r"^[A-Za-z ,.;:()'-]{1,100}$"
INSIGHT_KINDS = ["pattern", "hypothesis", "risk", "recommendation", "question", "anomaly"]
SEVERITIES = ["info", "warning", "critical"]


EVIDENCE = {"type": "array", "items": {"type": "string"}, "maxItems": 3,
            "description": "SELECT queries q1, q2, q3 whose results hold every number you write; re-run when you write."}
REFERENCES = ("Write numbers as references, and reverie fills in the values: {c1.observed}, {c1.expected}, "
              "{c1.change}, {c1.period} for a candidate; {q1.column} (first row) or {q1[2].column} (second row) "
              "for an evidence query's result.")


def _tool(name: str, description: str, properties: dict, required: list[str]) -> dict:
    return {"type": "function", "function": {"name": name, "description": description, "parameters": {
        "type": "object", "properties": properties, "required": required}}}


def tool_schemas(candidate_ids: list[str], investigate: bool = True) -> list[dict]:
    """The analyst's tools; candidate ids are an enum so a constrained decoder cannot invent one. Without
    `investigate` (the embedded model), only a short write_insight."""
    title = {"type": "string", "maxLength": 120, "description": "One line."}
    body = {"type": "string", "maxLength": 500, "description": "Two or three sentences."}
    if not investigate:  # a 135M model otherwise writes about nothing in particular: it starts with the metric
        title = {"type": "string", "pattern": EMBEDDED_TITLE}
        body = {"type": "string", "pattern": EMBEDDED_BODY}
    write = _tool("write_insight", "Store one insight in memory. " + REFERENCES + " Any number you type must be "
                                   "returned by the evidence queries or be a value of the cited candidates.", {
        "kind": {"type": "string", "enum": INSIGHT_KINDS},
        "title": title,
        "body": body,
        "severity": {"type": "string", "enum": SEVERITIES},
        **({"candidate_ids": {"type": "array", "items": {"type": "string", "enum": candidate_ids}, "maxItems": 5},
            "evidence_queries": EVIDENCE, "memory_ids": {"type": "array", "items": {"type": "string"}, "maxItems": 5}}
           if investigate else {}),  # the embedded model writes about the one candidate it is shown
    }, ["kind", "title", "body", "severity"] + (["candidate_ids"] if investigate else []))
    if not investigate:
        return [write]
    return [
        _tool("run_sql", "Run one read-only SELECT on the warehouse (tables: metric_values, metrics, candidates, "
                         "memory, quality_results, batches, and the models); at most 200 rows.",
              {"sql": {"type": "string"}}, ["sql"]),
        _tool("describe_metric", "A metric's definition and its last 14 days overall.",
              {"metric": {"type": "string"}}, ["metric"]),
        _tool("search_memory", "Search what reverie already knows (insights from earlier cycles).",
              {"query": {"type": "string"}, "metric": {"type": "string"}}, ["query"]),
        write,
        _tool("update_insight", "Replace an insight in memory with a corrected one (it is kept, superseded). "
                                + REFERENCES, {
            "memory_id": {"type": "string"}, "title": {"type": "string", "maxLength": 120},
            "body": {"type": "string", "maxLength": 500}, "evidence_queries": EVIDENCE},
            ["memory_id", "title", "body"]),
        _tool("retract_insight", "Withdraw an insight in memory that the data no longer supports.",
              {"memory_id": {"type": "string"}, "reason": {"type": "string", "maxLength": 300}},
              ["memory_id", "reason"]),
        _tool("finish", "End the investigation.", {"summary": {"type": "string"}}, ["summary"]),
    ]


def _slice(c: dict) -> str:
    return "overall" if c["dimension"] == "overall" else f"{c['dimension']} {c['member']}"


def describe_candidates(candidates: dict[str, dict], measures: dict[str, str] | None = None) -> str:
    """One line per candidate under its short id (c1, c2, ...): its values, what it was compared with, what drove it."""
    lines = []
    for alias, c in candidates.items():
        drivers = json.loads(c["drivers"]) if isinstance(c.get("drivers"), str) else c.get("drivers")
        led = f"; led by {drivers['lead']['dimension']}={drivers['lead']['member']}" if drivers else ""
        style = "percent" if (measures or {}).get(c["metric"]) == "ratio" else "number"
        lines.append(
            f"- {alias}: {c['metric']} ({_slice(c)}) on {c['period_start']}: observed {show(c['observed'], style)}, "
            f"expected {show(c['expected'], style)}, change {100 * c['magnitude']:+.1f}% ({c['direction']}, "
            f"{c['favourable']} for the business) [{c['kind']}: against {c['comparison']}{led}]"
        )
    return "\n".join(lines)


def candidate_cells(alias: str, c: dict, measures: dict[str, str]) -> list[Cell]:
    """What an insight citing a candidate may quote: its values and its words, about its metric, slice and period."""
    subject = Subject(frozenset({c["metric"]}), frozenset({"overall" if c["dimension"] == "overall" else c["member"]}),
                      frozenset(d for d in (c["period_start"], c.get("period_end")) if d))
    style = "percent" if measures.get(c["metric"]) == "ratio" else "number"
    fields = {"observed": (c["observed"], style), "expected": (c["expected"], style),
              "change": (c["magnitude"], "change"),
              "difference": (None if c["expected"] is None else c["observed"] - c["expected"], style),
              "metric": (c["metric"], "number"), "slice": (_slice(c), "number"),
              "period": (c["period_start"], "number"), "direction": (c["direction"], "number")}
    return [Cell(value=value, source=alias, column=name, subject=subject, style=shown, candidate_id=c["candidate_id"],
                 query=c["evidence_sql"]) for name, (value, shown) in fields.items()]


@dataclass
class Investigation:
    """What one analyst run produced and cost, and what it may touch."""
    warehouse: Warehouse | None = None
    written: list[dict] = field(default_factory=list)
    rejected: list[dict] = field(default_factory=list)
    calls: list[dict] = field(default_factory=list)
    tool_calls: int = 0
    finished: bool = False
    error: str | None = None
    catalog: Catalog = field(default_factory=Catalog)

    @property
    def prompt_tokens(self) -> int:
        return sum(c["prompt_tokens"] or 0 for c in self.calls)

    @property
    def completion_tokens(self) -> int:
        return sum(c["completion_tokens"] or 0 for c in self.calls)


@dataclass
class Checked:
    """An insight that passed: its text with the references filled in, its verified evidence, where each number came from."""
    title: str
    body: str
    verified: list[dict]
    numbers: list[dict]


def _evidence(run: Investigation, queries: list, cited: dict[str, dict]) -> tuple[dict[str, list[Cell]], list[dict], list[str]]:
    """The cells an insight may quote — its candidates' values and its evidence queries' results, re-run now in the
    sandbox — with what is kept as verified evidence, and why a query cannot be evidence."""
    measures = run.catalog.metrics
    cells = {alias: candidate_cells(alias, c, measures) for alias, c in cited.items()}
    verified = [{"candidate_id": c["candidate_id"], "query": c["evidence_sql"], "observed": c["observed"],
                 "expected": c["expected"]} for c in cited.values()]
    problems = []
    for index, sql in enumerate(queries, start=1):
        name = f"q{index}"
        result = run_query(run.warehouse, str(sql))  # SandboxError: the insight is rejected with its message
        cells[name], traces = query_cells(name, str(sql), result, run.catalog)
        if not any(t.data for t in traces):
            problems.append(f"{name} reads no data: {traces[0].why if traces else 'it returns no column'}; "
                            "evidence must read the warehouse's tables")
        verified.append({"query": str(sql), "values": result.values()[:50]})
    return cells, verified, problems


def _reads_about(cells: list[Cell], metrics: set[str]) -> bool:
    """Whether a query's data is about one of these metrics (its rows, its filters, or the model they are built on)."""
    return any(c.data and c.subject.metrics is not None and c.subject.metrics & metrics for c in cells)


def _check(args: dict, run: Investigation, cited: dict[str, dict], known: dict | None = None) -> tuple[str | None, Checked | None]:
    """Why an insight cannot be stored (None if it can), and the checked insight."""
    title, body = str(args.get("title", "")).strip(), str(args.get("body", "") or "").strip()
    queries = args.get("evidence_queries") or []
    if not title:
        return "empty title", None
    if not isinstance(queries, list):
        return "evidence_queries must be a list of SELECT queries", None
    if not cited and not queries and not known:
        return "cites no candidate, evidence query or memory", None
    try:
        cells, verified, problems = _evidence(run, queries, cited)
    except SandboxError as exc:
        return f"an evidence query failed: {exc}", None
    catalog = run.catalog
    about = {c["metric"] for c in cited.values()} | ({known["metric"]} if known and known.get("metric") else set())
    checked = ground(title, body, cells, catalog, about)
    text = f"{checked.title}\n{checked.body}"
    if about and not any(catalog.mentions(text, metric) for metric in about):
        problems.append(f"the text does not name what it is about ({', '.join(sorted(about))})")
    about |= catalog.metrics_in(text)
    for name in (n for n in cells if n.startswith("q")):
        if about and cells[name] and not _reads_about(cells[name], about):
            problems.append(f"{name} does not read {', '.join(sorted(about))}: filter metric_values by metric, or "
                            "read the model the metric is built on")
    problems += checked.problems
    if problems:
        return "; ".join(problems[:4]), None
    return None, Checked(checked.title, checked.body, verified, checked.numbers)


def _reject(run: Investigation, args: dict, reason: str) -> str:
    run.rejected.append({"title": str(args.get("title", "")).strip(), "body": str(args.get("body", "")).strip(),
                         "reason": reason})
    return f"rejected: {reason}"


def _memory_item(run: Investigation, memory_id) -> dict | None:
    with run.warehouse.connect() as con:
        rows = rows_as_dicts(con.execute("""select id, kind, metric, dimension, member, period_start, severity, status
                                            from memory where id = ? and status = 'active' and kind <> 'data_quality'""",
                                         [str(memory_id)]))
    return rows[0] if rows else None


def _cited(args: dict, by_id: dict[str, dict]) -> dict[str, dict]:
    """The candidates an insight cites, by their short id (c1) or full id, under their short id."""
    aliases = {c["candidate_id"]: alias for alias, c in by_id.items()}
    cited = {}
    for given in args.get("candidate_ids") or []:
        alias = str(given) if str(given) in by_id else aliases.get(str(given))
        if alias:
            cited[alias] = by_id[alias]
    return cited


def _insight(checked: Checked, run_model: str, **fields) -> dict:
    return {"insight_id": f"ins-{uuid.uuid4().hex[:12]}", "title": checked.title[:200], "body": checked.body,
            "evidence": {"verified": checked.verified, "numbers": checked.numbers}, "source": run_model,
            "supersedes": None, "retracts": None, **fields}


def _write_insight(args: dict, by_id: dict[str, dict], model: str, run: Investigation) -> str:
    """Check one write_insight call; keep it if grounded, record the rejection if not."""
    cited = _cited(args, by_id)
    if args.get("kind") not in INSIGHT_KINDS:
        return _reject(run, args, f"unknown kind {args.get('kind')!r}")
    memories = [m for m in (_memory_item(run, i) for i in (args.get("memory_ids") or [])[:5]) if m]
    reason, checked = _check(args, run, cited, memories[0] if memories else None)
    if reason:
        return _reject(run, args, reason)
    subject = next(iter(cited.values()), None) or (memories[0] if memories else {})
    run.written.append(_insight(
        checked, model, kind=args["kind"], severity=args.get("severity") if args.get("severity") in SEVERITIES else "info",
        metric=subject.get("metric"), dimension=subject.get("dimension"), member=subject.get("member"),
        period_start=subject.get("period_start"),
        candidate_ids=[c["candidate_id"] for c in cited.values()] + [m["id"] for m in memories]))
    return f"stored: {checked.title}"


def _update_insight(args: dict, model: str, run: Investigation) -> str:
    """A corrected insight replacing one in memory, checked like a new one."""
    old = _memory_item(run, args.get("memory_id"))
    if old is None:
        return _reject(run, args, f"no active insight {args.get('memory_id')!r} to update")
    reason, checked = _check(args, run, {}, old)
    if reason:
        return _reject(run, args, reason)
    run.written.append(_insight(
        checked, model, kind=old["kind"], severity=old["severity"], metric=old["metric"], dimension=old["dimension"],
        member=old["member"], period_start=old["period_start"], candidate_ids=[old["id"]], supersedes=old["id"]))
    return f"stored: {checked.title}"


def _retract_insight(args: dict, model: str, run: Investigation) -> str:
    """Withdraw an insight in memory; consolidation closes it with the reason."""
    old = _memory_item(run, args.get("memory_id"))
    reason = str(args.get("reason", "")).strip()
    if old is None or not reason:
        return _reject(run, {"title": f"retract {args.get('memory_id')}"},
                       "no active insight with that id" if old is None else "a retraction needs a reason")
    run.written.append({
        "insight_id": f"ins-{uuid.uuid4().hex[:12]}", "kind": "retraction", "title": reason[:200], "body": None,
        "severity": "info", "metric": old["metric"], "dimension": old["dimension"], "member": old["member"],
        "period_start": old["period_start"], "candidate_ids": [old["id"]], "evidence": {"verified": [], "numbers": []},
        "source": model,
        "supersedes": None, "retracts": old["id"],
    })
    return "retracted"


def _run_sql(args: dict, run: Investigation) -> str:
    try:
        result = run_query(run.warehouse, str(args.get("sql", "")))
    except SandboxError as exc:
        return f"error: {exc}"
    lines = [" | ".join(result.columns)] + [" | ".join("" if v is None else str(v) for v in row) for row in result.rows[:50]]
    more = f"\n({len(result.rows)} rows{', more not shown' if result.truncated or len(result.rows) > 50 else ''})"
    return "\n".join(lines) + more


def _describe_metric(args: dict, run: Investigation) -> str:
    name = str(args.get("metric", ""))
    quoted = "'" + name.replace("'", "''") + "'"  # the sandbox takes no parameters
    try:
        definition = run_query(run.warehouse, "select name, description, measure, favourability, grains, dimensions, goal "
                                              f"from metrics where name = {quoted}")
    except SandboxError as exc:
        return f"error: {exc}"
    if not definition.rows:
        return f"error: no metric {name!r}"
    recent = _run_sql({"sql": f"select period_start::date as day, value from metric_values where metric = {quoted} "
                              "and grain = 'day' and dimension = 'overall' order by period_start desc limit 14"}, run)
    return "\n".join(f"{c}: {v}" for c, v in zip(definition.columns, definition.rows[0])) + "\nlast 14 days:\n" + recent


def _search_memory(args: dict, run: Investigation) -> str:
    found = search_memory(run.warehouse, str(args.get("query", "")), metric=args.get("metric") or None, limit=5)
    return "\n".join(f"- {m['id']} ({m['kind']}, {m['status']}): {m['title']}" for m in found) or "nothing found"


def describe_findings(findings: list[dict]) -> str:
    """This cycle's data-quality findings, for the analyst: data held back may explain a change."""
    if not findings:
        return "none: every new batch passed its checks."
    return "\n".join(f"- {'held back' if f['held_back'] else 'warning'}: {f['source']} {f['batch']}: {f['reasons']}"
                     for f in findings[:10])


def _complete(llm: LLM, messages: list[dict], tools: list[dict], tool_choice, max_tokens: int, run: Investigation):
    """One chat completion, recorded in the ledger; an API error is recorded and raised."""
    started = time.monotonic()
    try:
        response = llm.client.chat.completions.create(model=llm.model, messages=messages, tools=tools,
                                                      tool_choice=tool_choice, max_tokens=max_tokens, temperature=0.2)
    except openai.APIError as exc:
        run.calls.append(_ledger_row(llm.model, None, time.monotonic() - started, f"error: {type(exc).__name__}"))
        raise
    run.calls.append(_ledger_row(llm.model, response.usage, time.monotonic() - started,
                                 "ok" if response.choices else "error: no choices"))
    return response


def _calls(message) -> tuple[list[tuple[str | None, str, str]], bool]:
    """The tool calls in a reply as (id, name, arguments), and whether they were written as JSON text."""
    if message.tool_calls:
        return [(tc.id, tc.function.name, tc.function.arguments) for tc in message.tool_calls], False
    return [(None, name, arguments) for name, arguments in _calls_in_text(message.content or "")], True


def _spent(run: Investigation, settings: LLMSettings) -> bool:
    return run.finished or run.tool_calls > settings.max_tool_calls or \
        run.prompt_tokens + run.completion_tokens >= settings.max_cycle_tokens


def _budgeted(name: str, arguments: str, by_id: dict[str, dict], model: str, run: Investigation,
              settings: LLMSettings) -> str:
    """Carry out one tool call unless the cycle's tool-call budget is spent (calls written as text count too)."""
    run.tool_calls += 1
    if run.tool_calls > settings.max_tool_calls:
        return "error: the tool-call budget of this cycle is spent; call finish"
    return _run_tool(name, arguments, by_id, model, run)


def investigate(llm: LLM, candidates: list[dict], watermark: str, settings: LLMSettings, run: Investigation,
                quality: str = "none") -> None:
    """The tool-calling loop, within the cycle's budgets of turns, tool calls and tokens; it ends when the model
    calls finish or stops calling tools. The embedded model gets a small prompt per candidate instead."""
    with WAREHOUSE_LOCK:
        run.catalog = load_catalog(run.warehouse)
    by_id = {f"c{i}": c for i, c in enumerate(candidates, start=1)}
    if llm.embedded:
        _note_each(llm, by_id, settings, run)
        return
    messages: list[dict] = [
        {"role": "system", "content": prompt("analyst_system")},
        {"role": "user", "content": prompt("analyst_task", watermark=watermark, quality=quality,
                                           candidates=describe_candidates(by_id, run.catalog.metrics),
                                           max_insights=MAX_INSIGHTS)},
    ]
    tools = tool_schemas(list(by_id))
    for _ in range(settings.max_turns):
        if _spent(run, settings):
            break
        response = _complete(llm, messages, tools, "auto", settings.max_tokens, run)
        if not response.choices:
            break
        message = response.choices[0].message
        calls, as_text = _calls(message)
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


def _note_each(llm: LLM, by_id: dict[str, dict], settings: LLMSettings, run: Investigation) -> None:
    """The embedded model: one short call per top candidate, which it sees alone as c1, after one worked example.

    llama.cpp's "auto" tool mode ignores max_tokens for arguments, so write_insight is forced; a small
    prompt is what keeps a 135M model on 2 cores fast (the whole-task prompt was ~1,400 tokens a call)."""
    tools = tool_schemas(["c1"], investigate=False)
    for candidate in list(by_id.values())[:min(EMBEDDED_INSIGHTS, settings.max_turns)]:
        if _spent(run, settings):
            break
        alone = {"c1": candidate}
        messages = [{"role": "user", "content": embedded_prompt(describe_candidates(alone, run.catalog.metrics))}]
        response = _complete(llm, messages, tools, {"type": "function", "function": {"name": "write_insight"}},
                             min(settings.max_tokens, EMBEDDED_MAX_TOKENS), run)
        calls, _ = _calls(response.choices[0].message) if response.choices else ([], False)
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


# analysts run in threads; DuckDB allows one configuration per file in a process at a time (the sandbox is read-only)
WAREHOUSE_LOCK = threading.Lock()
TOOLS = {
    "run_sql": lambda args, by_id, model, run: _run_sql(args, run),
    "describe_metric": lambda args, by_id, model, run: _describe_metric(args, run),
    "search_memory": lambda args, by_id, model, run: _search_memory(args, run),
    "write_insight": _write_insight,
    "update_insight": lambda args, by_id, model, run: _update_insight(args, model, run),
    "retract_insight": lambda args, by_id, model, run: _retract_insight(args, model, run),
}


LIST_ARGUMENTS = {"candidate_ids", "evidence_queries", "memory_ids"}
TEXT_ARGUMENTS = {"kind", "title", "body", "severity", "sql", "metric", "query", "memory_id", "reason", "summary"}


def _argument_error(args: dict) -> str | None:
    """What is wrong with the types of a tool call's arguments (the JSON schemas' types), if anything."""
    for key, value in args.items():
        if key in LIST_ARGUMENTS and value is not None and not (
                isinstance(value, list) and all(isinstance(v, str) for v in value)):
            return f"{key} must be a list of strings"
        if key in TEXT_ARGUMENTS and value is not None and not isinstance(value, str):
            return f"{key} must be a string"
    return None


def _run_tool(name: str, arguments: str, by_id: dict[str, dict], model: str, run: Investigation) -> str:
    """Dispatch one tool call; bad arguments and unknown tools go back to the model as errors."""
    try:
        args = json.loads(arguments or "{}")
        if not isinstance(args, dict):
            raise ValueError("arguments must be a JSON object")
    except ValueError as exc:
        return f"error: arguments are not valid JSON ({exc})"
    if wrong := _argument_error(args):
        return f"error: {wrong}"
    if name == "finish":
        run.finished = True
        return "done"
    if name not in TOOLS:
        return f"error: unknown tool {name!r}; use one of {', '.join([*TOOLS, 'finish'])}"
    with WAREHOUSE_LOCK:
        return TOOLS[name](args, by_id, model, run)


def _ledger_row(model: str, usage, seconds: float, outcome: str) -> dict:
    return {"model": model, "prompt_tokens": getattr(usage, "prompt_tokens", None),
            "completion_tokens": getattr(usage, "completion_tokens", None),
            "latency_seconds": round(seconds, 3), "outcome": outcome}


def _top_candidates(con, cycle_id: str, top_k: int) -> list[dict]:
    return rows_as_dicts(con.execute(
        "select * from candidates where cycle_id = ? order by rank limit ?", [cycle_id, top_k]))


def _store(warehouse: Warehouse, cycle_id: str, model: str | None, run: Investigation) -> None:
    """Accepted insights, rejections and the ledger, in one transaction."""
    now = datetime.now()
    with warehouse.connect() as con, transaction(con):
        for ins in run.written:
            con.execute(
                """insert into agent_insights (insight_id, cycle_id, kind, title, body, severity, metric, dimension,
                   member, period_start, candidate_ids, evidence, source, written_at, supersedes, retracts)
                   values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                [ins["insight_id"], cycle_id, ins["kind"], ins["title"], ins["body"], ins["severity"], ins["metric"],
                 ins["dimension"], ins["member"], ins["period_start"], ins["candidate_ids"],
                 json.dumps(ins["evidence"], default=str), ins["source"], now, ins["supersedes"], ins["retracts"]])
        for rej in run.rejected:
            con.execute("insert into insight_rejections values (?, ?, ?, ?, ?, ?)",
                        [cycle_id, model or "", rej["title"], rej["body"], rej["reason"], now])
        for call in run.calls:
            con.execute("insert into llm_calls values (?, 'reflect', ?, ?, ?, ?, ?, ?)",
                        [cycle_id, call["model"], call["prompt_tokens"], call["completion_tokens"],
                         call["latency_seconds"], call["outcome"], now])


def metric_groups(candidates: list[dict], analysts: int) -> list[list[dict]]:
    """Candidates split into at most `analysts` groups, a metric's candidates always together, the groups even."""
    by_metric: dict[str, list[dict]] = {}
    for c in candidates:
        by_metric.setdefault(c["metric"], []).append(c)
    groups: list[list[dict]] = [[] for _ in range(max(1, min(analysts, len(by_metric))))]
    for members in sorted(by_metric.values(), key=len, reverse=True):
        min(groups, key=len).extend(members)
    return [sorted(g, key=lambda c: c["rank"]) for g in groups if g]


@task(name="analyse", cache_policy=NO_CACHE)
def analyse(llm: LLM, candidates: list[dict], watermark: str, settings: LLMSettings, quality: str,
            run: Investigation) -> None:
    """One analyst over one group of metrics, with its own budget; an unreachable LLM or an analyst that fails is
    noted (the cycle is degraded), not raised."""
    try:
        investigate(llm, candidates, watermark, settings, run, quality)
    except openai.APIError as exc:
        run.error = f"{type(exc).__name__}: {exc}"
    except Exception as exc:  # a bug in reverie's own tools must not pass for a quiet night
        run.error = f"the analyst failed: {type(exc).__name__}: {exc}"
        run_logger().debug("analyst failed", exc_info=True)


@task(name="reflect")
def reflect(warehouse: Warehouse, cycle_id: str, settings: LLMSettings, log_dir: str) -> dict:
    """Let the analysts investigate the top candidates — one per group of metrics, `[llm] analysts` of them at
    once — and keep what they ground; an unreachable LLM degrades the cycle, it does not fail it."""
    logger = run_logger()
    with warehouse.connect() as con:
        candidates = _top_candidates(con, cycle_id, settings.top_k)
        watermark = data_watermark(con)
        findings = rows_as_dicts(con.execute(sql_file("quality/data_quality_items.sql"), {"cycle_id": cycle_id}))
    summary = {"written": 0, "rejected": 0, "prompt_tokens": 0, "completion_tokens": 0, "calls": 0,
               "status": "skipped", "model": None}
    if not candidates:
        logger.info("reflect: no candidates this cycle, nothing to investigate")
        return summary
    groups = metric_groups(candidates, settings.analysts)
    runs = [Investigation(warehouse=warehouse) for _ in groups]
    try:
        with open_llm(settings, Path(log_dir)) as llm:
            summary["model"] = llm.model
            logger.info("reflect: %d analyst(s) on %s investigate %d candidate(s)", len(groups), llm.model,
                        len(candidates))
            futures = [analyse.submit(llm, group, str(watermark), settings, describe_findings(findings), run)
                       for group, run in zip(groups, runs)]
            for future, run in zip(futures, runs):
                future.wait()
                if not future.state.is_completed() and not run.error:
                    run.error = f"the analyst failed: {future.state.message}"
        errors = [run.error for run in runs if run.error]
        summary["status"] = "degraded" if errors else "ok"
        if errors:
            summary["error"] = errors[0]
    except LLMUnavailable as exc:
        summary["status"] = "degraded"
        summary["error"] = f"{type(exc).__name__}: {exc}"
    if summary["status"] == "degraded":
        logger.warning("reflect: %s; deterministic insights are still written", summary["error"])
    run = Investigation(warehouse=warehouse, written=[w for r in runs for w in r.written],
                        rejected=[j for r in runs for j in r.rejected], calls=[c for r in runs for c in r.calls])
    _store(warehouse, cycle_id, summary["model"], run)
    for rej in run.rejected:
        logger.info("reflect: rejected %r: %s", rej["title"][:80], rej["reason"])
    summary.update(written=len(run.written), rejected=len(run.rejected), prompt_tokens=run.prompt_tokens,
                   completion_tokens=run.completion_tokens, calls=len(run.calls), analysts=len(groups))
    logger.info("reflect: %d insight(s) written, %d rejected, %d+%d tokens", summary["written"], summary["rejected"],
                summary["prompt_tokens"], summary["completion_tokens"])
    return summary
