"""Project settings: `reverie.toml` in the project folder, overridden by environment variables.

Each section is a frozen dataclass that declares its fields' defaults, types and bounds once; msgspec checks each
value in the file against its field's type. A file that cannot be used raises one ConfigError with a line per
problem, each naming the file, the section and the field."""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import tomllib
import typing
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, replace
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, ClassVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from reverie import sources as source_formats
from reverie.channels import CHANNELS, UnknownChannel, channel_class
from reverie.lake import Lake
from reverie.options import OptionError
from reverie.secrets import LIBPQ_PASSWORD
from reverie.warehouse import Warehouse

if TYPE_CHECKING:
    from reverie.dbt_project import DbtProject

CONFIG_FILE = "reverie.toml"
SECRET_FIELDS = {"api_key"}  # named in an error about them, never shown


class ConfigError(ValueError):
    """A reverie.toml that cannot be used; one line per problem, each naming the file, the section and the field."""


class _Unusable(ValueError):
    """A value that has the right type but cannot work; its error line shows it unless its field is secret."""


class _Section:
    """A settings section: every number at least 0 unless AT_LEAST says otherwise, at most what AT_MOST says."""
    AT_LEAST: ClassVar[dict] = {}
    AT_MOST: ClassVar[dict] = {}


section = dataclass(frozen=True)  # a settings section's class: hashable, picklable, fields() and replace() work


def _known_zone(name: str) -> None:
    """A time zone name as the IANA database has it."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise _Unusable("not a time zone; use an IANA name such as 'America/New_York', 'Europe/Berlin' or 'UTC'") \
            from None


Zone = Annotated[str, _known_zone]  # a callable in Annotated checks the value once its type is right


@section
class LLMSettings(_Section):
    base_url: str | None = None  # None: start the embedded model
    api_key: str | None = field(default=None, repr=False)
    model: str | None = None
    max_turns: int = 6
    max_tokens: int = 400
    timeout_seconds: float = 120.0
    top_k: int = 5  # candidates handed to the analyst per cycle
    max_tool_calls: int = 20  # per analyst and cycle: run_sql, write_insight, ... together
    max_cycle_tokens: int = 40000  # prompt + completion tokens per analyst and cycle; it stops when they are spent
    analysts: int = 1  # analysts at once, each on its own group of metrics with its own budget; 0: none, no model
    AT_LEAST: ClassVar[dict] = {"max_turns": 1, "max_tokens": 1, "timeout_seconds": 0.1, "top_k": 1,
                                "max_tool_calls": 1, "max_cycle_tokens": 1, "analysts": 0}

    @property
    def embedded(self) -> bool:
        return self.base_url is None

    @property
    def off(self) -> bool:
        """No analyst: the cycle remembers the detectors' insights only and starts no model."""
        return self.analysts == 0


@section
class DetectSettings(_Section):
    """[detect]: the thresholds several detectors read; any other value in [detect] is one detector's own setting
    (declared with its default in that detector's header), kept in `own` and checked by the detector."""
    baseline_weeks: int = 4  # same-weekday history that makes the expected value
    noise_days: int = 56  # earlier days that tell how noisy a series is
    min_history: int = 7  # days with a baseline needed before a series can fire
    min_abs_z: float = 4.0  # robust z-score of the relative change against that noise
    min_rel_change: float = 0.2  # (half that for weeks and months, which move less)
    member_extra_z: float = 1.0  # a sum or average in one member of a dimension needs this much more z
    min_volume: float = 20.0  # smallest baseline (or ratio denominator) worth alerting on
    own: dict[str, int | float | bool] = field(default_factory=dict, hash=False)  # detectors' own settings, by name
    AT_LEAST: ClassVar[dict] = {"baseline_weeks": 1, "noise_days": 1, "min_history": 1}

    @classmethod
    def of(cls, values: dict) -> DetectSettings:
        """Settings from [detect]'s values: the shared thresholds by name, any other as a detector's own."""
        shared = set(SHARED_DETECT_SETTINGS)
        return cls(**{k: v for k, v in values.items() if k in shared},
                   own={k: v for k, v in values.items() if k not in shared})


SHARED_DETECT_SETTINGS = tuple(f.name for f in fields(DetectSettings) if f.name != "own")


@section
class MemorySettings(_Section):
    ttl_days: int = 90  # an insight not confirmed for this long expires
    near_duplicate: float = 90.0  # analyst notes this similar (0-100, rapidfuzz token set ratio) are one note
    AT_LEAST: ClassVar[dict] = {"ttl_days": 1}
    AT_MOST: ClassVar[dict] = {"near_duplicate": 100}


@section
class ProjectSection(_Section):
    """[project] in reverie.toml."""
    name: str | None = None  # default: the folder's name
    timezone: Zone = "UTC"  # days, weeks and months are cut in this zone, and data times are read in it
    completeness_grace_minutes: int = 15  # a period counts as complete once the data reaches this close to its end
    lookback_days: int = 1  # late rows: recompute this many days before the first touched day


@section
class PathsSection(_Section):
    """[paths] in reverie.toml, relative to the project folder."""
    landing: str = "landing"
    warehouse: str = ".reverie/warehouse.duckdb"
    briefs: str = ".reverie/briefs"
    models: str = "models"
    metrics: str = "metrics"
    quality: str = "quality"
    detectors: str = "detectors"


@section
class LakeSection(_Section):
    """[lake] in reverie.toml: a DuckLake as the warehouse instead of the DuckDB file, when `catalog` is set."""
    # "sqlite:<file>" (relative to the project folder) or "postgres:<libpq settings>", which may hold a password
    catalog: str = field(default="", repr=False)
    data_path: str = ".reverie/lake"  # the Parquet files: a folder (relative to the project), or s3://... and such
    workers: int = 1  # more: sources' ingest and gates, then groups of metrics, then detectors, run at once on a
    # Dask cluster of this many processes (a PostgreSQL catalog only)
    scheduler: str = ""  # a running Dask cluster's scheduler (tcp://host:8786) to spread the work over instead
    pool: str = ""  # a Prefect work pool whose workers take each unit of work (source, group, detector) as a flow run
    AT_LEAST: ClassVar[dict] = {"workers": 1}


LAKE_CATALOGS = ("sqlite:", "postgres:")


@section
class DbtSection(_Section):
    """[dbt] in reverie.toml: a dbt project whose semantic models are sources and whose metrics are reverie's."""
    project_dir: str = ""  # the dbt project's folder, relative to this one (empty: no dbt project)
    profiles_dir: str = ""  # where its profiles.yml is (default: $DBT_PROFILES_DIR, the dbt project, ~/.dbt)
    target: str = ""  # the profile's target (default: the profile's own)
    suites: dict[str, str] = field(default_factory=dict)  # a semantic model's quality suite: orders = "orders"


@dataclass(frozen=True)
class Workers:
    """Where a cycle's units of work (sources, groups of metrics, detectors) run: here, one after another (count 1),
    on a Dask cluster, or as flow runs on a Prefect work pool's workers when `pool` is named. Built from [lake]."""
    count: int
    scheduler: str
    pool: str

    @property
    def dask(self) -> bool:
        """Whether units run on a Dask cluster."""
        return self.count > 1 or bool(self.scheduler)

    @property
    def elsewhere(self) -> bool:
        """Whether units run in other processes, which write at once (on a Dask cluster or a work pool)."""
        return self.dask or bool(self.pool)


def _lake(section: LakeSection, root: Path, path: Path) -> Lake | None:
    """The [lake] section as the warehouse opens it: relative paths made the project's."""
    several = Workers(section.workers, section.scheduler, section.pool).elsewhere
    asked = "workers" if section.workers > 1 else "scheduler" if section.scheduler else "pool"
    if not section.catalog:
        if several:
            raise ConfigError(f"{path}: [lake] {asked} needs [lake] catalog: only one process at a time can write a "
                              "DuckDB file")
        return None
    if not section.catalog.startswith(LAKE_CATALOGS):
        shown = LIBPQ_PASSWORD.sub("password=…", section.catalog)
        raise ConfigError(f"{path}: [lake] catalog = {shown!r}: must start with "
                          f"{' or '.join(LAKE_CATALOGS)} (a SQLite file or a PostgreSQL database)")
    if several and not section.catalog.startswith("postgres:"):
        raise ConfigError(f"{path}: [lake] {asked} needs a PostgreSQL "
                          "catalog: a SQLite catalog takes one writer at a time (the other processes' commits fail "
                          "with 'database is locked')")
    catalog = section.catalog
    if catalog.startswith("sqlite:"):
        catalog = f"sqlite:{root / catalog.removeprefix('sqlite:')}"
    data_path = section.data_path if "://" in section.data_path else str(root / section.data_path)
    return Lake(catalog, data_path.rstrip("/") + "/")


SEVERITIES = ("info", "warning", "critical")  # least to most severe
QUIET_HOURS = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)$")
IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _severity(value: str) -> None:
    if value not in SEVERITIES:
        raise _Unusable(f"must be one of {', '.join(SEVERITIES)}")


def _kinds(value: list[str]) -> None:
    if not all(IDENTIFIER.match(kind) for kind in value):
        raise _Unusable("must be a list of insight kinds, e.g. [\"change\", \"risk\"]")


def _quiet_hours(value: str) -> None:
    if value and not QUIET_HOURS.match(value):
        raise _Unusable("must read HH:MM-HH:MM, e.g. \"22:00-07:00\"")


@section
class AlertSettings(_Section):
    """[deliver] fields that decide which insights notify people (the channels that notify), when and how often."""
    # info | warning | critical: the least severe insight that notifies
    min_severity: Annotated[str, _severity] = "warning"
    kinds: Annotated[list[str], _kinds] = field(default_factory=list)  # empty: every kind notifies
    # "22:00-07:00": alerts are held meanwhile and go with the first cycle after
    quiet_hours: Annotated[str, _quiet_hours] = ""
    timezone: Zone | None = None  # the quiet hours' zone; the project's by default
    suppress_days: float = 7.0  # a subject alerted on a channel is not alerted again there for this long


@section
class DeliverSettings(_Section):
    """[deliver] in reverie.toml: the channels a brief goes through, in order, each channel's options, and which
    insights the channels that notify people send."""
    channels: tuple[str, ...] = ("brief_file", "prefect_artifact")
    options: dict[str, object] = field(default_factory=dict)  # channel name -> its Options, from [deliver.<name>]
    alerts: AlertSettings = field(default_factory=AlertSettings)


SOURCE_FIELDS = ("format", "time_column", "suite", "timezone")  # every source has these; the others are its format's


@section
class SourceSettings(_Section):
    """Where one source's data lands and which column carries its event time."""
    name: str
    format: str = "parquet"  # a key of reverie.sources.FORMATS: parquet, csv, duckdb, jsonl
    time_column: str = "event_time"
    suite: str | None = None  # the quality suite its batches must pass
    timezone: Zone | None = None  # the zone its times without an offset are in (when loaded: the project's by default)
    options: object | None = None  # the format's own fields (path, delimiter, database, table, ...): its Options

    @property
    def raw_table(self) -> str:
        return f"raw_{self.name}"

    @property
    def declaration(self) -> str:
        """A fingerprint of how the source is declared: a batch refused under another one is tried again."""
        declared = {"format": self.format, "time_column": self.time_column, "timezone": self.timezone,
                    "options": asdict(self.options) if self.options is not None else None}
        return hashlib.sha256(json.dumps(declared, sort_keys=True, default=str).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Settings:
    """A project's settings as the cycle and the commands use them: paths made absolute, sections checked."""
    project_dir: Path
    name: str
    timezone: str  # the project's: days are cut and data times read in it
    landing_dir: Path
    warehouse: Warehouse
    briefs_dir: Path
    # a period counts as complete once the source watermark is this close to its end
    completeness_grace_minutes: int
    lookback_days: int  # late rows: recompute this many days before the first touched day
    sources: dict[str, SourceSettings]
    models_dir: Path
    metrics_dir: Path
    quality_dir: Path
    detectors_dir: Path
    llm: LLMSettings
    detect: DetectSettings
    memory: MemorySettings
    deliver: DeliverSettings
    workers: Workers
    aliases: dict[str, tuple[str, ...]]  # a member's other names
    dbt: DbtProject | None = None  # [dbt]: its semantic models are among `sources`, its metrics join metrics/*.yml


SECTIONS = {"project": ProjectSection, "paths": PathsSection, "lake": LakeSection, "sources": SourceSettings,
            "llm": LLMSettings, "detect": DetectSettings, "memory": MemorySettings, "deliver": AlertSettings,
            "aliases": None, "dbt": DbtSection}  # the class whose fields a section has, for suggesting where a stray field belongs
EXPECTED = {"str": "text", "int": "an integer", "float": "a number", "bool": "true or false", "array": "a list",
            "object": "a table"}  # msgspec's names of TOML's types, in reverie's words
WRONG_TYPE = re.compile(r"Expected `(?P<expected>[^`]+)`, got `[^`]+`(?: - at `\$(?P<at>[^`]*)`)?")


def _nearest(name: str, known: list[str]) -> str | None:
    """The known name closest to a misspelt one, if one is close."""
    import difflib

    return next(iter(difflib.get_close_matches(name, known, n=1, cutoff=0.6)), None)


def unknown_field(path: Path, where: str, name: str, known: list[str], label: str = "known",
                   listed: str | None = None) -> str:
    """The line for a field a section does not have: the nearest known one, or the known ones when none is near."""
    near = _nearest(name, known)
    hint = f" — did you mean '{near}'?" if near else f" ({label}: {listed or ', '.join(known)})"
    return f"{path}: [{where}]: unknown field '{name}'{hint}"


def _container(hint):
    """A list's or table's type without its items' (a format's or channel's Options checks them itself)."""
    origin = typing.get_origin(hint)
    return origin if origin in (list, dict) else hint


def _checks(hint) -> tuple[Callable, ...]:
    """The callables a field's Annotated type carries, also inside `... | None`."""
    if typing.get_origin(hint) is Annotated:
        return tuple(check for check in hint.__metadata__ if callable(check))
    return tuple(check for arg in typing.get_args(hint) for check in _checks(arg))


@cache
def _field_types(cls: type, items: bool = True) -> dict[str, tuple[object, tuple[Callable, ...]]]:
    """Each field's type as msgspec checks a value against it (`items`: a list's items too), and its checks."""
    hints = typing.get_type_hints(cls, include_extras=True)
    return {f.name: (hints[f.name] if items else _container(hints[f.name]), _checks(hints[f.name]))
            for f in fields(cls)}


def _wrong_type(message: str, value, secret: bool) -> str:
    """What msgspec found wrong with a value's type, in reverie's words: the item (`[1]`), what was expected and
    (unless the field is secret) what was there."""
    found = WRONG_TYPE.match(message)
    if not found:
        return message
    at = found["at"] or ""
    if re.fullmatch(r"(\[\d+\])*", at):  # a list's item: show the item, not the whole list
        for index in re.findall(r"\d+", at):
            value = value[int(index)]
    expected = " or ".join(EXPECTED.get(name, name) for name in found["expected"].split(" | ") if name != "null")
    return f"{at}: expected {expected}" + ("" if secret else f", got {value!r}")


def _unusable(cls: type, name: str, value, checks: tuple[Callable, ...]) -> str | None:
    """Why a value of the right type cannot work: out of its bounds, or refused by one of its field's checks."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        low, high = getattr(cls, "AT_LEAST", {}).get(name, 0), getattr(cls, "AT_MOST", {}).get(name)
        if value < low or (high is not None and value > high):
            return f"must be at least {low:g}" + (f" and at most {high:g}" if high is not None else "")
    try:
        for check in checks if value is not None else ():
            check(value)
    except _Unusable as exc:
        return str(exc)
    return None


def _checked(cls: type, values: dict, where: str, path: Path, label: str = "known", extra: tuple[str, ...] = (),
             items: bool = True) -> dict:
    """A section's values from its TOML table, each checked against its field's type by msgspec (TOML's own types,
    not coerced: "5" is not 5, 7.0 is not 7, true is not 1), finite and within bounds; a ConfigError with a line
    for every wrong type and value that cannot work, in the fields' order, then every unknown field."""
    import msgspec  # here, not at the top: `reverie.main` imports this module for CONFIG_FILE alone

    types, lines, checked = _field_types(cls, items), [], {}
    order = list(types)
    for name, value in sorted(values.items(), key=lambda item: order.index(item[0]) if item[0] in types else len(order)):
        if name not in types:
            lines.append(unknown_field(path, where, name, [*extra, *types], label))
            continue
        (hint, checks), secret = types[name], name in SECRET_FIELDS
        try:
            value = msgspec.convert(value, type=hint, strict=True)
        except msgspec.ValidationError as exc:
            lines.append(f"{path}: [{where}] {name}{_wrong_type(str(exc), value, secret)}")
            continue
        if isinstance(value, float) and not math.isfinite(value):
            lines.append(f"{path}: [{where}] {name}: expected a finite number" + ("" if secret else f", got {value!r}"))
        elif problem := _unusable(cls, name, value, checks):
            lines.append(f"{path}: [{where}] {name}{'' if secret else f' = {value!r}'}: {problem}")
        else:
            checked[name] = value
    if lines:
        raise ConfigError("\n".join(lines))
    return checked


def _build(cls: type, values: dict, where: str, path: Path):
    """A section from its TOML table, once every value in it is checked."""
    return cls(**_checked(cls, values, where, path))


def _options(options_class: type, values: dict, where: str, path: Path, label: str = "known",
             extra: tuple[str, ...] = ()):
    """A format's or channel's Options (a frozen dataclass with defaults) from its fields in reverie.toml: types and
    the Options' AT_LEAST and AT_MOST bounds checked here, then what cannot work by the Options themselves."""
    checked = _checked(options_class, values, where, path, label, extra, items=False)
    try:
        return options_class(**checked)
    except OptionError as exc:
        raise ConfigError(f"{path}: [{where}] {exc}") from None


def _table(data: dict, name: str, path: Path, where: str | None = None) -> dict:
    """A section's table; an error when it is something else."""
    value = data.get(name, {})
    if not isinstance(value, dict):
        raise ConfigError(f"{path}: [{where or name}] must be a table")
    return value


def _sections(data: dict, path: Path) -> None:
    """Every top-level name a known section; for one that is not, the section it is nearest, or that has it."""
    lines = []
    for name in sorted(set(data) - set(SECTIONS)):
        near = _nearest(name, list(SECTIONS))
        home = [where if where != "sources" else "sources.<name>" for where, cls in SECTIONS.items()
                if cls and name in {f.name for f in fields(cls)}]
        hint = (f" — did you mean '{near}'?" if near else f" — did you mean [{home[0]}] {name}?" if home
                else f" (known: {', '.join(SECTIONS)})")
        lines.append(f"{path}: unknown section '{name}'{hint}")
    if lines:
        raise ConfigError("\n".join(lines))


def _aliases(data: dict, path: Path) -> dict[str, tuple[str, ...]]:
    """[aliases]: a member's other names, `GB = ["UK", "Britain"]`."""
    aliases, lines = {}, []
    for member, names in _table(data, "aliases", path).items():
        if not isinstance(names, list) or not all(isinstance(n, str) and n.strip() for n in names):
            lines.append(f"{path}: [aliases] {member} must be a list of names, like {member} = [\"another name\"]")
        else:
            aliases[member] = tuple(n.strip() for n in names)
    if lines:
        raise ConfigError("\n".join(lines))
    return aliases


def _collected(problems: list[str], make: Callable):
    """What `make` builds, or None with its ConfigError's lines added to `problems`: one error reports them all."""
    try:
        return make()
    except ConfigError as exc:
        problems.extend(str(exc).splitlines())
        return None


def _source(name: str, values, path: Path, timezone: str) -> SourceSettings:
    """[sources.<name>]: the fields every source has, and the rest built and checked by its format's Options; a
    source's times without an offset are in the project's zone unless it declares its own."""
    where = f"sources.{name}"
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: [{where}] must be a table")
    if not IDENTIFIER.match(name):
        raise ConfigError(f"{path}: [{where}]: a source name must be a SQL identifier (letters, digits, _)")
    if "name" in values:
        raise ConfigError(f"{path}: [{where}] name: a source is named by its table, [sources.{name}]")
    problems: list[str] = []
    common = {key: value for key, value in values.items() if key in SOURCE_FIELDS}
    source = _collected(problems, lambda: _build(SourceSettings, {"name": name, **common}, where, path))
    format_name = source.format if source else values.get("format", SourceSettings.format)
    options = None
    if isinstance(format_name, str):  # else the line above has named it
        try:
            options_class = source_formats.format_class(name, format_name).Options
        except source_formats.UnknownFormat as exc:
            raise ConfigError(f"{path}: {exc}") from None
        options = _collected(problems, lambda: _options(
            options_class, {key: value for key, value in values.items() if key not in SOURCE_FIELDS}, where, path,
            f"known for format {format_name}", SOURCE_FIELDS))
    if problems:
        raise ConfigError("\n".join(problems))
    return replace(source, options=options, timezone=source.timezone or timezone)


def _sources(data: dict, path: Path, timezone: str) -> dict[str, SourceSettings]:
    """Every [sources.<name>], each source's problems reported together with the others'."""
    sources, problems = {}, []
    for name, values in _table(data, "sources", path).items():
        sources[name] = _collected(problems, lambda name=name, values=values: _source(name, values, path, timezone))
    if problems:
        raise ConfigError("\n".join(problems))
    return sources


def check_suites(settings: Settings) -> Settings:
    """The settings, once every suite a source names is declared in quality/*.yml (a misspelt one would load its
    batches unchecked); called before data moves, not by every command (reading YAML costs `reverie ask` its speed).
    A file that is not YAML is left to the quality gate, which names it and says the batches went unchecked."""
    named = {name: s.suite for name, s in settings.sources.items() if s.suite}
    path, quality_dir = settings.project_dir / CONFIG_FILE, settings.quality_dir
    skipped: list[str] = []
    declared: set[str] = set()
    for _, document in yaml_files(quality_dir, ConfigError, skipped) if named else ():
        suites = document.get("suites") if isinstance(document, dict) else None
        declared |= set(suites) if isinstance(suites, dict) else set()
    for name, suite in named.items():
        if suite not in declared and not skipped:
            raise ConfigError(f"{path}: [sources.{name}] suite: '{suite}' is not declared in {quality_dir}/*.yml "
                              f"(declared: {', '.join(sorted(declared)) or 'none'})")
    return settings


def _deliver(data: dict, path: Path, timezone: str) -> DeliverSettings:
    """[deliver]: known channel names, each once, brief_file among them; the alert policy; [deliver.<name>] checked
    by its channel. Every problem is reported, not only the first."""
    values = dict(_table(data, "deliver", path))
    names = values.pop("channels", list(DeliverSettings.channels))
    policy_fields = [f.name for f in fields(AlertSettings)]
    policy = {key: values.pop(key) for key in policy_fields if key in values}
    problems: list[str] = []
    alerts = _collected(problems, lambda: _build(AlertSettings, policy, "deliver", path))
    for name in sorted(set(values) - set(CHANNELS)):
        problems.append(unknown_field(path, "deliver", name, ["channels", *policy_fields, *CHANNELS], listed=(
            f"channels, {', '.join(policy_fields)}, and a table per channel: {', '.join(CHANNELS)}")))
    if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
        problems.append(f"{path}: [deliver] channels must be a list of channel names, e.g. [\"brief_file\", \"webhook\"]")
    else:
        for name in names:
            try:
                channel_class(name)
            except UnknownChannel as exc:
                problems.append(f"{path}: [deliver] {exc}")
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            problems.append(f"{path}: [deliver] channels: {', '.join(repeated)} listed more than once")
        if "brief_file" not in names:  # the summary, the CLI and every notification point to the brief's file
            problems.append(f"{path}: [deliver] channels must include brief_file")
    options = {}
    for name, channel in CHANNELS.items():
        options[name] = _collected(problems, lambda name=name, channel=channel: _channel(name, channel, values, path))
    if problems:
        raise ConfigError("\n".join(problems))
    return DeliverSettings(channels=tuple(names), options=options,
                           alerts=replace(alerts, timezone=alerts.timezone or timezone))


def _detect(values: dict, path: Path) -> DetectSettings:
    """[detect]: the shared thresholds checked here; any other name is a detector's own setting, a number or true or
    false here, checked against the detector that declares it when detectors are loaded."""
    lines = [f"{path}: [detect] {name}: expected a number or true or false, got {value!r}"
             for name, value in values.items() if name not in SHARED_DETECT_SETTINGS
             and not (isinstance(value, int) or (isinstance(value, float) and math.isfinite(value)))]
    try:
        shared = _checked(DetectSettings, {k: v for k, v in values.items() if k in SHARED_DETECT_SETTINGS}, "detect",
                          path)
    except ConfigError as exc:
        lines.insert(0, str(exc))
    if lines:
        raise ConfigError("\n".join(lines))
    return DetectSettings.of({**values, **shared})


def _channel(name: str, channel, values: dict, path: Path):
    """[deliver.<name>]: a channel's options."""
    where = f"deliver.{name}"
    table = _table(values, name, path, where)
    if table and not fields(channel.Options):
        raise ConfigError(f"{path}: [{where}]: the {name} channel has no options")
    return _options(channel.Options, table, where, path)


def _read(path: Path) -> dict:
    """reverie.toml's tables, or none when there is no file."""
    if not path.exists():
        return {}
    try:
        return tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from exc


def load_settings(project_dir: str | Path = ".") -> Settings:
    """Read reverie.toml (if present) and apply OPENAI_BASE_URL / OPENAI_API_KEY / REVERIE_MODEL; a file that cannot
    be used raises one ConfigError naming every problem in it, one a line."""
    root = Path(project_dir).resolve()
    path = root / CONFIG_FILE
    data = _read(path)
    problems: list[str] = []
    _collected(problems, lambda: _sections(data, path))

    def built(cls: type, name: str, values: dict | None = None):
        """A section, or None with its problems noted."""
        return _collected(problems, lambda: _build(cls, _table(data, name, path) if values is None else values,
                                                   name, path))

    project, paths, lake = built(ProjectSection, "project"), built(PathsSection, "paths"), built(LakeSection, "lake")
    llm_values = _collected(problems, lambda: dict(_table(data, "llm", path)))
    for env, key in (("OPENAI_BASE_URL", "base_url"), ("OPENAI_API_KEY", "api_key"), ("REVERIE_MODEL", "model")):
        if os.environ.get(env) and llm_values is not None:
            llm_values[key] = os.environ[env]
    llm = built(LLMSettings, "llm", llm_values) if llm_values is not None else None
    detect = _collected(problems, lambda: _detect(_table(data, "detect", path), path))
    memory = built(MemorySettings, "memory")
    timezone = project.timezone if project else "UTC"  # a zone in error is reported above; nothing is built with it
    sources = _collected(problems, lambda: _sources(data, path, timezone))
    deliver = _collected(problems, lambda: _deliver(data, path, timezone))
    aliases = _collected(problems, lambda: _aliases(data, path))
    lake_catalog = _collected(problems, lambda: _lake(lake, root, path)) if lake else None
    dbt = built(DbtSection, "dbt")
    if problems:
        raise ConfigError("\n".join(problems))
    dbt_project = None
    if dbt.project_dir:
        sources, dbt_project = _with_dbt(dbt, sources, root, path, project.timezone)
    return Settings(
        project_dir=root,
        name=project.name or root.name,
        timezone=project.timezone,
        landing_dir=root / paths.landing,
        warehouse=Warehouse(root / paths.warehouse, timezone=project.timezone, lake=lake_catalog),
        briefs_dir=root / paths.briefs,
        completeness_grace_minutes=project.completeness_grace_minutes,
        lookback_days=project.lookback_days,
        sources=sources,
        models_dir=root / paths.models,
        metrics_dir=root / paths.metrics,
        quality_dir=root / paths.quality,
        detectors_dir=root / paths.detectors,
        llm=llm,
        detect=detect,
        memory=memory,
        deliver=deliver,
        workers=Workers(lake.workers, lake.scheduler, lake.pool),
        aliases=aliases,
        dbt=dbt_project,
    )


def _with_dbt(section: DbtSection, sources: dict[str, SourceSettings], root: Path, path: Path,
              timezone: str) -> tuple[dict[str, SourceSettings], DbtProject]:
    """The sources with one per semantic model of the dbt project added. A dbt project that cannot be read (dbt parse
    failing, a profile that is not dbt-duckdb's) adds none and is kept as the project's problem: the cycle goes on
    without it, degraded, and says why."""
    from reverie.dbt_project import DbtError, dbt_project, dbt_sources

    project = dbt_project(section, root)
    if not project.project_dir.is_dir():
        raise ConfigError(f"{path}: [dbt] project_dir: {project.project_dir} is not a folder")
    try:
        manifest = project.semantic_manifest()
        added, skipped = dbt_sources(project, manifest, timezone, section.suites, sources, path)
    except DbtError as exc:
        return sources, replace(project, problem=f"dbt project {project.project_dir}: {exc}")
    unknown = sorted(set(section.suites) - set(added))
    if unknown:
        raise ConfigError(f"{path}: [dbt] suites: {', '.join(unknown)} is not a semantic model of "
                          f"{project.project_dir} (semantic models: {', '.join(added) or 'none'})")
    return {**sources, **added}, replace(project, skipped=tuple(skipped))


def yaml_files(folder: Path, error: type[Exception], skipped: list[str] | None = None):
    """(path, document) for each folder/*.yml and *.yaml, sorted; a file that is not YAML raises `error` naming it
    (or, given a `skipped` list, is noted there and left out)."""
    import yaml

    files = sorted([*folder.glob("*.yml"), *folder.glob("*.yaml")]) if folder.is_dir() else []
    for path in files:
        try:
            yield path, yaml.load(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)) or {}
        except yaml.YAMLError as exc:
            if skipped is None:
                raise error(f"{path}: not valid YAML: {exc}") from exc
            skipped.append(f"{path}: not valid YAML: {exc}")
