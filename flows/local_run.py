"""A sleep cycle as a local flow run, with everything it waits for started at once."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from reverie.config import Settings, check_suites, load_settings
from reverie.llm import warm_llm
from reverie.logs import console_without_tracebacks
from reverie.prefect_api import api_starting
from reverie.secrets import redacted


@contextmanager
def ctrl_c_kept() -> Iterator[None]:
    """Ctrl-C during the block is not lost: some libraries' optional imports catch every exception, also
    KeyboardInterrupt, so it is raised again when the block ends."""
    pressed: list[int] = []

    def interrupt(signum, frame):
        pressed.append(signum)
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if pressed:
        raise KeyboardInterrupt


def failure(state) -> str:
    """Why a flow run did not complete, in one line: the flow's own exception (its traceback is in the run's logs)."""
    try:
        state.result()
        return state.message
    except Exception as exc:
        return redacted(f"{type(exc).__name__}: {exc}")


def server_log(settings: Settings) -> Path:
    """Where the output of Prefect's temporary server for a local run goes (not the terminal)."""
    return settings.warehouse.folder / "logs" / "prefect-server.log"


def run_cycle(project_dir: Path, full_refresh: bool = False, prepare: Callable[[], dict] | None = None) -> dict:
    """One sleep cycle as a local Prefect flow run; a failed run still yields a summary.

    What a cycle waits for starts at once: Prefect's API on a thread, the embedded model in its process, and
    here the imports of the flow and great-expectations, then `prepare` (the demo lands its data meanwhile).
    Raises ConfigError for a project that cannot be read and PrefectUnavailable when Prefect's API does not start."""
    settings = check_suites(load_settings(project_dir))
    started = time.monotonic()
    with warm_llm(settings.llm, settings.warehouse.folder / "logs"):
        with api_starting(server_log(settings)), ctrl_c_kept():
            from reverie.flows.sleep_cycle import sleep_cycle

            if any(source.suite for source in settings.sources.values()):
                from reverie.tasks.quality.expectations import preload

                preload()
            prepared = prepare() if prepare else None
        ready = round(time.monotonic() - started, 2)
        with console_without_tracebacks():
            state = sleep_cycle(project_dir=str(project_dir), full_refresh=full_refresh, return_state=True)
    timing = {"ready_seconds": ready, "wall_seconds": round(time.monotonic() - started, 2),
              **({"prepared": prepared} if prepare else {})}
    if state.is_completed():
        # the cycle's own seconds exclude starting Prefect, the imports and the flow run's bookkeeping
        return {**state.result(), **timing}
    error = failure(state)
    return {"cycle_id": None, "flow_run_id": str(state.state_details.flow_run_id), "status": "failed",
            "warehouse": str(settings.warehouse), "stages": {}, "error": error,
            "seconds": round(time.monotonic() - started, 2), **timing}


def run_morning_brief(project_dir: Path) -> dict:
    """The morning brief as a local Prefect flow run; a failed run still yields a summary.

    Raises ConfigError for a project that cannot be read and PrefectUnavailable when Prefect's API does not start."""
    settings = load_settings(project_dir)
    with api_starting(server_log(settings)), ctrl_c_kept():
        from reverie.flows.morning_brief import morning_brief
    with console_without_tracebacks():
        state = morning_brief(project_dir=str(project_dir), return_state=True)
    if state.is_completed():
        return state.result()
    error = failure(state)
    return {"cycle_id": None, "flow_run_id": str(state.state_details.flow_run_id), "status": "failed",
            "deliver": None, "error": error}
