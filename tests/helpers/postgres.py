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


def program(name: str) -> str:
    """One of PostgreSQL's programs (psql, createdb, ...), from the server's folder if it is there."""
    bin_dir = binaries()
    return str(bin_dir / name) if bin_dir and (bin_dir / name).exists() else name


@contextmanager
def postgres_server(database: str = "reverie", password: str | None = None) -> Iterator[str]:
    """Start a server with one database; yields its libpq settings (`dbname=... host=... port=... user=...`), which
    need `password=...` added when the server is given one. Its folder is a new one in the system's temporary folder:
    pytest's are closed to the `postgres` user."""
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
    auth = ["--auth=trust"]
    if password:
        (folder / "password").write_text(password)
        if as_user:
            shutil.chown(folder / "password", user)
        auth = ["--auth=scram-sha-256", f"--pwfile={folder / 'password'}"]
    run(str(bin_dir / "initdb"), "-D", str(data), "-U", user, *auth, "--no-sync")
    run(str(bin_dir / "pg_ctl"), "-D", str(data), "-w", "-l", str(folder / "server.log"), "-o",
        f"-k {socket} -p {port} -c listen_addresses='' -c fsync=off", "start")
    try:
        subprocess.run([*as_user, program("createdb"), "-h",
                        str(socket), "-p", port, "-U", user, database], check=True, capture_output=True, text=True,
                       env=dict(os.environ, PGPASSWORD=password or ""))
        yield f"dbname={database} host={socket} port={port} user={user}"
    finally:
        run(str(bin_dir / "pg_ctl"), "-D", str(data), "-w", "-m", "immediate", "stop")
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def attached(dsn: str, read_only: bool = True) -> Iterator:
    """An in-memory DuckDB with the server attached as `server`, through the postgres_scanner reverie reads with."""
    import duckdb

    from reverie.extensions import load_extension
    from reverie.queries import literal

    with duckdb.connect() as con:
        load_extension(con, "postgres_scanner")
        con.execute(f"attach {literal(dsn)} as server (type postgres{', read_only' if read_only else ''})")
        yield con


def execute(dsn: str, *statements: str) -> None:
    """Run statements on the server, each committed."""
    from reverie.queries import literal

    with attached(dsn, read_only=False) as con:
        for statement in statements:
            con.execute(f"call postgres_execute('server', {literal(statement)})")
