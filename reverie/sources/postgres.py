"""A PostgreSQL table or SELECT, read through DuckDB's postgres_scanner from a connection string kept in an
environment variable: from the watermark minus the look-back every cycle, a first read in chunks by time."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, time
from typing import ClassVar

from reverie.extensions import load_extension
from reverie.options import OptionError
from reverie.queries import literal, quoted
from reverie.secrets import LIBPQ_PASSWORD, url_secrets
from reverie.sources import Batch, BatchError, Reading, Relation, SourceFormat
from reverie.sources.tables import TableRead, between, window_reads

ENVIRONMENT_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
POSTGRES_ERROR = re.compile(r"Failed to (?:prepare query|prepare COPY|fetch header for COPY).*?: ERROR:\s+([^;]*)")


@dataclass(frozen=True)
class PostgresOptions:
    """[sources.<name>] of a postgres source: connection_env, table or query, chunk_rows."""
    connection_env: str | None = None  # the environment variable holding the libpq connection string or URL
    table: str | None = None  # the table to read, `name` or `schema.name`
    query: str | None = None  # or a SELECT to read (in PostgreSQL's SQL), instead of a table
    chunk_rows: int = 1_000_000  # a first read goes in chunks by time of about this many rows, each committed alone
    AT_LEAST: ClassVar[dict[str, int]] = {"chunk_rows": 1}

    def __post_init__(self) -> None:
        if not self.connection_env:
            raise OptionError("needs connection_env (the environment variable that holds the connection string)")
        if not ENVIRONMENT_NAME.match(self.connection_env):
            raise OptionError("connection_env must name an environment variable (like PG_ORDERS), not hold the "
                              "connection itself: a password never goes in reverie.toml")
        if bool(self.table) == bool(self.query):
            raise OptionError("needs table or query (one of them)")


class PostgresTable(SourceFormat):
    """Reads the source's rows where they live; nothing is exported first."""
    Options = PostgresOptions

    def _connection(self) -> str:
        value = os.environ.get(self.options.connection_env)
        if not value:
            raise BatchError(f"environment variable {self.options.connection_env} is not set (the connection string "
                             "of the PostgreSQL database)")
        return value

    def credentials(self) -> list[str]:
        value = os.environ.get(self.options.connection_env) or ""
        passwords = [match.group(1).strip("'") for match in LIBPQ_PASSWORD.finditer(value)]
        return [value, *passwords, *url_secrets(value)]

    def explained(self, error: str) -> str:
        if error.startswith('Failed to execute query "ROLLBACK"'):  # all the scanner says when the server went away
            return "the connection to the database was lost during the read; nothing of this read was kept"
        said = POSTGRES_ERROR.search(error)  # the statement it ran is long and says nothing the user wrote
        return f"PostgreSQL: {said.group(1).strip()}" if said else error

    @staticmethod
    def _alias(reading: Reading) -> str:
        return f"source_{reading.source}"

    def _from(self) -> str:
        """The table or the SELECT, as PostgreSQL reads it after FROM."""
        if self.options.query:
            return f"({self.options.query.strip().rstrip(';')}) as source_query"
        return ".".join(map(quoted, self.options.table.split(".", 1)))

    def _in_postgres(self, reading: Reading, sql: str) -> str:
        """A statement run by PostgreSQL itself, as a DuckDB relation."""
        return f"postgres_query({literal(self._alias(reading))}, {literal(sql)})"

    @contextmanager
    def opened(self, con, reading: Reading) -> Iterator[None]:
        """The database attached read-only while its rows are found and read, detached afterwards."""
        load_extension(con, "postgres_scanner")
        alias = quoted(self._alias(reading))
        try:
            con.execute(f"attach {literal(self._connection())} as {alias} (type postgres, read_only)")
            yield
        finally:
            con.execute(f"detach database if exists {alias}")

    def discover(self, con, reading: Reading) -> list[Batch]:
        where = f"postgres {self.options.table or 'query'} (${self.options.connection_env})"
        column = quoted(reading.time_column)

        def rows_between(start: datetime | None, end: datetime | None) -> Relation:
            # the window is applied by PostgreSQL itself: an index on the time column serves it, and only the
            # window's rows travel (the scanner's pushed-down filter would scan the whole table for each read)
            condition, _ = between(column, start, end, inline=True)
            return Relation(self._in_postgres(reading, f"select * from {self._from()} where {condition}"), {})

        return window_reads(where, reading, rows_between, [] if reading.watermark else self._cuts(con, reading))

    def _cuts(self, con, reading: Reading) -> list[datetime]:
        """Where a first read is cut: equal spans of time, as many as the rows need chunks of chunk_rows."""
        column = quoted(reading.time_column)
        # a table's row count as PostgreSQL estimates it (counting would read the whole table once more); a query's,
        # or a table never analyzed, counted
        estimate = (f"(select reltuples::bigint from pg_class where oid = to_regclass({literal(self._from())}) "
                    "and reltuples > 0)") if self.options.table else "null"
        stats = f"select min({column}), max({column}), {estimate} from {self._from()}"
        first, last, count = con.execute(f"select * from {self._in_postgres(reading, stats)}").fetchone()
        if count is None:
            count_rows = f"select count(*) from {self._from()}"
            count = con.execute(f"select * from {self._in_postgres(reading, count_rows)}").fetchone()[0]
        chunks = math.ceil(count / self.options.chunk_rows)
        if chunks <= 1 or first is None or first == last:
            return []
        first, last = (value if isinstance(value, datetime) else datetime.combine(value, time()) for value in (first, last))
        step = (last - first) / chunks
        return sorted({(first + step * i).replace(microsecond=0) for i in range(1, chunks)})

    def read(self, batch: TableRead) -> Relation:
        return batch.rows

