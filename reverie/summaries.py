"""The stages of a sleep cycle and what each reports: the records behind the `stages` object of the CLI's JSON
contract, and `STAGES`, the one list of them — in the cycle's order, each with its record, its result in words and
what it lost — from which the flows key their summaries, the CLI prints a cycle and a degraded cycle says why.

Fields may be added; renaming or dropping one breaks the contract (docs/commands.md)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NotRequired, TypedDict

from reverie.paths import shown


class FailedBatch(TypedDict):
    file: str
    error: str  # names the file and the column


class IngestSummary(TypedDict):
    """One source's ingest."""
    source: str
    files: int
    rows: int
    failed: list[FailedBatch]
    watermark: str | None
    seconds: NotRequired[float]


class QualitySummary(TypedDict):
    """One source's quality gate."""
    passed: int
    failed: int
    quarantined: int
    warnings: int
    unchecked: int
    batches: list[dict]  # {batch, reasons} of each quarantined batch
    errors: list[str]
    seconds: NotRequired[float]


class IngestTotal(TypedDict):
    files: int
    rows: int
    failed: list[FailedBatch]
    watermark: str | None
    sources: dict[str, IngestSummary]
    seconds: float


class QualityTotal(TypedDict):
    passed: int
    failed: int
    quarantined: int
    warnings: int
    unchecked: int
    batches: list[dict]
    errors: list[str]
    sources: dict[str, QualitySummary]
    seconds: float


class MetricsSummary(TypedDict):
    rows: int
    metrics: int
    since: str | None  # the first period recomputed: what detect and memory look at
    errors: list[str]
    commits_retried: int  # a group's writes run again after its commit lost a race with another writer of a lake
    unsupported: NotRequired[list[str]]  # a dbt project's metrics reverie cannot compute, one a line with the reason
    seconds: NotRequired[float]


class DetectSummary(TypedDict):
    candidates: int
    findings: int
    by_detector: dict[str, int]
    errors: list[str]
    seconds: NotRequired[float]


class ReflectSummary(TypedDict):
    written: int
    rejected: int
    prompt_tokens: int
    completion_tokens: int
    model: str | None
    status: str  # ok | degraded | skipped (no candidates) | off ([llm] analysts = 0)
    error: NotRequired[str]
    calls: NotRequired[int]
    analysts: NotRequired[int]
    seconds: NotRequired[float]


class ConsolidateSummary(TypedDict):
    added: int
    confirmed: int
    merged: int
    superseded: int
    contradicted: int
    retracted: int
    expired: int
    ignored: int  # analyst notes about items that are no longer active
    linked: int  # pairs of items found to be one story (linked_ids)
    seconds: NotRequired[float]


class PrepareSummary(TypedDict):
    prepared: int  # answers prepared for the questions expected next
    from_asks: int  # of them, questions people asked lately
    superseded: int  # the previous night's prepared answers
    calls: int  # model calls for questions reverie cannot read
    prompt_tokens: int
    completion_tokens: int
    seconds: NotRequired[float]


class DeliverSummary(TypedDict):
    sent: int  # notifications that reached people
    brief: str | None  # the brief's markdown file; None when it could not be written (the error says why)
    page: NotRequired[str | None]  # the brief as a page with charts, next to the markdown
    insights: int
    channels: dict[str, str]  # channel -> where it went
    alerts: NotRequired[dict[str, list[str]]]  # notifying channel -> the insights it owed this cycle
    held: NotRequired[int]  # alerts held for quiet hours, sent by the first cycle after them
    errors: list[str]
    seconds: NotRequired[float]


class CycleSummary(TypedDict):
    cycle_id: str | None
    flow_run_id: str | None
    status: str  # completed | degraded | failed | skipped (another run held the warehouse); refresh: refreshed
    warehouse: str
    stages: Stages
    seconds: float


def ingest_total(per_source: dict[str, IngestSummary]) -> IngestTotal:
    """Every source's ingest as one: counts added, failures listed, the furthest watermark."""
    summaries = per_source.values()
    return {"files": sum(s["files"] for s in summaries), "rows": sum(s["rows"] for s in summaries),
            "failed": [f for s in summaries for f in s["failed"]],
            "watermark": max((s["watermark"] for s in summaries if s["watermark"]), default=None),
            "sources": per_source, "seconds": round(sum(s.get("seconds", 0) for s in summaries), 2)}


def quality_total(per_source: dict[str, QualitySummary]) -> QualityTotal:
    """Every source's quality gate as one: counts added, quarantined batches and errors listed."""
    summaries = per_source.values()
    counts = {key: sum(s[key] for s in summaries) for key in ("passed", "failed", "quarantined", "warnings", "unchecked")}
    return {**counts, "batches": [b for s in summaries for b in s["batches"]],  # type: ignore[typeddict-item]
            "errors": [e for s in summaries for e in s["errors"]], "sources": per_source,
            "seconds": round(sum(s.get("seconds", 0) for s in summaries), 2)}


def failures(stages: Stages) -> list[str]:
    """What the cycle lost so far, in words, stage by stage: a batch, a suite, a metric, a detector, the analyst, a
    channel (what a degraded cycle's brief opens with)."""
    return [f"{stage.name}: {lost}" for stage in STAGES if stage.name in stages for lost in stage.lost(stages[stage.name])]


def degraded(stages: Stages) -> bool:
    """Whether any stage lost something this cycle."""
    return bool(failures(stages))


def _errors(summary: dict) -> list[str]:
    return list(summary.get("errors") or [])


@dataclass(frozen=True)
class Stage:
    """A stage as it reports: its key in a cycle's `stages`, its record, its result in one line of words (without
    what it lost), and what it lost, each in words (a degraded cycle's reasons)."""
    name: str
    summary: type
    said: Callable[[dict], str]
    lost: Callable[[dict], list[str]] = _errors


STAGES = (  # a new stage: its record above, its line here, its call in flows/stages.py
    Stage("ingest", IngestTotal, lambda s: f"{s['files']} new batch(es), {s['rows']:,} rows",
          lost=lambda s: [f["error"] for f in s["failed"]]),
    Stage("quality", QualityTotal,
          lambda s: (f"{s['passed']} batch(es) passed, {s['quarantined']} quarantined, {s['warnings']} warning(s)"
                     + (f", {s['unchecked']} unchecked" if s["unchecked"] else ""))),
    Stage("metrics", MetricsSummary,
          lambda s: (f"{s['rows']:,} values for {s['metrics']} metric(s)"
                     + {None: "", "1900-01-01": ", full rebuild"}.get(s["since"], f" from {s['since']}")
                     + (f"; {len(s['unsupported'])} dbt metric(s) not computed (the log says why)"
                        if s.get("unsupported") else ""))),
    Stage("detect", DetectSummary, lambda s: f"{s['findings']} finding(s) in {s['candidates']} candidate(s)"),
    Stage("reflect", ReflectSummary,
          lambda s: "off ([llm] analysts = 0)" if s["status"] == "off" else (
              f"{s['written']} insight(s) written, {s['rejected']} rejected by the grounding check, "
              f"{s['prompt_tokens']:,}+{s['completion_tokens']:,} tokens ({s['model'] or 'no model'}"
              + (", degraded" if s["status"] == "degraded" else "") + ")"),
          lost=lambda s: [s.get("error") or "the analyst did not finish"] if s.get("status") == "degraded" else []),
    Stage("consolidate", ConsolidateSummary,
          lambda s: (f"{s['added']} added, {s['confirmed']} confirmed, {s['merged']} merged, "
                     f"{s['superseded']} superseded, {s['contradicted']} contradicted, "
                     f"{s['expired']} expired" + (f", {s['linked']} linked" if s.get("linked") else ""))),
    Stage("prepare", PrepareSummary,
          lambda s: (f"{s['prepared']} answer(s) prepared for the questions expected next"
                     + (f", {s['from_asks']} of them asked lately" if s["from_asks"] else "")
                     + (f", {s['prompt_tokens']:,}+{s['completion_tokens']:,} tokens" if s["calls"] else ""))),
    Stage("deliver", DeliverSummary,
          lambda s: ((f"brief at {shown(s['brief'])} (a page with charts: .html)" if s["brief"]
                      else "no brief written")
                     + (f", {s['sent']} notification(s) sent" if s["sent"] else "")
                     + (f", {s['held']} alert(s) held for quiet hours" if s.get("held") else ""))),
)
STAGE = {stage.name: stage for stage in STAGES}
Stages = TypedDict("Stages", {stage.name: stage.summary for stage in STAGES}, total=False)  # type: ignore[misc]
