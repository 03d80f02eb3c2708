"""Landed files: one batch per file matched by a glob, read by one of DuckDB's file readers."""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from datetime import datetime
from itertools import takewhile
from pathlib import Path
from typing import ClassVar

from reverie.options import OptionError
from reverie.queries import render
from reverie.sources import Batch, BatchError, Reading, Relation, SourceFormat


@dataclass(frozen=True)
class FileOptions:
    """The fields every file format has in [sources.<name>]."""
    path: str | None = None  # a glob, relative to the project folder
    KIND: ClassVar[str] = "data"  # what the files are, for messages

    def __post_init__(self) -> None:
        if not self.path:
            raise OptionError(f"needs path (a glob of {self.KIND} files)")


@dataclass(frozen=True, kw_only=True)
class LandedFile(Batch):
    """A file matched by the source's glob."""
    path: str  # the whole path, as DuckDB opens it


class LandedFiles(SourceFormat):
    """Files matched by a glob, one batch per file; a file whose size or mtime changed is loaded again."""
    function: ClassVar[str]  # the DuckDB table function that reads the files

    def reader_options(self) -> list[str]:
        """The format's own options for its DuckDB reader, as `name = value` SQL."""
        return []

    def reader(self, many: bool = False) -> str:
        """The table function call, as SQL reading $path (a path, or a list of them)."""
        options = ["hive_partitioning = false", *(["filename = true", "union_by_name = true"] if many else [])]
        return f"{self.function}($path, {', '.join([*self.reader_options(), *options])})"

    def discover(self, reading: Reading) -> list[Batch]:
        """The files matched now, by their path relative to the project, so the folder can move."""
        pattern = self.options.path
        paths = sorted(Path(p) for p in glob.glob(os.path.join(reading.project_dir, pattern), recursive=True)
                       if os.path.isfile(p))
        fixed = Path(reading.project_dir, *takewhile(lambda part: not glob.has_magic(part), Path(pattern).parts[:-1]))
        if not paths and not fixed.is_dir():  # an unmounted share or a renamed folder, not a quiet night
            raise BatchError(f"{fixed}: no such folder (path = {pattern!r}); what was loaded before is kept")
        batches = []
        for path in paths:
            name = str(path) if os.path.isabs(pattern) else os.path.relpath(path, reading.project_dir)
            stat = path.stat()
            batches.append(LandedFile(name=name, label=name, where=str(path), path=str(path),
                                      signature=(stat.st_size, datetime.fromtimestamp(stat.st_mtime))))
        return batches

    def read(self, batch: LandedFile) -> Relation:
        return Relation(self.reader(), {"path": batch.path})

    def read_together(self, batches: list[LandedFile]) -> Relation:
        """All the files in one read of DuckDB's reader, each row matched to its file's batch by name."""
        paths = [batch.path for batch in batches]
        sql = render("ingest/landed_files_together.sql", expressions={"reader": self.reader(many=True)})
        return Relation(f"({sql})", {"path": paths, "batches": [batch.name for batch in batches]})
