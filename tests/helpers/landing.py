"""Files landed as a source's would be: a text file with a fixed mtime, a Parquet file rewritten through a select."""

from __future__ import annotations

import os
from pathlib import Path

import duckdb


def write(path: Path, text: str, mtime: int = 1_770_000_000) -> Path:
    """A landed file with a fixed mtime, so only a real change gives it a new signature."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    os.utime(path, (mtime, mtime))
    return path


def rewrite(path: Path, select: str, source: Path | None = None) -> None:
    """`path` replaced by `select` over `source` (by default `path` itself) as Parquet."""
    duckdb.sql(f"copy (select {select} from read_parquet('{source or path}', hive_partitioning = false)) "
               f"to '{path}.tmp' (format parquet)")
    Path(f"{path}.tmp").replace(path)
