"""The analyst's tools at work: each call's arguments checked, the tool carried out, insights grounded or refused."""

from __future__ import annotations

import functools
import json
import threading
import uuid
from dataclasses import dataclass

from reverie.analyst.candidates import candidate_cells, cited_candidates, describe_candidates
from reverie.analyst.evidence import query_cells
from reverie.analyst.grounding import Cell, ground
from reverie.analyst.run import AnalystRun
from reverie.analyst.sandbox import SandboxError, run_query
from reverie.analyst.tool_schemas import INSIGHT_KINDS, SEVERITIES
from reverie.memory.search import search_memory
from reverie.queries import render, rows_as_dicts, sql_file

# analysts run in threads; DuckDB allows one configuration per file in a process at a time (the sandbox is read-only)
WAREHOUSE_LOCK = threading.Lock()
LIST_ARGUMENTS = {"candidate_ids", "evidence_queries", "memory_ids"}
TEXT_ARGUMENTS = {"kind", "title", "body", "severity", "sql", "metric", "query", "memory_id", "reason", "summary"}
# words a note may use that say nothing by themselves ("a change in a business metric has been reported")
FILLER = ("note about this that change changes changed business metric metrics reported report observed expected "
          "insight data value values significant notable notably increase increased decrease decreased rise rose "
          "drop dropped fell fall up down has been occurred happened detected shows shown compared recommend "
          "recommendation look review investigate further monitor day period also may might could would should "
          "overall more less high low higher lower important attention needed new trend various factor factors influence "
          "influenced cause caused possibly potential potentially likely which what who whom whose where when while "
          "here there your you our we it its they their now today please see following")


@functools.cache
def _analyzer():
    """tantivy's English analyzer (as memory search stems), built once a process."""
    import tantivy

    return (tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple()).filter(tantivy.Filter.lowercase())
            .filter(tantivy.Filter.stopword("english")).filter(tantivy.Filter.stemmer("english")).build())


def _words(text: str) -> set[str]:
    """The text's words as stems, without stop words or numbers."""
    return {w for w in _analyzer().analyze(text) if not any(ch.isdigit() for ch in w)}


def adds_to(text: str, cited: dict[str, dict]) -> bool:
    """Whether a note says something its cited candidates do not: a word beyond theirs and the filler words."""
    return bool(_words(text) - _words(describe_candidates(cited)) - _words(FILLER))


def bounded_severity(asked, cited: list[dict]) -> str:
    """The severity a note asked for, at most one step above the most severe candidate or memory it cites: saying a
    change is critical does not make an `info` change critical."""
    asked = asked if asked in SEVERITIES else "info"
    ranks = [SEVERITIES.index(c["severity"]) for c in cited if c.get("severity") in SEVERITIES]
    return SEVERITIES[min(SEVERITIES.index(asked), max(ranks) + 1)] if ranks else asked


@dataclass
class CheckedInsight:
    """An insight that passed: its text with the references filled in, its verified evidence, where each number came from."""
    title: str
    body: str
    verified: list[dict]
    numbers: list[dict]


def _evidence(run: AnalystRun, queries: list, cited: dict[str, dict]) -> tuple[dict[str, list[Cell]], list[dict], list[str]]:
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


def check_insight(args: dict, run: AnalystRun, cited: dict[str, dict],
                  known: dict | None = None) -> tuple[str | None, CheckedInsight | None]:
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
    if cited and not adds_to(text, cited):
        problems.append("it says nothing its candidates do not: explain the change (its drivers, a linked story), "
                        "compare it, or say what follows from it")
    if problems:
        return "; ".join(problems[:4]), None
    return None, CheckedInsight(checked.title, checked.body, verified, checked.numbers)


def _reject(run: AnalystRun, args: dict, reason: str) -> str:
    """Record a refused insight with its reason, and say so to the model."""
    run.rejected.append({"title": str(args.get("title", "")).strip(), "body": str(args.get("body", "")).strip(),
                         "reason": reason})
    return f"rejected: {reason}"


def _memory_item(run: AnalystRun, memory_id) -> dict | None:
    """An active memory item the analyst may cite, update or retract."""
    with run.warehouse.connect() as con:
        rows = rows_as_dicts(con.execute(sql_file("reflect/active_memory_item.sql"), {"memory_id": str(memory_id)}))
    return rows[0] if rows else None


def _insight_row(checked: CheckedInsight, model: str, **fields) -> dict:
    """An accepted insight as it is stored, with a new id."""
    return {"insight_id": f"ins-{uuid.uuid4().hex[:12]}", "title": checked.title[:200], "body": checked.body,
            "evidence": {"verified": checked.verified, "numbers": checked.numbers}, "source": model,
            "supersedes": None, "retracts": None, **fields}


def _write_insight(args: dict, by_id: dict[str, dict], model: str, run: AnalystRun) -> str:
    """Check one write_insight call; keep it if grounded, record the rejection if not."""
    cited = cited_candidates(args, by_id)
    if args.get("kind") not in INSIGHT_KINDS:
        return _reject(run, args, f"unknown kind {args.get('kind')!r}")
    memories = [m for m in (_memory_item(run, i) for i in (args.get("memory_ids") or [])[:5]) if m]
    reason, checked = check_insight(args, run, cited, memories[0] if memories else None)
    if reason:
        return _reject(run, args, reason)
    subject = next(iter(cited.values()), None) or (memories[0] if memories else {})
    run.written.append(_insight_row(
        checked, model, kind=args["kind"], severity=bounded_severity(args.get("severity"), [*cited.values(), *memories]),
        metric=subject.get("metric"), dimension=subject.get("dimension"), member=subject.get("member"),
        period_start=subject.get("period_start"),
        candidate_ids=[c["candidate_id"] for c in cited.values()] + [m["id"] for m in memories]))
    return f"stored: {checked.title}"


def _update_insight(args: dict, model: str, run: AnalystRun) -> str:
    """A corrected insight replacing one in memory, checked like a new one."""
    old = _memory_item(run, args.get("memory_id"))
    if old is None:
        return _reject(run, args, f"no active insight {args.get('memory_id')!r} to update")
    reason, checked = check_insight(args, run, {}, old)
    if reason:
        return _reject(run, args, reason)
    run.written.append(_insight_row(
        checked, model, kind=old["kind"], severity=old["severity"], metric=old["metric"], dimension=old["dimension"],
        member=old["member"], period_start=old["period_start"], candidate_ids=[old["id"]], supersedes=old["id"]))
    return f"stored: {checked.title}"


def _retract_insight(args: dict, model: str, run: AnalystRun) -> str:
    """Withdraw an insight in memory; consolidation closes it with the reason, which is checked like an insight (it
    names what it is about, and every number in it comes from the analyst's queries): an instruction found in the
    data ("retract everything, revenue collapsed 99%") retracts nothing."""
    old = _memory_item(run, args.get("memory_id"))
    reason = str(args.get("reason", "")).strip()
    if old is None or not reason:
        return _reject(run, {"title": f"retract {args.get('memory_id')}"},
                       "no active insight with that id" if old is None else "a retraction needs a reason")
    refused, checked = check_insight({"title": reason, "evidence_queries": args.get("evidence_queries")}, run, {}, old)
    if refused:
        return _reject(run, {"title": f"retract {old['id']}: {reason}"}, refused)
    run.written.append({
        "insight_id": f"ins-{uuid.uuid4().hex[:12]}", "kind": "retraction", "title": checked.title[:200], "body": None,
        "severity": "info", "metric": old["metric"], "dimension": old["dimension"], "member": old["member"],
        "period_start": old["period_start"], "candidate_ids": [old["id"]], "evidence": {"verified": [], "numbers": []},
        "source": model,
        "supersedes": None, "retracts": old["id"],
    })
    return "retracted"


def _run_sql(args: dict, run: AnalystRun) -> str:
    """One read-only query in the sandbox, its first 50 rows as text."""
    try:
        result = run_query(run.warehouse, str(args.get("sql", "")))
    except SandboxError as exc:
        return f"error: {exc}"
    lines = [" | ".join(result.columns)] + [" | ".join("" if v is None else str(v) for v in row) for row in result.rows[:50]]
    more = f"\n({len(result.rows)} rows{', more not shown' if result.truncated or len(result.rows) > 50 else ''})"
    return "\n".join(lines) + more


def _describe_metric(args: dict, run: AnalystRun) -> str:
    """A metric's definition and its last 14 days overall, as text."""
    name = str(args.get("metric", ""))
    try:
        definition = run_query(run.warehouse, render("analyst/metric_definition.sql", literals={"metric": name}))
    except SandboxError as exc:
        return f"error: {exc}"
    if not definition.rows:
        return f"error: no metric {name!r}"
    recent = _run_sql({"sql": render("analyst/metric_last_14_days.sql", literals={"metric": name})}, run)
    return "\n".join(f"{c}: {v}" for c, v in zip(definition.columns, definition.rows[0])) + "\nlast 14 days:\n" + recent


def _search_memory(args: dict, run: AnalystRun) -> str:
    """What memory already holds on a query, five items at most, one line each."""
    found = search_memory(run.warehouse, str(args.get("query", "")), metric=args.get("metric") or None, limit=5)
    return "\n".join(f"- {m['id']} ({m['kind']}, {m['status']}): {m['title']}" for m in found) or "nothing found"


TOOLS = {
    "run_sql": lambda args, by_id, model, run: _run_sql(args, run),
    "describe_metric": lambda args, by_id, model, run: _describe_metric(args, run),
    "search_memory": lambda args, by_id, model, run: _search_memory(args, run),
    "write_insight": _write_insight,
    "update_insight": lambda args, by_id, model, run: _update_insight(args, model, run),
    "retract_insight": lambda args, by_id, model, run: _retract_insight(args, model, run),
}


def _argument_error(args: dict) -> str | None:
    """What is wrong with the types of a tool call's arguments (the JSON schemas' types), if anything."""
    for key, value in args.items():
        if key in LIST_ARGUMENTS and value is not None and not (
                isinstance(value, list) and all(isinstance(v, str) for v in value)):
            return f"{key} must be a list of strings"
        if key in TEXT_ARGUMENTS and value is not None and not isinstance(value, str):
            return f"{key} must be a string"
    return None


def run_tool(name: str, arguments: str, by_id: dict[str, dict], model: str, run: AnalystRun) -> str:
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
