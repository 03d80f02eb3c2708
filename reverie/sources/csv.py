"""CSV files, one batch per file: what the file cannot say (nulls, types, formats, encoding) declared in reverie.toml."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import ClassVar

import duckdb

from reverie.options import OptionError
from reverie.queries import literal
from reverie.sources.files import FileOptions, LandedFiles

# option -> the name DuckDB's read_csv gives it
READER_NAMES = {"delimiter": "delim", "quote": "quote", "encoding": "encoding", "date_format": "dateformat",
                "timestamp_format": "timestampformat"}


def _first_line(exc: Exception) -> str:
    return str(exc).split("\n")[0]


@dataclass(frozen=True)
class CsvOptions(FileOptions):
    """[sources.<name>] of a csv source: path, delimiter, null_strings, columns, header, formats, quote, encoding."""
    delimiter: str = ","
    null_strings: list[str] = field(default_factory=list)  # values read as null, e.g. ["NA", ""]
    columns: dict[str, str] = field(default_factory=dict)  # column -> DuckDB type; the others are sniffed
    header: bool = True
    date_format: str | None = None  # strptime format of DATE columns, e.g. "%d/%m/%Y"
    timestamp_format: str | None = None
    quote: str | None = None  # None: sniffed
    encoding: str = "utf-8"  # or utf-16, latin-1
    KIND: ClassVar[str] = "csv"

    def __post_init__(self) -> None:
        super().__post_init__()
        if not all(isinstance(value, str) for value in self.null_strings):
            raise OptionError(f"null_strings = {self.null_strings!r}: must be a list of text")
        defaults = {f.name: f.default for f in fields(self)}
        declared = {name: getattr(self, name) for name in READER_NAMES if getattr(self, name) != defaults[name]}
        if not declared and not self.columns:
            return  # nothing DuckDB need check: reverie.toml loads with every command
        with duckdb.connect() as con, tempfile.TemporaryDirectory() as folder:
            for column, type_name in self.columns.items():
                if not isinstance(type_name, str):
                    raise OptionError(f"columns.{column} = {type_name!r}: must be a DuckDB type name, e.g. \"DOUBLE\"")
                try:
                    con.type(type_name)
                except duckdb.Error as exc:
                    raise OptionError(f"columns.{column} = {type_name!r}: {_first_line(exc)}") from None
            # DuckDB checks each reader option on a one-line file: the error then names the field at fault
            probe = Path(folder) / "probe.csv"
            probe.write_text("x\n")
            for name, value in declared.items():
                if value is None:
                    continue
                try:
                    con.execute(f"describe select * from read_csv({literal(str(probe))}, "
                                f"{READER_NAMES[name]} = {literal(value)})")
                except duckdb.Error as exc:
                    raise OptionError(f"{name} = {value!r}: {_first_line(exc)}") from None


class CsvFiles(LandedFiles):
    Options = CsvOptions
    function = "read_csv"

    def __init__(self, options: CsvOptions, established: dict[str, str] | None = None) -> None:
        super().__init__(options)
        self.established = established or {}

    def held_to(self, established: dict[str, str]) -> CsvFiles:
        return type(self)(self.options, established)

    def reader_options(self) -> list[str]:
        options = [f"header = {'true' if self.options.header else 'false'}"]
        options += [f"{reader_name} = {literal(getattr(self.options, name))}"
                    for name, reader_name in READER_NAMES.items() if getattr(self.options, name) is not None]
        if self.options.null_strings:
            options.append(f"nullstr = [{', '.join(map(literal, self.options.null_strings))}]")
        types = {**self.established, **self.options.columns}  # declared types win over established ones
        if types:
            options.append(f"types = {{{', '.join(f'{literal(c)}: {literal(t)}' for c, t in types.items())}}}")
        return options

