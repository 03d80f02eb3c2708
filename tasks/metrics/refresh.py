"""Metric refresh: recompute metric values from where new data (or a new definition) starts, many metrics per statement."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta

import duckdb

from tasks.metrics.declarations import MetricSpec

FULL_HISTORY = datetime(1900, 1, 1)


def period_start(moment: datetime, grain: str) -> datetime:
    """The start of the hour, day, week (Monday) or month that holds `moment`, like DuckDB's date_trunc."""
    hour = moment.replace(minute=0, second=0, microsecond=0)
    day = hour.replace(hour=0)
    return {"hour": hour, "day": day, "week": day - timedelta(days=day.weekday()), "month": day.replace(day=1)}[grain]


def touched_since(con: duckdb.DuckDBPyConnection, cycle_id: str, sources: set[str], lookback_days: int) -> datetime | None:
    """The first moment touched by batches of these sources loaded or quarantined this cycle, minus the lookback."""
    if not sources:
        return None
    first = con.execute(f"select min(first_event) from batches where cycle_id = ? and source in "
                        f"({', '.join('?' * len(sources))})", [cycle_id, *sorted(sources)]).fetchone()[0]
    if first is None:
        return None
    first_day = first.date() if isinstance(first, datetime) else first
    return datetime.combine(first_day - timedelta(days=lookback_days), datetime.min.time())


def watermark_of(con: duckdb.DuckDBPyConnection, sources: set[str]) -> datetime | None:
    """How far the data of these sources reaches: the laggard decides."""
    if not sources:
        return None
    return con.execute(f"select min(watermark) from source_state where source in ({', '.join('?' * len(sources))})",
                       sorted(sources)).fetchone()[0]


def refresh_start(con: duckdb.DuckDBPyConnection, spec: MetricSpec, known: tuple | None, touched: datetime | None, full_refresh: bool) -> datetime | None:
    """Where a metric's recomputation starts (its whole history when new or redefined); keeps the catalogue current."""
    if known != (spec.fingerprint(), spec.path, spec.model):
        con.execute("""insert or replace into metrics (name, description, measure, favourability, grains, dimensions,
                           goal, definition, fingerprint, model) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                    [spec.name, spec.description, spec.kind, spec.favourability, spec.grains, spec.dimensions,
                     spec.goal.model_dump_json() if spec.goal else None, spec.path, spec.fingerprint(), spec.model])
    redefined = known is None or known[0] != spec.fingerprint()
    return FULL_HISTORY if (full_refresh or redefined) else touched


def recompute(con: duckdb.DuckDBPyConnection, planned: list[tuple[MetricSpec, datetime, datetime | None]], cycle_id: str, grace_minutes: int) -> int:
    """Replace metric values from each metric's start: one delete and one insert per shared start, watermark and grain."""
    rebuilt = [spec.name for spec, since, _ in planned if since == FULL_HISTORY]
    if rebuilt:  # grains no longer declared go too
        con.execute("delete from metric_values where metric in (select unnest(?::varchar[]))", [rebuilt])
    together: dict[tuple, list[MetricSpec]] = defaultdict(list)
    for spec, since, watermark in planned:
        for grain in spec.grains:
            together[(period_start(since, grain), watermark, grain)].append(spec)
    rows = 0
    for (period, watermark, grain), specs in together.items():
        con.execute("delete from metric_values where grain = ? and period_start >= ? and metric in "
                    "(select unnest(?::varchar[]))", [grain, period, [spec.name for spec in specs]])
        # one statement for many metrics: DuckDB plans it once, which is most of the cost of a small refresh
        union = "\nunion all\n".join(f"({spec.sql(grain)})" for spec in specs)
        rows += con.execute(
            f"""insert into metric_values
                select m.*,
                       coalesce(m.period_start + interval 1 {grain} <= $watermark + to_minutes($grace), false) as complete,
                       $cycle_id as cycle_id
                from ({union}) as m""",
            {"since": period, "watermark": watermark, "grace": grace_minutes, "cycle_id": cycle_id},
        ).fetchone()[0]
    return rows
