"""A DuckDB table, in the warehouse or in another DuckDB file attached read-only: one batch per read."""

from __future__ import annotations

import threading
from collections import Counter
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
    """[sources.<name>] of a duckdb source: database, table, computed."""
    database: str | None = None  # another DuckDB file, relative to the project folder (omit: the warehouse itself)
    table: str | None = None  # the table or view to read, `name` or `schema.name`
    computed: dict[str, str] | None = None  # columns computed by SQL over the table's, added or in place of one

    def __post_init__(self) -> None:
        if not self.table:
            raise OptionError("needs table")
        if self.table.count(".") > 1:
            raise OptionError(f"table: '{self.table}' is not `name` or `schema.name`")


# Another file is attached under its own name, as DuckDB names it (the file's stem): its views name their tables
# that way ("shop"."main"."orders", as dbt writes them). Sources of one file share the attachment; the last detaches.
_ATTACHED: Counter = Counter()
_ATTACHING = threading.Lock()


class DuckDBTable(SourceFormat):
    """Re-read from the watermark minus the lookback every cycle, so late and corrected rows are picked up."""
    Options = DuckDBTableOptions

    def _database(self, reading: Reading) -> Path:
        return reading.project_dir / self.options.database

    def _relation(self) -> str:
        relation = ".".join(quoted(part) for part in self.options.table.split("."))
        if self.options.database:
            relation = f"{quoted(Path(self.options.database).stem)}.{relation}"
        if not self.options.computed:
            return relation
        names = ", ".join(literal(name) for name in self.options.computed)
        added = ", ".join(f"({expression}) as {quoted(name)}" for name, expression in self.options.computed.items())
        # the computed columns first, then the table's but those of the same names
        return f"(select {added}, columns(c -> c not in ({names})) from {relation})"

    def discover(self, con, reading: Reading) -> list[Batch]:
        where = self.options.table
        if self.options.database:
            where = f"{self._database(reading)}: table {self.options.table}"
        relation, time_column = self._relation(), quoted(reading.time_column)

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
        database, name = self._database(reading), Path(self.options.database).stem
        warehouse = con.execute("select current_database()").fetchone()[0]
        if name in (warehouse, "memory", "system", "temp"):
            raise BatchError(f"{database}: a DuckDB file is attached under its name, and '{name}' is taken "
                             "(rename the file)")
        key = (con.execute("select path from duckdb_databases() where database_name = current_database()")
               .fetchone()[0], name)
        with _ATTACHING:
            if not Path(database).exists():
                raise BatchError(f"{database}: no such DuckDB file")
            if not _ATTACHED[key]:
                con.execute(f"attach {literal(str(database))} as {quoted(name)} (read_only)")
            _ATTACHED[key] += 1
        try:
            yield
        finally:
            with _ATTACHING:
                _ATTACHED[key] -= 1
                if not _ATTACHED[key]:
                    con.execute(f"detach database if exists {quoted(name)}")

    def read(self, batch: TableRead) -> Relation:
        return batch.rows
