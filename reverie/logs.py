"""Logging for tasks: Prefect's run logger inside a run, a plain logger outside (benchmarks, scripts)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from prefect import get_run_logger
from prefect.exceptions import MissingContextError


def run_logger() -> logging.Logger | logging.LoggerAdapter:
    """The current run's logger, so messages reach the Prefect UI; `reverie` outside a run."""
    try:
        return get_run_logger()
    except MissingContextError:
        return logging.getLogger("reverie")


class WithoutTraceback(logging.Formatter):
    """A console formatter that leaves tracebacks out: the message stays, the run's logs in Prefect keep the rest."""

    def __init__(self, inner: logging.Formatter | None) -> None:
        super().__init__()
        self.inner = inner or logging.Formatter()

    def format(self, record: logging.LogRecord) -> str:
        if not (record.exc_info or record.exc_text or record.stack_info):
            return self.inner.format(record)
        return self.inner.format(logging.makeLogRecord({**record.__dict__, "exc_info": None, "exc_text": None,
                                                        "stack_info": None}))


@contextmanager
def console_without_tracebacks() -> Iterator[None]:
    """For the block, what Prefect prints on the terminal has no tracebacks (a command says what failed in one line;
    the flow run's logs, in the Prefect UI, keep the traceback)."""
    consoles = [h for name in ("prefect", "") for h in logging.getLogger(name).handlers
                if type(h).__name__ == "PrefectConsoleHandler" or type(h) is logging.StreamHandler]
    formatters = [h.formatter for h in consoles]
    for handler in consoles:
        handler.setFormatter(WithoutTraceback(handler.formatter))
    try:
        yield
    finally:
        for handler, formatter in zip(consoles, formatters):
            handler.setFormatter(formatter)
