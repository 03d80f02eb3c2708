"""Metrics: declared in YAML, computed by one SQL template, recomputed only for the periods new data touched.

The refresh is planned once (models built, metrics grouped by the sources they read), then each group is
recomputed in a commit of its own: one after another here, or at once on a cycle's workers (`run_units`)."""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import duckdb
from prefect import task
from prefect.cache_policies import NO_CACHE
from pydantic import TypeAdapter

from reverie.commits import committed, is_write_conflict, transaction
from reverie.config import SourceSettings
from reverie.dbt_project import DbtProject
from reverie.logs import run_logger
from reverie.models import ModelError, build_models
from reverie.suites import MetricCheck, QualityConfig, QualityError, load_quality
from reverie.summaries import MetricsSummary
from reverie.tasks.metrics.dbt import dbt_metric_specs
from reverie.tasks.metrics.declarations import MetricError, MetricSpec, check_columns, load_metric_specs
from reverie.tasks.metrics.refresh import (
    new_values,
    record_metrics,
    record_not_computed,
    refresh_start,
    replace_values,
    touched_since,
    watermark_of,
    zones_of,
)
from reverie.tasks.metrics.sanity_checks import (
    failed_to_compute,
    filters_never_matching,
    sanity_outcomes,
    save_metric_outcomes,
)
from reverie.units import RunUnits, Unit, run_here, runs_here
from reverie.warehouse import Warehouse


@dataclass(frozen=True)
class PlannedMetric:
    """A metric ready to recompute: its declaration, what the catalogue knew of it, where new data starts and how
    far its sources reach, the time zones its periods are cut in, and its sanity checks."""
    spec: MetricSpec
    known: tuple | None
    touched: datetime | None
    watermark: datetime | None
    zones: str
    checks: list[MetricCheck]


@dataclass(frozen=True)
class MetricGroup:
    """Metrics that read the same sources: recomputed together, in one commit apart from other groups."""
    sources: tuple[str, ...]
    metrics: list[PlannedMetric]

    @property
    def name(self) -> str:
        return "+".join(self.sources)


@dataclass
class MetricPlan:
    """The groups to recompute, and what could not be planned: errors, and the checks of metrics not computed."""
    groups: list[MetricGroup] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    not_computed: list[dict] = field(default_factory=list)
    unsupported: list[str] = field(default_factory=list)  # a dbt project's metrics reverie cannot compute, and why
    dbt_not_computed: dict[str, str] = field(default_factory=dict)  # the same by name: metric -> why (for `ask`)


def refresh_metrics(warehouse: Warehouse, cycle_id: str, sources: dict[str, SourceSettings], models_dir: str,
                    metrics_dir: str, full_refresh: bool = False, lookback_days: int = 1, grace_minutes: int = 15,
                    quality_dir: str | None = None, run_units: RunUnits = run_here,
                    dbt: DbtProject | None = None) -> MetricsSummary:
    """Build the models, then recompute every valid metric, a commit per group of metrics on the same sources;
    a broken metric fails alone. Then the catalogue of the metrics recomputed and their checks, in this process.

    Declared sanity checks run on the new values before they are committed: an error keeps the metric's old values.
    A metric that cannot be computed is stored as a failed check too, so it reaches memory and the brief.
    """
    # units here: the file opened once for the refresh, not once per step (a fixed cost of each small refresh)
    with warehouse.kept_open() if runs_here(run_units) else nullcontext():
        plan = plan_metrics(warehouse, cycle_id, sources, models_dir, metrics_dir, lookback_days, quality_dir, dbt)
        done = run_units(refresh_metric_group, [{"warehouse": warehouse, "cycle_id": cycle_id, "group": group,
                                              "full_refresh": full_refresh, "grace_minutes": grace_minutes}
                                             for group in plan.groups])
        committed = {name for group in done for name in group["committed"]}
        with warehouse.connect() as con:
            with transaction(con):  # the groups write only metric values: concurrent groups do not conflict here
                record_metrics(con, [(m.spec, m.known, m.zones) for group in plan.groups for m in group.metrics
                                     if m.spec.name in committed])
                record_not_computed(con, plan.dbt_not_computed)
            save_metric_outcomes(con, cycle_id, plan.not_computed + [o for group in done for o in group["outcomes"]])
    logger = run_logger()
    errors = plan.errors + [message for group in done for message in group["errors"]]
    for message in plan.unsupported + errors:
        logger.warning("metrics: %s", message)
    rows, refreshed = sum(group["rows"] for group in done), sum(group["metrics"] for group in done)
    first_since = min((since for group in done for since in group["starts"]), default=None)
    logger.info("metrics: %d metric(s), %d values recomputed%s", refreshed, rows,
                      f" from {first_since:%Y-%m-%d}" if first_since else "")
    return {"rows": rows, "metrics": refreshed, "since": first_since.date().isoformat() if first_since else None,
            "errors": errors, "commits_retried": sum(group["commits_retried"] for group in done),
            "unsupported": plan.unsupported}


def plan_metrics(warehouse: Warehouse, cycle_id: str, sources: dict[str, SourceSettings], models_dir: str,
                 metrics_dir: str, lookback_days: int = 1, quality_dir: str | None = None,
                 dbt: DbtProject | None = None) -> MetricPlan:
    """Build the models and group the metrics that can be computed by the sources they read (metrics/*.yml's and the
    dbt project's; a name declared in both is an error, and neither is computed)."""
    plan = MetricPlan()
    specs = load_metric_specs(Path(metrics_dir), plan.errors)  # a broken declaration is left out, the others computed
    dbt_metrics = dbt_metric_specs(dbt, sources)
    plan.unsupported, plan.dbt_not_computed = dbt_metrics.unsupported, dbt_metrics.not_computed
    plan.errors += dbt_metrics.errors
    declared = {spec.name: spec.path for spec in specs}
    clashes = {spec.name for spec in dbt_metrics.specs} & set(declared)
    plan.errors += [f"{declared[spec.name]}: metric '{spec.name}' is also a metric of the dbt project ({spec.path}); "
                    "rename one (neither is computed)" for spec in dbt_metrics.specs if spec.name in clashes]
    specs = [spec for spec in specs + dbt_metrics.specs if spec.name not in clashes]
    try:
        quality = load_quality(Path(quality_dir)) if quality_dir else QualityConfig()
    except QualityError:
        quality = QualityConfig()  # the quality gate reports the broken file; metrics are computed unchecked
    grouped: dict[frozenset, list[PlannedMetric]] = {}
    lookups: dict[frozenset, tuple] = {}
    with warehouse.connect() as con:
        try:
            lineage = build_models(con, sources, Path(models_dir))
        except ModelError as exc:
            plan.errors.append(str(exc))
            return plan
        catalogue = {name: (fingerprint, definition, model) for name, fingerprint, definition, model in
                     con.execute("select name, fingerprint, definition, model from metrics").fetchall()}
        for spec in specs:
            read = frozenset(lineage.sources_of(spec.model))
            if not read:
                continue  # its sources have no data yet
            if read not in lookups:  # metrics on the same sources share these look-ups
                lookups[read] = (touched_since(con, cycle_id, read, lookback_days), watermark_of(con, read),
                                 zones_of(warehouse.timezone, [sources[name] for name in read]))
            try:
                check_columns(con, spec)
            except MetricError as exc:
                plan.errors.append(str(exc))
                plan.not_computed.append(failed_to_compute(spec, str(exc)))
                continue
            grouped.setdefault(read, []).append(PlannedMetric(spec, catalogue.get(spec.name), *lookups[read],
                                                              quality.metric_checks_for(spec.name)))
    plan.groups = [MetricGroup(tuple(sorted(read)), metrics) for read, metrics in grouped.items()]
    return plan


# no cache: each run stores values
@task(name="metrics", task_run_name="metrics-{group.name}", cache_policy=NO_CACHE)
def refresh_metric_group(warehouse: Warehouse, cycle_id: str, group: MetricGroup, full_refresh: bool = False,
                         grace_minutes: int = 15) -> dict:
    """Recompute one group's metric values in one commit, or one by one when one of them fails. Returns rows
    written, the metrics committed, the first period each recomputed, their check outcomes, and errors."""
    errors: list[str] = []
    sanity: dict[str, list[dict]] = {}
    not_computed: list[dict] = []
    retried: list[int] = []
    with warehouse.connect() as con:

        def refresh(metrics: list[PlannedMetric], name: str | None = None) -> tuple[int, list[datetime], list[str]]:
            starts = [(m, refresh_start(m.spec, m.known, m.touched, full_refresh, m.zones)) for m in metrics]
            planned = [(m, since) for m, since in starts if since is not None]
            values = [(m.spec, since, m.watermark) for m, since in planned]
            computed = new_values(con, values, cycle_id, grace_minutes, ahead=warehouse.lake is not None)

            def write() -> int:
                rows = replace_values(con, values, computed, cycle_id, grace_minutes)
                unmatched = filters_never_matching(con, [m.spec for m, _ in planned])
                for m, _ in planned:
                    sanity[m.spec.name] = sanity_outcomes(con, m.spec, m.checks, cycle_id)
                    sanity[m.spec.name] += [unmatched[m.spec.name]] if m.spec.name in unmatched else []
                    broken = [o["message"] for o in sanity[m.spec.name] if not o["success"] and o["severity"] == "error"]
                    if broken:
                        raise MetricError(f"{m.spec.path}: metric '{m.spec.name}': failed its sanity check: "
                                          f"{'; '.join(broken)}")
                return rows

            # a commit that lost a race writes the same values again: the other writers of metric_values are groups
            # of other metrics, and the sources were loaded before
            rows, again = committed(con, write, name)
            retried.append(again)
            return rows, [since for _, since in planned], [m.spec.name for m in metrics]

        try:  # the usual case: the whole group, one commit
            outcomes, refreshed = [refresh(group.metrics, "metrics")], len(group.metrics)
        except (duckdb.Error, MetricError) as exc:
            if is_write_conflict(exc):
                raise  # it lost every race its commit ran (`committed`): the cycle fails, naming it
            # one failed while computing: redo them one by one, so the others land and it keeps its old values
            outcomes, refreshed = [], 0
            for metric in group.metrics:
                try:
                    outcomes.append(refresh([metric]))
                    refreshed += 1
                except MetricError as exc:
                    errors.append(str(exc))
                except duckdb.Error as exc:
                    if is_write_conflict(exc):
                        raise
                    errors.append(f"{metric.spec.path}: metric '{metric.spec.name}': {exc}")
                    not_computed.append(failed_to_compute(metric.spec, errors[-1]))
    return {"rows": sum(count for count, _, _ in outcomes), "metrics": refreshed, "commits_retried": sum(retried),
            "committed": [name for _, _, names in outcomes for name in names],
            "starts": [since for _, starts, _ in outcomes for since in starts], "errors": errors,
            "outcomes": [o for outcomes_of in sanity.values() for o in outcomes_of] + not_computed}


METRIC_GROUP = TypeAdapter(MetricGroup)
METRIC_GROUP_UNIT = Unit(
    refresh_metric_group,
    sent=lambda call: (call["group"].name, {"cycle_id": call["cycle_id"], "full_refresh": call["full_refresh"],
                                            "grace_minutes": call["grace_minutes"],
                                            "group": METRIC_GROUP.dump_python(call["group"], mode="json")}),
    rebuilt=lambda settings, sent: {"warehouse": settings.warehouse, "cycle_id": sent["cycle_id"],
                                    "group": METRIC_GROUP.validate_python(sent["group"]),
                                    "full_refresh": sent["full_refresh"], "grace_minutes": sent["grace_minutes"]})
