"""What a detector is: its metadata (from the header of its SQL file, or declared in Python), checked, and how it runs."""

from __future__ import annotations

import re
import string
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from functools import cached_property
from pathlib import Path
from typing import Literal, get_args

import duckdb
import yaml

from reverie.config import CONFIG_FILE, SHARED_DETECT_SETTINGS, DetectSettings
from reverie.queries import rows_as_dicts

# The periods a finding is compared with, over which the drivers of a change are worked out: the period before
# (a day: the same weekday a week earlier); the same weekday over the previous baseline_weeks weeks (a week or a
# month: the baseline_weeks weeks or months before); the 14 days after a changepoint against the 14 before; none.
Baseline = Literal["previous_period", "same_weekday_weeks", "trend_window", "none"]
BASELINES: tuple[str, ...] = get_args(Baseline)
STANDARD_PARAMETERS = ("since", "as_of")  # every SQL detector may read these besides its settings
FINDING_COLUMNS = ("metric", "grain", "dimension", "member", "period_start", "period_end", "observed", "expected",
                   "comparison", "strength", "evidence_sql")
HEADER_FIELDS = ("name", "weight", "describes_change", "baseline", "settings")
OPTIONAL_FIELDS = ("own_settings", "neutral", "headline")
# The words a headline may use; every number in them is observed, expected or their change (see ranking.headline).
HEADLINE_WORDS = ("metric", "slice", "dimension", "member", "period", "period_start", "observed", "expected",
                  "observed_percent", "expected_percent", "change", "size", "direction", "high_or_low",
                  "ahead_or_behind", "comparison")
DEFAULT_HEADLINE = "{metric} {direction} {size} ({slice}) {period}: {observed} against {comparison}, {expected}."
HEADER = re.compile(r"\A\s*/\*\s*detector:[ \t]*\n(?P<fields>.*?)\*/", re.DOTALL)
IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")
SETTING_KINDS = {bool: "true or false", int: "an integer", float: "a number"}  # an own setting's default's type

DetectorFunction = Callable[[duckdb.DuckDBPyConnection, date, dict], list[dict]]  # (con, since, its settings' values)


class DetectorError(ValueError):
    """A detector that cannot be used; the message names its file and the field."""


@dataclass(frozen=True)
class OwnSetting:
    """A threshold one detector declares itself (its header's own_settings): its default, its bounds, and set by
    its name in [detect] like the shared ones."""
    name: str
    default: int | float | bool
    at_least: float = 0
    at_most: float | None = None

    def check(self, where: str) -> None:
        """A declaration that can work: a name, a number or true or false, bounds that hold the default."""
        if not isinstance(self.name, str) or not IDENTIFIER.match(self.name):
            raise DetectorError(f"{where}: own_settings: {self.name!r}: use lower-case letters, digits and _")
        if self.name in SHARED_DETECT_SETTINGS:
            raise DetectorError(f"{where}: own_settings: {self.name} is a shared [detect] setting: list it in settings")
        if type(self.default) not in SETTING_KINDS:
            raise DetectorError(f"{where}: own_settings: {self.name}: the default must be a number or true or false, "
                                f"got {self.default!r}")
        bounds = [b for b in (self.at_least, self.at_most) if b is not None]
        if not all(isinstance(b, int | float) and not isinstance(b, bool) for b in bounds):
            raise DetectorError(f"{where}: own_settings: {self.name}: at_least and at_most must be numbers")
        self.value({self.name: self.default}, f"{where}: own_settings:")

    def value(self, own: dict, where: str = f"{CONFIG_FILE}: [detect]") -> int | float | bool:
        """Its value: [detect]'s (`own`) when set there, of its default's type and within its bounds; else the default."""
        value, kind = own.get(self.name, self.default), type(self.default)
        fits = isinstance(value, bool) if kind is bool else not isinstance(value, bool) and isinstance(
            value, int if kind is int else int | float)
        if not fits:
            raise DetectorError(f"{where} {self.name} = {value!r}: expected {SETTING_KINDS[kind]}")
        if kind is not bool and (value < self.at_least or (self.at_most is not None and value > self.at_most)):
            raise DetectorError(f"{where} {self.name} = {value!r}: must be at least {self.at_least:g}"
                                + (f" and at most {self.at_most:g}" if self.at_most is not None else ""))
        return value

    @classmethod
    def declared(cls, name, declaration) -> OwnSetting:
        """One line of own_settings: `name: default`, or `name: {default: ..., at_least: ..., at_most: ...}`."""
        if isinstance(declaration, dict):
            unknown = sorted(set(declaration) - {"default", "at_least", "at_most"}, key=str)
            if unknown or "default" not in declaration:
                raise DetectorError(f"own_settings: {name}: declare a default, and at_least or at_most if it has "
                                    f"bounds (found {', '.join(map(str, declaration)) or 'nothing'})")
            return cls(name, **declaration)
        return cls(name, declaration)


@dataclass(frozen=True)
class Detector:
    """One detector: what its findings are worth and mean, the settings it reads, and its query or function."""
    name: str
    weight: float  # how much a finding of this type is worth to a reader, other things equal
    describes_change: bool  # its findings describe a change in a metric: merged with others' findings of that change
    baseline: Baseline  # the periods its findings are compared with (above)
    settings: tuple[str, ...]  # the shared [detect] settings it reads
    source: Path  # the file that declares it
    own_settings: tuple[OwnSetting, ...] = ()  # the settings only it reads, declared with their defaults
    neutral: bool = False  # its findings are neither good nor bad for the business (a concentration), whatever the metric
    headline: str = DEFAULT_HEADLINE  # one sentence per finding, from HEADLINE_WORDS
    sql: str | None = None
    function: DetectorFunction | None = None

    def __post_init__(self) -> None:
        where = str(self.source)
        if not isinstance(self.name, str) or not IDENTIFIER.match(self.name):
            raise DetectorError(f"{where}: name = {self.name!r}: use lower-case letters, digits and _")
        if isinstance(self.weight, bool) or not isinstance(self.weight, int | float) or not self.weight >= 0:
            raise DetectorError(f"{where}: weight = {self.weight!r}: must be a number, at least 0")
        if not isinstance(self.describes_change, bool):
            raise DetectorError(f"{where}: describes_change = {self.describes_change!r}: must be true or false")
        if self.baseline not in BASELINES:
            raise DetectorError(f"{where}: baseline = {self.baseline!r}: use one of {', '.join(BASELINES)}")
        if not isinstance(self.settings, tuple) or not all(isinstance(s, str) for s in self.settings):
            raise DetectorError(f"{where}: settings = {self.settings!r}: must be a list of [detect] setting names")
        unknown = [s for s in self.settings if s not in SHARED_DETECT_SETTINGS]
        if unknown:
            raise DetectorError(f"{where}: settings: {', '.join(unknown)} not a shared [detect] setting "
                                f"(known: {', '.join(SHARED_DETECT_SETTINGS)}); declare a setting of its own "
                                f"with its default in own_settings")
        for own in self.own_settings:
            own.check(where)
        if not isinstance(self.neutral, bool):
            raise DetectorError(f"{where}: neutral = {self.neutral!r}: must be true or false")
        if not isinstance(self.headline, str):
            raise DetectorError(f"{where}: headline = {self.headline!r}: must be text")
        words = {name for _, name, _, _ in string.Formatter().parse(self.headline) if name is not None}
        if words - set(HEADLINE_WORDS):
            raise DetectorError(f"{where}: headline: {{{'}, {'.join(sorted(words - set(HEADLINE_WORDS)))}}} is not one of "
                                f"{{{'}, {'.join(HEADLINE_WORDS)}}}")
        if (self.sql is None) == (self.function is None):
            raise DetectorError(f"{where}: a detector is either a query or a Python function")
        if self.sql is not None:
            self._check_query()

    @classmethod
    def from_sql_file(cls, path: Path) -> Detector:
        """A SQL detector from its file: the `/* detector: ... */` header, checked against the query below it."""
        sql = path.read_text()
        header = HEADER.match(sql)
        if header is None:
            raise DetectorError(f"{path}: no detector header: the file must start with /* detector: ... */ "
                                f"declaring {', '.join(HEADER_FIELDS)}")
        try:
            declared = yaml.safe_load(header["fields"])
        except yaml.YAMLError as exc:
            raise DetectorError(f"{path}: the detector header is not valid YAML: {exc}") from exc
        if not isinstance(declared, dict):
            raise DetectorError(f"{path}: the detector header must declare {', '.join(HEADER_FIELDS)}")
        unknown = sorted(set(declared) - set(HEADER_FIELDS) - set(OPTIONAL_FIELDS), key=str)
        if unknown:
            raise DetectorError(f"{path}: unknown field(s) in the detector header: {', '.join(map(str, unknown))} "
                                f"(known: {', '.join(HEADER_FIELDS + OPTIONAL_FIELDS)})")
        missing = [f for f in HEADER_FIELDS if f not in declared]
        if missing:
            raise DetectorError(f"{path}: the detector header has no {', '.join(missing)}")
        if declared["name"] != path.stem:
            raise DetectorError(f"{path}: name = {declared['name']!r}: a detector is named after its file, {path.stem}")
        settings, own = declared["settings"], declared.pop("own_settings", None) or {}
        if not isinstance(own, dict):
            raise DetectorError(f"{path}: own_settings must map each name to its default, like `record_days: 365`")
        try:
            own_settings = tuple(OwnSetting.declared(name, declaration) for name, declaration in own.items())
        except (DetectorError, TypeError) as exc:
            raise DetectorError(f"{path}: {exc}") from None
        return cls(name=declared["name"], weight=declared["weight"], describes_change=declared["describes_change"],
                   baseline=declared["baseline"], settings=tuple(settings) if isinstance(settings, list) else settings,
                   own_settings=own_settings, source=path, sql=sql,
                   **{f: declared[f] for f in OPTIONAL_FIELDS if f in declared})

    @cached_property
    def parameters(self) -> frozenset[str]:
        """The `$parameters` its query reads (DuckDB refuses a value for any other)."""
        try:
            statements = duckdb.extract_statements(self.sql)
        except duckdb.Error as exc:
            raise DetectorError(f"{self.source}: {exc}") from exc
        if len(statements) != 1 or statements[0].type != duckdb.StatementType.SELECT:
            raise DetectorError(f"{self.source}: a detector is one select query "
                                f"(found {len(statements)} statement(s))")
        return frozenset(statements[0].named_parameters)

    def _check_query(self) -> None:
        """The query is one select, and the `$parameters` it reads are its declared settings and the standard ones."""
        read, declared = self.parameters, [*self.settings, *(own.name for own in self.own_settings)]
        undeclared = sorted(read - set(declared) - set(STANDARD_PARAMETERS))
        if undeclared:
            raise DetectorError(f"{self.source}: settings: the query reads {', '.join('$' + p for p in undeclared)}, "
                                f"declared neither in settings nor in own_settings, nor a standard parameter "
                                f"({', '.join('$' + p for p in STANDARD_PARAMETERS)})")
        unread = [s for s in declared if s not in read]
        if unread:
            raise DetectorError(f"{self.source}: settings: {', '.join(unread)} declared, "
                                f"but the query never reads {', '.join('$' + s for s in unread)}")

    def values(self, settings: DetectSettings) -> dict:
        """The value of every setting it reads: the shared ones from [detect], its own from [detect] or its default."""
        return {**{s: getattr(settings, s) for s in self.settings},
                **{own.name: own.value(settings.own) for own in self.own_settings}}

    def run(self, con: duckdb.DuckDBPyConnection, since: date, settings: DetectSettings,
            as_of: date | None = None) -> list[dict]:
        """Its raw findings for periods that ended on or after `since` (SQL detectors: data up to `as_of`, default all)."""
        if self.function is not None:
            found = self.function(con, since, self.values(settings))
            columns = next((list(f) for f in found if sorted(f) != sorted(FINDING_COLUMNS)), FINDING_COLUMNS)
        else:
            standard = {"since": datetime.combine(since, datetime.min.time()), "as_of": as_of}
            values = self.values(settings)
            parameters = {p: standard[p] if p in standard else values[p] for p in self.parameters}
            result = con.execute(self.sql, parameters)
            columns = [d[0] for d in result.description]
            found = rows_as_dicts(result)
        if sorted(columns) != sorted(FINDING_COLUMNS):
            raise DetectorError(f"{self.source}: a finding has {', '.join(columns)}; "
                                f"a detector returns exactly {', '.join(FINDING_COLUMNS)}")
        return [{"detector": self.name, **{column: f[column] for column in FINDING_COLUMNS}} for f in found]
