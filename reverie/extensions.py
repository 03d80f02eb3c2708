"""DuckDB extensions from the duckdb-extension-* packages on PyPI: loaded by path, so they work offline."""

from __future__ import annotations

import importlib
from functools import cache
from pathlib import Path

import duckdb

from reverie.queries import literal


@cache
def extension_file(name: str) -> str:
    """Where the package duckdb-extension-<name> keeps the extension for this DuckDB."""
    package = importlib.import_module(f"duckdb_extension_{name.replace('-', '_')}")
    folder = Path(package.__file__).parent
    return str(folder / "extensions" / f"v{duckdb.__version__}" / f"{name.replace('-', '_')}.duckdb_extension")


def load_extension(con: duckdb.DuckDBPyConnection, name: str) -> None:
    """Load an extension (postgres_scanner, httpfs, aws, ducklake, ...) on a connection."""
    con.execute(f"load {literal(extension_file(name))}")
