"""CSV files with a header row, one batch per file."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from reverie.sources.files import FileOptions, LandedFiles
from reverie.warehouse import literal


@dataclass(frozen=True)
class CsvOptions(FileOptions):
    """[sources.<name>] of a csv source: path, delimiter."""
    delimiter: str = ","
    KIND: ClassVar[str] = "csv"


class CsvFiles(LandedFiles):
    Options = CsvOptions
    function = "read_csv"

    def reader_options(self) -> list[str]:
        return ["header = true", f"delim = {literal(self.options.delimiter)}"]
