"""A PostgreSQL server of a test's own: Debian's binaries, a fresh cluster in a temporary folder, reached by its Unix
socket only, stopped (and its folder removed) when the test is done. As root, the server runs as `postgres`."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def binaries() -> Path | None:
    """The folder of PostgreSQL's server programs (initdb, pg_ctl), if installed."""
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(versions[-1]).parent if versions else None


@contextmanager
def postgres_server(database: str = "reverie") -> Iterator[str]:
    """Start a server with one database; yields its libpq settings (`dbname=... host=... port=... user=...`).
    Its folder is a new one in the system's temporary folder: pytest's are closed to the `postgres` user."""
    bin_dir = binaries()
    assert bin_dir is not None, "PostgreSQL is not installed (Debian: apt-get install postgresql)"
    folder = Path(tempfile.mkdtemp(prefix="reverie-postgres-"))
    data, socket = folder / "data", folder / "socket"
    socket.mkdir()
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []  # PostgreSQL refuses to run as root
    if as_user:
        shutil.chown(folder, "postgres")
        shutil.chown(socket, "postgres")
    user = "postgres" if as_user else os.environ.get("USER", "postgres")
    port = "5439"
    run = lambda *args: subprocess.run([*as_user, *args], check=True, capture_output=True, text=True)  # noqa: E731
    run(str(bin_dir / "initdb"), "-D", str(data), "-U", user, "--auth=trust", "--no-sync")
    run(str(bin_dir / "pg_ctl"), "-D", str(data), "-w", "-l", str(folder / "server.log"), "-o",
        f"-k {socket} -p {port} -c listen_addresses='' -c fsync=off", "start")
    try:
        run(str(bin_dir / "createdb") if (bin_dir / "createdb").exists() else "createdb", "-h", str(socket), "-p", port,
            "-U", user, database)
        yield f"dbname={database} host={socket} port={port} user={user}"
    finally:
        run(str(bin_dir / "pg_ctl"), "-D", str(data), "-w", "-m", "immediate", "stop")
        shutil.rmtree(folder, ignore_errors=True)
