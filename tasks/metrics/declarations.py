"""Metric declarations: the metrics of metrics/*.yml, validated when they load and bound against their model."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Literal, NoReturn

import duckdb
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from reverie.config import yaml_files
from reverie.queries import quoted, render

Grain = Literal["hour", "day", "week", "month"]
Aggregation = Literal["sum", "count", "count_distinct", "avg", "min", "max"]
# How changes are read: relative (%, on a log scale), absolute (in the metric's units), points (percentage points)
Scale = Literal["relative", "absolute", "points"]
COUNTS = ("count", "count_distinct")


class MetricError(ValueError):
    """A metric declaration that cannot be used; the message names the file and the field."""


class Measure(BaseModel):
    """An aggregate of a model's rows: sum, count, count_distinct, avg, min or max, optionally filtered."""
    model_config = ConfigDict(extra="forbid")
    agg: Aggregation
    expr: str | None = Field(None, description="column or SQL expression; count counts rows without one")
    filter: str | None = None

    @model_validator(mode="after")
    def _needs_expr(self):
        if self.expr is None and self.agg != "count":
            raise ValueError(f"{self.agg} needs expr (the column or expression to aggregate)")
        return self


class Ratio(BaseModel):
    """One measure divided by another, per period and member."""
    model_config = ConfigDict(extra="forbid")
    numerator: Measure
    denominator: Measure


class Goal(BaseModel):
    """A target value per period of a grain."""
    model_config = ConfigDict(extra="forbid")
    value: float
    grain: Grain = "month"


class MetricSpec(BaseModel):
    """One metric as declared in metrics/*.yml; `path` is the file that declares it (not part of the declaration)."""
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
    scale: Scale | None = Field(None, description="how changes are read; default: inferred (sql/metrics/infer_scales.sql)")
    goal: Goal | None = None
    path: str = ""

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

    @property
    def is_share(self) -> bool:
        """A ratio of two counts (failed orders over orders): a share, whose changes read in percentage points."""
        return self.ratio is not None and self.ratio.numerator.agg in COUNTS and self.ratio.denominator.agg in COUNTS

    def fingerprint(self, zones: str = "") -> str:
        """Changes when the declaration changes, or the time zones its periods are cut in (`zones`)."""
        return hashlib.sha256((self.model_dump_json(exclude={"path"}) + zones).encode()).hexdigest()[:16]


def _location(error: dict) -> str:
    return ".".join(str(part) for part in error["loc"])


def load_metric_specs(folder: Path, errors: list[str] | None = None) -> list[MetricSpec]:
    """Every metric declared in folder/*.yml (and *.yaml); errors name the file, the metric and the field.

    Given an `errors` list, a broken declaration (or a file that is not YAML) is noted there and left out, and the
    others are returned: one typo must not stop every metric. Without one, the first error raises."""
    specs: list[MetricSpec] = []
    seen: dict[str, str] = {}

    def broken(message: str) -> None:
        if errors is None:
            raise MetricError(message)
        errors.append(message)

    for path, document in yaml_files(folder, MetricError, errors):
        entries = document.get("metrics") if isinstance(document, dict) else None
        if not isinstance(entries, list):
            broken(f"{path}: expected a top-level 'metrics:' list")
            continue
        for i, entry in enumerate(entries):
            label = f"metrics[{i}]" + (f" ({entry['name']})" if isinstance(entry, dict) and "name" in entry else "")
            try:
                spec = MetricSpec.model_validate({**entry, "path": str(path)} if isinstance(entry, dict) else entry)
            except ValidationError as exc:
                problems = "; ".join(f"{_location(e) or 'metric'}: {e['msg']}" for e in exc.errors())
                broken(f"{path}: {label}: {problems}")
                continue
            if spec.name in seen:
                broken(f"{path}: {label}: duplicate name '{spec.name}', already declared in {seen[spec.name]}")
                continue
            seen[spec.name] = str(path)
            specs.append(spec)
    return specs


def _bind(con: duckdb.DuckDBPyConnection, model: str, expressions: list[str]) -> duckdb.DuckDBPyConnection:
    """Expressions bound against a model without reading a row; raises duckdb.Error when one does not fit."""
    return con.execute(render("metrics/bind_expressions.sql", identifiers={"model": model},
                              expressions={"expressions": ", ".join(expressions)}))


# the type families DuckDB reports for numbers (DECIMAL comes with its width: DECIMAL(18,2))
NUMBER_TYPES = {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT",
                "UHUGEINT", "FLOAT", "DOUBLE", "DECIMAL"}
# what each aggregate accepts: values are stored as doubles, and min/max of a date or text cannot become one
ACCEPTED_TYPES = {"sum": NUMBER_TYPES, "avg": NUMBER_TYPES, "min": NUMBER_TYPES | {"BOOLEAN"},
                  "max": NUMBER_TYPES | {"BOOLEAN"}}


def _type_problem(measure: Measure, type_name: str) -> str | None:
    """Why a measure cannot aggregate an expression of this DuckDB type, or None when it can."""
    accepted = ACCEPTED_TYPES.get(measure.agg)
    if accepted is None or type_name.split("(")[0] in accepted:
        return None
    return (f"{measure.expr} is {type_name}, but {measure.agg} needs a number "
            f"(cast it in the expression or in a model, e.g. try_cast({measure.expr} as double))")


def check_columns(con: duckdb.DuckDBPyConnection, spec: MetricSpec) -> None:
    """Bind every column and expression of a metric against its model and check the measures' types; errors name
    the field."""
    columns_named = {"time_column": spec.time_column, **{f"dimensions.{d}": d for d in spec.dimensions}}
    measures = {"measure": spec.measure} if spec.measure else {"ratio.numerator": spec.ratio.numerator,
                                                                  "ratio.denominator": spec.ratio.denominator}
    expressions = {f"{k}.expr": m.expr for k, m in measures.items() if m.expr}
    expressions |= {f"{k}.filter": m.filter for k, m in measures.items() if m.filter}
    if spec.filter:
        expressions["filter"] = spec.filter
    where = f"{spec.path}: metric '{spec.name}'"
    try:  # one query binds them all; only when it fails is each bound alone to name the culprit
        bound = _bind(con, spec.model, [quoted(c) for c in columns_named.values()] +
                      [f"({e})" for e in expressions.values()])
    except duckdb.Error:
        _name_what_does_not_bind(con, spec, where, columns_named, expressions)
    types = dict(zip(list(columns_named) + list(expressions), (str(column[1]) for column in bound.description)))
    for name, measure in measures.items():
        problem = measure.expr and _type_problem(measure, types[f"{name}.expr"])
        if problem:
            raise MetricError(f"{where}: {name}.expr: {problem}")


def _name_what_does_not_bind(con: duckdb.DuckDBPyConnection, spec: MetricSpec, where: str, columns_named: dict,
                             expressions: dict) -> NoReturn:
    """Raise a MetricError naming the first column or expression of a metric that does not bind."""
    columns = [name for name, *_ in _bind(con, spec.model, ["*"]).description]
    for field, column in columns_named.items():
        if column not in columns:
            raise MetricError(f"{where}: {field.split('.')[0]}: '{column}' is not a column of {spec.model} "
                              f"(columns: {', '.join(columns)})")
    for field, expression in expressions.items():
        try:
            _bind(con, spec.model, [expression])
        except duckdb.Error as exc:
            raise MetricError(f"{where}: {field} '{expression}': {str(exc).splitlines()[0]}") from exc
    raise MetricError(f"{where}: its columns and expressions do not bind together against {spec.model}")
