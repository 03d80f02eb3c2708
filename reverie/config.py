"""Project settings: `reverie.toml` in the project folder, overridden by environment variables."""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import tomllib
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import ClassVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from reverie import sources as source_formats
from reverie.channels import CHANNELS, UnknownChannel, channel_class
from reverie.lake import Lake
from reverie.options import OptionError
from reverie.warehouse import PASSWORD, Warehouse

CONFIG_FILE = "reverie.toml"
SECRET_FIELDS = {"api_key"}  # named in an error about them, never shown


class ConfigError(ValueError):
    """A reverie.toml that cannot be used; the message names the file and the field."""


@dataclass(frozen=True)
class LLMSettings:
    base_url: str | None = None  # None: start the embedded model
    api_key: str | None = None
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


@dataclass(frozen=True)
class DetectSettings:
    baseline_weeks: int = 4  # same-weekday history that makes the expected value
    noise_days: int = 56  # earlier days that tell how noisy a series is
    min_history: int = 7  # days with a baseline needed before a series can fire
    min_abs_z: float = 4.0  # robust z-score of the relative change against that noise
    min_rel_change: float = 0.2  # (half that for weeks and months, which move less)
    pop_min_z: float = 5.0  # period over period compares two noisy periods, not one against a baseline
    member_extra_z: float = 1.0  # a sum or average in one member of a dimension needs this much more z
    min_volume: float = 20.0  # smallest baseline (or ratio denominator) worth alerting on
    early_extra_z: float = 2.0  # a day in a series' first weeks (a short baseline) needs this much more z
    record_days: int = 365  # a record is the highest or lowest value over this many days
    record_margin: float = 0.1  # ... and beats the previous one by at least this much
    trend_min_change: float = 0.1  # smallest level shift a changepoint must show ...
    trend_min_z: float = 4.0  # ... and how sure: two weeks after against two weeks before, in noise units
    trend_penalty: float = 6.0  # changepoint penalty, in units of log(days) x noise variance
    trend_lookback_days: int = 35  # changepoints are confirmed this long after they happen
    concentration_share: float = 0.5  # "a few members carry this share of the total" ...
    concentration_members: float = 0.25  # ... where a few is at most this fraction of the members
    goal_tolerance: float = 0.05  # pace to goal: projected this far off the goal is news
    AT_LEAST: ClassVar[dict] = {"baseline_weeks": 1, "noise_days": 1, "min_history": 1, "record_days": 1,
                                "trend_lookback_days": 1, "trend_penalty": 0.1}
    AT_MOST: ClassVar[dict] = {"concentration_share": 1, "concentration_members": 1}


@dataclass(frozen=True)
class MemorySettings:
    ttl_days: int = 90  # an insight not confirmed for this long expires
    near_duplicate: float = 90.0  # analyst notes this similar (0-100, rapidfuzz token set ratio) are one note
    AT_LEAST: ClassVar[dict] = {"ttl_days": 1}
    AT_MOST: ClassVar[dict] = {"near_duplicate": 100}


@dataclass(frozen=True)
class ProjectSection:
    """[project] in reverie.toml."""
    name: str | None = None  # default: the folder's name
    timezone: str = "UTC"  # days, weeks and months are cut in this zone, and data times are read in it
    completeness_grace_minutes: int = 15  # a period counts as complete once the data reaches this close to its end
    lookback_days: int = 1  # late rows: recompute this many days before the first touched day


@dataclass(frozen=True)
class PathsSection:
    """[paths] in reverie.toml, relative to the project folder."""
    landing: str = "landing"
    warehouse: str = ".reverie/warehouse.duckdb"
    briefs: str = ".reverie/briefs"
    models: str = "models"
    metrics: str = "metrics"
    quality: str = "quality"
    detectors: str = "detectors"


@dataclass(frozen=True)
class LakeSection:
    """[lake] in reverie.toml: a DuckLake as the warehouse instead of the DuckDB file, when `catalog` is set."""
    catalog: str = ""  # "sqlite:<file>" (relative to the project folder) or "postgres:<libpq settings>"
    data_path: str = ".reverie/lake"  # the Parquet files: a folder (relative to the project), or s3://... and such
    workers: int = 1  # more: sources' ingest and gates, then groups of metrics, then detectors, run at once on a
    # Dask cluster of this many processes (a PostgreSQL catalog only)
    scheduler: str = ""  # a running Dask cluster's scheduler (tcp://host:8786) to spread the work over instead
    pool: str = ""  # a Prefect work pool whose workers take each unit of work (source, group, detector) as a flow run
    AT_LEAST = {"workers": 1}


LAKE_CATALOGS = ("sqlite:", "postgres:")


@dataclass(frozen=True)
class Workers:
    """Where a cycle's units of work (sources, groups of metrics, detectors) run: here, one after another (count 1),
    on a Dask cluster, or as flow runs on a Prefect work pool's workers when `pool` is named."""
    count: int = 1
    scheduler: str = ""
    pool: str = ""

    @property
    def spread(self) -> bool:
        """Whether units run on a Dask cluster."""
        return self.count > 1 or bool(self.scheduler)

    @property
    def several(self) -> bool:
        """Whether other processes write at once (on a Dask cluster or a work pool)."""
        return self.spread or bool(self.pool)


def _lake(section: LakeSection, root: Path, path: Path) -> Lake | None:
    """The [lake] section as the warehouse opens it: relative paths made the project's."""
    several = Workers(section.workers, section.scheduler, section.pool).several
    asked = "workers" if section.workers > 1 else "scheduler" if section.scheduler else "pool"
    if not section.catalog:
        if several:
            raise ConfigError(f"{path}: [lake] {asked} needs [lake] catalog: only one process at a time can write a "
                              "DuckDB file")
        return None
    if not section.catalog.startswith(LAKE_CATALOGS):
        shown = PASSWORD.sub("password=…", section.catalog)
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


@dataclass(frozen=True)
class AlertSettings:
    """[deliver] fields that decide which insights notify people (the channels that notify), when and how often."""
    min_severity: str = "warning"  # info | warning | critical: the least severe insight that notifies
    kinds: list[str] = field(default_factory=list)  # only these kinds notify; empty: every kind
    quiet_hours: str = ""  # "22:00-07:00": alerts are held meanwhile and go with the first cycle after
    timezone: str | None = None  # the quiet hours' zone; the project's by default
    suppress_days: float = 7.0  # a subject alerted on a channel is not alerted again there for this long
    AT_LEAST: ClassVar[dict] = {"suppress_days": 0}

    def __post_init__(self) -> None:
        if self.min_severity not in SEVERITIES:
            raise OptionError(f"min_severity = {self.min_severity!r}: must be one of {', '.join(SEVERITIES)}")
        if not all(isinstance(kind, str) and IDENTIFIER.match(kind) for kind in self.kinds):
            raise OptionError(f"kinds = {self.kinds!r}: must be a list of insight kinds, e.g. [\"change\", \"risk\"]")
        if self.quiet_hours and not QUIET_HOURS.match(self.quiet_hours):
            raise OptionError(f"quiet_hours = {self.quiet_hours!r}: must read HH:MM-HH:MM, e.g. \"22:00-07:00\"")


@dataclass(frozen=True)
class DeliverSettings:
    """[deliver] in reverie.toml: the channels a brief goes through, in order, each channel's options, and which
    insights the channels that notify people send."""
    channels: tuple[str, ...] = ("brief_file", "prefect_artifact")
    options: dict[str, object] = field(default_factory=dict)  # channel name -> its Options, from [deliver.<name>]
    alerts: AlertSettings = field(default_factory=AlertSettings)


IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
SOURCE_FIELDS = ("format", "time_column", "suite", "timezone")  # every source has these; the others are its format's


@dataclass(frozen=True)
class SourceSettings:
    """Where one source's data lands and which column carries its event time."""
    name: str
    format: str = "parquet"  # a key of reverie.sources.FORMATS: parquet, csv, duckdb, jsonl
    time_column: str = "event_time"
    suite: str | None = None  # the quality suite its batches must pass
    timezone: str | None = None  # the zone its times without an offset are in (when loaded: the project's by default)
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
    project_dir: Path
    name: str = "reverie"
    timezone: str = "UTC"  # the project's: days are cut and data times read in it
    landing_dir: Path = Path("landing")
    warehouse: Warehouse = Warehouse(Path(".reverie/warehouse.duckdb"))
    briefs_dir: Path = Path(".reverie/briefs")
    # a period counts as complete once the source watermark is this close to its end
    completeness_grace_minutes: int = 15
    lookback_days: int = 1  # late rows: recompute this many days before the first touched day
    sources: dict[str, SourceSettings] = field(default_factory=dict)
    models_dir: Path = Path("models")
    metrics_dir: Path = Path("metrics")
    quality_dir: Path = Path("quality")
    detectors_dir: Path = Path("detectors")
    llm: LLMSettings = field(default_factory=LLMSettings)
    detect: DetectSettings = field(default_factory=DetectSettings)
    memory: MemorySettings = field(default_factory=MemorySettings)
    deliver: DeliverSettings = field(default_factory=DeliverSettings)
    workers: Workers = Workers()
    aliases: dict[str, tuple[str, ...]] = field(default_factory=dict)  # a member's other names


def _section(data: dict, name: str, path: Path) -> dict:
    value = data.get(name, {})
    if not isinstance(value, dict):
        raise ConfigError(f"{path}: [{name}] must be a table")
    return value


SECTIONS = ("project", "paths", "lake", "sources", "llm", "detect", "memory", "deliver", "aliases")


def _aliases(data: dict, path: Path) -> dict[str, tuple[str, ...]]:
    """[aliases]: a member's other names, `GB = ["UK", "Britain"]`."""
    aliases = {}
    for member, names in _section(data, "aliases", path).items():
        if not isinstance(names, list) or not all(isinstance(n, str) and n.strip() for n in names):
            raise ConfigError(f"{path}: [aliases] {member} must be a list of names, like {member} = [\"another name\"]")
        aliases[member] = tuple(n.strip() for n in names)
    return aliases


def _typed(value, kind: str, where: str, secret: bool = False):
    """A setting's value, checked against its declared type: lists, tables, true/false, whole numbers, finite numbers,
    text. A `secret` one is named in the error, never shown."""
    shown = where if secret else f"{where} = {value!r}"
    if kind.startswith(("list", "dict")):  # a format option's items are checked by its Options
        container, name = (list, "a list") if kind.startswith("list") else (dict, "a table")
        if not isinstance(value, container):
            raise ConfigError(f"{shown} is not {name}")
    elif kind == "bool":
        if not isinstance(value, bool):
            raise ConfigError(f"{shown} is not true or false")
    elif "int" in kind:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{shown} is not a whole number")
    elif "float" in kind:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise ConfigError(f"{shown} is not a number")
        value = float(value)
    elif "str" in kind and not isinstance(value, str):
        raise ConfigError(f"{shown} is not text")
    return value


def _zone(name: str | None, where: str) -> str | None:
    """A time zone name as the IANA database has it, or an error naming the field."""
    if name is None:
        return None
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"{where} = {name!r}: not a time zone; use an IANA name such as 'America/New_York', "
                          "'Europe/Berlin' or 'UTC'") from None
    return name


def _build(cls, values: dict, section: str, path: Path):
    """A settings section from its TOML table: unknown fields, wrong types and values out of range named."""
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ConfigError(f"{path}: unknown field(s) in [{section}]: {', '.join(unknown)} "
                          f"(known: {', '.join(known)})")
    typed = {}
    for key, value in values.items():
        where = f"{path}: [{section}] {key}"
        typed[key] = value = _typed(value, str(known[key].type), where, secret=key in SECRET_FIELDS)
        if isinstance(value, int | float):
            low, high = getattr(cls, "AT_LEAST", {}).get(key, 0), getattr(cls, "AT_MOST", {}).get(key)
            if value < low or (high is not None and value > high):
                bounds = f"at least {low:g}" + (f" and at most {high:g}" if high is not None else "")
                raise ConfigError(f"{where} = {value!r}: must be {bounds}")
    return cls(**typed)


def _sources(data: dict, path: Path, timezone: str) -> dict[str, SourceSettings]:
    """[sources.<name>]: the fields every source has, and the rest built and checked by its format's Options; a
    source's times without an offset are in the project's zone unless it declares its own."""
    sources = {}
    for name, values in _section(data, "sources", path).items():
        where = f"sources.{name}"
        if not isinstance(values, dict):
            raise ConfigError(f"{path}: [{where}] must be a table")
        if not IDENTIFIER.match(name):
            raise ConfigError(f"{path}: [{where}]: a source name must be a SQL identifier (letters, digits, _)")
        if "name" in values:
            raise ConfigError(f"{path}: [{where}] name: a source is named by its table, [sources.{name}]")
        format_name = _typed(values.get("format", SourceSettings.format), "str", f"{path}: [{where}] format")
        try:
            options_class = source_formats.format_class(name, format_name).Options
        except source_formats.UnknownFormat as exc:
            raise ConfigError(f"{path}: {exc}") from None
        known = [*SOURCE_FIELDS, *(f.name for f in fields(options_class))]
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ConfigError(f"{path}: unknown field(s) in [{where}]: {', '.join(unknown)} "
                              f"(known for format {format_name}: {', '.join(known)})")
        try:
            options = _build(options_class, {k: v for k, v in values.items() if k not in SOURCE_FIELDS}, where, path)
        except OptionError as exc:
            raise ConfigError(f"{path}: [{where}] {exc}") from None
        source = _build(SourceSettings, {"name": name, **{k: v for k, v in values.items() if k in SOURCE_FIELDS}},
                        where, path)
        _zone(source.timezone, f"{path}: [{where}] timezone")
        sources[name] = replace(source, options=options, timezone=source.timezone or timezone)
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
    by its channel."""
    values = dict(_section(data, "deliver", path))
    names = values.pop("channels", list(DeliverSettings.channels))
    policy = {key: values.pop(key) for key in [f.name for f in fields(AlertSettings)] if key in values}
    try:
        alerts = _build(AlertSettings, policy, "deliver", path)
    except OptionError as exc:
        raise ConfigError(f"{path}: [deliver] {exc}") from None
    alerts = replace(alerts, timezone=_zone(alerts.timezone, f"{path}: [deliver] timezone") or timezone)
    if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
        raise ConfigError(f"{path}: [deliver] channels must be a list of channel names, e.g. [\"brief_file\", \"webhook\"]")
    for name in names:
        try:
            channel_class(name)
        except UnknownChannel as exc:
            raise ConfigError(f"{path}: [deliver] {exc}") from None
    unknown = sorted(set(values) - set(CHANNELS))
    if unknown:
        raise ConfigError(f"{path}: unknown field(s) in [deliver]: {', '.join(unknown)} "
                          f"(known: channels, {', '.join(f.name for f in fields(AlertSettings))}, "
                          f"and a table per channel: {', '.join(CHANNELS)})")
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ConfigError(f"{path}: [deliver] channels: {', '.join(repeated)} listed more than once")
    if "brief_file" not in names:  # the summary, the CLI and every notification point to the brief's file
        raise ConfigError(f"{path}: [deliver] channels must include brief_file")
    options = {}
    for name, channel in CHANNELS.items():
        where = f"deliver.{name}"
        table = values.get(name, {})
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: [{where}] must be a table")
        if table and not fields(channel.Options):
            raise ConfigError(f"{path}: [{where}]: the {name} channel has no options")
        try:
            options[name] = _build(channel.Options, table, where, path)
        except OptionError as exc:
            raise ConfigError(f"{path}: [{where}] {exc}") from None
    return DeliverSettings(channels=tuple(names), options=options, alerts=alerts)


def load_settings(project_dir: str | Path = ".") -> Settings:
    """Read reverie.toml (if present) and apply OPENAI_BASE_URL / OPENAI_API_KEY / REVERIE_MODEL."""
    root = Path(project_dir).resolve()
    path = root / CONFIG_FILE
    data: dict = {}
    if path.exists():
        try:
            data = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: {exc}") from exc
    unknown = sorted(set(data) - set(SECTIONS))
    if unknown:
        raise ConfigError(f"{path}: unknown section(s): {', '.join(unknown)} (known: {', '.join(SECTIONS)})")
    project = _build(ProjectSection, _section(data, "project", path), "project", path)
    _zone(project.timezone, f"{path}: [project] timezone")
    paths = _build(PathsSection, _section(data, "paths", path), "paths", path)
    llm_values = dict(_section(data, "llm", path))
    for env, key in (("OPENAI_BASE_URL", "base_url"), ("OPENAI_API_KEY", "api_key"), ("REVERIE_MODEL", "model")):
        if os.environ.get(env):
            llm_values[key] = os.environ[env]
    lake = _build(LakeSection, _section(data, "lake", path), "lake", path)
    return Settings(
        project_dir=root,
        name=project.name or root.name,
        timezone=project.timezone,
        landing_dir=root / paths.landing,
        warehouse=Warehouse(root / paths.warehouse, timezone=project.timezone,
                            lake=_lake(lake, root, path)),
        briefs_dir=root / paths.briefs,
        completeness_grace_minutes=project.completeness_grace_minutes,
        lookback_days=project.lookback_days,
        sources=_sources(data, path, project.timezone),
        models_dir=root / paths.models,
        metrics_dir=root / paths.metrics,
        quality_dir=root / paths.quality,
        detectors_dir=root / paths.detectors,
        llm=_build(LLMSettings, llm_values, "llm", path),
        detect=_build(DetectSettings, _section(data, "detect", path), "detect", path),
        memory=_build(MemorySettings, _section(data, "memory", path), "memory", path),
        deliver=_deliver(data, path, project.timezone),
        workers=Workers(lake.workers, lake.scheduler, lake.pool),
        aliases=_aliases(data, path),
    )


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
