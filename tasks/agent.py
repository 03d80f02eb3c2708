"""Reflect: the LLM analyst reads the top candidates and writes grounded insights through tools."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import openai
from prefect import task

from reverie.config import PACKAGE_ROOT, LLMSettings
from reverie.llm import LLM, LLMUnavailable, open_llm
from tasks.logs import run_logger
from tasks.grounding import display_number, ungrounded
from tasks.warehouse import connect, data_watermark, rows_as_dicts, sql_file, transaction

PROMPTS_DIR = PACKAGE_ROOT / "prompts"
MAX_INSIGHTS = 3
INSIGHT_KINDS = ["pattern", "hypothesis", "risk", "recommendation", "question", "anomaly"]
SEVERITIES = ["info", "warning", "critical"]


def prompt(name: str, **values) -> str:
    """A prompt file from prompts/, with its {placeholders} filled in."""
    text = (PROMPTS_DIR / f"{name}.md").read_text()
    return text.format(**values) if values else text


def tool_schemas(candidate_ids: list[str]) -> list[dict]:
    """The analyst's tools; candidate ids are an enum so a constrained decoder cannot invent one."""
    return [
        {"type": "function", "function": {
            "name": "write_insight",
            "description": "Store one insight in memory. Every number in title and body must come from the cited candidates.",
            "parameters": {"type": "object", "properties": {
                "kind": {"type": "string", "enum": INSIGHT_KINDS},
                "title": {"type": "string", "maxLength": 120, "description": "One line."},
                "body": {"type": "string", "maxLength": 500, "description": "Two or three sentences."},
                "severity": {"type": "string", "enum": SEVERITIES},
                "candidate_ids": {"type": "array", "items": {"type": "string", "enum": candidate_ids},
                                  "minItems": 1, "maxItems": 5},
            }, "required": ["kind", "title", "body", "severity", "candidate_ids"]},
        }},
        {"type": "function", "function": {
            "name": "finish",
            "description": "End the investigation.",
            "parameters": {"type": "object", "properties": {"summary": {"type": "string"}}, "required": ["summary"]},
        }},
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
    """What one analyst run produced and cost."""
    written: list[dict] = field(default_factory=list)
    rejected: list[dict] = field(default_factory=list)
    calls: list[dict] = field(default_factory=list)
    finished: bool = False

    @property
    def prompt_tokens(self) -> int:
        return sum(c["prompt_tokens"] or 0 for c in self.calls)

    @property
    def completion_tokens(self) -> int:
        return sum(c["completion_tokens"] or 0 for c in self.calls)


def _write_insight(args: dict, by_id: dict[str, dict], model: str, run: Investigation) -> str:
    """Check one write_insight call; keep it if grounded, record the rejection if not."""
    cited = [by_id[i] for i in args.get("candidate_ids") or [] if i in by_id]
    title, body = str(args.get("title", "")).strip(), str(args.get("body", "")).strip()
    reason = None
    if not cited:
        reason = "cites no known candidate"
    elif not title:
        reason = "empty title"
    elif args.get("kind") not in INSIGHT_KINDS:
        reason = f"unknown kind {args.get('kind')!r}"
    else:
        values = [v for c in cited for v in (c["observed"], c["expected"], 100 * c["magnitude"],
                                              c["observed"] - c["expected"]) if v is not None]
        bad = ungrounded(f"{title}\n{body}", values, {c["period_start"] for c in cited})
        if bad:
            reason = f"numbers not found in the cited evidence: {', '.join(bad)}"
    if reason:
        run.rejected.append({"title": title, "body": body, "reason": reason})
        return f"rejected: {reason}"
    first = cited[0]
    run.written.append({
        "insight_id": f"ins-{uuid.uuid4().hex[:12]}", "kind": args["kind"], "title": title[:200], "body": body,
        "severity": args.get("severity") if args.get("severity") in SEVERITIES else "info",
        "metric": first["metric"], "dimension": first["dimension"], "member": first["member"],
        "period_start": first["period_start"], "candidate_ids": [c["candidate_id"] for c in cited],
        "evidence": [{"candidate_id": c["candidate_id"], "query": c["evidence_sql"],
                      "observed": c["observed"], "expected": c["expected"]} for c in cited],
        "source": model,
    })
    return "stored"


def describe_findings(findings: list[dict]) -> str:
    """This cycle's data-quality findings, for the analyst: data held back may explain a change."""
    if not findings:
        return "none: every new batch passed its checks."
    return "\n".join(f"- {'held back' if f['held_back'] else 'warning'}: {f['source']} {f['batch']}: {f['reasons']}"
                     for f in findings[:10])


def investigate(llm: LLM, candidates: list[dict], watermark: str, settings: LLMSettings, run: Investigation,
                quality: str = "none") -> None:
    """The tool-calling loop: up to max_turns model calls, ending when the model calls finish or stops calling tools."""
    by_id = {c["candidate_id"]: c for c in candidates}
    messages: list[dict] = [
        {"role": "system", "content": prompt("analyst_system")},
        {"role": "user", "content": prompt("analyst_task", watermark=watermark, quality=quality,
                                           candidates=describe_candidates(candidates), max_insights=MAX_INSIGHTS)},
    ]
    tools = tool_schemas(list(by_id))
    # llama.cpp's "auto" tool mode ignores max_tokens for arguments, so the embedded model is asked for
    # one write_insight call per turn instead; any other endpoint chooses its tools itself.
    tool_choice = {"type": "function", "function": {"name": "write_insight"}} if llm.embedded else "auto"
    turns = min(settings.max_turns, MAX_INSIGHTS) if llm.embedded else settings.max_turns
    for _ in range(turns):
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
        messages.append({"role": "assistant", "content": message.content or "",
                         "tool_calls": [tc.model_dump(include={"id", "type", "function"}) for tc in tool_calls]})
        if not tool_calls:
            break
        for call in tool_calls:
            result = _run_tool(call.function.name, call.function.arguments, by_id, llm.model, run)
            messages.append({"role": "tool", "tool_call_id": call.id, "content": result})
        if run.finished:
            break


def _run_tool(name: str, arguments: str, by_id: dict[str, dict], model: str, run: Investigation) -> str:
    """Dispatch one tool call; bad arguments and unknown tools go back to the model as errors."""
    try:
        args = json.loads(arguments or "{}")
        if not isinstance(args, dict):
            raise ValueError("arguments must be a JSON object")
    except ValueError as exc:
        return f"error: arguments are not valid JSON ({exc})"
    if name == "write_insight":
        return _write_insight(args, by_id, model, run)
    if name == "finish":
        run.finished = True
        return "done"
    return f"error: unknown tool {name!r}; use write_insight or finish"


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
                "insert into agent_insights values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [ins["insight_id"], cycle_id, ins["kind"], ins["title"], ins["body"], ins["severity"], ins["metric"],
                 ins["dimension"], ins["member"], ins["period_start"], ins["candidate_ids"],
                 json.dumps(ins["evidence"], default=str), ins["source"], now])
        for rej in run.rejected:
            con.execute("insert into insight_rejections values (?, ?, ?, ?, ?, ?)",
                        [cycle_id, model or "", rej["title"], rej["body"], rej["reason"], now])
        for call in run.calls:
            con.execute("insert into llm_calls values (?, 'reflect', ?, ?, ?, ?, ?, ?)",
                        [cycle_id, call["model"], call["prompt_tokens"], call["completion_tokens"],
                         call["latency_seconds"], call["outcome"], now])


@task(name="reflect")
def reflect(warehouse: str, cycle_id: str, settings: LLMSettings, log_dir: str) -> dict:
    """Let the analyst investigate the top candidates; an unreachable LLM degrades the cycle, it does not fail it."""
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
    run = Investigation()
    try:
        with open_llm(settings, Path(log_dir)) as llm:
            summary["model"] = llm.model
            logger.info("reflect: %s investigates %d candidate(s)", llm.model, len(candidates))
            investigate(llm, candidates, str(watermark), settings, run, describe_findings(findings))
        summary["status"] = "ok"
    except (LLMUnavailable, openai.APIError) as exc:
        summary["status"] = "degraded"
        summary["error"] = f"{type(exc).__name__}: {exc}"
        logger.warning("reflect: LLM unavailable (%s); deterministic insights are still written", summary["error"])
    _store(warehouse, cycle_id, summary["model"], run)
    for rej in run.rejected:
        logger.info("reflect: rejected %r: %s", rej["title"][:80], rej["reason"])
    summary.update(written=len(run.written), rejected=len(run.rejected), prompt_tokens=run.prompt_tokens,
                   completion_tokens=run.completion_tokens, calls=len(run.calls))
    logger.info("reflect: %d insight(s) written, %d rejected, %d+%d tokens", summary["written"], summary["rejected"],
                summary["prompt_tokens"], summary["completion_tokens"])
    return summary
