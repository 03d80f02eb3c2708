"""Models: sources as views, then the project's SQL models (models/*.sql) in dependency order."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import sqlglot
from sqlglot import exp

from reverie.config import SourceSettings
from reverie.migrations import own_tables
from reverie.queries import literal, quoted, render
from reverie.warehouse import table_exists


class ModelError(ValueError):
    """A model that cannot be built; the message names its file."""


@dataclass
class Lineage:
    """Which sources each view reads, directly or through other models."""
    reads: dict[str, set[str]] = field(default_factory=dict)
    sources: set[str] = field(default_factory=set)

    def sources_of(self, name: str) -> set[str]:
        if name in self.sources:
            return {name}
        return set().union(*(self.sources_of(n) for n in self.reads.get(name, ()))) if name in self.reads else set()


def referenced_tables(sql: str, where: str) -> set[str]:
    """The tables and views a query reads, without its own CTEs."""
    try:
        tree = sqlglot.parse_one(sql, read="duckdb")
    except sqlglot.errors.ParseError as exc:
        raise ModelError(f"{where}: {exc}") from exc
    ctes = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
    return {t.name for t in tree.find_all(exp.Table) if t.name and t.name not in ctes}


def local_time(con, source: SourceSettings) -> str:
    """The source's time column, in its raw table, as the project's local time without an offset: an instant
    (TIMESTAMP WITH TIME ZONE, `2024-01-01T10:00:00Z`) in the connection's zone, which is the project's; a time
    without an offset moved from the source's own zone when it declares one; dates as they are (and a column the
    table lacks as it is named: the metrics that read it say so)."""
    column = quoted(source.time_column)
    kinds = dict(con.execute(f"select column_name, column_type from (describe {quoted(source.raw_table)})").fetchall())
    kind = kinds.get(source.time_column, "")
    project_zone = con.execute("select current_setting('TimeZone')").fetchone()[0]
    if kind == "TIMESTAMP WITH TIME ZONE":
        return f"timezone({literal(project_zone)}, {column})"
    if kind.startswith("TIMESTAMP") and source.timezone and source.timezone != project_zone:
        return f"timezone({literal(project_zone)}, timezone({literal(source.timezone)}, {column}))"
    return column


def build_models(con, sources: dict[str, SourceSettings], models_dir: Path) -> Lineage:
    """(Re)create one view per source with data, then every model, each after the views it reads.

    Models that read a declared source with no data yet wait for it; a name that is neither a source,
    a model nor a table is an error naming the model's file.
    """
    lineage = Lineage()
    for source in sources.values():
        if source.name in own_tables():
            raise ModelError(f"source '{source.name}': the name is one of reverie's own tables; choose another")
        if table_exists(con, source.raw_table):
            time = local_time(con, source)
            local = f"replace ({time} as {quoted(source.time_column)})" if time != quoted(source.time_column) else ""
            con.execute(f"create or replace view {quoted(source.name)} as "
                        + render("staging/source.sql", identifiers={"raw_table": source.raw_table},
                                 literals={"source": source.name}, expressions={"local_time": local}))
            lineage.sources.add(source.name)
    pending = {path.stem: path for path in sorted(models_dir.glob("*.sql"))} if models_dir.is_dir() else {}
    for name, path in pending.items():
        if name in own_tables() or name in sources:
            raise ModelError(f"{path}: the model name '{name}' is taken by a source or one of reverie's tables")
        lineage.reads[name] = referenced_tables(path.read_text(), str(path))
    built: set[str] = set()
    waiting = set(sources) - lineage.sources  # declared sources with no data yet, and models that read them
    while stalled := [n for n in pending if lineage.reads[n] & waiting]:
        waiting.update(stalled)
        for name in stalled:
            del pending[name]
    while pending:
        ready = [n for n in pending if lineage.reads[n] <= built | lineage.sources | _existing(con, lineage.reads[n])]
        if not ready:
            missing = {n: sorted(lineage.reads[n] - built - lineage.sources) for n in pending}
            raise ModelError("; ".join(f"{pending[n]}: reads {', '.join(m)}, which is neither a source with data nor "
                                       "a model" for n, m in missing.items()))
        for name in ready:
            try:
                con.execute(f"create or replace view {quoted(name)} as {pending[name].read_text()}")
            except Exception as exc:
                raise ModelError(f"{pending[name]}: {exc}") from exc
            built.add(name)
            del pending[name]
    return lineage


def _existing(con, names: set[str]) -> set[str]:
    """Tables that already exist in the warehouse (a model may read a table loaded by other tools)."""
    return {n for n in names if table_exists(con, n)}
