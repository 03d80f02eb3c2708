"""Ingest: load new or changed landing files into the warehouse, one batch per file."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from prefect import get_run_logger, task

from tasks.warehouse import connect, transaction

RAW_TABLE = "raw_{source}"


def _landed_files(landing: Path, source: str) -> list[Path]:
    return sorted((landing / source).glob("**/*.parquet"))


@task(name="ingest")
def ingest_source(warehouse: str, landing: str, source: str, cycle_id: str) -> dict:
    """Load every new or changed Parquet file of `source`; a bad file fails alone."""
    logger = get_run_logger()
    table = RAW_TABLE.format(source=source)
    files = _landed_files(Path(landing), source)
    loaded, failed, rows = [], [], 0
    with connect(warehouse) as con:
        seen = {f: (size, mtime) for f, size, mtime in con.execute(
            "select file, size_bytes, modified_at from batches where source = ?", [source]).fetchall()}
        for path in files:
            stat = path.stat()
            signature = (stat.st_size, datetime.fromtimestamp(stat.st_mtime))
            if seen.get(str(path)) == signature:
                continue
            try:
                with transaction(con):
                    count = _load_file(con, table, source, path, signature, cycle_id)
            except Exception as exc:  # one unreadable file must not stop the others
                failed.append({"file": str(path), "error": f"{type(exc).__name__}: {exc}"})
                logger.warning("ingest %s: skipped %s: %s", source, path, exc)
                continue
            loaded.append(str(path))
            rows += count
        watermark = con.execute(f"select max(last_event) from batches where source = ? and status = 'loaded'", [source]).fetchone()[0]
        con.execute(
            "insert or replace into source_state values (?, ?, ?, ?, ?, ?, ?)",
            [source, watermark, loaded[-1] if loaded else None, "failed" if failed else "ok",
             "; ".join(f["error"] for f in failed) or None, datetime.now(), cycle_id],
        )
    logger.info("ingest %s: %d new file(s), %d rows, %d failed", source, len(loaded), rows, len(failed))
    return {"source": source, "files": len(loaded), "rows": rows, "failed": failed,
            "watermark": watermark.isoformat() if watermark else None}


def _load_file(con, table: str, source: str, path: Path, signature: tuple, cycle_id: str) -> int:
    """Replace one file's rows in the raw table and remember the batch."""
    exists = con.execute("select count(*) from information_schema.tables where table_name = ?", [table]).fetchone()[0]
    if not exists:
        con.execute(f"create table {table} as select *, ''::varchar as _batch from read_parquet(?, hive_partitioning = false) limit 0", [str(path)])
    con.execute(f"delete from {table} where _batch = ?", [str(path)])
    con.execute(f"insert into {table} by name select *, ?::varchar as _batch from read_parquet(?, hive_partitioning = false)", [str(path), str(path)])
    count, first, last = con.execute(
        f"select count(*), min(event_time), max(event_time) from {table} where _batch = ?", [str(path)]).fetchone()
    con.execute(
        "insert or replace into batches values (?, ?, ?, ?, ?, ?, ?, 'loaded', null, ?, ?)",
        [source, str(path), signature[0], signature[1], count, first, last, cycle_id, datetime.now()],
    )
    return count
