"""Units of work: the parts of a stage that are independent of each other (a source, a group of metrics, a detector)
and how a stage runs them — one after another here, or at once on a cycle's workers (flows.workers.cycle_workers)."""

from __future__ import annotations

from collections.abc import Callable

from prefect import Task

Spread = Callable[[Task, list[dict]], list]  # runs a task once per set of parameters; the results in that order


def run_here(unit: Task, calls: list[dict]) -> list:
    """Each call of a task one after another, in this process, as plain functions (no task runs)."""
    return [unit.fn(**call) for call in calls]
