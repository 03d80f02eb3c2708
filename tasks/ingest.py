"""Ingest: land new data in the warehouse, in batches its source's format finds and reads (reverie.sources)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

import duckdb
from prefect import task
from prefect.cache_policies import NO_CACHE

from reverie.commits import is_write_conflict, transaction
from reverie.config import SourceSettings
from reverie.logs import run_logger
from reverie.models import local_time
from reverie.queries import quoted, render
from reverie.secrets import redacted
from reverie.sources import (
    Batch,
    BatchError,
    Reading,
    Relation,
    SourceFormat,
    build_format,
    columns,
)
from reverie.summaries import IngestSummary
from reverie.warehouse import Warehouse, table_exists

INTEGER_TYPES = {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT"}
FLOAT_TYPES = {"FLOAT", "DOUBLE"}
TIME_TYPES = ("TIMESTAMP", "DATE")


def _family(duckdb_type: str) -> str:
    base = duckdb_type.split("(")[0]
    if base in INTEGER_TYPES:
        return "integer"
    if base in FLOAT_TYPES or base == "DECIMAL":
        return "float"
    if base.startswith("TIMESTAMP"):
        return "timestamp"
    return base


def _raw_types(con, source: SourceSettings) -> dict[str, str]:
    return columns(con, Relation(quoted(source.raw_table), {}))


def _raw_columns(con, source: SourceSettings) -> dict[str, str]:
    return {k: v for k, v in _raw_types(con, source).items() if k != "_batch"}


def _held_to_table(con, source: SourceSettings, source_format: SourceFormat,
                   batches: list[Batch]) -> tuple[SourceFormat, list[dict[str, str]]]:
    """The format reading the raw table's columns as the types it has them, and each batch's columns read so.

    Sniffed alone, a day with no nulls (or only nulls) types a column unlike the days before and would be refused;
    an integer column that a batch carries decimals in is left as sniffed, to be widened."""
    shapes = _described(con, source_format, batches)
    if not table_exists(con, source.raw_table):
        return source_format, shapes
    established = {column: kind for column, kind in _raw_columns(con, source).items()
                   if all(column in shape and not (_family(kind) == "integer" and _family(shape[column]) == "float")
                          for shape in shapes)}
    held = source_format.held_to(established)
    if held is source_format:
        return source_format, shapes
    return held, _described(con, held, batches)


def _described(con, source_format: SourceFormat, batches: list[Batch]) -> list[dict[str, str]]:
    """Each batch's columns, several at once: in object storage each is a round trip to the server."""
    if len(batches) < 4:
        return [source_format.describe(con, batch) for batch in batches]

    def describe(batch: Batch) -> dict[str, str]:
        with con.cursor() as cursor:  # the same database, with what `opened` attached and its secrets
            return source_format.describe(cursor, batch)

    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(describe, batches))


def check_time_column(source: SourceSettings, where: str, incoming: dict[str, str]) -> None:
    """A batch has the source's time column, as a TIMESTAMP or a DATE."""
    if source.time_column not in incoming:
        raise BatchError(f"{where}: time column '{source.time_column}' is missing")
    if not incoming[source.time_column].startswith(TIME_TYPES):
        raise BatchError(f"{where}: time column '{source.time_column}' is {incoming[source.time_column]}, "
                         "expected a TIMESTAMP or DATE")


def check_schema(con, source: SourceSettings, where: str, incoming: dict[str, str]) -> list[str]:
    """Compare a batch's columns with the raw table; widen integer columns that now carry decimals."""
    check_time_column(source, where, incoming)
    if not table_exists(con, source.raw_table):
        return []
    existing = _raw_columns(con, source)
    problems = [f"column '{c}' is missing (expected {t})" for c, t in existing.items() if c not in incoming]
    problems += [f"unexpected column '{c}' ({t})" for c, t in incoming.items() if c not in existing]
    widen = []
    for column in existing.keys() & incoming.keys():
        old, new = _family(existing[column]), _family(incoming[column])
        if old == "integer" and new == "float":
            widen.append(column)
        elif old != new and not (old == "float" and new == "integer"):
            problems.append(f"column '{column}' is {incoming[column]}, expected {existing[column]}")
    if problems:
        raise BatchError(f"{where}: " + "; ".join(problems))
    return widen


def _record_batches(con, source: SourceSettings, batches: list[Batch], ids: list[int], cycle_id: str) -> list[int]:
    """Remember each batch just loaded under its number, with its signature, row count and time range, in one scan."""
    stats_sql = render("ingest/batch_stats.sql", identifiers={"raw_table": source.raw_table},
                       expressions={"local_time": local_time(con, source)})
    stats = {batch_id: (count, first, last) for batch_id, count, first, last in con.execute(
        stats_sql, {"batches": ids}).fetchall()}
    counts = []
    for batch, batch_id in zip(batches, ids):
        count, first, last = stats.get(batch_id, (0, None, None))
        size, modified = batch.signature or (0, datetime.now())  # a read without a signature is recorded as of now
        forget_batch(con, source.name, batch.name)
        con.execute("insert into batches values ($source, $file, $size, $modified, $rows, $first, $last, "
                    "'loaded', null, $cycle_id, $now, $declaration, $batch_id)",
                    {"source": source.name, "file": batch.name, "size": size, "modified": modified, "rows": count,
                     "first": first, "last": last, "cycle_id": cycle_id, "now": datetime.now(),
                     "declaration": source.declaration, "batch_id": batch_id})
        counts.append(count)
    return counts


def _numbers(con, source: SourceSettings, batches: list[Batch]) -> list[int]:
    """New numbers for batches about to be loaded, after the source's highest."""
    (highest,) = con.execute("select coalesce(max(batch_id), 0) from batches where source = $source",
                             {"source": source.name}).fetchone()
    return list(range(highest + 1, highest + 1 + len(batches)))


def _delete_rows_of(con, table: str, source: SourceSettings, batches: list[Batch]) -> None:
    """Delete the rows an earlier load of these batches left (a file replaced since, a read tried again)."""
    con.execute(f"delete from {table} where _batch in (select batch_id from batches where source = $source "
                "and file in (select unnest($names::varchar[])))",
                {"source": source.name, "names": [batch.name for batch in batches]})


def _number_rows(con, source: SourceSettings) -> None:
    """A raw table made before batches were numbered: its rows' batch names become their batches' numbers.

    Step by step, each step committed (DuckDB does not change a table in the transaction that altered it): a run
    cut off between steps is finished by the next, which finds where it stopped from the columns."""
    if not table_exists(con, source.raw_table):
        return
    types, table = _raw_types(con, source), quoted(source.raw_table)
    if types.get("_batch") == "VARCHAR":
        if "_batch_number" not in types:
            con.execute(f"alter table {table} add column _batch_number bigint")
        con.execute(f"update {table} set _batch_number = batches.batch_id from batches "
                    f"where batches.source = $source and batches.file = {table}._batch", {"source": source.name})
        con.execute(f"alter table {table} drop column _batch")
    if "_batch_number" in _raw_types(con, source):
        con.execute(f"alter table {table} rename column _batch_number to _batch")


def _restamp(con, source: SourceSettings) -> int:
    """Batches loaded under another declaration (a time zone declared since, say) get their time range read again,
    so watermarks and completeness follow the declaration; returns how many."""
    stale = [batch_id for (batch_id,) in con.execute(
        "select batch_id from batches where source = $source and status = 'loaded' "
        "and declaration is distinct from $declaration", {"source": source.name,
                                                         "declaration": source.declaration}).fetchall()]
    if not stale or not table_exists(con, source.raw_table):
        return 0
    stats_sql = render("ingest/batch_stats.sql", identifiers={"raw_table": source.raw_table},
                       expressions={"local_time": local_time(con, source)})
    with transaction(con):
        for batch_id, _, first, last in con.execute(stats_sql, {"batches": stale}).fetchall():
            con.execute("update batches set first_event = $first, last_event = $last "
                        "where source = $source and batch_id = $batch_id",
                        {"first": first, "last": last, "source": source.name, "batch_id": batch_id})
        con.execute("update batches set declaration = $declaration where source = $source "
                    "and batch_id in (select unnest($ids::bigint[]))",
                    {"declaration": source.declaration, "source": source.name, "ids": stale})
    return len(stale)


def _prepare_table(con, source: SourceSettings, batch_rows: Relation, widen: list[str]) -> str:
    """The raw table, created with a batch's columns if new, widened columns made DOUBLE; returns its SQL name."""
    table = quoted(source.raw_table)
    if not table_exists(con, source.raw_table):
        con.execute(f"create table {table} as select *, null::bigint as _batch from {batch_rows.sql} limit 0",
                    batch_rows.params)
    for column in widen:
        con.execute(f"alter table {table} alter column {quoted(column)} type double")
    return table


def _load(con, source: SourceSettings, source_format: SourceFormat, batch: Batch, cycle_id: str) -> int:
    """Check a batch's schema and (re)load its rows, all in one transaction."""
    source_format, (incoming,) = _held_to_table(con, source, source_format, [batch])
    relation = source_format.read(batch)
    # a relation its owner rebuilt, read whole: its columns are what they now are, the raw table made anew with them
    anew = source_format.rebuilt_whole and batch.replaces_since == datetime.min
    try:
        check_time_column(source, batch.where, incoming)
        widen = [] if anew else check_schema(con, source, batch.where, incoming)
    except BatchError:
        # a header-only CSV has no types to check: say what is really wrong with it
        if con.execute(f"select count(*) from {relation.sql}", relation.params).fetchone()[0] == 0:
            raise BatchError(f"{batch.where}: the file has no rows") from None
        raise
    with transaction(con, "ingest"):
        if anew:
            con.execute(f"drop table if exists {quoted(source.raw_table)}")
        table = _prepare_table(con, source, relation, widen)
        if batch.replaces_since is not None:
            con.execute(f"delete from {table} where {quoted(source.time_column)} >= $since",
                        {"since": batch.replaces_since})
        _delete_rows_of(con, table, source, [batch])
        ids = _numbers(con, source, [batch])
        con.execute(f"insert into {table} by name select *, $batch_id::bigint as _batch from {relation.sql}",
                    {"batch_id": ids[0], **relation.params})
        (count,) = _record_batches(con, source, [batch], ids, cycle_id)
        if count == 0 and batch.replaces_since is None:
            raise BatchError(f"{batch.where}: the file has no rows")
    return count


def _load_all(con, source: SourceSettings, source_format: SourceFormat, new: list[Batch], cycle_id: str) -> int:
    """Every new batch in one insert, all or nothing; raises if any batch is not fit to load."""
    source_format, shapes = _held_to_table(con, source, source_format, new)
    if any(shape != shapes[0] for shape in shapes):
        raise BatchError("the new files differ in their columns")
    widen = check_schema(con, source, new[0].where, shapes[0])
    with transaction(con, "ingest"):
        table = _prepare_table(con, source, source_format.read(new[0]), widen)
        _delete_rows_of(con, table, source, new)
        ids = _numbers(con, source, new)
        together = source_format.read_together(new, ids)
        con.execute(f"insert into {table} by name select * from {together.sql}", together.params)
        counts = _record_batches(con, source, new, ids, cycle_id)
        if 0 in counts:
            raise BatchError("a new file has no rows")
    return sum(counts)


def forget_batch(con, source: str, file: str) -> None:
    """Forget what was remembered of a batch, before remembering it anew (a lakehouse has no key to replace on)."""
    con.execute("delete from batches where source = $source and file = $file", {"source": source, "file": file})


def _message(exc: Exception, where: str, source_format: SourceFormat) -> str:
    """What went wrong, in one line naming where, without the credentials the format reads."""
    if isinstance(exc, BatchError):
        message = str(exc)
    elif isinstance(exc, duckdb.Error):  # its first paragraph says what and where; the rest is the reader's settings
        said = [line.strip() for line in str(exc).split("\n\n")[0].splitlines()
                if line.strip() and not line.startswith("Original Line:")]
        message = f"{where}: {source_format.explained('; '.join(said))}"
    else:
        message = f"{where}: {type(exc).__name__}: {exc}"
    return redacted(message, source_format.credentials())


def _failure(con, source: SourceSettings, source_format: SourceFormat, batch: Batch, exc: Exception, seen: dict,
             cycle_id: str) -> dict:
    """A batch that failed, as the ingest report names it; a new or retried file is remembered as rejected."""
    message = _message(exc, batch.where, source_format)
    if batch.signature is not None and batch.name not in seen:
        # remembered, so it is reported once and tried again only when it changes
        size, modified = batch.signature
        with transaction(con):
            forget_batch(con, source.name, batch.name)
            con.execute("insert into batches values ($source, $file, $size, $modified, 0, null, null, "
                        "'rejected', $reason, $cycle_id, $now, $declaration, null)",
                        {"source": source.name, "file": batch.name, "size": size, "modified": modified,
                         "reason": message, "cycle_id": cycle_id, "now": datetime.now(),
                         "declaration": source.declaration})
    return {"file": batch.label, "error": message}


def _load_new(con, source: SourceSettings, source_format: SourceFormat, new: list[Batch], seen: dict, cycle_id: str,
              logger) -> tuple[list, list, int]:
    """Load the new batches: all in one insert when they fit together, else one by one; reads that replace rows
    (a table's chunks) one by one, in order, each committed alone."""
    replacing = any(batch.replaces_since is not None for batch in new)
    if len(new) > 1 and not replacing:
        # One insert for all: appending file by file leaves partly filled row groups, which DuckDB then
        # spends seconds compacting at every later checkpoint (measured at 100M rows).
        try:
            return [batch.name for batch in new], [], _load_all(con, source, source_format, new, cycle_id)
        except Exception as exc:
            if is_write_conflict(exc):
                raise  # another writer of the lake won the race, not a bad file: the task tries again
            # rolled back: load them one by one, so a bad file is found, named and skipped alone
    loaded, failed, rows = [], [], 0
    started = time.monotonic()
    for done, batch in enumerate(new, 1):
        try:
            rows += _load(con, source, source_format, batch, cycle_id)
        except Exception as exc:  # one bad file must not stop the others
            if is_write_conflict(exc):
                raise
            failed.append(_failure(con, source, source_format, batch, exc, seen, cycle_id))
            logger.warning("ingest %s: skipped %s", source.name, failed[-1]["error"])
            if replacing:  # a chunk missing: the next cycle reads on from what was committed
                break
            continue
        loaded.append(batch.name)
        if replacing and len(new) > 1:
            seconds = time.monotonic() - started
            logger.info("ingest %s: %d of %d chunks read, %d rows, %.0f rows/s, about %.0f s left", source.name,
                        done, len(new), rows, rows / seconds if seconds else 0, seconds / done * (len(new) - done))
    return loaded, failed, rows


def _ingest(con, source: SourceSettings, reading: Reading, logger) -> tuple[list, list, int]:
    """Load the batches the source's format finds that were not loaded before, changed since, or are to be retried."""
    source_format = build_format(source.name, source.format, source.options)
    # left alone while unchanged: every batch but those marked for retry and those refused under another declaration
    seen = {f: (size, mtime) for f, size, mtime in con.execute(
        "select file, size_bytes, modified_at from batches where source = $source and status <> 'retry' "
        "and not (status = 'rejected' and declaration is distinct from $declaration)",
        {"source": source.name, "declaration": source.declaration}).fetchall()}
    where = getattr(source.options, "path", None) or f"source {source.name}"
    try:
        with source_format.opened(con, reading):
            found = source_format.discover(con, reading)
            new = [batch for batch in found if batch.signature is None or seen.get(batch.name) != batch.signature]
            return _load_new(con, source, source_format, new, seen, reading.cycle_id, logger) if new else ([], [], 0)
    except Exception as exc:
        # nowhere to look or nothing to open (a landing folder gone, a database unreachable, wrong credentials): the
        # source fails alone, in one line, and what it loaded before is kept
        if is_write_conflict(exc):
            raise
        failure = {"file": where, "error": _message(exc, f"source {source.name}", source_format)}
        logger.warning("ingest %s: %s", source.name, failure["error"])
        return [], [failure], 0


# Tasks that write are never cached. Ingest is retried: it loads only what is new, so a second try after a
# warehouse held by another process, or a commit another writer of a lake won, finds what the first loaded and
# loads the rest.
@task(name="ingest", task_run_name="ingest-{source.name}", cache_policy=NO_CACHE, retries=2,
      retry_delay_seconds=[2, 10])
def ingest_source(warehouse: Warehouse, project_dir: str, source: SourceSettings, cycle_id: str,
                  lookback_days: int = 1) -> IngestSummary:
    """Load what is new in one source; a bad batch fails alone and leaves what was loaded before intact."""
    logger = run_logger()
    with warehouse.connect() as con:
        _number_rows(con, source)
        state = con.execute("select watermark from source_state where source = $source", {"source": source.name}).fetchone()
        reading = Reading(source=source.name, time_column=source.time_column, project_dir=Path(project_dir),
                          cycle_id=cycle_id, watermark=state[0] if state else None, lookback_days=lookback_days,
                          raw_table=source.raw_table)
        loaded, failed, rows = _ingest(con, source, reading, logger)
        _restamp(con, source)
        watermark = con.execute("select max(last_event) from batches where source = $source and status = 'loaded'",
                                {"source": source.name}).fetchone()[0]
        with transaction(con):
            con.execute("delete from source_state where source = $source", {"source": source.name})
            con.execute("insert into source_state values ($source, $watermark, $last_file, $status, $error, $now, "
                        "$cycle_id)",
                        {"source": source.name, "watermark": watermark, "last_file": loaded[-1] if loaded else None,
                         "status": "failed" if failed else "ok",
                         "error": "; ".join(f["error"] for f in failed) or None, "now": datetime.now(),
                         "cycle_id": cycle_id})
    logger.info("ingest %s: %d new batch(es), %d rows, %d failed", source.name, len(loaded), rows, len(failed))
    return {"source": source.name, "files": len(loaded), "rows": rows, "failed": failed,
            "watermark": watermark.isoformat() if watermark else None}
