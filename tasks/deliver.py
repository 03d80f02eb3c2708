"""Deliver: the brief, as a markdown file and a Prefect markdown artifact."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from prefect import task
from prefect.artifacts import create_markdown_artifact

from reverie.warehouse import (
    Warehouse,
    data_watermark,
    rows_as_dicts,
    sql_file,
    transaction,
)
from reverie.analyst.grounding import display_number
from reverie.logs import run_logger
from reverie.memory.store import SEVERITY_ORDER
from tasks.metrics.summary import metric_summary

BRIEF_ITEMS = 15


def _cell(text) -> str:
    return str(text if text is not None else "").replace("|", "\\|").replace("\n", " ")


def _change(change: float | None) -> str:
    return "n/a" if change is None else f"{100 * change:+.1f}%"


def render_brief(project: str, cycle_id: str, watermark, insights: list[dict], findings: list[dict],
                 metrics_rows: int, key_metrics: list[dict]) -> str:
    """The brief as markdown: key metrics, what changed, what the analyst thinks, the data's quality."""
    lines = [f"# reverie brief — {project}", "",
             f"Cycle `{cycle_id}` · data up to {watermark or 'n/a'} · {metrics_rows} metric values refreshed", ""]
    if key_metrics:
        lines += ["## Key metrics (latest complete day)", "", "| metric | day | value | vs. a week before |", "|---|---|---|---|"]
        lines += [f"| {m['metric']} | {m['day']:%Y-%m-%d} | {display_number(m['value'])} | "
                  f"{_change(m['change'])} |" for m in key_metrics]
        lines.append("")
    analyst = [i for i in insights if not i["source"].startswith("detector:")]
    detected = [i for i in insights if i["source"].startswith("detector:")]
    lines += ["## What changed", ""]
    if detected:
        lines += ["| severity | insight | score | id |", "|---|---|---|---|"]
        lines += [f"| {i['severity']} | {_cell(i['title'])} | {i['score']:.2f} | `{i['id']}` |" for i in detected]
    else:
        lines.append("Nothing unusual in the new data.")
    lines += ["", "## The analyst's notes", ""]
    if analyst:
        for i in analyst:
            lines += [f"- **{_cell(i['title'])}** ({i['kind']}, {i['severity']}) — {_cell(i['body'])} "
                      f"_[{i['source']}, `{i['id']}`]_"]
    else:
        lines.append("No grounded notes from the analyst this cycle.")
    lines += ["", "## Data quality", ""]
    if findings:
        for f in findings:
            what = ("metric " + f["batch"] if f["source"] == "metrics" else
                    f"source {f['source']}" if f["batch"] == "(source)" else f"`{f['batch']}` ({f['source']})")
            verdict = "**held back**" if f["held_back"] else "warning"
            lines.append(f"- {verdict} — {what}: {_cell(f['reasons'])}")
    else:
        lines.append("Every new batch passed its checks.")
    return "\n".join(lines) + "\n"


@task(name="deliver")
def deliver_brief(warehouse: Warehouse, cycle_id: str, project: str, briefs_dir: str, metrics_rows: int) -> dict:
    """Write the brief for this cycle and publish it as a Prefect artifact."""
    logger = run_logger()
    with warehouse.connect() as con:
        insights = rows_as_dicts(con.execute(
            f"""select id, kind, title, body, severity, score, source, fingerprint from memory
                where status = 'active' and kind <> 'data_quality' and (cycle_id = ? or id in (
                    select memory_id from memory_history where cycle_id = ? and change = 'confirm'))
                order by {SEVERITY_ORDER}, score desc nulls last limit ?""", [cycle_id, cycle_id, BRIEF_ITEMS]))
        findings = rows_as_dicts(con.execute(sql_file("quality/data_quality_items.sql"), {"cycle_id": cycle_id}))
        watermark = data_watermark(con)
        key_metrics = metric_summary(con).to_dicts()
        markdown = render_brief(project, cycle_id, watermark, insights, findings, metrics_rows, key_metrics)
        folder = Path(briefs_dir)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{cycle_id}.md"
        path.write_text(markdown)
        (folder / "latest.md").write_text(markdown)
        artifact_id = create_markdown_artifact(key="reverie-brief", markdown=markdown,
                                               description=f"reverie brief for cycle {cycle_id}")
        fingerprints = [i["fingerprint"] for i in insights]
        now = datetime.now()
        with transaction(con):
            con.execute("insert into deliveries values (?, 'brief_file', ?, ?, ?)", [cycle_id, str(path), fingerprints, now])
            con.execute("insert into deliveries values (?, 'prefect_artifact', ?, ?, ?)",
                        [cycle_id, str(artifact_id), fingerprints, now])
    logger.info("deliver: brief with %d insight(s) at %s", len(insights), path)
    return {"sent": 0, "brief": str(path), "insights": len(insights)}
