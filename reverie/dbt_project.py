"""A dbt project as reverie reads it ([dbt] in reverie.toml): the DuckDB file its profile builds, its semantic manifest
(written by `dbt parse`, run again when the project changed since), and a source per semantic model, reading the
relation the semantic model points at. Its metrics become reverie's in tasks/metrics/dbt.py."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from reverie.config import IDENTIFIER, ConfigError, DbtSection, SourceSettings
from reverie.sources.dbt_model import DbtModelOptions, in_one_line

PREFERRED_ERRORS = ("RunResultError", "MainEncounteredError")  # dbt's events that say what failed and why
SKIPPED_FOLDERS = {"target", "logs", "dbt_packages", "dbt_modules", ".git", ".venv"}
# reverie's grains at or above a time dimension's granularity (a finer grain would cut periods the data has not got)
GRAINS = {"hour": ["hour", "day", "week", "month"], "day": ["day", "week", "month"], "week": ["week", "month"],
          "month": ["month"]}


class DbtError(ValueError):
    """What went wrong running or reading a dbt project, in one line."""


@dataclass(frozen=True)
class DbtRun:
    """One dbt command's outcome: whether it succeeded and, when it did not, its first error in one line."""
    ok: bool
    error: str | None
    seconds: float


@dataclass(frozen=True)
class DbtProject:
    """Where a dbt project is, where its profiles are and which target reverie reads."""
    project_dir: Path
    profiles_dir: Path
    target: str | None = None
    problem: str | None = None  # why it could not be read (its sources and metrics are left out, the cycle degraded)
    skipped: tuple[str, ...] = ()  # semantic models it has that are not read, each with the reason

    @property
    def manifest_path(self) -> Path:
        return self.project_dir / "target" / "semantic_manifest.json"

    def profile(self) -> dict:
        """The output of the project's profile that dbt runs against (its target), as profiles.yml declares it."""
        import yaml

        project_file, profiles_file = self.project_dir / "dbt_project.yml", self.profiles_dir / "profiles.yml"
        for needed in (project_file, profiles_file):
            if not needed.is_file():
                raise DbtError(f"{needed}: no such file")
        name = (yaml.safe_load(project_file.read_text()) or {}).get("profile")
        profile = (yaml.safe_load(profiles_file.read_text()) or {}).get(name)
        if not isinstance(profile, dict):
            raise DbtError(f"{profiles_file}: no profile '{name}' (the profile {project_file} names)")
        target = self.target or _rendered(str(profile.get("target", "")))
        output = (profile.get("outputs") or {}).get(target)
        if not isinstance(output, dict):
            raise DbtError(f"{profiles_file}: profile '{name}' has no target '{target}' "
                           f"(targets: {', '.join(profile.get('outputs') or {}) or 'none'})")
        return {key: _rendered(value) if isinstance(value, str) else value for key, value in output.items()}

    def database(self) -> Path:
        """The DuckDB file the target builds (dbt-duckdb's `path`, relative to the dbt project)."""
        output = self.profile()
        if output.get("type") != "duckdb":
            raise DbtError(f"reverie reads dbt-duckdb projects; target type is '{output.get('type')}'")
        path = str(output.get("path", ""))
        if path in ("", ":memory:") or path.startswith("md:"):
            raise DbtError(f"the dbt-duckdb target's path is '{path or ':memory:'}': reverie reads a DuckDB file")
        return (self.project_dir / path).resolve()

    def stale(self) -> bool:
        """Whether the semantic manifest is missing or older than a file of the project."""
        if not self.manifest_path.exists():
            return True
        built = self.manifest_path.stat().st_mtime
        for folder, folders, files in os.walk(self.project_dir):
            folders[:] = [f for f in folders if f not in SKIPPED_FOLDERS and not f.startswith(".")]
            for name in files:
                if not name.endswith((".duckdb", ".duckdb.wal")) and Path(folder, name).stat().st_mtime > built:
                    return True
        return False

    def run(self, *arguments: str) -> DbtRun:
        """A dbt command on this project (`build`, `parse`, ...), in its folder, without sending usage statistics."""
        executable = shutil.which("dbt", path=str(Path(sys.executable).parent)) or shutil.which("dbt")
        if executable is None:
            raise DbtError("dbt is not installed: install reverie with its dbt extra (uv sync --extra dbt)")
        started = time.monotonic()
        done = subprocess.run([executable, *arguments, "--project-dir", str(self.project_dir), "--profiles-dir",
                               str(self.profiles_dir), *(["--target", self.target] if self.target else []),
                               "--log-format", "json"],
                              cwd=self.project_dir, capture_output=True, text=True,
                              env={**os.environ, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"})
        seconds = round(time.monotonic() - started, 2)
        return DbtRun(ok=done.returncode == 0, error=None if done.returncode == 0 else _first_error(done), seconds=seconds)

    def semantic_manifest(self):
        """The project's semantic manifest, parsed by dbt-semantic-interfaces; `dbt parse` first when it is stale."""
        if self.stale():
            parsed = self.run("parse")
            if not parsed.ok:
                raise DbtError(f"dbt parse failed: {parsed.error}")
        written = self.manifest_path.stat()
        return _parsed(str(self.manifest_path), written.st_mtime_ns, written.st_size)

    def files_of_metrics(self) -> dict[str, Path]:
        """Each metric's name -> the file of the dbt project that declares it (dbt's manifest.json says)."""
        manifest = self.project_dir / "target" / "manifest.json"
        metrics = json.loads(manifest.read_text()).get("metrics", {}) if manifest.exists() else {}
        return {m["name"]: self.project_dir / m["original_file_path"] for m in metrics.values()
                if m.get("original_file_path")}


@lru_cache(maxsize=4)
def _parsed(path: str, modified_ns: int, size: int):
    """A semantic manifest parsed once per process for as long as the file stays the same: the settings and the
    metrics stage of one cycle read the same one."""
    try:
        from dbt_semantic_interfaces.implementations.semantic_manifest import PydanticSemanticManifest
    except ImportError:
        raise DbtError("dbt-semantic-interfaces is not installed: install reverie with its dbt extra "
                       "(uv sync --extra dbt)") from None
    return PydanticSemanticManifest.parse_raw(Path(path).read_text())


def _rendered(text: str) -> str:
    """A profiles.yml value with its `{{ env_var('NAME', 'default') }}` filled in, as dbt renders it."""
    if "{{" not in text:
        return text
    import jinja2

    def env_var(name: str, default: str | None = None) -> str:
        if name in os.environ:
            return os.environ[name]
        if default is None:
            raise DbtError(f"profiles.yml reads the environment variable {name}, which is not set")
        return default

    return jinja2.Environment().from_string(text).render(env_var=env_var)


def _first_error(done: subprocess.CompletedProcess) -> str:
    """dbt's error in one line, from its JSON log: a node's error (what failed and why) before a general one, cut
    before the SQL or YAML it quotes; what it printed last when it logged no error."""
    errors = []
    for line in done.stdout.splitlines():
        try:
            info = json.loads(line).get("info", {})
        except (json.JSONDecodeError, AttributeError):
            continue
        if info.get("level") == "error" and info.get("msg", "").strip():
            errors.append((info.get("name") not in PREFERRED_ERRORS, info["msg"]))
    if not errors:
        last = [line for line in (done.stderr or done.stdout).splitlines() if line.strip()]
        return last[-1].strip() if last else f"exit code {done.returncode}"
    return in_one_line(min(errors, key=lambda e: e[0])[1])


def dbt_project(section: DbtSection, root: Path) -> DbtProject:
    """[dbt] as a DbtProject: folders relative to the reverie project; profiles where dbt looks for them
    ($DBT_PROFILES_DIR, the dbt project, ~/.dbt) unless it says."""
    project_dir = (root / section.project_dir).resolve()
    if section.profiles_dir:
        profiles_dir = (root / section.profiles_dir).resolve()
    elif os.environ.get("DBT_PROFILES_DIR"):
        profiles_dir = Path(os.environ["DBT_PROFILES_DIR"]).resolve()
    elif (project_dir / "profiles.yml").exists():
        profiles_dir = project_dir
    else:
        profiles_dir = Path.home() / ".dbt"
    return DbtProject(project_dir, profiles_dir, section.target or None)


def agg_time_dimension(semantic_model, measure=None) -> str | None:
    """The time dimension a measure's values are dated by: its own, the semantic model's default, or its only one."""
    if measure is not None and measure.agg_time_dimension:
        return measure.agg_time_dimension
    if semantic_model.defaults and semantic_model.defaults.agg_time_dimension:
        return semantic_model.defaults.agg_time_dimension
    times = [d.name for d in semantic_model.dimensions if d.type.value == "time"]
    return times[0] if len(times) == 1 else None


def dbt_sources(project: DbtProject, manifest, timezone: str, suites: dict[str, str],
                declared: dict[str, SourceSettings], config_path: Path) -> tuple[dict[str, SourceSettings], list[str]]:
    """A source per semantic model, named after it, reading the relation it points at with its dimensions' and
    entities' expressions as columns; and, one a line, the semantic models that cannot be read, with the reason."""
    database = project.database()
    sources, skipped = {}, []
    for semantic_model in manifest.semantic_models:
        name, relation = semantic_model.name, semantic_model.node_relation
        time_column = agg_time_dimension(semantic_model)
        if name in declared:
            raise ConfigError(f"{config_path}: [sources.{name}] and the dbt semantic model '{name}' "
                              f"({project.project_dir}) have the same name; rename one")
        reason = (None if IDENTIFIER.match(name) else "its name is not a SQL identifier")
        times = [d for d in semantic_model.dimensions if d.type.value == "time"]
        reason = reason or (None if time_column else "it has no time dimension (reverie reaches another semantic "
                            "model's dimensions through no join)" if not times else
                            "it names no agg_time_dimension and has several time dimensions")
        reason = reason or (None if (relation.database or database.stem) == database.stem else
                            f"its relation is in database '{relation.database}', not the target's {database.name}")
        if reason:
            skipped.append(f"dbt semantic model '{name}' not read: {reason}")
            continue
        computed = {element.name: element.expr for element in [*semantic_model.dimensions, *semantic_model.entities]
                    if element.expr and element.expr != element.name}
        options = DbtModelOptions(database=str(database), table=f"{relation.schema_name}.{relation.alias}",
                                  computed=computed or None, project_dir=str(project.project_dir),
                                  relation=relation.relation_name or "")
        sources[name] = SourceSettings(name=name, format="dbt", time_column=time_column, suite=suites.get(name),
                                       timezone=timezone, options=options)
    return sources, skipped
