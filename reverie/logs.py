"""Logging for tasks: Prefect's run logger inside a run, a plain logger outside (benchmarks, scripts)."""

from __future__ import annotations

import logging

from prefect import get_run_logger
from prefect.exceptions import MissingContextError


def run_logger() -> logging.Logger | logging.LoggerAdapter:
    """The current run's logger, so messages reach the Prefect UI; `reverie` outside a run."""
    try:
        return get_run_logger()
    except MissingContextError:
        return logging.getLogger("reverie")
