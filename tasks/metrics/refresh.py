"""Metric refresh: recompute values from where new data (or a new definition) starts, many metrics per statement."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import duckdb

from reverie.queries import execute_script, literal, quoted, render, sql_file
from reverie.tasks.metrics.declarations import Measure, MetricSpec

FULL_HISTORY = datetime(1900, 1, 1)
ADDITIVE = ("sum", "count", "count_distinct")  # a period with no rows is 0 for these
ZERO_FILL_WINDOW = {"day": 7, "week": 4, "month": 3}  # periods a member's data counts as recent (not hours)


def measure_sql(measure: Measure) -> str:
    """A measure as a SQL aggregate that yields a double."""
    # sums and averages add exact decimals (9 places): a floating-point total depends on the order in which
    # DuckDB's threads add rows up, and an incremental refresh must equal a full one to the last digit
    target = {"count": measure.expr or "*", "count_distinct": f"distinct {measure.expr}",
              "sum": f"({measure.expr})::decimal(38, 9)", "avg": f"({measure.expr})::decimal(38, 9)"
              }.get(measure.agg, measure.expr)
    function = {"count_distinct": "count"}.get(measure.agg, measure.agg)
    aggregate = f"{function}({target})" + (f" filter (where {measure.filter})" if measure.filter else "")
    # a sum over no rows is 0 (no sales that day), an average over no rows is unknown
    return f"coalesce({aggregate}, 0)::double" if measure.agg == "sum" else f"({aggregate})::double"


def volume_sql(measure: Measure) -> str:
    """The rows a measure aggregates, as a double: a count's own rows, the rows with a value otherwise."""
    target = "*" if measure.agg == "count" and not measure.expr else measure.expr
    return f"count({target})" + (f" filter (where {measure.filter})" if measure.filter else "") + "::double"


def metric_query(spec: MetricSpec, grain: str, whole_history: bool = False) -> str:
    """The metric at a grain (also parameter $grain) from parameter $since, or over its whole history, from
    sql/metrics/metric.sql."""
    time = quoted(spec.time_column)
    dims = [(quoted(d), literal(d)) for d in spec.dimensions]
    dimension = " ".join(f"when grouping({column}) = 0 then {name}" for column, name in dims)
    member = " ".join(f"when grouping({column}) = 0 then cast({column} as varchar)" for column, _ in dims)
    return render("metrics/metric.sql", identifiers={"model": spec.model},
                  literals={"metric": spec.name}, expressions={
                      "filter": spec.filter or "true",
                      # no comparison per row when every row counts; a day by a cast, cheaper than date_trunc
                      "from_since": "true" if whole_history else f"{time} >= $since",
                      "period_start": f"cast({time} as date)::timestamp" if grain == "day"
                                      else f"date_trunc({literal(grain)}, {time})::timestamp",
                      "dimension": f"case {dimension} else 'overall' end" if dims else "'overall'",
                      "member": f"case {member} else 'all' end" if dims else "'all'",
                      "grouping_sets": ", ".join(["(period_start)"] + [f"(period_start, {column})" for column, _ in dims]),
                      "numerator": measure_sql(spec.ratio.numerator if spec.ratio else spec.measure),
                      "denominator": measure_sql(spec.ratio.denominator) if spec.ratio else "null::double",
                      "volume": volume_sql(spec.ratio.denominator if spec.ratio else spec.measure),
                      "value": "numerator / nullif(denominator, 0)" if spec.ratio else "numerator",
                      "ratio_numerator": "numerator" if spec.ratio else "null::double",
                      "ratio_denominator": "denominator" if spec.ratio else "null::double",
                  })


def period_start(moment: datetime, grain: str) -> datetime:
    """The start of the hour, day, week (Monday) or month that holds `moment`, like DuckDB's date_trunc."""
    hour = moment.replace(minute=0, second=0, microsecond=0)
    day = hour.replace(hour=0)
    return {"hour": hour, "day": day, "week": day - timedelta(days=day.weekday()), "month": day.replace(day=1)}[grain]


def touched_since(con: duckdb.DuckDBPyConnection, cycle_id: str, sources: set[str], lookback_days: int) -> datetime | None:
    """The first moment touched by batches of these sources loaded or quarantined this cycle, minus the lookback."""
    if not sources:
        return None
    first = con.execute("select min(first_event) from batches where cycle_id = $cycle_id "
                        "and source in (select unnest($sources::varchar[]))",
                        {"cycle_id": cycle_id, "sources": sorted(sources)}).fetchone()[0]
    if first is None:
        return None
    first_day = first.date() if isinstance(first, datetime) else first
    return datetime.combine(first_day - timedelta(days=lookback_days), datetime.min.time())


def watermark_of(con: duckdb.DuckDBPyConnection, sources: set[str]) -> datetime | None:
    """How far the data of these sources reaches: the laggard decides."""
    if not sources:
        return None
    return con.execute("select min(watermark) from source_state where source in (select unnest($sources::varchar[]))",
                       {"sources": sorted(sources)}).fetchone()[0]


def zones_of(project_zone: str | None, read: list) -> str:
    """The time zones a metric's periods depend on: the project's and those of the sources it reads."""
    return "|".join([str(project_zone), *sorted(f"{source.name}={source.timezone}" for source in read)])


def refresh_start(spec: MetricSpec, known: tuple | None, touched: datetime | None, full_refresh: bool,
                  zones: str = "") -> datetime | None:
    """Where a metric's recomputation starts: its whole history when new or redefined, or when the time zones its
    days are cut in changed (`zones`); else where new data starts (`touched`)."""
    redefined = known is None or known[0] != spec.fingerprint(zones)
    return FULL_HISTORY if (full_refresh or redefined) else touched


def record_metrics(con: duckdb.DuckDBPyConnection, recomputed: list[tuple[MetricSpec, tuple | None, str]]) -> None:
    """Keep the catalogue entries of recomputed metrics (declaration, what the catalogue knew, time zones) current:
    each declaration that changed, and the scale each one's changes are read on, inferred from its values."""
    changed = [(spec, spec.fingerprint(zones)) for spec, known, zones in recomputed
               if known != (spec.fingerprint(zones), Path(spec.path).name, spec.model)]
    if changed:
        execute_script(con, sql_file("metrics/record_metrics.sql"), {
            "name": [spec.name for spec, _ in changed], "description": [spec.description for spec, _ in changed],
            "measure": [spec.kind for spec, _ in changed], "favourability": [spec.favourability for spec, _ in changed],
            "grains": [spec.grains for spec, _ in changed], "dimensions": [spec.dimensions for spec, _ in changed],
            "goal": [spec.goal.model_dump_json() if spec.goal else None for spec, _ in changed],
            # the file in metrics/ that declares it, not its path on this machine (the analyst reads this table)
            "definition": [Path(spec.path).name for spec, _ in changed],
            "fingerprint": [fingerprint for _, fingerprint in changed],
            "model": [spec.model for spec, _ in changed]})
    if recomputed:
        con.execute(sql_file("metrics/infer_scales.sql"), {
            "metric": [spec.name for spec, _, _ in recomputed], "declared": [spec.scale for spec, _, _ in recomputed],
            "shares": [spec.is_share for spec, _, _ in recomputed]})


def record_not_computed(con: duckdb.DuckDBPyConnection, not_computed: dict[str, str]) -> None:
    """Keep the dbt metrics reverie does not compute, and why, as this refresh found them."""
    con.execute("delete from metrics_not_computed")
    if not_computed:
        con.execute("insert into metrics_not_computed select unnest($names), unnest($reasons)",
                    {"names": list(not_computed), "reasons": list(not_computed.values())})


@dataclass(frozen=True)
class NewValues:
    """New values of metrics sharing a start, watermark and grain: what the insert that stores them selects (their
    statement and its parameters, or the temporary table they were computed into ahead of the commit)."""
    query: str
    parameters: dict
    since: datetime
    watermark: datetime | None
    grain: str
    metrics: list[str]
    additive: list[str]


def new_values(con: duckdb.DuckDBPyConnection, planned: list[tuple[MetricSpec, datetime, datetime | None]],
               cycle_id: str, grace_minutes: int, ahead: bool = False) -> list[NewValues]:
    """Each metric's values from its start: one statement per shared start, watermark and grain. `ahead`: computed
    now into temporary tables, so the commit that stores them spans the writes alone (a lake's writers of one table
    conflict when their transactions overlap); else computed by the insert itself, without the copy."""
    together: dict[tuple, list[MetricSpec]] = defaultdict(list)
    for spec, since, watermark in planned:
        for grain in spec.grains:
            together[(period_start(since, grain), watermark, grain)].append(spec)
    computed = []
    for i, ((period, watermark, grain), specs) in enumerate(together.items()):
        whole = period <= FULL_HISTORY  # the whole history: from FULL_HISTORY or the week or month holding it
        # one statement for many metrics: DuckDB plans it once, which is most of the cost of a small refresh
        union = "\nunion all\n".join(f"({metric_query(spec, grain, whole)})" for spec in specs)
        query = render("metrics/new_metric_values.sql", expressions={"metric_queries": union})
        parameters = {"grain": grain, "watermark": watermark, "grace": grace_minutes, "cycle_id": cycle_id} | (
            {} if whole else {"since": period})
        if ahead:
            con.execute(f"create or replace temp table new_metric_values_{i} as {query}", parameters)
            query, parameters = f"select * from new_metric_values_{i}", {}
        computed.append(NewValues(query, parameters, period, watermark, grain, [spec.name for spec in specs],
                                  [spec.name for spec in specs if spec.kind in ADDITIVE]))
    return computed


def replace_values(con: duckdb.DuckDBPyConnection, planned: list[tuple[MetricSpec, datetime, datetime | None]],
                   computed: list[NewValues], cycle_id: str, grace_minutes: int) -> int:
    """Replace metric values from each metric's start with the new ones (one delete and one insert per statement
    computed), and fill an additive metric's missing periods as zeros."""
    rebuilt = [spec.name for spec, since, _ in planned if since == FULL_HISTORY]
    if rebuilt:  # grains no longer declared go too
        con.execute("delete from metric_values where metric in (select unnest($metrics::varchar[]))", {"metrics": rebuilt})
    rows = 0
    for new in computed:
        con.execute("delete from metric_values where grain = $grain and period_start >= $since "
                    "and metric in (select unnest($metrics::varchar[]))",
                    {"grain": new.grain, "since": new.since, "metrics": new.metrics})
        rows += con.execute(f"insert into metric_values by name {new.query}", new.parameters).fetchone()[0]
        if new.additive and new.grain in ZERO_FILL_WINDOW and new.watermark is not None:
            rows += con.execute(sql_file("metrics/missing_periods_as_zero.sql"), {
                "since": new.since, "grain": new.grain, "watermark": new.watermark, "grace": grace_minutes,
                "cycle_id": cycle_id, "metrics": new.additive, "window": ZERO_FILL_WINDOW[new.grain]}).fetchone()[0]
    return rows
