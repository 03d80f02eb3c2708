"""A relation a dbt project built into its DuckDB file ([dbt] in reverie.toml makes one per semantic model): read like
a duckdb source, unless dbt's last run failed to build it."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path

from reverie.queries import quoted
from reverie.sources import Batch, BatchError, Reading, Relation, columns
from reverie.sources.duckdb_table import DuckDBTable, DuckDBTableOptions

UNBUILT = ("error", "skipped")  # a model dbt's run failed, or left as it was because one it reads failed
FAILED_TESTS = ("fail", "error")  # a test of the model that failed (warnings pass)


@dataclass(frozen=True)
class DbtModelOptions(DuckDBTableOptions):
    """A duckdb source's options, and the dbt project whose last run says whether the relation was built."""
    project_dir: str = ""
    relation: str = ""  # as dbt names it: "shop"."main"."orders"


def in_one_line(message: str) -> str:
    """A dbt error message in one line, without its colours, cut before the SQL or YAML it quotes."""
    said = []
    for line in re.sub(r"\x1b\[[0-9;]*m", "", message).splitlines():
        if said and (not line.strip() or line.strip().startswith(("LINE ", "---"))):
            break
        said.append(line.strip())
    return " ".join(part for part in said if part)


def unbuilt(project_dir: Path, relation: str) -> str | None:
    """Why dbt's last run left this relation unbuilt or failed it (its node failed or was skipped, or a test of it
    failed), or None."""
    target = project_dir / "target"
    try:
        results = json.loads((target / "run_results.json").read_text())
        nodes = json.loads((target / "manifest.json").read_text()).get("nodes", {})
    except (OSError, json.JSONDecodeError):
        return None  # no run recorded: the relation is read as it is
    for result in results.get("results", []):
        node = nodes.get(result.get("unique_id"), {})
        test = node.get("resource_type") == "test"
        built = nodes.get(node.get("attached_node"), {}) if test else node
        if result.get("status") in (FAILED_TESTS if test else UNBUILT) and built.get("relation_name") == relation:
            message = in_one_line(str(result.get("message") or "")) or "an upstream model failed"
            return (f"dbt's last {results.get('args', {}).get('which', 'run')} "
                    f"({results.get('metadata', {}).get('generated_at', '')[:19]}) {result['status']} on "
                    f"{result['unique_id']}: {message}; not read, what was loaded before is kept")
    return None


class DbtModel(DuckDBTable):
    """Never read half-built: a relation whose model failed (or was skipped) in dbt's last run is left as loaded.
    dbt rebuilds a relation whole, so a row older than the look-back may have changed: then it is read whole again."""
    Options = DbtModelOptions
    rebuilt_whole = True

    def discover(self, con, reading: Reading) -> list[Batch]:
        if reading.watermark and self._changed_before(con, reading):
            reading = replace(reading, watermark=None)  # a first read again: every row, in place of those loaded
        return super().discover(con, reading)

    def _changed_before(self, con, reading: Reading) -> bool:
        """Whether the relation's columns changed, or its rows before this cycle's window differ from those loaded
        (by count and a sum of row hashes)."""
        relation = self._relation()
        loaded = {c: t for c, t in columns(con, Relation(quoted(reading.raw_table), {})).items() if c != "_batch"}
        if columns(con, Relation(relation, {})) != loaded:
            return True
        shared = [quoted(c) for c in loaded]
        since = {"since": reading.watermark - timedelta(days=reading.lookback_days)}
        summary = (f"select count(*), sum(hash({', '.join(f'{c}::varchar' for c in shared)})::hugeint) from {{}} "
                   f"where {quoted(reading.time_column)} < $since")
        return (con.execute(summary.format(relation), since).fetchone()
                != con.execute(summary.format(quoted(reading.raw_table)), since).fetchone())

    @contextmanager
    def opened(self, con, reading: Reading) -> Iterator[None]:
        problem = unbuilt(Path(self.options.project_dir), self.options.relation)
        if problem:
            raise BatchError(problem)
        with super().opened(con, reading):
            yield
