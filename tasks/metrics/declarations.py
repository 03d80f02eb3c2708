"""Metric declarations: the metrics of metrics/*.yml, validated when they load and bound against their model."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Literal

import duckdb
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from reverie.config import yaml_files
from reverie.warehouse import sql_file

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


def check_columns(con: duckdb.DuckDBPyConnection, spec: MetricSpec) -> None:
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
