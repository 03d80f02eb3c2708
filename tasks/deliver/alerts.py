"""Which insights notify people on a channel this cycle: new ones, changed values as updates, nothing twice."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from reverie.channels import Alert
from reverie.config import AlertSettings
from reverie.queries import rows_as_dicts, sql_file


def in_quiet_hours(now: datetime, quiet_hours: str, timezone: str) -> bool:
    """Whether `now` (aware) falls in "HH:MM-HH:MM" in `timezone`; a span past midnight wraps ("22:00-07:00")."""
    if not quiet_hours:
        return False
    start, end = (time.fromisoformat(part) for part in quiet_hours.split("-"))
    local = now.astimezone(ZoneInfo(timezone)).time()
    return start <= local < end if start <= end else local >= start or local < end


def _noise_subjects(con) -> set[tuple]:
    """Subjects (kind, metric, slice) whose latest verdict from people is noise: their alerts stop."""
    feedback = rows_as_dicts(con.execute(sql_file("memory/latest_feedback.sql")))
    return {(f["kind"], f["metric"], f["dimension"], f["member"]) for f in feedback if f["feedback"] == "noise"}


def _story(item: dict) -> str | None:
    """What an insight is about whoever saw it — metric, slice and period, its fingerprint without the kind: a
    detector's change and the analyst's note on it are one alert. None for insights about no metric or period."""
    _, metric, where, period = item["fingerprint"].split("|", 3)
    return f"{metric}|{where}|{period}" if metric and period else None


def alerts_for(con, channel: str, cycle_id: str, settings: AlertSettings, now: datetime) -> list[Alert]:
    """The alerts `channel` owes people this cycle, most severe first (`now`: the machine's local time, as
    deliveries records it).

    An insight this channel already sent is not sent again within `suppress_days`, nor is another with the same
    subject and words; a subject sent before with another value (a new insight that superseded the sent one, or
    the same fingerprint reading differently) is sent as an update naming what was sent. An insight about what an
    alert already told (the same metric, slice and period, seen by another kind) is not sent."""
    items = rows_as_dicts(con.execute(sql_file("deliver/alert_items.sql"), {
        "cycle_id": cycle_id, "channel": channel, "min_severity": settings.min_severity, "kinds": settings.kinds}))
    noise = _noise_subjects(con)
    items = [i for i in items if i["feedback"] != "noise"
             and (i["kind"], i["metric"], i["dimension"], i["member"]) not in noise]
    if not items:
        return []
    sent = rows_as_dicts(con.execute(sql_file("deliver/sent_alerts.sql"), {
        "channel": channel, "since": now.replace(tzinfo=None) - timedelta(days=settings.suppress_days)}))
    by_id = {s["insight_id"]: s for s in reversed(sent)}  # newest wins
    by_fingerprint = {s["fingerprint"]: s for s in reversed(sent)}
    ancestors = {row["id"]: row["ancestors"] for row in rows_as_dicts(con.execute(
        sql_file("deliver/ancestors.sql"), {"ids": [i["id"] for i in items]}))}
    told = {_story(s) for s in sent} - {None}
    # of a detector's change and the analyst's note on it, the detector's goes: it carries the comparison
    detected = {_story(i) for i in items if i["source"].startswith("detector:")} - {None}
    items = [i for i in items if i["source"].startswith("detector:") or _story(i) not in detected]
    alerts = []
    for item in items:
        if item["id"] in by_id:
            continue
        earlier = [by_id[a] for a in ancestors.get(item["id"], []) if a in by_id]
        previous = by_fingerprint.get(item["fingerprint"]) or (earlier[0] if earlier else None)
        if previous is not None and previous["title"] == item["title"]:
            continue
        story = _story(item)
        if previous is None and story is not None and story in told:
            continue
        told.add(story)
        alerts.append(Alert(id=item["id"], kind=item["kind"], title=item["title"], severity=item["severity"],
                            fingerprint=item["fingerprint"], was=previous["title"] if previous else None))
    return alerts
