"""Reflect: analysts read the cycle's top candidates, investigate, and write grounded insights through their tools."""

from __future__ import annotations

import json
from contextlib import ExitStack
from datetime import datetime
from pathlib import Path

import openai
from prefect import task
from prefect.cache_policies import NO_CACHE

from reverie.analyst.loop import run_analyst
from reverie.analyst.run import AnalystRun
from reverie.analyst.tool_calls import WAREHOUSE_LOCK
from reverie.commits import transaction
from reverie.config import LLMSettings
from reverie.llm import LLM, LLMUnavailable, open_llm, without_credentials
from reverie.llm_calls import record_calls
from reverie.logs import run_logger
from reverie.queries import rows_as_dicts, sql_file
from reverie.summaries import ReflectSummary
from reverie.units import RunUnits, Unit
from reverie.warehouse import Warehouse, data_watermark
from reverie.wording import unchecked_text


def describe_quality_findings(findings: list[dict], sources: list[dict]) -> str:
    """This cycle's data-quality findings, for the analyst: data held back (or never checked) may explain a change.
    `sources`: each source's new batches and how many went unchecked (quality/new_batches_checked.sql)."""
    lines = [f"- {'held back' if f['held_back'] else 'warning'}: {f['source']} {f['batch']}: {f['reasons']}"
             for f in findings[:10]]
    lines += [f"- unchecked: {unchecked_text(s)}" for s in sources if s["unchecked"]]
    if lines:
        return "\n".join(lines)
    return "none: every new batch passed its checks." if any(s["batches"] for s in sources) else "none: no new batch."


def metric_groups(candidates: list[dict], analysts: int) -> list[list[dict]]:
    """Candidates split into at most `analysts` groups, a metric's candidates always together, the groups even."""
    by_metric: dict[str, list[dict]] = {}
    for c in candidates:
        by_metric.setdefault(c["metric"], []).append(c)
    groups: list[list[dict]] = [[] for _ in range(max(1, min(analysts, len(by_metric))))]
    for members in sorted(by_metric.values(), key=len, reverse=True):
        min(groups, key=len).extend(members)
    return [sorted(g, key=lambda c: c["rank"]) for g in groups if g]


def _store(warehouse: Warehouse, cycle_id: str, model: str | None, run: AnalystRun) -> None:
    """Accepted insights, rejections and the ledger, in one transaction."""
    now = datetime.now()
    with warehouse.connect() as con, transaction(con, "reflect"):
        # a cycle taken up again is investigated again: what it wrote before gives way (its calls happened: kept)
        for table in ("agent_insights", "insight_rejections"):
            con.execute(f"delete from {table} where cycle_id = $cycle_id", {"cycle_id": cycle_id})
        insert_insight = sql_file("reflect/insert_agent_insight.sql")
        for ins in run.written:
            con.execute(insert_insight, {**ins, "cycle_id": cycle_id, "written_at": now,
                                         "evidence": json.dumps(ins["evidence"], default=str)})
        insert_rejection = sql_file("reflect/insert_insight_rejection.sql")
        for rej in run.rejected:
            con.execute(insert_rejection, {"cycle_id": cycle_id, "source": model or "", "title": rej["title"],
                                           "body": rej["body"], "reason": rej["reason"], "rejected_at": now})
        record_calls(con, cycle_id, "reflect", run.calls, now)


def _analyst_run_name(parameters: dict) -> str:
    """analyst-<the metrics of its group>, so the Prefect UI shows which analyst looked at what."""
    return "-".join(["analyst", *(parameters.get("metrics") or [])])


def top_candidates(con, cycle_id: str, top_k: int) -> list[dict]:
    """The cycle's candidates the analysts read, best first."""
    return rows_as_dicts(con.execute("select * from candidates where cycle_id = $cycle_id order by rank limit $top_k",
                                     {"cycle_id": cycle_id, "top_k": top_k}))


def analyst_brief(warehouse: Warehouse, cycle_id: str, metrics: list[str], top_k: int) -> tuple[list[dict], str, str]:
    """What an analyst is handed: the cycle's top candidates of its metrics, the data's watermark, and the cycle's
    data-quality findings in words. (Apart from the task: Dask pickles a task's function with the globals it names,
    and a lock cannot be pickled.)"""
    with WAREHOUSE_LOCK, warehouse.connect() as con:  # the other analysts' threads may be reading it
        candidates = [c for c in top_candidates(con, cycle_id, top_k) if c["metric"] in metrics]
        watermark = data_watermark(con)
        findings = rows_as_dicts(con.execute(sql_file("quality/data_quality_items.sql"), {"cycle_id": cycle_id}))
        sources = rows_as_dicts(con.execute(sql_file("quality/new_batches_checked.sql"), {"cycle_id": cycle_id}))
    return candidates, str(watermark), describe_quality_findings(findings, sources)


# NO_CACHE: an analyst's result is what it wrote, spent and called, new each cycle.
# No retries: the openai client retries each call; a task retry would run a whole analyst again and write its
# insights twice.
@task(name="analyst", task_run_name=_analyst_run_name, cache_policy=NO_CACHE)
def analyst(warehouse: Warehouse, cycle_id: str, metrics: list[str], settings: LLMSettings, log_dir: str,
            llm: LLM | None = None) -> dict:
    """One analyst over the cycle's top candidates of `metrics`, with its own budget, on `llm` (else the configured
    endpoint, opened here: the analyst is a unit of work on a worker). Returns what it wrote, rejected and called;
    an unreachable LLM or an analyst that fails is its `error` (the cycle is degraded), not raised."""
    run = AnalystRun(warehouse=warehouse)
    try:
        candidates, watermark, findings = analyst_brief(warehouse, cycle_id, metrics, settings.top_k)
        with ExitStack() as stack:
            llm = llm or stack.enter_context(open_llm(settings, Path(log_dir)))
            run_analyst(llm, candidates, watermark, settings, run, findings)
    except (openai.OpenAIError, LLMUnavailable) as exc:  # unreachable, refused, or not a chat completion
        run.error = without_credentials(f"{type(exc).__name__}: {exc}", settings)
    except Exception as exc:  # a bug in reverie's own tools must not pass for a quiet night
        run.error = without_credentials(f"the analyst failed: {type(exc).__name__}: {exc}", settings)
        run_logger().debug("analyst failed", exc_info=True)
    return {"written": run.written, "rejected": run.rejected, "calls": run.calls, "error": run.error}


ANALYST_UNIT = Unit(
    analyst, sent=lambda call: ("-".join(call["metrics"]), {"cycle_id": call["cycle_id"], "metrics": call["metrics"]}),
    rebuilt=lambda settings, sent: {"warehouse": settings.warehouse, "cycle_id": sent["cycle_id"],
                                    "metrics": sent["metrics"], "settings": settings.llm,
                                    "log_dir": str(settings.warehouse.folder / "logs")})


def reflect(warehouse: Warehouse, cycle_id: str, settings: LLMSettings, log_dir: str,
            run_units: RunUnits | None = None) -> ReflectSummary:
    """Let the analysts investigate the top candidates — one per group of metrics, `[llm] analysts` of them at
    once — and keep what they ground; an unreachable LLM degrades the cycle, it does not fail it.

    The analysts are threads of this process, waiting on the model together; given the cycle's workers (`run_units`)
    and an endpoint, they are units of work on the workers instead (the embedded model lives in this process)."""
    logger = run_logger()
    with warehouse.connect() as con:
        candidates = top_candidates(con, cycle_id, settings.top_k)
    summary = {"written": 0, "rejected": 0, "prompt_tokens": 0, "completion_tokens": 0, "calls": 0,
               "status": "skipped", "model": None}
    if settings.off:
        logger.info("reflect: no analyst ([llm] analysts = 0): the detectors' insights only")
        return {**summary, "status": "off"}
    if not candidates:
        logger.info("reflect: no candidates this cycle, nothing to investigate")
        return summary
    groups = [list(dict.fromkeys(c["metric"] for c in group)) for group in metric_groups(candidates, settings.analysts)]
    calls = [{"warehouse": warehouse, "cycle_id": cycle_id, "metrics": metrics, "settings": settings,
              "log_dir": log_dir} for metrics in groups]
    done: list[dict] = []
    try:
        with open_llm(settings, Path(log_dir)) as llm:
            summary["model"] = llm.model
            logger.info("reflect: %d analyst(s) on %s investigate %d candidate(s)", len(groups), llm.model,
                        len(candidates))
            if run_units is not None and not llm.embedded:
                done = run_units(analyst, calls)
            else:
                futures = [analyst.submit(**call, llm=llm) for call in calls]
                for future in futures:
                    future.wait()
                    done.append(future.result() if future.state.is_completed() else
                                {"written": [], "rejected": [], "calls": [],
                                 "error": f"the analyst failed: {future.state.message}"})
        errors = [run["error"] for run in done if run["error"]]
        summary["status"] = "degraded" if errors else "ok"
        if errors:
            summary["error"] = errors[0]
    except LLMUnavailable as exc:
        summary["status"] = "degraded"
        summary["error"] = f"{type(exc).__name__}: {exc}"
    if summary["status"] == "degraded":
        logger.warning("reflect: %s; deterministic insights are still written", summary["error"])
    run = AnalystRun(warehouse=warehouse, written=[w for r in done for w in r["written"]],
                     rejected=[j for r in done for j in r["rejected"]], calls=[c for r in done for c in r["calls"]])
    _store(warehouse, cycle_id, summary["model"], run)
    for rej in run.rejected:
        logger.info("reflect: rejected %r: %s", rej["title"][:80], rej["reason"])
    summary.update(written=len(run.written), rejected=len(run.rejected), prompt_tokens=run.prompt_tokens,
                   completion_tokens=run.completion_tokens, calls=len(run.calls), analysts=len(groups))
    logger.info("reflect: %d insight(s) written, %d rejected, %d+%d tokens", summary["written"], summary["rejected"],
                summary["prompt_tokens"], summary["completion_tokens"])
    return summary
