"""A DuckDB table, in the warehouse or in another DuckDB file attached read-only: one batch per read."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from reverie.options import OptionError
from reverie.queries import literal, quoted
from reverie.sources import (
    Batch,
    BatchError,
    Reading,
    Relation,
    SourceFormat,
)


@dataclass(frozen=True)
class DuckDBTableOptions:
    """[sources.<name>] of a duckdb source: database, table."""
    database: str | None = None  # another DuckDB file, relative to the project folder (omit: the warehouse itself)
    table: str | None = None  # the table to read

    def __post_init__(self) -> None:
        if not self.table:
            raise OptionError("needs table")


@dataclass(frozen=True, kw_only=True)
class TableRead(Batch):
    """One read of the table."""
    rows: Relation  # the rows it reads


class DuckDBTable(SourceFormat):
    """Re-read from the watermark minus the lookback every cycle, so late and corrected rows are picked up."""
    Options = DuckDBTableOptions

    def _database(self, reading: Reading) -> str:
        return str(reading.project_dir / self.options.database)

    def _alias(self, reading: Reading) -> str:
        return quoted(f"source_{reading.source}")

    def discover(self, reading: Reading) -> list[Batch]:
        where, relation = self.options.table, quoted(self.options.table)
        if self.options.database:
            where = f"{self._database(reading)}: table {self.options.table}"
            relation = f"{self._alias(reading)}.{relation}"
        since = reading.watermark - timedelta(days=reading.lookback_days) if reading.watermark else None
        rows = (Relation(f"(select * from {relation} where {quoted(reading.time_column)} >= $since)", {"since": since})
                if since else Relation(f"(select * from {relation})", {}))
        # the first read (or one after nothing was loaded) replaces every row with a time
        return [TableRead(name=f"{where} @ {reading.cycle_id}", label=where, where=where, signature=None,
                          replaces_since=since or datetime.min, rows=rows)]

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
