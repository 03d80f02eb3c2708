"""Commands the tests start (`reverie`, `prefect`), each in a session of its own, so that what it starts in turn —
the embedded model's llama.cpp server, Prefect's temporary API server — is stopped with it, also when it times out."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REVERIE = str(Path(sys.executable).parent / "reverie")


def free_port() -> int:
    """A TCP port on loopback that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def kill_group(process: subprocess.Popen) -> None:
    """SIGKILL to the process and everything it started in its session; a group already gone is fine."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def stop_group(process: subprocess.Popen, timeout: float = 30) -> None:
    """SIGTERM to the process and what it started, SIGKILL to them if the process is still there after `timeout`."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_group(process)
        process.wait()
    except ProcessLookupError:
        pass


def run(args: list, timeout: float, **options) -> subprocess.CompletedProcess:
    """subprocess.run, its output captured as text; on a timeout the whole group is killed, then TimeoutExpired."""
    with subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                          **options) as process:
        try:
            out, err = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            kill_group(process)
            process.communicate()
            raise
        finally:
            kill_group(process)  # what it left running after it exited, too
    return subprocess.CompletedProcess(args, process.returncode, out, err)


@contextmanager
def started(args: list, **options) -> Iterator[subprocess.Popen]:
    """subprocess.Popen in a session of its own; when the block ends, whatever of it still runs is killed."""
    process = subprocess.Popen(args, start_new_session=True, **options)
    try:
        yield process
    finally:
        kill_group(process)
        process.wait()


def reverie(*args: str, cwd: Path, timeout: int = 600, **env: str) -> subprocess.CompletedProcess:
    """A `reverie` command, as a user runs it; on a timeout it is killed with what it started."""
    return run([REVERIE, *args], cwd=cwd, timeout=timeout, env={**os.environ, "COLUMNS": "200", **env})
