"""Parquet files, one batch per file."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from reverie.sources.files import FileOptions, LandedFiles


@dataclass(frozen=True)
class ParquetOptions(FileOptions):
    """[sources.<name>] of a parquet source: path."""
    KIND: ClassVar[str] = "parquet"


class ParquetFiles(LandedFiles):
    Options = ParquetOptions
    function = "read_parquet"
