"""Reflect: the LLM analyst reads the top candidates and writes grounded insights through tools."""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

import openai
from prefect import task
from prefect.cache_policies import NO_CACHE

from reverie.config import PACKAGE_ROOT, LLMSettings
from reverie.llm import LLM, LLMUnavailable, open_llm
from tasks.grounding import display_number, ungrounded
from tasks.logs import run_logger
from tasks.memory_search import search_memory
from tasks.sandbox import SandboxError, run_query
from tasks.warehouse import connect, data_watermark, rows_as_dicts, sql_file, transaction

PROMPTS_DIR = PACKAGE_ROOT / "prompts"
MAX_INSIGHTS = 3
INSIGHT_KINDS = ["pattern", "hypothesis", "risk", "recommendation", "question", "anomaly"]
SEVERITIES = ["info", "warning", "critical"]


def prompt(name: str, **values) -> str:
    """A prompt file from prompts/, with its {placeholders} filled in."""
    text = (PROMPTS_DIR / f"{name}.md").read_text()
    return text.format(**values) if values else text


EVIDENCE = {"type": "array", "items": {"type": "string"}, "maxItems": 3,
            "description": "SELECT queries whose results contain every number you write; re-run when you write."}


def _tool(name: str, description: str, properties: dict, required: list[str]) -> dict:
    return {"type": "function", "function": {"name": name, "description": description, "parameters": {
        "type": "object", "properties": properties, "required": required}}}


def tool_schemas(candidate_ids: list[str], investigate: bool = True) -> list[dict]:
    """The analyst's tools; candidate ids are an enum so a constrained decoder cannot invent one. Without
    `investigate` (the embedded model), only write_insight and finish."""
    write = _tool("write_insight", "Store one insight in memory. Every number in title and body must be returned by "
                                   "its evidence queries or be a value of the cited candidates.", {
        "kind": {"type": "string", "enum": INSIGHT_KINDS},
        "title": {"type": "string", "maxLength": 120, "description": "One line."},
        "body": {"type": "string", "maxLength": 500, "description": "Two or three sentences."},
        "severity": {"type": "string", "enum": SEVERITIES},
        "candidate_ids": {"type": "array", "items": {"type": "string", "enum": candidate_ids}, "maxItems": 5},
        **({"evidence_queries": EVIDENCE, "memory_ids": {"type": "array", "items": {"type": "string"}, "maxItems": 5}}
           if investigate else {}),
    }, ["kind", "title", "body", "severity", "candidate_ids"])
    finish = _tool("finish", "End the investigation.", {"summary": {"type": "string"}}, ["summary"])
    if not investigate:
        return [write, finish]
    return [
        _tool("run_sql", "Run one read-only SELECT on the warehouse (tables: metric_values, metrics, candidates, "
                         "memory, quality_results, batches); at most 200 rows.", {"sql": {"type": "string"}}, ["sql"]),
        _tool("describe_metric", "A metric's definition and its last 14 days overall.",
              {"metric": {"type": "string"}}, ["metric"]),
        _tool("search_memory", "Search what reverie already knows (insights from earlier cycles).",
              {"query": {"type": "string"}, "metric": {"type": "string"}}, ["query"]),
        write,
        _tool("update_insight", "Replace an insight in memory with a corrected one (it is kept, superseded).", {
            "memory_id": {"type": "string"}, "title": {"type": "string", "maxLength": 120},
            "body": {"type": "string", "maxLength": 500}, "evidence_queries": EVIDENCE},
            ["memory_id", "title", "body"]),
        _tool("retract_insight", "Withdraw an insight in memory that the data no longer supports.",
              {"memory_id": {"type": "string"}, "reason": {"type": "string", "maxLength": 300}},
              ["memory_id", "reason"]),
        finish,
    ]


def describe_candidates(candidates: list[dict]) -> str:
    """One line per candidate, with every number the analyst may use, what it was compared with and what drove it."""
    lines = []
    for c in candidates:
        where = "overall" if c["dimension"] == "overall" else f"{c['dimension']}={c['member']}"
        drivers = json.loads(c["drivers"]) if isinstance(c.get("drivers"), str) else c.get("drivers")
        led = f"; led by {drivers['lead']['dimension']}={drivers['lead']['member']}" if drivers else ""
        lines.append(
            f"- {c['candidate_id']}: {c['metric']} ({where}) on {c['period_start']}: observed {display_number(c['observed'])}, "
            f"expected {display_number(c['expected'])}, change {100 * c['magnitude']:+.1f}% ({c['direction']}, {c['favourable']} for the business)"
            f" [{c['kind']}: against {c['comparison']}{led}]"
        )
    return "\n".join(lines)


@dataclass
class Investigation:
    """What one analyst run produced and cost, and what it may touch."""
    warehouse: str = ""
    written: list[dict] = field(default_factory=list)
    rejected: list[dict] = field(default_factory=list)
    calls: list[dict] = field(default_factory=list)
    tool_calls: int = 0
    finished: bool = False
    error: str | None = None

    @property
    def prompt_tokens(self) -> int:
        return sum(c["prompt_tokens"] or 0 for c in self.calls)

    @property
    def completion_tokens(self) -> int:
        return sum(c["completion_tokens"] or 0 for c in self.calls)


def _evidence(run: Investigation, queries: list, cited: list[dict]) -> tuple[list[float], set[date], list[dict]]:
    """The values an insight may quote: its evidence queries, re-run now in the sandbox, and its candidates."""
    values: list[float] = []
    dates = {c["period_start"] for c in cited}
    verified = [{"candidate_id": c["candidate_id"], "query": c["evidence_sql"], "observed": c["observed"],
                 "expected": c["expected"]} for c in cited]
    for c in cited:
        values += [v for v in (c["observed"], c["expected"], 100 * c["magnitude"], c["observed"] - c["expected"])
                   if v is not None]
    for sql in queries:
        result = run_query(run.warehouse, str(sql))  # SandboxError: the insight is rejected with its message
        values += result.values()
        dates |= {v if isinstance(v, date) else v.date() for row in result.rows for v in row if isinstance(v, date)}
        verified.append({"query": str(sql), "values": result.values()[:50]})
    return values, dates, verified


def _check(args: dict, run: Investigation, cited: list[dict], known: dict | None = None) -> tuple[str | None, list]:
    """Why an insight cannot be stored (None if it can), and its verified evidence."""
    title, body = str(args.get("title", "")).strip(), str(args.get("body", "")).strip()
    queries = args.get("evidence_queries") or []
    if not title:
        return "empty title", []
    if not isinstance(queries, list):
        return "evidence_queries must be a list of SELECT queries", []
    if not cited and not queries and not known:
        return "cites no candidate, evidence query or memory", []
    try:
        values, dates, verified = _evidence(run, queries, cited)
    except SandboxError as exc:
        return f"an evidence query failed: {exc}", []
    bad = ungrounded(f"{title}\n{body}", values, dates)
    if bad:
        return f"numbers not found in the cited evidence: {', '.join(bad)}", []
    return None, verified


def _reject(run: Investigation, args: dict, reason: str) -> str:
    run.rejected.append({"title": str(args.get("title", "")).strip(), "body": str(args.get("body", "")).strip(),
                         "reason": reason})
    return f"rejected: {reason}"


def _memory_item(run: Investigation, memory_id) -> dict | None:
    with connect(run.warehouse) as con:
        rows = rows_as_dicts(con.execute("""select id, kind, metric, dimension, member, period_start, severity, status
                                            from memory where id = ? and status = 'active' and kind <> 'data_quality'""",
                                         [str(memory_id)]))
    return rows[0] if rows else None


def _write_insight(args: dict, by_id: dict[str, dict], model: str, run: Investigation) -> str:
    """Check one write_insight call; keep it if grounded, record the rejection if not."""
    cited = [by_id[i] for i in args.get("candidate_ids") or [] if i in by_id]
    if args.get("kind") not in INSIGHT_KINDS:
        return _reject(run, args, f"unknown kind {args.get('kind')!r}")
    memories = [m for m in (_memory_item(run, i) for i in (args.get("memory_ids") or [])[:5]) if m]
    reason, verified = _check(args, run, cited, memories[0] if memories else None)
    if reason:
        return _reject(run, args, reason)
    subject = cited[0] if cited else (memories[0] if memories else {})
    run.written.append({
        "insight_id": f"ins-{uuid.uuid4().hex[:12]}", "kind": args["kind"], "title": str(args["title"]).strip()[:200],
        "body": str(args.get("body", "")).strip(), "severity": args.get("severity") if args.get("severity") in SEVERITIES else "info",
        "metric": subject.get("metric"), "dimension": subject.get("dimension"), "member": subject.get("member"),
        "period_start": subject.get("period_start"),
        "candidate_ids": [c["candidate_id"] for c in cited] + [m["id"] for m in memories],
        "evidence": verified, "source": model, "supersedes": None, "retracts": None,
    })
    return "stored"


def _update_insight(args: dict, model: str, run: Investigation) -> str:
    """A corrected insight replacing one in memory, checked like a new one."""
    old = _memory_item(run, args.get("memory_id"))
    if old is None:
        return _reject(run, args, f"no active insight {args.get('memory_id')!r} to update")
    reason, verified = _check(args, run, [], old)
    if reason:
        return _reject(run, args, reason)
    run.written.append({
        "insight_id": f"ins-{uuid.uuid4().hex[:12]}", "kind": old["kind"], "title": str(args["title"]).strip()[:200],
        "body": str(args.get("body", "")).strip(), "severity": old["severity"], "metric": old["metric"],
        "dimension": old["dimension"], "member": old["member"], "period_start": old["period_start"],
        "candidate_ids": [old["id"]], "evidence": verified, "source": model, "supersedes": old["id"], "retracts": None,
    })
    return "stored"


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
        "period_start": old["period_start"], "candidate_ids": [old["id"]], "evidence": [], "source": model,
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


def investigate(llm: LLM, candidates: list[dict], watermark: str, settings: LLMSettings, run: Investigation,
                quality: str = "none") -> None:
    """The tool-calling loop, within the cycle's budgets of turns, tool calls and tokens; it ends when the model
    calls finish or stops calling tools."""
    by_id = {c["candidate_id"]: c for c in candidates}
    messages: list[dict] = [
        {"role": "system", "content": prompt("analyst_system")},
        {"role": "user", "content": prompt("analyst_task", watermark=watermark, quality=quality,
                                           candidates=describe_candidates(candidates), max_insights=MAX_INSIGHTS)},
    ]
    # llama.cpp's "auto" tool mode ignores max_tokens for arguments, so the embedded model is asked for
    # one write_insight call per turn instead; any other endpoint investigates with every tool.
    tools = tool_schemas(list(by_id), investigate=not llm.embedded)
    tool_choice = {"type": "function", "function": {"name": "write_insight"}} if llm.embedded else "auto"
    turns = min(settings.max_turns, MAX_INSIGHTS) if llm.embedded else settings.max_turns
    for _ in range(turns):
        if run.prompt_tokens + run.completion_tokens >= settings.max_cycle_tokens:
            break
        started = time.monotonic()
        try:
            response = llm.client.chat.completions.create(
                model=llm.model, messages=messages, tools=tools, tool_choice=tool_choice,
                max_tokens=settings.max_tokens, temperature=0.2)
        except openai.APIError as exc:
            run.calls.append(_ledger_row(llm.model, None, time.monotonic() - started, f"error: {type(exc).__name__}"))
            raise
        run.calls.append(_ledger_row(llm.model, response.usage, time.monotonic() - started, "ok"))
        message = response.choices[0].message
        tool_calls = message.tool_calls or []
        if not tool_calls:  # a server without tool calling may still answer with the call as JSON text
            written = _calls_in_text(message.content or "")
            messages.append({"role": "assistant", "content": message.content or ""})
            for name, arguments in written:
                run.tool_calls += 1
                result = _run_tool(name, arguments, by_id, llm.model, run)
                messages.append({"role": "user", "content": f"Result of {name}: {result}"})
            if not written or run.finished:
                break
            continue
        messages.append({"role": "assistant", "content": message.content or "",
                         "tool_calls": [tc.model_dump(include={"id", "type", "function"}) for tc in tool_calls]})
        for call in tool_calls:
            run.tool_calls += 1
            if run.tool_calls > settings.max_tool_calls:
                result = "error: the tool-call budget of this cycle is spent; call finish"
            else:
                result = _run_tool(call.function.name, call.function.arguments, by_id, llm.model, run)
            messages.append({"role": "tool", "tool_call_id": call.id, "content": result})
        if run.finished or run.tool_calls > settings.max_tool_calls:
            break


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


def _run_tool(name: str, arguments: str, by_id: dict[str, dict], model: str, run: Investigation) -> str:
    """Dispatch one tool call; bad arguments and unknown tools go back to the model as errors."""
    try:
        args = json.loads(arguments or "{}")
        if not isinstance(args, dict):
            raise ValueError("arguments must be a JSON object")
    except ValueError as exc:
        return f"error: arguments are not valid JSON ({exc})"
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


def _store(warehouse: str, cycle_id: str, model: str | None, run: Investigation) -> None:
    """Accepted insights, rejections and the ledger, in one transaction."""
    now = datetime.now()
    with connect(warehouse) as con, transaction(con):
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
    """One analyst over one group of metrics, with its own budget; an unreachable LLM is noted, not raised."""
    try:
        investigate(llm, candidates, watermark, settings, run, quality)
    except openai.APIError as exc:
        run.error = f"{type(exc).__name__}: {exc}"


@task(name="reflect")
def reflect(warehouse: str, cycle_id: str, settings: LLMSettings, log_dir: str) -> dict:
    """Let the analysts investigate the top candidates — one per group of metrics, `[llm] analysts` of them at
    once — and keep what they ground; an unreachable LLM degrades the cycle, it does not fail it."""
    logger = run_logger()
    with connect(warehouse) as con:
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
            for future in futures:
                future.wait()
        errors = [run.error for run in runs if run.error]
        summary["status"] = "degraded" if errors else "ok"
        if errors:
            summary["error"] = errors[0]
    except LLMUnavailable as exc:
        summary["status"] = "degraded"
        summary["error"] = f"{type(exc).__name__}: {exc}"
    if summary["status"] == "degraded":
        logger.warning("reflect: LLM unavailable (%s); deterministic insights are still written", summary["error"])
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
