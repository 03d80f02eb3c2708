"""What `reverie mcp` serves, as plain functions over the last finished cycle's snapshot: an answer, memory searched,
an item whole, a metric's history with its usual range, the metrics, the latest brief. Each reads the snapshot
(never the warehouse a cycle may hold), returns JSON-ready data whose numbers carry where they came from, and
refuses a request it cannot serve with one line that says what can be asked instead."""

from __future__ import annotations

import json
import statistics
from datetime import date

from reverie.config import SEVERITIES, Settings
from reverie.memory.aliases import read_aliases
from reverie.queries import rows_as_dicts, sql_file
from reverie.snapshot import NoSnapshot, Snapshot, open_snapshot, snapshot_info
from reverie.warehouse import table_exists

GRAINS = ("day", "week", "month")  # what the snapshot holds by period (hours stay in the warehouse)
DEFAULT_PERIODS = {"day": 30, "week": 13, "month": 12}
MOST_PERIODS = 400
MOST_ITEMS = 50
MOST_NAMED = 30  # names listed in a refusal
MOST_CHARS = 40_000  # a tool's result, as JSON: an agent's context is not a dump


class Refused(ValueError):
    """A request the tools cannot serve; the message is one line an agent can act on."""


def _snapshot(settings: Settings) -> Snapshot:
    try:
        return open_snapshot(settings.warehouse)
    except NoSnapshot as exc:
        raise Refused(str(exc)) from None


def _plain(value):
    """Dates, times and decimals as JSON has them."""
    return json.loads(json.dumps(value, default=str))


def bounded(payload: dict, key: str) -> dict:
    """The payload with its list `key` cut (and `truncated` saying by how much) until it fits MOST_CHARS."""
    rows, whole = payload[key], len(payload[key])
    while len(json.dumps(payload, default=str)) > MOST_CHARS and len(rows) > 1:
        rows = rows[: len(rows) // 2]
        payload = {**payload, key: rows, "truncated": f"{len(rows)} of {whole} {key} shown"}
    return payload


def _choice(kind: str, value: str, valid: list[str]) -> str:
    """The value if it is one of `valid`; else Refused naming them (the nearest few, when there are many)."""
    if value in valid:
        return value
    if len(valid) <= MOST_NAMED:
        raise Refused(f"no {kind} {value!r}; valid: {', '.join(valid) or 'none yet'}")
    from rapidfuzz import process

    nearest = [name for name, _, _ in process.extract(value, valid, limit=MOST_NAMED)]
    raise Refused(f"no {kind} {value!r}; the nearest of {len(valid)} valid: {', '.join(nearest)}")


def _day(text: str | None, field: str) -> date | None:
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        raise Refused(f"{field}: {text!r} is not a date (YYYY-MM-DD)") from None


def _about(con) -> dict:
    """The snapshot's cycle and newest complete day; Refused for one an earlier release wrote (no values by grain)."""
    if not table_exists(con, "period_values"):
        raise Refused("the snapshot was written by an earlier release of reverie: the next cycle (`reverie run`) "
                      "writes it anew")
    info = snapshot_info(con)
    return {"cycle_id": info["cycle_id"], "data_through": info["latest_day"].isoformat() if info["latest_day"] else None}


def _metrics(con) -> dict[str, dict]:
    metrics = rows_as_dicts(con.execute(sql_file("mcp/metrics.sql")))
    return {m["name"]: {**m, "goal": json.loads(m["goal"]) if m["goal"] else None} for m in metrics}


def _metric(con, name: str) -> dict:
    metrics = _metrics(con)
    return metrics[_choice("metric", name, sorted(metrics))]


def ask(settings: Settings, question: str) -> dict:
    """`reverie ask`'s answer: the same paths and grounding, recorded in the same ledger."""
    from reverie.ask.route import AskError
    from reverie.ask.route import ask as answer

    try:
        result = answer(settings, question)
    except AskError as exc:
        raise Refused(str(exc)) from None
    return _plain({k: result[k] for k in ("answer", "path", "understood", "numbers", "cited", "grounded",
                                           "data_through", "ask_id")} | {"cycle_id": result["snapshot"]["cycle_id"]})


def search_memory(settings: Settings, query: str = "", metric: str | None = None, dimension: str | None = None,
                  member: str | None = None, kind: str | None = None, severity: str | None = None,
                  since: str | None = None, until: str | None = None, status: str = "active",
                  limit: int = 10) -> dict:
    """Memory items by relevance within the filters, each with its id."""
    from reverie.memory.search import search_memory as search

    snapshot = _snapshot(settings)
    first, last = _day(since, "since"), _day(until, "until")
    with snapshot.connect() as con:
        about = _about(con)
        if metric:
            _metric(con, metric)
        if kind:
            _choice("kind", kind, [r[0] for r in con.execute("select distinct kind from memory order by kind").fetchall()])
    if severity:
        _choice("severity", severity, list(SEVERITIES))
    items = search(snapshot, query, metric=metric, kind=kind, status=status, since=first, until=last,
                   limit=max(1, min(limit, MOST_ITEMS)), dimension=dimension, member=member, severity=severity)
    return bounded(_plain({**about, "items": items}), "items")


def get_item(settings: Settings, item_id: str) -> dict:
    """One memory item whole: its evidence, where it came from and its history."""
    from reverie.memory.store import show_memory

    item = show_memory(_snapshot(settings), item_id)
    if item is None:
        raise Refused(f"no memory item {item_id!r}: ids come from search_memory, ask (cited) or the brief")
    return bounded(_plain(item), "history")


def metric_history(settings: Settings, metric: str, grain: str = "day", dimension: str = "overall",
                   member: str = "all", since: str | None = None, until: str | None = None,
                   last: int | None = None) -> dict:
    """A metric's values at a grain for one slice, oldest first, with the usual range of its complete values."""
    first, end = _day(since, "since"), _day(until, "until")
    with _snapshot(settings).connect() as con:
        about = _about(con)
        defined = _metric(con, metric)
        _choice("grain", grain, [g for g in GRAINS if g in defined["grains"]])
        _choice("dimension", dimension, ["overall", *defined["dimensions"]])
        if dimension == "overall":
            member = "all"
        else:
            members = [r[0] for r in con.execute(sql_file("mcp/members.sql"), {"metric": metric, "dimension": dimension})
                       .fetchall()]
            named = read_aliases(con).get(member.lower())  # "germany": DE, as questions name members
            member = named[1] if named and named[0] == dimension and member not in members else member
            _choice(f"member of {dimension}", member, members)
        count = max(1, min(last or DEFAULT_PERIODS[grain], MOST_PERIODS))
        points = rows_as_dicts(con.execute(sql_file("mcp/metric_history.sql"), {
            "metric": metric, "grain": grain, "dimension": dimension, "member": member,
            "start": first or date.min, "end": end or date.max, "count": count}))
    complete = [p["value"] for p in points if p["complete"] and p["value"] is not None]
    usual = None
    if len(complete) >= 4:
        deciles = statistics.quantiles(complete, n=10, method="inclusive")
        usual = {"low": deciles[0], "median": statistics.median(complete), "high": deciles[-1],
                 "from": f"the middle 80% of the {len(complete)} complete {grain}s shown"}
    return _plain({**about, "metric": metric, "grain": grain, "dimension": dimension, "member": member,
                   "measure": defined["measure"], "source": "metric_values", "points": points, "usual_range": usual})


def list_metrics(settings: Settings) -> dict:
    """Every metric: what it means, how it aggregates, its grains and dimensions, its latest complete day's value."""
    with _snapshot(settings).connect() as con:
        about = _about(con)
        metrics = list(_metrics(con).values())
    return _plain({**about, "metrics": metrics})


def metric_definition(settings: Settings, name: str) -> dict:
    """One metric as `list_metrics` shows it."""
    with _snapshot(settings).connect() as con:
        return _plain(_metric(con, name))


def latest_brief(settings: Settings) -> str:
    """The latest brief, as markdown."""
    from reverie.channels.brief_file import brief_files

    files, _ = brief_files(settings.briefs_dir)
    if not files[".md"].exists():
        raise Refused("no brief yet: a finished cycle writes one (`reverie run`)")
    return files[".md"].read_text()

