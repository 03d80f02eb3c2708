"""Tables read in windows of time: from the watermark minus the look-back every cycle, so late and corrected rows
are picked up and replace what was loaded; a first read whole, or in chunks by time. The duckdb and postgres
formats share this."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from reverie.queries import literal
from reverie.sources import Batch, Reading, Relation


@dataclass(frozen=True, kw_only=True)
class TableRead(Batch):
    """One read of a table: its rows from a time on (and before another, for a chunk of a first read)."""
    rows: Relation  # the rows it reads


# rows from `start` (None: from the first, rows without a time included) to before `end` (None: to the last)
RowsBetween = Callable[[datetime | None, datetime | None], Relation]


def window_reads(where: str, reading: Reading, rows_between: RowsBetween, cuts: list[datetime] = ()) -> list[TableRead]:
    """The reads of one cycle: the rows from the watermark minus the look-back, or, on a first read (or one after
    nothing was loaded), every row — in chunks between `cuts`, each replacing the rows from its start on."""
    if reading.watermark:
        since = reading.watermark - timedelta(days=reading.lookback_days)
        return [TableRead(name=f"{where} @ {reading.cycle_id}", label=where, where=where, signature=None,
                          replaces_since=since, rows=rows_between(since, None))]
    edges = [None, *cuts, None]
    reads = []
    for start, end in zip(edges, edges[1:]):
        part = where if len(edges) == 2 else f"{where} [{start or '…'}, {end or '…'})"
        reads.append(TableRead(name=f"{part} @ {reading.cycle_id}", label=part, where=part, signature=None,
                               replaces_since=start or datetime.min, rows=rows_between(start, end)))
    return reads


def between(time_column: str, start: datetime | None, end: datetime | None,
            inline: bool = False) -> tuple[str, dict[str, datetime]]:
    """The SQL condition of rows from `start` to before `end` (either left out when None), with its parameters
    $start and $end; `inline`: the times written in as text, for SQL another database runs."""
    bounds = {name: value for name, value in (("start", start), ("end", end)) if value}
    conditions = [f"{time_column} {'>=' if name == 'start' else '<'} {literal(str(value)) if inline else '$' + name}"
                  for name, value in bounds.items()]
    if start is None and end is not None:  # the first of a first read's chunks: rows without a time belong to it
        conditions = [f"({conditions[0]} or {time_column} is null)"]
    return " and ".join(conditions) or "true", {} if inline else bounds
