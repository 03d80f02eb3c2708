"""JSON lines files (one JSON object per line), one batch per file."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from reverie.sources.files import FileOptions, LandedFiles


@dataclass(frozen=True)
class JsonLinesOptions(FileOptions):
    """[sources.<name>] of a jsonl source: path."""
    KIND: ClassVar[str] = "jsonl"


class JsonLinesFiles(LandedFiles):
    Options = JsonLinesOptions
    function = "read_json"

    def reader_options(self) -> list[str]:
        # DuckDB infers the columns and their types (timestamps included) from the objects' keys and values
        return ["format = 'newline_delimited'"]
