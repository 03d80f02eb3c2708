"""Ingest: land new data in the warehouse, one batch per file (Parquet, CSV) or per read of a DuckDB table."""

from __future__ import annotations

import glob
import os
from datetime import datetime, timedelta
from pathlib import Path

from prefect import task

from reverie.config import SourceSettings
from reverie.logs import run_logger
from reverie.warehouse import Warehouse, table_exists, transaction

INTEGER_TYPES = {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT"}
FLOAT_TYPES = {"FLOAT", "DOUBLE"}
TIME_TYPES = ("TIMESTAMP", "DATE")


class BatchError(ValueError):
    """A batch that cannot be loaded; the message names the file and the column."""


def _reader(source: SourceSettings, many: bool = False) -> str:
    """The table function that reads landed files of this source, as SQL with one `?` for the path (or list)."""
    options = "hive_partitioning = false" + (", filename = true, union_by_name = true" if many else "")
    if source.format == "csv":
        delimiter = source.delimiter.replace("'", "''")
        return f"read_csv(?, header = true, delim = '{delimiter}', {options})"
    return f"read_parquet(?, {options})"


def _family(duckdb_type: str) -> str:
    base = duckdb_type.split("(")[0]
    if base in INTEGER_TYPES:
        return "integer"
    if base in FLOAT_TYPES or base == "DECIMAL":
        return "float"
    if base.startswith("TIMESTAMP"):
        return "timestamp"
    return base


def _columns(con, relation_sql: str, params: list) -> dict[str, str]:
    return {name: kind for name, kind, *_ in con.execute(f"describe select * from {relation_sql}", params).fetchall()}


def check_schema(con, source: SourceSettings, where: str, incoming: dict[str, str]) -> list[str]:
    """Compare a batch's columns with the raw table; widen integer columns that now carry decimals."""
    if source.time_column not in incoming:
        raise BatchError(f"{where}: time column '{source.time_column}' is missing")
    if not incoming[source.time_column].startswith(TIME_TYPES):
        raise BatchError(f"{where}: time column '{source.time_column}' is {incoming[source.time_column]}, "
                         "expected a TIMESTAMP or DATE")
    if not table_exists(con, source.raw_table):
        return []
    existing = {k: v for k, v in _columns(con, source.raw_table, []).items() if k != "_batch"}
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


def _record_batches(con, source: SourceSettings, batches: list[tuple[str, int, datetime]], cycle_id: str) -> list[int]:
    """Remember each (batch, size, modified) just loaded, with its row count and time range, in one scan."""
    stats = {batch: (count, first, last) for batch, count, first, last in con.execute(
        f"""select _batch, count(*), min({source.time_column}), max({source.time_column}) from {source.raw_table}
            where _batch in (select unnest(?::varchar[])) group by _batch""", [[b for b, _, _ in batches]]).fetchall()}
    counts = []
    for batch, size, modified in batches:
        count, first, last = stats.get(batch, (0, None, None))
        con.execute("insert or replace into batches values (?, ?, ?, ?, ?, ?, ?, 'loaded', null, ?, ?)",
                    [source.name, batch, size, modified, count, first, last, cycle_id, datetime.now()])
        counts.append(count)
    return counts


def _load(con, source: SourceSettings, batch: str, relation_sql: str, params: list, where: str,
          size: int, modified: datetime, cycle_id: str, replace_since=None) -> int:
    """Check a batch's schema and (re)load its rows, all in one transaction."""
    incoming = _columns(con, relation_sql, params)
    try:
        widen = check_schema(con, source, where, incoming)
    except BatchError:
        # a header-only CSV has no types to check: say what is really wrong with it
        if con.execute(f"select count(*) from {relation_sql}", params).fetchone()[0] == 0:
            raise BatchError(f"{where}: the file has no rows") from None
        raise
    table = source.raw_table
    with transaction(con):
        if not table_exists(con, table):
            con.execute(f"create table {table} as select *, ''::varchar as _batch from {relation_sql} limit 0", params)
        for column in widen:
            con.execute(f'alter table {table} alter column "{column}" type double')
        if replace_since is not None:
            con.execute(f"delete from {table} where {source.time_column} >= ?", [replace_since])
        con.execute(f"delete from {table} where _batch = ?", [batch])
        con.execute(f"insert into {table} by name select *, ?::varchar as _batch from {relation_sql}", [batch, *params])
        (count,) = _record_batches(con, source, [(batch, size, modified)], cycle_id)
        if count == 0 and replace_since is None:
            raise BatchError(f"{where}: the file has no rows")
    return count


def _landed_files(project_dir: Path, source: SourceSettings) -> dict[str, Path]:
    """The files of a source by batch name: their path relative to the project, so the folder can move."""
    pattern = os.path.join(project_dir, source.path)
    paths = sorted(Path(p) for p in glob.glob(pattern, recursive=True) if os.path.isfile(p))
    return {os.path.relpath(path, project_dir) if not os.path.isabs(source.path) else str(path): path for path in paths}


def _load_all(con, source: SourceSettings, new: list[tuple[str, Path, tuple]], cycle_id: str) -> int:
    """Every new file in one insert, all or nothing; raises if any file is not fit to load."""
    shapes = [_columns(con, _reader(source), [str(path)]) for _, path, _ in new]
    if any(shape != shapes[0] for shape in shapes):
        raise BatchError("the new files differ in their columns")
    widen = check_schema(con, source, str(new[0][1]), shapes[0])
    files, batches = [str(path) for _, path, _ in new], [batch for batch, _, _ in new]
    table = source.raw_table
    with transaction(con):
        if not table_exists(con, table):
            con.execute(f"create table {table} as select *, ''::varchar as _batch from {_reader(source)} limit 0", [files[0]])
        for column in widen:
            con.execute(f'alter table {table} alter column "{column}" type double')
        con.execute(f"delete from {table} where _batch in (select unnest(?::varchar[]))", [batches])
        con.execute(f"""insert into {table} by name
                        select landed.* exclude (filename), named.batch as _batch
                        from {_reader(source, many=True)} as landed
                        join (select unnest(?::varchar[]) as filename, unnest(?::varchar[]) as batch) as named
                        using (filename)""", [files, files, batches])
        counts = _record_batches(con, source, [(batch, *signature) for batch, _, signature in new], cycle_id)
        if 0 in counts:
            raise BatchError("a new file has no rows")
    return sum(counts)


def _ingest_files(con, project_dir: Path, source: SourceSettings, cycle_id: str, logger) -> tuple[list, list, int]:
    seen = {f: (size, mtime) for f, size, mtime in con.execute(
        "select file, size_bytes, modified_at from batches where source = ?", [source.name]).fetchall()}
    new = []
    for batch, path in _landed_files(project_dir, source).items():
        stat = path.stat()
        signature = (stat.st_size, datetime.fromtimestamp(stat.st_mtime))
        if seen.get(batch) != signature:
            new.append((batch, path, signature))
    if len(new) > 1:
        # One insert for all: appending file by file leaves partly filled row groups, which DuckDB then
        # spends seconds compacting at every later checkpoint (measured at 100M rows).
        try:
            return [batch for batch, _, _ in new], [], _load_all(con, source, new, cycle_id)
        except Exception:
            pass  # rolled back: load them one by one, so a bad file is found, named and skipped alone
    loaded, failed, rows = [], [], 0
    for batch, path, signature in new:
        try:
            rows += _load(con, source, batch, _reader(source), [str(path)], str(path), *signature, cycle_id)
        except Exception as exc:  # one bad file must not stop the others
            message = str(exc) if isinstance(exc, BatchError) else f"{path}: {type(exc).__name__}: {exc}"
            failed.append({"file": batch, "error": message})
            logger.warning("ingest %s: skipped %s", source.name, message)
            if batch not in seen:  # remembered, so it is reported once and tried again only when it changes
                con.execute("insert or replace into batches values (?, ?, ?, ?, 0, null, null, 'rejected', ?, ?, ?)",
                            [source.name, batch, *signature, message, cycle_id, datetime.now()])
            continue
        loaded.append(batch)
    return loaded, failed, rows


def _ingest_table(con, project_dir: Path, source: SourceSettings, cycle_id: str, lookback_days: int,
                  logger) -> tuple[list, list, int]:
    """Re-read the table from the watermark minus the lookback, so late and corrected rows are picked up."""
    alias = f"source_{source.name}"
    relation = f'"{source.table}"'
    where = source.table
    try:
        if source.database:
            database = str(project_dir / source.database)
            where = f"{database}: table {source.table}"
            if not Path(database).exists():
                raise BatchError(f"{database}: no such DuckDB file")
            con.execute(f"attach '{database.replace(chr(39), chr(39) * 2)}' as {alias} (read_only)")
            relation = f'{alias}."{source.table}"'
        watermark = con.execute("select watermark from source_state where source = ?", [source.name]).fetchone()
        since = watermark[0] - timedelta(days=lookback_days) if watermark and watermark[0] else None
        reader = f"(select * from {relation}" + (f" where {source.time_column} >= ?)" if since else ")")
        params = [since] if since else []
        batch = f"{where} @ {cycle_id}"
        rows = _load(con, source, batch, reader, params, where, 0, datetime.now(), cycle_id,
                     replace_since=since if since else datetime.min)
        return [batch], [], rows
    except Exception as exc:
        message = str(exc) if isinstance(exc, BatchError) else f"{where}: {type(exc).__name__}: {exc}"
        logger.warning("ingest %s: %s", source.name, message)
        return [], [{"file": where, "error": message}], 0
    finally:
        if source.database:
            con.execute(f"detach database if exists {alias}")


@task(name="ingest")
def ingest_source(warehouse: Warehouse, project_dir: str, source: SourceSettings, cycle_id: str, lookback_days: int = 1) -> dict:
    """Load what is new in one source; a bad batch fails alone and leaves what was loaded before intact."""
    logger = run_logger()
    with warehouse.connect() as con:
        if source.format == "duckdb":
            loaded, failed, rows = _ingest_table(con, Path(project_dir), source, cycle_id, lookback_days, logger)
        else:
            loaded, failed, rows = _ingest_files(con, Path(project_dir), source, cycle_id, logger)
        watermark = con.execute("select max(last_event) from batches where source = ? and status = 'loaded'",
                                [source.name]).fetchone()[0]
        con.execute(
            "insert or replace into source_state values (?, ?, ?, ?, ?, ?, ?)",
            [source.name, watermark, loaded[-1] if loaded else None, "failed" if failed else "ok",
             "; ".join(f["error"] for f in failed) or None, datetime.now(), cycle_id],
        )
    logger.info("ingest %s: %d new batch(es), %d rows, %d failed", source.name, len(loaded), rows, len(failed))
    return {"source": source.name, "files": len(loaded), "rows": rows, "failed": failed,
            "watermark": watermark.isoformat() if watermark else None}
