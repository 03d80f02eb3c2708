"""Units of work: the parts of a stage that are independent of each other (a source, a group of metrics, a detector,
an analyst) and how a stage runs them — one after another here, or at once on a cycle's workers
(reverie.flows.workers.cycle_workers). A unit is declared once, beside its task, as a `Unit`; flows/workers.py lists them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from prefect import Task

from reverie.config import Settings

RunUnits = Callable[[Task, list[dict]], list]  # runs a task once per set of parameters; the results in that order


def run_here(unit: Task, calls: list[dict]) -> list:
    """Each call of a task one after another, in this process, as plain functions (no task runs)."""
    return [unit.fn(**call) for call in calls]


def runs_here(run_units: RunUnits) -> bool:
    """Whether its units run in this process, so a stage may keep the warehouse open across them."""
    return getattr(run_units, "here", False)


run_here.here = True  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Unit:
    """A unit of work as a work pool's flow run carries it. `sent`: a call as the run's name and parameters (names
    and values a Prefect server can keep and show: neither the project's settings nor its warehouse, whose catalog
    may hold a password). `rebuilt`: the call again, from the worker's own settings and those parameters."""
    task: Task
    sent: Callable[[dict], tuple[str, dict]]
    rebuilt: Callable[[Settings, dict], dict]
