"""Metrics: build staging views, then recompute the metric values of the periods touched by new data."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from prefect import get_run_logger, task

from reverie.config import SQL_DIR
from tasks.warehouse import connect, sql_file, transaction

FULL_HISTORY = date(1900, 1, 1)


@dataclass(frozen=True)
class Metric:
    name: str
    description: str
    measure: str  # sum | ratio
    favourability: str  # up | down | neutral: which direction is good
    dimensions: tuple[str, ...]
    facts_sql: str
    path: Path

    def rollup_sql(self) -> str:
        """The metric's facts rolled up to day values per dimension member (sql/metrics/_rollup.sql)."""
        case = " ".join(f"when grouping({d}) = 0 then '{d}'" for d in self.dimensions)
        member = " ".join(f"when grouping({d}) = 0 then {d}" for d in self.dimensions)
        sets = ", ".join(["(period_start)"] + [f"(period_start, {d})" for d in self.dimensions])
        return sql_file("metrics/_rollup.sql").format(
            facts=self.facts_sql, metric=self.name, measure=self.measure,
            dimension_case=f"case {case} else 'overall' end", member=f"case {member} else 'all' end",
            grouping_sets=sets,
        )


def _header(path: Path) -> dict[str, str]:
    """The `-- key: value` lines at the top of a SQL file."""
    meta = {}
    for line in path.read_text().splitlines():
        if not line.startswith("--"):
            break
        key, sep, value = line[2:].partition(":")
        if sep:
            meta[key.strip()] = value.strip()
    return meta


def load_metrics(folder: Path = SQL_DIR / "metrics") -> list[Metric]:
    """Every metric file in sql/metrics (files starting with _ are templates)."""
    metrics = []
    for path in sorted(folder.glob("[!_]*.sql")):
        meta = _header(path)
        missing = [k for k in ("metric", "measure", "favourability", "dimensions") if k not in meta]
        if missing:
            raise ValueError(f"{path}: header is missing {', '.join(missing)}")
        if meta["measure"] not in ("sum", "ratio"):
            raise ValueError(f"{path}: measure must be sum or ratio, not {meta['measure']!r}")
        if meta["favourability"] not in ("up", "down", "neutral"):
            raise ValueError(f"{path}: favourability must be up, down or neutral, not {meta['favourability']!r}")
        dims = tuple(d.strip() for d in meta["dimensions"].split(",") if d.strip())
        metrics.append(Metric(meta["metric"], meta.get("description", ""), meta["measure"], meta["favourability"],
                              dims, path.read_text(), path))
    return metrics


def _build_staging(con) -> None:
    for path in sorted((SQL_DIR / "staging").glob("*.sql")):
        con.execute(f"create or replace view {path.stem} as {path.read_text()}")


def _recompute_from(con, cycle_id: str, lookback_days: int) -> date | None:
    """The first day touched by batches loaded or quarantined this cycle, minus the late-data lookback."""
    first = con.execute("select min(first_event)::date from batches where cycle_id = ?", [cycle_id]).fetchone()[0]
    return None if first is None else first - timedelta(days=lookback_days)


@task(name="metrics")
def refresh_metrics(warehouse: str, cycle_id: str, full_refresh: bool = False, lookback_days: int = 1,
                    grace_minutes: int = 15) -> dict:
    """Recompute metric values from the first touched day on, all metrics in one transaction."""
    logger = get_run_logger()
    metrics = load_metrics()
    with connect(warehouse) as con:
        if not con.execute("select count(*) from information_schema.tables where table_name = 'raw_events'").fetchone()[0]:
            logger.info("metrics: no data ingested yet")
            return {"rows": 0, "metrics": 0, "since": None}
        _build_staging(con)
        since = FULL_HISTORY if full_refresh else _recompute_from(con, cycle_id, lookback_days)
        if since is None:
            logger.info("metrics: no new data, nothing to recompute")
            return {"rows": 0, "metrics": len(metrics), "since": None}
        watermark = con.execute("select max(watermark) from source_state").fetchone()[0]
        rows = 0
        with transaction(con):
            for metric in metrics:
                con.execute("insert or replace into metrics values (?, ?, ?, ?, ?, ?)",
                            [metric.name, metric.description, metric.measure, metric.favourability,
                             list(metric.dimensions), str(metric.path.relative_to(SQL_DIR.parent))])
                con.execute("delete from metric_values where metric = ? and period_start >= ?", [metric.name, since])
                con.execute(
                    f"""insert into metric_values
                        select m.*,
                               m.period_start + interval 1 day <= $watermark + to_minutes($grace) as complete,
                               $cycle_id as cycle_id
                        from ({metric.rollup_sql()}) as m""",
                    {"since": since, "watermark": watermark, "grace": grace_minutes, "cycle_id": cycle_id},
                )
            rows = con.execute("select count(*) from metric_values where cycle_id = ?", [cycle_id]).fetchone()[0]
    logger.info("metrics: %d metric(s), %d rows recomputed from %s", len(metrics), rows, since)
    return {"rows": rows, "metrics": len(metrics), "since": since.isoformat()}
