"""Deliver: the brief as markdown, a page and data, sent through the configured channels (reverie.channels); the
channels that notify people get only the alerts they owe (reverie.tasks.deliver.alerts)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE

from reverie.channels import CHANNELS, Brief, BriefItem, ChannelError, PartlySent, build_channel
from reverie.commits import transaction
from reverie.config import DeliverSettings
from reverie.faults import fault_point
from reverie.logs import run_logger
from reverie.queries import rows_as_dicts, sql_file
from reverie.summaries import DeliverSummary
from reverie.tasks.deliver.alerts import alerts_for, in_quiet_hours
from reverie.tasks.deliver.key_metrics import metric_summary
from reverie.tasks.deliver.markdown import reach_text, render_brief
from reverie.tasks.deliver.page import chart_data, page_without_charts, render_page
from reverie.warehouse import Warehouse, data_watermark

BRIEF_ITEMS = 15
SHOWN = ("id", "kind", "title", "body", "severity", "score", "source", "linked_ids", "metric", "dimension", "member",
         "valid_from", "valid_to", "news")


def brief_document(con, project: str, cycle_id: str, metrics_rows: int, timezone: str | None,
                   failed: list[str]) -> tuple[dict, list[dict]]:
    """Everything the brief shows, as data (what `reverie brief --json` prints and the page is drawn from), and the
    insights it lists as memory holds them. `failed`: what the cycle lost (reverie.summaries.failures)."""
    insights = rows_as_dicts(con.execute(sql_file("deliver/brief_items.sql"), {"cycle_id": cycle_id,
                                                                               "limit": BRIEF_ITEMS}))
    findings = rows_as_dicts(con.execute(sql_file("quality/data_quality_items.sql"), {"cycle_id": cycle_id}))
    sources = rows_as_dicts(con.execute(sql_file("quality/new_batches_checked.sql"), {"cycle_id": cycle_id}))
    watermark = data_watermark(con)
    key_metrics = metric_summary(con).to_dicts()
    readings = {m["metric"]: {"scale": m["scale"], "favourability": m["favourability"]} for m in key_metrics}
    return {"project": project, "cycle_id": cycle_id, "watermark": watermark, "timezone": timezone, "reach": reach_text(watermark, timezone),
            "metrics_rows": metrics_rows, "key_metrics": key_metrics,
            "changes": [{k: i[k] for k in SHOWN} for i in insights if i["source"].startswith("detector:")],
            "notes": [{k: i[k] for k in SHOWN} for i in insights if not i["source"].startswith("detector:")],
            "failed": failed, "quality": findings, "new_batches": sum(s["batches"] for s in sources),
            "unchecked": [s for s in sources if s["unchecked"]], "charts": chart_data(con, [i for i in insights if i["news"]], readings)}, insights


@task(name="deliver", cache_policy=NO_CACHE)  # it writes and sends: never cached
def deliver_brief(warehouse: Warehouse, cycle_id: str, project: str, briefs_dir: str, metrics_rows: int,
                  settings: DeliverSettings | None = None, failed: list[str] | None = None) -> DeliverSummary:
    """Render the brief for this cycle and send it through each configured channel, every attempt recorded in
    deliveries; a failing channel is reported and the others still run. `failed`: what the cycle lost, which the
    brief opens with."""
    logger = run_logger()
    settings = settings or DeliverSettings()
    now = datetime.now().astimezone()
    notifying = [name for name in settings.channels if CHANNELS[name].notifies]
    with warehouse.connect() as con:
        document, insights = brief_document(con, project, cycle_id, metrics_rows, warehouse.timezone, failed or [])
        owed = {name: alerts_for(con, name, cycle_id, settings.alerts, now) for name in notifying}
    markdown = render_brief(document, insights)
    errors: list[str] = []
    try:
        html = render_page(document)
    except Exception as exc:  # a chart that cannot be drawn must not cost the brief: the page says so, the stage too
        errors.append(f"page: {type(exc).__name__}: {exc}")
        logger.warning("deliver: the brief's page could not be drawn: %s: %s", type(exc).__name__, exc)
        html = page_without_charts(markdown, errors[-1])
    items = tuple(BriefItem(id=i["id"], kind=i["kind"], title=i["title"], severity=i["severity"], score=i["score"],
                            fingerprint=i["fingerprint"]) for i in insights)
    brief = Brief(project=project, cycle_id=cycle_id, items=items, briefs_dir=Path(briefs_dir),
                  markdown=markdown, html=html, document=document)
    quiet = in_quiet_hours(now, settings.alerts.quiet_hours, settings.alerts.timezone or warehouse.timezone)
    attempts: list[dict] = []
    for name in settings.channels:
        alerts = tuple(owed.get(name, ()))
        if CHANNELS[name].notifies and not alerts:
            continue
        if CHANNELS[name].notifies and quiet:  # held, and owed again by the first cycle after the quiet hours
            attempts.append(_attempt(name, "held", "", alerts, "quiet hours"))
        else:
            try:
                target = build_channel(name, settings.options.get(name)).send(replace(brief, alerts=alerts))
                attempts.append(_attempt(name, "sent", target, alerts))
            except Exception as exc:  # one channel's failure must not keep the brief from the others
                reason = str(exc) if isinstance(exc, ChannelError) else f"{type(exc).__name__}: {exc}"
                partly = isinstance(exc, PartlySent)
                attempts.append(_attempt(name, "sent" if partly else "failed", exc.target if partly else "", alerts,
                                         reason))
                errors.append(f"{name}: {reason}")
                logger.warning("deliver: %s failed: %s", name, reason)
        fault_point(f"deliver:{name}:sent-before-recorded")
        # recorded as soon as sent, so a crash before the next channel costs no channel a second copy of its alerts
        _record(warehouse, attempts[-1], cycle_id, brief.fingerprints, now)
    sent = [a for a in attempts if a["status"] == "sent"]
    held = sum(len(a["alerts"]) for a in attempts if a["status"] == "held")
    logger.info("deliver: brief with %d insight(s) at %s; %d alert(s) sent, %d held for quiet hours",
                len(insights), brief.page, sum(len(a["alerts"]) for a in sent if CHANNELS[a["channel"]].notifies), held)
    # `brief` is the file only when it was written: a failed brief_file is in `errors`, not pointed to
    written = any(a["channel"] == "brief_file" for a in sent)
    return {"sent": sum(CHANNELS[a["channel"]].notifies for a in sent),
            "brief": str(brief.path) if written else None, "page": str(brief.page) if written else None,
            "insights": len(insights), "channels": {a["channel"]: a["target"] for a in sent},
            "alerts": {name: [a.id for a in alerts] for name, alerts in owed.items()}, "held": held,
            "errors": errors}


def _record(warehouse: Warehouse, attempt: dict, cycle_id: str, fingerprints, now: datetime) -> None:
    """One channel's attempt into deliveries. A channel that notifies nobody keeps one row a cycle, its latest (the
    brief delivered again by the morning brief, or by a cycle taken up after a crash); one that carries alerts keeps
    every attempt, as alerts owed are worked out from them."""
    with warehouse.connect() as con, transaction(con, "deliver"):
        if not CHANNELS[attempt["channel"]].notifies:
            con.execute("delete from deliveries where cycle_id = $cycle_id and channel = $channel",
                        {"cycle_id": cycle_id, "channel": attempt["channel"]})
        con.execute(sql_file("deliver/insert_delivery.sql"), {
            **attempt, "cycle_id": cycle_id, "fingerprints": fingerprints, "now": now.replace(tzinfo=None)})


def _attempt(channel: str, status: str, target: str, alerts: tuple, error: str | None = None) -> dict:
    """One row of deliveries: which alerts a channel carried (or held), and how it went."""
    return {"channel": channel, "status": status, "target": target, "error": error,
            "insight_ids": [a.id for a in alerts] or None,
            "alerts": [{"insight_id": a.id, "fingerprint": a.fingerprint, "title": a.title, "is_update": a.is_update}
                       for a in alerts] or None}
