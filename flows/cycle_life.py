"""A cycle's life, with one entry and one exit. `hold_writer` holds the warehouse's writer lock for a flow's run;
`cycle_life` begins a cycle — a new one, one a killed run left unfinished taken up again under its id, or a
refreshed one continued — marks it running for `reverie ask` and moves in the asks kept aside meanwhile; and
whatever happens inside, it records how the cycle ended (with no credential in it) and emits its events."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime

from prefect import get_run_logger
from prefect.runtime import flow_run

from reverie.config import Settings
from reverie.faults import fault_point
from reverie.llm import credentials
from reverie.secrets import redacted_all
from reverie.summaries import CycleSummary, Stages, degraded
from reverie.tasks.cycles import finish_cycle, resume_cycle, start_cycle, take_up_interrupted
from reverie.tasks.events import emit_cycle_events, emit_refresh_events
from reverie.warehouse import DiskFull, WarehouseBusy


@dataclass
class Cycle:
    """A cycle while it runs: its id, its stages' summaries so far, and how it ended (`summary`, once it has).
    `status`: set by a flow that ends it otherwise than completed or degraded (a refresh: `refreshed`)."""
    id: str
    stages: Stages = field(default_factory=dict)  # type: ignore[assignment]
    status: str | None = None
    summary: CycleSummary | None = None


def current_run_id() -> str | None:
    """The id of the flow run this is part of (None outside one)."""
    return str(flow_run.id) if flow_run.id else None


def new_cycle_id() -> str:
    """A cycle id that sorts by time: c20261204T030000-1a2b3c."""
    return f"c{datetime.now():%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"


def hold_writer(stack: ExitStack, settings: Settings, flow: str, wait_minutes: float) -> dict | None:
    """Take the warehouse's writer lock until `stack` closes, waiting up to `wait_minutes` for another run to finish
    with it; if it does not, the run's summary as `skipped` (and a warning in its log) instead — or as `failed` when
    the warehouse's disk is nearly full (nothing written)."""
    run_id = current_run_id()
    try:
        stack.enter_context(settings.warehouse.writing(wait_minutes * 60, {"flow": flow, "flow_run_id": run_id}))
    except (WarehouseBusy, DiskFull) as exc:
        status = "skipped" if isinstance(exc, WarehouseBusy) else "failed"
        get_run_logger().warning("%s: %s", status, exc)
        return {"cycle_id": None, "flow_run_id": run_id, "status": status, "warehouse": str(settings.warehouse),
                "stages": {}, "seconds": 0.0, "error": f"{status}: {exc}"}
    return None


@contextmanager
def cycle_life(settings: Settings, refresh: bool = False, continuing: str | None = None) -> Iterator[Cycle]:
    """The cycle a flow runs, from its start to how it ended. `continuing`: a refreshed cycle's id, whose analysis
    this is (its seconds are both halves' own). `refresh`: a metrics refresh, whose events are the refresh's (and
    only when it did not fail). Called with the writer lock."""
    warehouse = settings.warehouse
    started, seconds_before = time.monotonic(), 0.0
    if continuing is None:
        cycle = Cycle(take_up_interrupted(warehouse=warehouse) or new_cycle_id())
        start_cycle(warehouse=warehouse, cycle_id=cycle.id, flow_run_id=current_run_id())
    else:
        stages, seconds_before = resume_cycle(warehouse=warehouse, cycle_id=continuing)
        cycle = Cycle(continuing, stages)
    failed = True
    try:
        yield cycle
        failed = False
    finally:
        status = "failed" if failed else cycle.status or ("degraded" if degraded(cycle.stages) else "completed")
        fault_point("before:finish-cycle")
        stages = redacted_all(cycle.stages, credentials(settings.llm))  # what is recorded and said holds no credential
        seconds = round(seconds_before + time.monotonic() - started, 2)
        finish_cycle(warehouse=warehouse, cycle_id=cycle.id, status=status, stages=stages, seconds=seconds)
        cycle.summary = {"cycle_id": cycle.id, "flow_run_id": current_run_id(), "status": status,
                         "warehouse": str(warehouse), "stages": stages, "seconds": seconds}
        if not refresh:
            emit_cycle_events(warehouse=warehouse, project=settings.name, summary=cycle.summary,
                              quality_checked=continuing is None)
        elif not failed:
            emit_refresh_events(project=settings.name, summary=cycle.summary)
