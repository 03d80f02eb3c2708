"""What was logged: Python loggers' messages meanwhile, at DEBUG, and what Prefect stored of flow runs' logs."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from contextlib import contextmanager

from prefect.client.orchestration import get_client


class Recorded(logging.Handler):
    """Keeps every message it is handed."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@contextmanager
def logged_at_debug(*names: str) -> Iterator[list[str]]:
    """Everything these loggers log meanwhile, at DEBUG, as someone debugging a channel would turn them on."""
    recorded = Recorded()
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.DEBUG)
        logger.addHandler(recorded)
    try:
        yield recorded.messages
    finally:
        for logger, level in zip(loggers, levels):
            logger.removeHandler(recorded)
            logger.setLevel(level)


def stored_logs(*flow_run_ids: str) -> str:
    """What Prefect stored of these flow runs' logs, their task runs' included."""
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
    from prefect.logging.handlers import APILogHandler

    APILogHandler().flush()

    async def read():
        async with get_client() as client:
            return await client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=list(flow_run_ids))))
    return "\n".join(log.message for log in asyncio.run(read()))
