"""Source formats: how a source's data lands and is read. A format is one module here plus one line in FORMATS."""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import ClassVar, NamedTuple


class BatchError(ValueError):
    """A batch that cannot be loaded; the message names the file and the column."""


class UnknownFormat(ValueError):
    """A format name that is not in FORMATS."""


class Relation(NamedTuple):
    """What DuckDB reads rows from (a table function or a subquery) and the values of its named parameters."""
    sql: str
    params: dict[str, object]


@dataclass(frozen=True, kw_only=True)
class Batch:
    """One unit of loading: a landed file, or one read of a table. A format may subclass it to carry what it reads."""
    name: str  # its row in `batches` (whose number its rows carry in `_batch`)
    label: str  # how the ingest report names it when it fails
    where: str  # how messages name it: the whole path, so the user can act on it
    signature: tuple[int, datetime] | None  # size and mtime: loaded again when they change; None: read every cycle
    replaces_since: datetime | None = None  # a re-read: its rows replace the raw table's rows from this time on


@dataclass(frozen=True)
class Reading:
    """One source's turn in a cycle: what a format may need to find and read its batches."""
    source: str  # the source's name
    time_column: str
    project_dir: Path
    cycle_id: str
    watermark: datetime | None = None  # how far the source's loaded rows reach
    lookback_days: int = 1
    raw_table: str | None = None  # the warehouse table its rows are loaded into


def columns(con, relation: Relation) -> dict[str, str]:
    """Column name -> DuckDB type of what a relation reads."""
    described = con.execute(f"describe select * from {relation.sql}", relation.params).fetchall()
    return {name: kind for name, kind, *_ in described}


class SourceFormat(ABC):
    """One way a source's data lands: how its batches are found, read and described."""
    # The format's own fields in [sources.<name>]: a frozen dataclass whose fields have defaults; its
    # __post_init__ raises OptionError, naming the field, for values that cannot work.
    Options: ClassVar[type]
    # its owner rebuilds it whole (dbt): a whole read may bring other columns, and its rows replace the table's
    rebuilt_whole: ClassVar[bool] = False

    def __init__(self, options: object) -> None:
        self.options = options

    @contextmanager
    def opened(self, con, reading: Reading) -> Iterator[None]:
        """What must be in place on the connection while batches are found and read (nothing, unless the format
        says): an attached database, an extension and its credentials; undone afterwards."""
        yield

    @abstractmethod
    def discover(self, con, reading: Reading) -> list[Batch]:
        """Every batch there is to load now, each with the signature that tells whether it changed."""

    def explained(self, error: str) -> str:
        """A DuckDB error of the format's reader, said so that the user can act on it (as it is, unless the format
        knows better)."""
        return error

    def credentials(self) -> list[str]:
        """What must never appear in a message: the texts of the credentials the format reads (none, unless it says)."""
        return []

    def held_to(self, established: dict[str, str]) -> SourceFormat:
        """This format reading those columns as those types, where its files do not carry their own (CSV)."""
        return self

    @abstractmethod
    def read(self, batch: Batch) -> Relation:
        """The rows of one batch, as they landed."""

    def read_together(self, batches: list[Batch], ids: list[int]) -> Relation:
        """The rows of several batches at once, each row with its batch's number (from `ids`) in `_batch`."""
        selects, params = [], {}
        for i, batch in enumerate(batches):  # each part's parameters renamed apart: $since of part 2 is $since_2
            part = self.read(batch)
            names = "|".join(map(re.escape, part.params)) or "(?!)"
            sql = re.sub(rf"\$({names})\b", rf"$\g<1>_{i}", part.sql)
            selects.append(f"select *, $batch_{i}::bigint as _batch from {sql}")
            params |= {f"{name}_{i}": value for name, value in part.params.items()} | {f"batch_{i}": ids[i]}
        return Relation(f"({' union all by name '.join(selects)})", params)

    def describe(self, con, batch: Batch) -> dict[str, str]:
        """Column name -> DuckDB type of one batch."""
        return columns(con, self.read(batch))


# The format modules build on the classes above, so they are imported after them.
from reverie.sources.csv import CsvFiles  # noqa: E402
from reverie.sources.dbt_model import DbtModel  # noqa: E402
from reverie.sources.duckdb_table import DuckDBTable  # noqa: E402
from reverie.sources.jsonl import JsonLinesFiles  # noqa: E402
from reverie.sources.parquet import ParquetFiles  # noqa: E402
from reverie.sources.postgres import PostgresTable  # noqa: E402

FORMATS: dict[str, type[SourceFormat]] = {
    "parquet": ParquetFiles,
    "csv": CsvFiles,
    "duckdb": DuckDBTable,
    "jsonl": JsonLinesFiles,
    "postgres": PostgresTable,
    "dbt": DbtModel,  # written by [dbt], a source per semantic model
}


def format_class(source: str, name: str) -> type[SourceFormat]:
    """The format registered under `name`; an unknown name raises UnknownFormat naming the source and the known ones."""
    if name not in FORMATS:
        raise UnknownFormat(f"source '{source}': format '{name}' is not one of {', '.join(FORMATS)}")
    return FORMATS[name]


def build_format(source: str, name: str, options: object | None = None) -> SourceFormat:
    """The format `name` of a source, with its options from [sources.<source>] (its defaults when None)."""
    kind = format_class(source, name)
    return kind(options if options is not None else kind.Options())
