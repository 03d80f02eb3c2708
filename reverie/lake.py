"""A DuckLake: a catalog database (SQLite or PostgreSQL) and a folder of Parquet files, which several processes can
read and write at once; attached under one name, from the extensions PyPI ships (they load offline)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import duckdb

from reverie.queries import literal

LAKE = "lake"  # the name the DuckLake is attached under, and every connection's default catalog
LAKE_EXTENSIONS = {"ducklake": "duckdb_extension_ducklake", "sqlite_scanner": "duckdb_extension_sqlite_scanner",
                   "postgres_scanner": "duckdb_extension_postgres_scanner"}  # PyPI packages: they load offline

@dataclass(frozen=True)
class Lake:
    """A DuckLake: where its catalog lives (`sqlite:<file>`, `postgres:<libpq settings>`) and its data files."""
    catalog: str
    data_path: str

    def attach(self, con: duckdb.DuckDBPyConnection, read_only: bool = False) -> None:
        """Attach the lake to a connection and make it the connection's default catalog."""
        for name, package in LAKE_EXTENSIONS.items():
            if name == "ducklake" or self.catalog.startswith(name.removesuffix("_scanner") + ":"):
                con.execute(f"load {literal(_extension_file(name, package))}")
        options = f"data_path {literal(self.data_path)}" + (", read_only" if read_only else "")
        con.execute(f"attach {literal('ducklake:' + self.catalog)} as {LAKE} ({options})")
        con.execute(f"use {LAKE}")


@cache
def _extension_file(name: str, package: str) -> str:
    import importlib

    folder = Path(importlib.import_module(package).__file__).parent
    return str(folder / "extensions" / f"v{duckdb.__version__}" / f"{name}.duckdb_extension")


def in_lake(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether a connection's default catalog is a DuckLake."""
    return con.execute("select current_database()").fetchone()[0] == LAKE
