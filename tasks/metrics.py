"""Metrics: declared in YAML, computed by one SQL template, recomputed only for the periods new data touched."""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal

import duckdb
import polars as pl
from prefect import task
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from reverie.config import SourceSettings, yaml_files
from reverie.warehouse import Warehouse, sql_file, transaction
from reverie.logs import run_logger
from reverie.models import ModelError, build_models
from tasks.quality.declarations import MetricCheck, QualityConfig, QualityError, load_quality

FULL_HISTORY = datetime(1900, 1, 1)
Grain = Literal["hour", "day", "week", "month"]
Aggregation = Literal["sum", "count", "count_distinct", "avg", "min", "max"]


class MetricError(ValueError):
    """A metric declaration that cannot be used; the message names the file and the field."""


class Measure(BaseModel):
    model_config = ConfigDict(extra="forbid")
    agg: Aggregation
    expr: str | None = Field(None, description="column or SQL expression; count counts rows without one")
    filter: str | None = None

    @model_validator(mode="after")
    def _needs_expr(self):
        if self.expr is None and self.agg != "count":
            raise ValueError(f"{self.agg} needs expr (the column or expression to aggregate)")
        return self

    def sql(self) -> str:
        # sums and averages add exact decimals (9 places): a floating-point total depends on the order in which
        # DuckDB's threads add rows up, and an incremental refresh must equal a full one to the last digit
        target = {"count": self.expr or "*", "count_distinct": f"distinct {self.expr}", "sum": f"({self.expr})::decimal(38, 9)",
                  "avg": f"({self.expr})::decimal(38, 9)"}.get(self.agg, self.expr)
        function = {"count_distinct": "count"}.get(self.agg, self.agg)
        aggregate = f"{function}({target})" + (f" filter (where {self.filter})" if self.filter else "")
        # a sum over no rows is 0 (no sales that day), an average over no rows is unknown
        return f"coalesce({aggregate}, 0)::double" if self.agg == "sum" else f"({aggregate})::double"


class Ratio(BaseModel):
    model_config = ConfigDict(extra="forbid")
    numerator: Measure
    denominator: Measure


class Goal(BaseModel):
    model_config = ConfigDict(extra="forbid")
    value: float
    grain: Grain = "month"


class MetricSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    description: str = ""
    model: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", description="a source or a model in models/")
    time_column: str
    measure: Measure | None = None
    ratio: Ratio | None = None
    grains: list[Grain] = Field(default_factory=lambda: ["day"], min_length=1)
    dimensions: list[str] = Field(default_factory=list)
    filter: str | None = None
    favourability: Literal["up", "down", "neutral"] = "neutral"
    goal: Goal | None = None
    path: str = Field("", exclude=True)

    @model_validator(mode="after")
    def _one_measure(self):
        if (self.measure is None) == (self.ratio is None):
            raise ValueError("declare exactly one of measure or ratio")
        if len(set(self.dimensions)) != len(self.dimensions):
            raise ValueError("dimensions are listed twice")
        return self

    @property
    def kind(self) -> str:
        return "ratio" if self.ratio else self.measure.agg

    def fingerprint(self) -> str:
        return hashlib.sha256(self.model_dump_json().encode()).hexdigest()[:16]

    def sql(self, grain: str) -> str:
        """The metric at one grain, from sql/metrics/metric.sql."""
        dims = self.dimensions
        case = " ".join(f"when grouping({d}) = 0 then '{d}'" for d in dims)
        member = " ".join(f"when grouping({d}) = 0 then cast({d} as varchar)" for d in dims)
        numerator = self.ratio.numerator.sql() if self.ratio else self.measure.sql()
        denominator = self.ratio.denominator.sql() if self.ratio else "null::double"
        return sql_file("metrics/metric.sql").format(
            model=self.model, time_column=self.time_column, filter=self.filter or "true", grain=grain,
            dimension_case=f"case {case} else 'overall' end" if dims else "'overall'",
            member_case=f"case {member} else 'all' end" if dims else "'all'",
            numerator=numerator, denominator=denominator,
            grouping_sets=", ".join(["(period_start)"] + [f"(period_start, {d})" for d in dims]),
            metric=self.name,
            value="numerator / nullif(denominator, 0)" if self.ratio else "numerator",
            ratio_numerator="numerator" if self.ratio else "null::double",
            ratio_denominator="denominator" if self.ratio else "null::double",
        )


def _location(error: dict) -> str:
    return ".".join(str(part) for part in error["loc"])


def load_metric_specs(folder: Path) -> list[MetricSpec]:
    """Every metric declared in folder/*.yml (and *.yaml); errors name the file, the metric and the field."""
    specs: list[MetricSpec] = []
    seen: dict[str, str] = {}
    for path, document in yaml_files(folder, MetricError):
        entries = document.get("metrics") if isinstance(document, dict) else None
        if not isinstance(entries, list):
            raise MetricError(f"{path}: expected a top-level 'metrics:' list")
        for i, entry in enumerate(entries):
            label = f"metrics[{i}]" + (f" ({entry['name']})" if isinstance(entry, dict) and "name" in entry else "")
            try:
                spec = MetricSpec.model_validate({**entry, "path": str(path)} if isinstance(entry, dict) else entry)
            except ValidationError as exc:
                problems = "; ".join(f"{_location(e) or 'metric'}: {e['msg']}" for e in exc.errors())
                raise MetricError(f"{path}: {label}: {problems}") from exc
            if spec.name in seen:
                raise MetricError(f"{path}: {label}: duplicate name '{spec.name}', already declared in {seen[spec.name]}")
            seen[spec.name] = str(path)
            specs.append(spec)
    return specs


def check_columns(con, spec: MetricSpec) -> None:
    """Bind every column and expression of a metric against its model; errors name the field."""
    checks = {"time_column": spec.time_column, **{f"dimensions.{d}": d for d in spec.dimensions}}
    measures = {"measure": spec.measure} if spec.measure else {"ratio.numerator": spec.ratio.numerator,
                                                                  "ratio.denominator": spec.ratio.denominator}
    checks |= {f"{k}.expr": m.expr for k, m in measures.items() if m.expr}
    checks |= {f"{k}.filter": m.filter for k, m in measures.items() if m.filter}
    if spec.filter:
        checks["filter"] = spec.filter
    try:  # one query binds them all; only when it fails is each bound alone to name the culprit
        con.execute(f"select {', '.join(f'({e})' for e in checks.values())} from {spec.model} limit 0")
        return
    except duckdb.Error:
        pass
    where = f"{spec.path}: metric '{spec.name}'"
    columns = [name for name, *_ in con.execute(f"describe select * from {spec.model}").fetchall()]
    for field, expression in checks.items():
        if field == "time_column" or field.startswith("dimensions."):
            if expression not in columns:
                name = field.split(".")[0]
                raise MetricError(f"{where}: {name}: '{expression}' is not a column of {spec.model} "
                                  f"(columns: {', '.join(columns)})")
            continue
        try:
            con.execute(f"select {expression} from {spec.model} limit 0")
        except duckdb.Error as exc:
            raise MetricError(f"{where}: {field} '{expression}': {str(exc).splitlines()[0]}") from exc
    raise MetricError(f"{where}: its columns and expressions do not bind together against {spec.model}")


def period_start(moment: datetime, grain: str) -> datetime:
    """The start of the hour, day, week (Monday) or month that holds `moment`, like DuckDB's date_trunc."""
    hour = moment.replace(minute=0, second=0, microsecond=0)
    day = hour.replace(hour=0)
    return {"hour": hour, "day": day, "week": day - timedelta(days=day.weekday()), "month": day.replace(day=1)}[grain]


def _touched_since(con, cycle_id: str, sources: set[str], lookback_days: int) -> datetime | None:
    """The first moment touched by batches of these sources loaded or quarantined this cycle, minus the lookback."""
    if not sources:
        return None
    first = con.execute(f"select min(first_event) from batches where cycle_id = ? and source in "
                        f"({', '.join('?' * len(sources))})", [cycle_id, *sorted(sources)]).fetchone()[0]
    if first is None:
        return None
    first_day = first.date() if isinstance(first, datetime) else first
    return datetime.combine(first_day - timedelta(days=lookback_days), datetime.min.time())


def _watermark(con, sources: set[str]) -> datetime | None:
    """How far the data of these sources reaches: the laggard decides."""
    if not sources:
        return None
    return con.execute(f"select min(watermark) from source_state where source in ({', '.join('?' * len(sources))})",
                       sorted(sources)).fetchone()[0]


def _since(con, spec: MetricSpec, known: tuple | None, touched: datetime | None, full_refresh: bool) -> datetime | None:
    """Where a metric's recomputation starts (its whole history when new or redefined); keeps the catalogue current."""
    if known != (spec.fingerprint(), spec.path, spec.model):
        con.execute("""insert or replace into metrics (name, description, measure, favourability, grains, dimensions,
                           goal, definition, fingerprint, model) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                    [spec.name, spec.description, spec.kind, spec.favourability, spec.grains, spec.dimensions,
                     spec.goal.model_dump_json() if spec.goal else None, spec.path, spec.fingerprint(), spec.model])
    redefined = known is None or known[0] != spec.fingerprint()
    return FULL_HISTORY if (full_refresh or redefined) else touched


def _recompute(con, planned: list[tuple[MetricSpec, datetime, datetime | None]], cycle_id: str, grace_minutes: int) -> int:
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


def sanity_outcomes(con, spec: MetricSpec, checks: list[MetricCheck], cycle_id: str) -> list[dict]:
    """The declared sanity checks on a metric's values just recomputed (range) and on its whole series (gaps)."""
    outcomes = []
    for check in checks:
        if check.check == "between":
            total, outside, sample = con.execute(sql_file("quality/metric_out_of_range.sql"), {
                "metric": spec.name, "cycle_id": cycle_id, "min": check.min, "max": check.max}).fetchone()
            low, high = ("" if b is None else f"{b:g}" for b in (check.min, check.max))
            message = f"{outside:,} of {total:,} values outside [{low}, {high}]: {'; '.join(sample or [])}"
        else:
            missing = con.execute(sql_file("quality/missing_periods.sql"), {"metric": spec.name}).fetchall()
            total, outside, sample = None, len(missing), [f"{g} {p:%Y-%m-%d}" for g, p in missing[:5]]
            message = f"no value for {outside} period(s): {', '.join(sample)}{' …' if outside > 5 else ''}"
        outcomes.append({"metric": spec.name, "check": check.check, "severity": check.severity, "success": not outside,
                         "total": total, "unexpected": outside, "sample": sample or [], "message": message if outside else None})
    return outcomes


def _save_sanity(con, cycle_id: str, outcomes: list[dict]) -> None:
    if not outcomes:
        return
    with transaction(con):
        con.executemany(
            """insert into quality_results (cycle_id, suite, source, batch, expectation, column_name, severity, success,
                   element_count, unexpected_count, sample, checked_at, message)
               values (?, 'metrics', 'metrics', ?, ?, null, ?, ?, ?, ?, ?, now(), ?)""",
            [[cycle_id, o["metric"], o["check"], o["severity"], o["success"], o["total"], o["unexpected"],
              json.dumps(o["sample"]), o["message"]] for o in outcomes])


def metric_summary(con) -> pl.DataFrame:
    """Each metric's latest complete day (overall) against the same weekday a week before, as polars."""
    daily = con.execute("""select metric, period_start as day, value from metric_values
                           where grain = 'day' and dimension = 'overall' and complete""").pl()
    latest = daily.group_by("metric").agg(pl.col("day").max()).join(daily, on=["metric", "day"])
    week_before = daily.select("metric", (pl.col("day") + pl.duration(days=7)).alias("day"),
                               pl.col("value").alias("week_before"))
    return (latest.join(week_before, on=["metric", "day"], how="left")
            .with_columns((pl.col("value") / pl.col("week_before") - 1).alias("change"))
            .sort("metric"))


@task(name="metrics")
def refresh_metrics(warehouse: Warehouse, cycle_id: str, sources: dict[str, SourceSettings], models_dir: str,
                    metrics_dir: str, full_refresh: bool = False, lookback_days: int = 1, grace_minutes: int = 15,
                    quality_dir: str | None = None) -> dict:
    """Build the models, then recompute every valid metric in one transaction; a broken metric fails alone.

    Declared sanity checks run on the new values before they are committed: an error keeps the metric's old values.
    """
    logger = run_logger()
    errors: list[str] = []
    try:
        specs = load_metric_specs(Path(metrics_dir))
    except MetricError as exc:
        logger.warning("metrics: %s", exc)
        return {"rows": 0, "metrics": 0, "since": None, "errors": [str(exc)]}
    try:
        quality = load_quality(Path(quality_dir)) if quality_dir else QualityConfig()
    except QualityError:
        quality = QualityConfig()  # the quality gate reports the broken file; metrics are computed unchecked
    by_sources: dict[frozenset, tuple] = {}
    with warehouse.connect() as con:
        try:
            lineage = build_models(con, sources, Path(models_dir))
        except ModelError as exc:
            logger.warning("metrics: %s", exc)
            return {"rows": 0, "metrics": len(specs), "since": None, "errors": [str(exc)]}
        ready = []
        for spec in specs:
            sources = frozenset(lineage.sources_of(spec.model))
            if not sources:
                continue  # its sources have no data yet
            if sources not in by_sources:  # metrics on the same sources share these two look-ups
                by_sources[sources] = (_touched_since(con, cycle_id, sources, lookback_days), _watermark(con, sources))
            try:
                check_columns(con, spec)
            except MetricError as exc:
                errors.append(str(exc))
                continue
            ready.append((spec, by_sources[sources]))

        catalogue = {name: (fingerprint, definition, model) for name, fingerprint, definition, model in
                     con.execute("select name, fingerprint, definition, model from metrics").fetchall()}

        sanity: dict[str, list[dict]] = {}

        def refresh(batch: list) -> tuple[int, list[datetime]]:
            planned = [(spec, _since(con, spec, catalogue.get(spec.name), touched, full_refresh), watermark)
                       for spec, (touched, watermark) in batch]
            planned = [plan for plan in planned if plan[1] is not None]
            rows = _recompute(con, planned, cycle_id, grace_minutes)
            for spec, _, _ in planned:
                sanity[spec.name] = sanity_outcomes(con, spec, quality.metric_checks_for(spec.name), cycle_id)
                broken = [o["message"] for o in sanity[spec.name] if not o["success"] and o["severity"] == "error"]
                if broken:
                    raise MetricError(f"{spec.path}: metric '{spec.name}': failed its sanity check: {'; '.join(broken)}")
            return rows, [since for _, since, _ in planned]

        try:
            with transaction(con):  # the usual case: every metric, one commit
                outcomes, refreshed = [refresh(ready)], len(ready)
        except (duckdb.Error, MetricError):
            # one failed while computing: redo them one by one, so the others land and it keeps its old values
            outcomes, refreshed = [], 0
            for spec, lookups in ready:
                try:
                    with transaction(con):
                        outcomes.append(refresh([(spec, lookups)]))
                    refreshed += 1
                except MetricError as exc:
                    errors.append(str(exc))
                except duckdb.Error as exc:
                    errors.append(f"{spec.path}: metric '{spec.name}': {exc}")
        _save_sanity(con, cycle_id, [o for outcomes_of in sanity.values() for o in outcomes_of])
    for message in errors:
        logger.warning("metrics: %s", message)
    rows = sum(count for count, _ in outcomes)
    first_since = min((since for _, starts in outcomes for since in starts), default=None)
    logger.info("metrics: %d metric(s), %d values recomputed%s", refreshed, rows,
                f" from {first_since:%Y-%m-%d}" if first_since else "")
    return {"rows": rows, "metrics": refreshed, "since": first_since.date().isoformat() if first_since else None,
            "errors": errors}
