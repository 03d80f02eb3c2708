"""A dbt project's metrics (MetricFlow's specification, read by dbt-semantic-interfaces) as reverie metrics: simple and
ratio metrics, and derived ones that are one metric or one divided by another; each over the source of its semantic
model (reverie/dbt_project.py), sliced by its categorical dimensions, at the grains its time dimension allows. What
reverie cannot compute is returned one line each, with the reason."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import jinja2
import sqlglot
from pydantic import ValidationError
from sqlglot import exp

from reverie.dbt_project import GRAINS, DbtError, DbtProject, agg_time_dimension
from reverie.queries import literal, quoted
from reverie.tasks.metrics.declarations import Measure, MetricSpec, Ratio

AGGREGATIONS = {"sum": "sum", "count": "count", "count_distinct": "count_distinct", "average": "avg", "min": "min",
                "max": "max", "sum_boolean": "sum"}
# what the other kinds of metric compute that one aggregate per period and slice cannot
NOT_EXPRESSIBLE = {
    "cumulative": "a cumulative metric adds periods up over a window; reverie computes each period on its own",
    "conversion": "a conversion metric follows entities from one event to another; reverie aggregates one model",
}


class Unsupported(ValueError):
    """Why a metric cannot be a reverie metric."""


@dataclass(frozen=True)
class Aggregate:
    """A measure of a semantic model as a metric input resolves it: the model, the measure, the filters on its rows."""
    semantic_model: object
    measure: object
    filters: tuple[str, ...]

    def as_measure(self) -> Measure:
        agg = self.measure.agg.value
        if agg not in AGGREGATIONS:
            raise Unsupported(f"measure '{self.measure.name}' aggregates by {agg}, which reverie does not compute")
        if self.measure.non_additive_dimension:
            raise Unsupported(f"measure '{self.measure.name}' is semi-additive (non_additive_dimension)")
        expr = self.measure.expr or self.measure.name
        if agg == "sum_boolean":
            expr = f"cast(({expr}) as integer)"
        filters = " and ".join(f"({f})" for f in self.filters) or None
        return Measure(agg=AGGREGATIONS[agg], expr=expr, filter=filters)


class _Where:
    """Renders a MetricFlow where filter (`{{ Dimension('order__status') }} = 'paid'`) as SQL over the columns of
    one semantic model's source: its own dimensions, time dimensions and entities; anything reached by a join is
    refused."""

    def __init__(self, semantic_model, time_column: str) -> None:
        self.model, self.time_column = semantic_model, time_column
        self.dimensions = {d.name: d for d in semantic_model.dimensions}
        self.entities = {e.name: e for e in semantic_model.entities}
        self.own = {e.name for e in semantic_model.entities if e.type.value in ("primary", "unique", "natural")}

    def _element(self, reference: str, kind: str) -> str:
        *path, name = reference.split("__")
        if kind == "time" and reference == "metric_time":
            return self.time_column
        if len(path) > 1 or (path and path[0] not in self.own):
            raise Unsupported(f"its filter reads {reference}, a dimension of another semantic model (joined "
                              f"through {path[0]}); reverie reads one model")
        known = self.dimensions.get(name)
        if known is None or (known.type.value == "time") != (kind == "time"):
            raise Unsupported(f"its filter reads {reference}, which is not a {kind} dimension of semantic model "
                              f"'{self.model.name}'")
        return name

    def render(self, template: str) -> str:
        def dimension(reference: str, entity_path: list | None = None) -> str:
            if entity_path:
                raise Unsupported(f"its filter reads {reference} through {entity_path}; reverie reads one model")
            return quoted(self._element(reference, "categorical"))

        def time_dimension(reference: str, grain: str | None = None, *_, **__) -> str:
            column = quoted(self._element(reference, "time"))
            return f"date_trunc({literal(grain)}, {column})" if grain else column

        def entity(reference: str, *_, **__) -> str:
            if reference not in self.entities:
                raise Unsupported(f"its filter reads entity {reference}, which semantic model '{self.model.name}' "
                                  "has not got")
            return quoted(reference)

        def metric(reference: str, *_, **__) -> str:
            raise Unsupported(f"its filter reads metric {reference}; reverie filters rows, not metric values")

        try:
            return jinja2.Environment(undefined=jinja2.StrictUndefined).from_string(template).render(
                Dimension=dimension, TimeDimension=time_dimension, Entity=entity, Metric=metric)
        except jinja2.TemplateError as exc:
            raise Unsupported(f"its filter {template!r} does not render: {exc}") from None


class _Translation:
    """The semantic manifest's metrics resolved to aggregates of one semantic model each."""

    def __init__(self, manifest) -> None:
        self.metrics = {m.name: m for m in manifest.metrics}
        self.measures = {measure.name: (model, measure) for model in manifest.semantic_models
                         for measure in model.measures}

    def filters(self, where, semantic_model, time_column: str) -> tuple[str, ...]:
        renderer = _Where(semantic_model, time_column)
        return tuple(renderer.render(f.where_sql_template) for f in (where.where_filters if where else ()))

    def aggregate(self, metric, extra_filter=None) -> Aggregate:
        """A simple metric (or a derived one of a single metric) as one filtered aggregate."""
        if metric.type.value == "simple":
            measure_input = metric.type_params.measure
            model, measure = self.measures[measure_input.name]
            time_column = agg_time_dimension(model, measure)
            filters = [*self.filters(measure_input.filter, model, time_column),
                       *self.filters(metric.filter, model, time_column),
                       *self.filters(extra_filter, model, time_column)]
            return Aggregate(model, measure, tuple(filters))
        if metric.type.value == "derived":
            inputs = self.single_inputs(metric)
            if len(inputs) == 1 and _names(metric.type_params.expr) == [inputs[0][0]]:
                inner = self.aggregate(self.metrics[inputs[0][1].name], inputs[0][1].filter)
                model, time_column = inner.semantic_model, agg_time_dimension(inner.semantic_model, inner.measure)
                filters = [*self.filters(metric.filter, model, time_column),
                           *self.filters(extra_filter, model, time_column)]
                return Aggregate(model, inner.measure, inner.filters + tuple(filters))
        raise Unsupported(f"it reads metric '{metric.name}', a {metric.type.value} metric reverie cannot aggregate "
                          "as one measure")

    def single_inputs(self, metric) -> list[tuple[str, object]]:
        """A derived metric's inputs by the names its expression uses them by; offsets refused."""
        inputs = []
        for metric_input in metric.type_params.metrics or []:
            if metric_input.offset_window or metric_input.offset_to_grain:
                raise Unsupported(f"input '{metric_input.alias or metric_input.name}' is offset to another period "
                                  "(offset_window); reverie's detectors compare periods themselves")
            inputs.append((metric_input.alias or metric_input.name, metric_input))
        return inputs

    def ratio(self, metric) -> tuple[Aggregate, Aggregate]:
        """A ratio metric, or a derived `a / b`, as numerator and denominator aggregates."""
        if metric.type.value == "ratio":
            numerator, denominator = metric.type_params.numerator, metric.type_params.denominator
        else:
            inputs = dict(self.single_inputs(metric))
            names = _quotient(metric.type_params.expr)
            if not names or not all(name in inputs for name in names):
                raise Unsupported(f"its expression '{metric.type_params.expr}' is neither one metric nor one "
                                  "divided by another")
            numerator, denominator = inputs[names[0]], inputs[names[1]]
        return (self.aggregate(self.metrics[numerator.name], numerator.filter),
                self.aggregate(self.metrics[denominator.name], denominator.filter))

    def spec(self, metric, path: str) -> MetricSpec:
        kind = metric.type.value
        if kind in NOT_EXPRESSIBLE:
            raise Unsupported(NOT_EXPRESSIBLE[kind])
        if kind == "simple" or (kind == "derived" and len(_names(metric.type_params.expr)) == 1):
            aggregate, ratio = self.aggregate(metric), None
            fields = {"measure": aggregate.as_measure()}
            if kind == "derived" and _names(metric.type_params.expr) != [metric.type_params.expr.strip()]:
                raise Unsupported(f"its expression '{metric.type_params.expr}' is neither one metric nor one "
                                  "divided by another")
        else:
            numerator, denominator = ratio = self.ratio(metric)
            if numerator.semantic_model.name != denominator.semantic_model.name:
                raise Unsupported(f"its numerator is of semantic model '{numerator.semantic_model.name}' and its "
                                  f"denominator of '{denominator.semantic_model.name}'; reverie divides within one")
            aggregate = numerator
            if metric.filter:  # a ratio's own filter holds for both sides
                time_column = agg_time_dimension(numerator.semantic_model, numerator.measure)
                extra = self.filters(metric.filter, numerator.semantic_model, time_column)
                numerator, denominator = (Aggregate(a.semantic_model, a.measure, a.filters + extra)
                                          for a in (numerator, denominator))
            fields = {"ratio": Ratio(numerator=numerator.as_measure(), denominator=denominator.as_measure())}
        model = aggregate.semantic_model
        time_column = agg_time_dimension(model, aggregate.measure)
        times = {d.name: d for d in model.dimensions if d.type.value == "time"}
        if ratio and agg_time_dimension(ratio[1].semantic_model, ratio[1].measure) != time_column:
            raise Unsupported("its numerator and denominator are dated by different time dimensions")
        granularity = times[time_column].type_params.time_granularity.value if time_column in times else None
        if granularity not in GRAINS and granularity not in ("nanosecond", "microsecond", "millisecond", "second",
                                                             "minute"):
            raise Unsupported(f"its time dimension {time_column} is by {granularity}; reverie's grains are "
                              "hour, day, week and month")
        # meta: {reverie: {favourability: up, dimensions: [...], grains: [...], scale: ..., goal: ...}} in dbt
        meta = (metric.config.meta or {}).get("reverie", {}) if metric.config else {}
        try:
            return MetricSpec.model_validate({
                "name": metric.name, "description": metric.description or metric.label or "", "model": model.name,
                "time_column": time_column, "grains": GRAINS.get(granularity, GRAINS["hour"]),
                "dimensions": [d.name for d in model.dimensions if d.type.value == "categorical"],
                **(meta if isinstance(meta, dict) else {}), **fields, "path": path})
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'metric'}: {e['msg']}" for e in exc.errors())
            raise Unsupported(problems) from None


def _names(expression: str | None) -> list[str]:
    """The metric names an expression reads, in order."""
    try:
        return [column.name for column in sqlglot.parse_one(expression or "").find_all(exp.Column)]
    except sqlglot.errors.ParseError:
        return []


def _quotient(expression: str | None) -> list[str] | None:
    """[a, b] when the expression is `a / b` of two names (in brackets or not), else None."""
    try:
        tree = sqlglot.parse_one(expression or "")
    except sqlglot.errors.ParseError:
        return None
    while isinstance(tree, exp.Paren):
        tree = tree.this
    if isinstance(tree, exp.Div) and all(isinstance(side.unnest(), exp.Column) for side in (tree.this, tree.expression)):
        return [tree.this.unnest().name, tree.expression.unnest().name]
    return None


@dataclass
class DbtMetrics:
    """A dbt project's metrics as reverie reads them: those it computes; those it does not, each with the reason
    (`not_computed`, by name) and as a line to show (`unsupported`, with the semantic models not read); and errors
    (the project unreadable: its metrics keep the values they have)."""
    specs: list[MetricSpec] = field(default_factory=list)
    unsupported: list[str] = field(default_factory=list)
    not_computed: dict[str, str] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


def dbt_metric_specs(project: DbtProject | None, sources: dict) -> DbtMetrics:
    """The dbt project's metrics as reverie metrics, and what it cannot compute, with the reasons."""
    read = DbtMetrics(unsupported=list(project.skipped) if project else [])
    if project is None or project.problem:
        read.errors += [project.problem] if project else []
        return read
    try:
        manifest = project.semantic_manifest()
        files = project.files_of_metrics()
    except DbtError as exc:
        read.errors.append(f"dbt project {project.project_dir}: {exc}")
        return read
    translation = _Translation(manifest)
    for metric in manifest.metrics:
        path = str(files.get(metric.name, project.project_dir / "dbt_project.yml"))
        try:
            spec = translation.spec(metric, path)
            if spec.model not in sources:
                raise Unsupported(f"its semantic model '{spec.model}' is not read")
            read.specs.append(spec)
        except (Unsupported, KeyError) as exc:
            reason = str(exc) if isinstance(exc, Unsupported) else f"it reads {exc}, which the manifest has not got"
            read.not_computed[metric.name] = f"a {metric.type.value} metric of the dbt project: {reason}"
            read.unsupported.append(f"{Path(path).name}: dbt metric '{metric.name}' ({metric.type.value}) not "
                                    f"computed: {reason}")
    return read
