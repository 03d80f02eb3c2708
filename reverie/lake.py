"""A DuckLake: a catalog database (SQLite or PostgreSQL) and a folder of Parquet files, which several processes can
read and write at once; attached under one name, from the extensions PyPI ships (they load offline)."""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from reverie.extensions import load_extension
from reverie.queries import literal

LAKE = "lake"  # the name the DuckLake is attached under, and every connection's default catalog


@dataclass(frozen=True)
class Lake:
    """A DuckLake: where its catalog lives (`sqlite:<file>`, `postgres:<libpq settings>`) and its data files."""
    catalog: str
    data_path: str

    def attach(self, con: duckdb.DuckDBPyConnection, read_only: bool = False) -> None:
        """Attach the lake to a connection and make it the connection's default catalog."""
        load_extension(con, "ducklake")
        catalog_kind = self.catalog.split(":")[0]  # sqlite or postgres
        load_extension(con, f"{catalog_kind}_scanner")
        options = f"data_path {literal(self.data_path)}" + (", read_only" if read_only else "")
        con.execute(f"attach {literal('ducklake:' + self.catalog)} as {LAKE} ({options})")
        con.execute(f"use {LAKE}")


def in_lake(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether a connection's default catalog is a DuckLake."""
    return con.execute("select current_database()").fetchone()[0] == LAKE
