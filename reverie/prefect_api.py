"""Prefect's API for a local run: start the ephemeral server with the time it needs, or say in one line why not.

A local flow run without PREFECT_API_URL starts Prefect's ephemeral API server in a subprocess and
waits for it — 20 s at most by default. Measured on 2 quiet cores: ~14 s in a fresh PREFECT_HOME
(database migrations), ~9 s once it exists; with other work on both cores the first start exceeded
20 s and every command died with a 60-line traceback. reverie starts it itself, giving it
STARTUP_TIMEOUT_SECONDS unless the user set PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS (in the
environment or a Prefect profile), and on a thread, so the caller can import and prepare meanwhile.
The flow run then finds the server running (Prefect keeps one per process).

The server's own output goes to a log file, not the terminal: uvicorn prints tracebacks (a Prefect database
that cannot be read, a request cut off when the server stops under load) that would otherwise reach the user.
A server whose application fails to start is not started again and again until the timeout, as Prefect does
for a port taken meanwhile: the run fails at once, naming the cause and the log. Two commands started at once
start their servers one after the other: both would otherwise migrate a new PREFECT_HOME's database together.
"""

from __future__ import annotations

import re
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

STARTUP_TIMEOUT_SECONDS = 300
START_LOCK = "reverie-api-start.lock"  # in PREFECT_HOME, beside Prefect's database


class PrefectUnavailable(RuntimeError):
    """Prefect's API could not be reached or started; the message says what to do."""


def _startup_timeout() -> int:
    from prefect.settings import get_current_settings

    ephemeral = get_current_settings().server.ephemeral
    return ephemeral.startup_timeout_seconds if "startup_timeout_seconds" in ephemeral.model_fields_set \
        else STARTUP_TIMEOUT_SECONDS


STARTUP_FAILED = "Application startup failed"  # what uvicorn logs before it exits with 3 (a taken port exits 3 too)
EXCEPTION_LINE = re.compile(r"^[\w.]+(Error|Exception): .+$", re.MULTILINE)


class ServerFailed(RuntimeError):
    """Prefect's server application failed to start; the message is its first exception's line."""


def _logged_server(log_file: Path):
    """Prefect's ephemeral server class with its output appended to `log_file` (Prefect keeps one instance per
    process, found by any later `SubprocessASGIServer()`, so the flow run uses this one)."""
    from prefect.server.api.server import SubprocessASGIServer

    class LoggedServer(SubprocessASGIServer):
        def _run_uvicorn_command(self) -> subprocess.Popen:
            self._raise_if_startup_failed()
            log_file.parent.mkdir(parents=True, exist_ok=True)
            self._log_offset = log_file.stat().st_size if log_file.exists() else 0
            with log_file.open("ab") as log, _uvicorn_output_to(log):
                return super()._run_uvicorn_command()

        def _raise_if_startup_failed(self) -> None:
            if self.server_process is None or self.server_process.poll() is None:
                return
            with log_file.open("rb") as log:
                log.seek(self._log_offset)
                output = log.read().decode(errors="replace")
            if STARTUP_FAILED in output:
                first = EXCEPTION_LINE.search(output)  # the root cause: chained exceptions follow it
                raise ServerFailed(first.group(0) if first else STARTUP_FAILED)

    return LoggedServer


@contextmanager
def _uvicorn_output_to(log) -> Iterator[None]:
    """For the block, a uvicorn process started writes its output to `log` (Prefect's method that starts it takes
    no output streams; other processes started meanwhile are left as they are)."""
    original = subprocess.Popen.__init__

    def logged(self, args, *rest, **kwargs):
        if list(args[1:3]) == ["-m", "uvicorn"]:
            kwargs.setdefault("stdout", log)
            kwargs.setdefault("stderr", subprocess.STDOUT)
        original(self, args, *rest, **kwargs)

    subprocess.Popen.__init__ = logged
    try:
        yield
    finally:
        subprocess.Popen.__init__ = original


def start_api(log_file: Path) -> None:
    """Make sure a local run has an API: the configured server, or the ephemeral one started and answering, its
    output in `log_file`."""
    from filelock import FileLock, Timeout
    from prefect.settings import get_current_settings

    settings = get_current_settings()
    if settings.api.url:
        return  # a real server (or a test harness): Prefect's client reports it if it is down
    timeout = _startup_timeout()
    started = time.monotonic()
    try:
        # one start at a time per PREFECT_HOME: two servers starting on a new database both migrate it, and the
        # second fails ("duplicate column name"); the next waits for the first to be up, then finds it migrated
        with FileLock(settings.home / START_LOCK, timeout=timeout):
            _logged_server(log_file)().start(timeout=max(1, round(timeout - (time.monotonic() - started))))
    except Timeout as exc:
        raise PrefectUnavailable(f"Prefect's local API did not start within {timeout} s: another reverie command "
                                 f"was starting its own meanwhile ({settings.home / START_LOCK}); try again") from exc
    except ServerFailed as exc:
        raise PrefectUnavailable(f"Prefect's local API failed to start ({exc}); its log: {log_file}") from exc
    except Exception as exc:
        cause = str(exc).split(" stdout:")[0].splitlines()[0] if str(exc) else type(exc).__name__
        cause = "" if cause.startswith("Timed out") else f" ({cause})"
        raise PrefectUnavailable(
            f"Prefect's local API did not start within {timeout} s{cause}; the machine may be busy. Try again, raise "
            "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS, or run `prefect server start` and set "
            f"PREFECT_API_URL=http://127.0.0.1:4200/api (its log: {log_file})") from exc


def api_url() -> str:
    """The URL of the API this process's runs report to (the configured one, or its temporary server's), for worker
    processes to report to the same."""
    from prefect.server.api.server import SubprocessASGIServer
    from prefect.settings import get_current_settings

    return get_current_settings().api.url or SubprocessASGIServer().api_url


@contextmanager
def api_starting(log_file: Path) -> Iterator[None]:
    """Start Prefect's API on a thread for the duration of the block, its output in `log_file`; at its end, wait
    for it (PrefectUnavailable)."""
    failure: list[BaseException] = []

    def start() -> None:
        try:
            start_api(log_file)
        except BaseException as exc:  # handed to the caller's thread below
            failure.append(exc)

    starter = threading.Thread(target=start, name="prefect-api-start", daemon=True)
    starter.start()
    yield  # an error or Ctrl-C in the block does not wait for the server (Prefect stops it at exit)
    starter.join()
    if failure:
        raise failure[0]
