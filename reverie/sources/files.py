"""Landed files: one batch per file matched by a glob, in a folder or in object storage (s3://), read by one of
DuckDB's file readers."""

from __future__ import annotations

import glob
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields
from datetime import datetime
from itertools import takewhile
from pathlib import Path
from typing import ClassVar

from reverie.options import OptionError
from reverie.queries import render
from reverie.sources import Batch, BatchError, Reading, Relation, SourceFormat, object_storage
from reverie.sources.object_storage import Storage


@dataclass(frozen=True)
class FileOptions:
    """The fields every file format has in [sources.<name>]: the path, and for s3:// paths where they are served."""
    path: str | None = None  # a glob, relative to the project folder, or s3://bucket/prefix/*.parquet
    endpoint: str | None = None  # object storage only: see Storage
    region: str | None = None
    profile: str | None = None
    url_style: str | None = None
    KIND: ClassVar[str] = "data"  # what the files are, for messages

    def __post_init__(self) -> None:
        if not self.path:
            raise OptionError(f"needs path (a glob of {self.KIND} files)")
        storage = self.storage()  # checks its own fields
        if not object_storage.is_remote(self.path):
            for field in fields(storage):
                if getattr(storage, field.name) is not None:
                    raise OptionError(f"{field.name} is for a path in object storage (s3://...), and path is "
                                      f"{self.path!r}")

    def storage(self) -> Storage:
        """Where the objects of an s3:// path are served."""
        return Storage(**{field.name: getattr(self, field.name) for field in fields(Storage)})


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

    @contextmanager
    def opened(self, con, reading: Reading) -> Iterator[None]:
        """For objects in storage, httpfs and the bucket's credentials in place while they are listed and read."""
        if not object_storage.is_remote(self.options.path):
            yield
            return
        with self.options.storage().opened(con, self.options.path, reading.source):
            yield

    def credentials(self) -> list[str]:
        return object_storage.credentials() if object_storage.is_remote(self.options.path) else []

    def discover(self, con, reading: Reading) -> list[Batch]:
        """The files matched now, by their path relative to the project (so the folder can move) or their URL."""
        pattern = self.options.path
        if object_storage.is_remote(pattern):  # a replaced object has another size or time, like a file
            return [LandedFile(name=url, label=url, where=url, path=url, signature=(size, modified))
                    for url, size, modified in object_storage.listed(con, pattern)]
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

    def read_together(self, batches: list[LandedFile], ids: list[int]) -> Relation:
        """All the files in one read of DuckDB's reader, each row matched to its file's batch number by path."""
        paths = [batch.path for batch in batches]
        sql = render("ingest/landed_files_together.sql", expressions={"reader": self.reader(many=True)})
        return Relation(f"({sql})", {"path": paths, "batches": ids})
