"""A DuckDB table, in the warehouse or in another DuckDB file attached read-only: one batch per read."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from reverie.options import OptionError
from reverie.queries import literal, quoted
from reverie.sources import Batch, BatchError, Reading, Relation, SourceFormat
from reverie.sources.tables import TableRead, between, window_reads


@dataclass(frozen=True)
class DuckDBTableOptions:
    """[sources.<name>] of a duckdb source: database, table."""
    database: str | None = None  # another DuckDB file, relative to the project folder (omit: the warehouse itself)
    table: str | None = None  # the table to read

    def __post_init__(self) -> None:
        if not self.table:
            raise OptionError("needs table")


class DuckDBTable(SourceFormat):
    """Re-read from the watermark minus the lookback every cycle, so late and corrected rows are picked up."""
    Options = DuckDBTableOptions

    def _database(self, reading: Reading) -> str:
        return str(reading.project_dir / self.options.database)

    def _alias(self, reading: Reading) -> str:
        return quoted(f"source_{reading.source}")

    def discover(self, con, reading: Reading) -> list[Batch]:
        where, relation = self.options.table, quoted(self.options.table)
        if self.options.database:
            where = f"{self._database(reading)}: table {self.options.table}"
            relation = f"{self._alias(reading)}.{relation}"
        time_column = quoted(reading.time_column)

        def rows_between(start: datetime | None, end: datetime | None) -> Relation:
            condition, params = between(time_column, start, end)
            return Relation(f"(select * from {relation} where {condition})", params)

        return window_reads(where, reading, rows_between)

    @contextmanager
    def opened(self, con, reading: Reading) -> Iterator[None]:
        """The other DuckDB file attached read-only while the table is read, detached afterwards."""
        if not self.options.database:
            yield
            return
        database = self._database(reading)
        try:
            if not Path(database).exists():
                raise BatchError(f"{database}: no such DuckDB file")
            con.execute(f"attach {literal(database)} as {self._alias(reading)} (read_only)")
            yield
        finally:
            con.execute(f"detach database if exists {self._alias(reading)}")

    def read(self, batch: TableRead) -> Relation:
        return batch.rows
