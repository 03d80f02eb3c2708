"""Prefect's API for a local run: start the ephemeral server with the time it needs, or say in one line why not.

A local flow run without PREFECT_API_URL starts Prefect's ephemeral API server in a subprocess and
waits for it — 20 s at most by default. Measured on 2 quiet cores: ~14 s in a fresh PREFECT_HOME
(database migrations), ~9 s once it exists; with other work on both cores the first start exceeded
20 s and every command died with a 60-line traceback. reverie starts it itself, giving it
STARTUP_TIMEOUT_SECONDS unless the user set PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS (in the
environment or a Prefect profile), and on a thread, so the caller can import and prepare meanwhile.
The flow run then finds the server running (Prefect keeps one per process).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

STARTUP_TIMEOUT_SECONDS = 300


class PrefectUnavailable(RuntimeError):
    """Prefect's API could not be reached or started; the message says what to do."""


def _startup_timeout() -> int:
    from prefect.settings import get_current_settings

    ephemeral = get_current_settings().server.ephemeral
    return ephemeral.startup_timeout_seconds if "startup_timeout_seconds" in ephemeral.model_fields_set \
        else STARTUP_TIMEOUT_SECONDS


def start_api() -> None:
    """Make sure a local run has an API: the configured server, or the ephemeral one started and answering."""
    from prefect.settings import get_current_settings

    if get_current_settings().api.url:
        return  # a real server (or a test harness): Prefect's client reports it if it is down
    from prefect.server.api.server import SubprocessASGIServer

    timeout = _startup_timeout()
    try:
        SubprocessASGIServer().start(timeout=timeout)
    except Exception as exc:
        cause = str(exc).split(" stdout:")[0].splitlines()[0] if str(exc) else type(exc).__name__
        cause = "" if cause.startswith("Timed out") else f" ({cause})"
        raise PrefectUnavailable(
            f"Prefect's local API did not start within {timeout} s{cause}; the machine may be busy. Try again, raise "
            "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS, or run `prefect server start` and set "
            "PREFECT_API_URL=http://127.0.0.1:4200/api") from exc


@contextmanager
def api_starting() -> Iterator[None]:
    """Start Prefect's API on a thread for the duration of the block; at its end, wait for it (PrefectUnavailable)."""
    failure: list[BaseException] = []

    def start() -> None:
        try:
            start_api()
        except BaseException as exc:  # handed to the caller's thread below
            failure.append(exc)

    starter = threading.Thread(target=start, name="prefect-api-start", daemon=True)
    starter.start()
    yield  # an error or Ctrl-C in the block does not wait for the server (Prefect stops it at exit)
    starter.join()
    if failure:
        raise failure[0]
