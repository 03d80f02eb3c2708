"""Consolidate: a cycle's insights merged into memory, the bi-temporal insight store, never deleting anything."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta

import duckdb
from prefect import task
from prefect.cache_policies import NO_CACHE
from rapidfuzz import fuzz

from reverie.analyst.candidates import moved_with, related_findings
from reverie.commits import transaction
from reverie.config import MemorySettings
from reverie.logs import run_logger
from reverie.memory.search import update_index
from reverie.memory.store import close_item, fingerprint, insert_item, record_change
from reverie.queries import rows_as_dicts, sql_file
from reverie.summaries import ConsolidateSummary
from reverie.warehouse import Warehouse, data_watermark
from reverie.wording import is_number, value_text


def _also_on(c: dict) -> str:
    """The other days of a change that spans several (each an event of its own), with their values."""
    days = {}
    for f in related_findings(c):
        one_day = str(f["period_start"]) == str(f["period_end"])
        if (f["grain"], f["dimension"], f["member"]) == (c["grain"], c["dimension"], c["member"]) and one_day \
                and str(f["period_start"]) != str(c["period_start"]):
            days.setdefault(str(f["period_start"]), f)
    scale = c.get("scale") or "relative"
    return "; ".join(f"{day}: {value_text(f['observed'], scale)} against {value_text(f['expected'], scale)}"
                     for day, f in sorted(days.items()))


def _from_candidate(c: dict, watermark) -> dict:
    """A detector candidate as a memory item: its headline, what it was compared with, what drove it, the days it
    covers."""
    drivers = json.loads(c["drivers"]) if isinstance(c["drivers"], str) else c["drivers"]
    seen_by = ", ".join(c["detectors"] or [c["detector"]])
    body = f"Compared with {c['comparison']}; {c['favourable']} for the business. Seen by: {seen_by}."
    also = _also_on(c)
    if also:
        body += f" Also {also}."
    others = moved_with(c)
    if others:
        scale = c.get("scale") or "relative"
        body += " Moved with it on the same days: " + "; ".join(
            f"{f['dimension']} {f['member']} {value_text(f['observed'], scale)} against "
            f"{value_text(f['expected'], scale)}" for f in others) + "."
    if drivers and min(drivers["lead"]["share_of_change"] or 0, 1.0) >= 0.5:  # "led by" only when one does lead
        lead = drivers["lead"]
        body += f" Led by {lead['dimension']} {lead['member']} ({lead['share_of_change']:.0%} of the change)."
    return {
        "kind": c["kind"], "metric": c["metric"], "dimension": c["dimension"], "member": c["member"],
        "period_start": c["period_start"], "period_end": c["period_end"],
        "valid_from": c.get("valid_from") or c["period_start"], "valid_to": c.get("valid_to") or c["period_end"],
        "severity": c.get("severity") or "info", "score": c["score"],
        "title": c["headline"], "body": body, "related_ids": [c["candidate_id"]],
        "evidence": {"queries": [c["evidence_sql"]], "observed": c["observed"], "expected": c["expected"],
                     "grain": c["grain"], "drivers": drivers, "watermark": watermark},
        "source": f"detector:{c['detector']}", "observed": c["observed"],
        "same_change_days": c.get("same_change_days") or 0,
    }


def _from_analyst(a: dict, watermark) -> dict:
    """An accepted analyst insight as a memory item."""
    evidence = json.loads(a["evidence"]) if isinstance(a["evidence"], str) else a["evidence"]
    return {
        "kind": a["kind"], "metric": a["metric"], "dimension": a["dimension"], "member": a["member"],
        "period_start": a["period_start"], "severity": a["severity"], "score": None,
        "title": a["title"], "body": a["body"], "related_ids": list(a["candidate_ids"]),
        "evidence": {"queries": [e["query"] for e in evidence["verified"]], **evidence, "watermark": watermark},
        "source": a["source"], "observed": None, "supersedes": a.get("supersedes"), "retracts": a.get("retracts"),
    }


def _from_quality(f: dict, watermark) -> dict:
    """A quality finding (a held-back or suspicious batch, a stale source, a metric failing its sanity check)."""
    if f["source"] == "metrics":
        subject, dimension, metric = f"metric {f['batch']}", "metric", f["batch"]
        outcome = "kept its earlier values" if f["held_back"] else "warning"
    elif f["batch"] == "(source)":
        subject, dimension, metric, outcome = f"source {f['source']}", "source", None, "warning"
    else:
        subject, dimension, metric = f"{f['source']}: {f['batch']}", "batch", None
        outcome = "held back" if f["held_back"] else "used, with a warning"
    return {
        "kind": "data_quality", "metric": metric, "dimension": dimension,
        "member": f["source"] if dimension == "source" else f["batch"], "period_start": f["period_start"],
        "severity": "critical" if f["held_back"] else "warning", "score": None,
        "title": f"{subject} — {outcome}: {f['reasons'].split('; ')[0]}", "body": f["reasons"],
        "related_ids": [], "evidence": {"checks": list(f["checks"]), "watermark": watermark,
                                        "queries": ["select * from quality_results where cycle_id = '<cycle>' and batch = "
                                                    f"'{f['batch']}'"]},
        "source": "quality-gate", "observed": None,
    }


FIXED_ITEMS = (  # what shows a data_quality item's subject is fine again, and the reason recorded when it closes
    ("memory/fixed_batch_items.sql", "the batch passed the gate"),
    ("memory/fixed_metric_items.sql", "the metric was computed again and passed its checks"),
)


def _resolve_fixed(con, cycle_id: str, now) -> int:
    """A batch held back before that passed this cycle (fixed or replaced), a metric that failed before and was
    computed cleanly this cycle: its data_quality item is closed."""
    closed = 0
    for query, reason in FIXED_ITEMS:
        for (memory_id,) in con.execute(sql_file(query), {"cycle_id": cycle_id}).fetchall():
            close_item(con, memory_id, "expired", "expire", reason, cycle_id, now)
            closed += 1
    return closed


def _same_value(existing: dict, item: dict) -> bool:
    if item["observed"] is None:
        return True  # a quality finding: the same batch or metric again confirms it
    old = json.loads(existing["evidence"]).get("observed")
    return old is not None and abs(old - item["observed"]) <= 1e-9 * max(1.0, abs(old))


def _confirm(con, existing: dict, item: dict, cycle_id: str, now) -> None:
    """Found again with the same value: confirmed, with its words as they read now ("stale for 599 days", not 598)."""
    if item.get("valid_from"):  # a change seen over more days than before covers them all
        con.execute("update memory set valid_from = least(valid_from, $valid_from), "
                    "valid_to = greatest(valid_to, $valid_to) where id = $id",
                    {"valid_from": item["valid_from"], "valid_to": item["valid_to"], "id": existing["id"]})
    if existing["title"] == item["title"]:
        con.execute("update memory set last_confirmed = $now where id = $id", {"now": now, "id": existing["id"]})
        record_change(con, existing["id"], "confirm", cycle_id, now)
        return
    con.execute("update memory set last_confirmed = $now, title = $title, body = $body, evidence = $evidence "
                "where id = $id", {"now": now, "title": item["title"], "body": item["body"],
                                   "evidence": json.dumps(item["evidence"], default=str), "id": existing["id"]})
    record_change(con, existing["id"], "confirm", cycle_id, now, "title", existing["title"], item["title"])


def _same_change(con, item: dict, taken: set[str], now) -> list[dict]:
    """An active item about the same change found again a little elsewhere — a changepoint placed two days later,
    a spike that grew by a day — by the same detector, at the same grain, in the same slice, the same way; not one
    this cycle finds where it was (`taken`: its subjects) or has already updated."""
    tolerance = item.get("same_change_days") or 0
    if not tolerance:
        return []
    nearby = rows_as_dicts(con.execute(sql_file("memory/same_change_items.sql"), {
        "kind": item["kind"], "metric": item["metric"], "dimension": item["dimension"], "member": item["member"],
        "source": item["source"], "valid_from": item["valid_from"], "valid_to": item["valid_to"],
        "tolerance": tolerance}))
    return [row for row in nearby if row["fingerprint"] not in taken and row["last_confirmed"] < now
            and json.loads(row["evidence"]).get("grain") == item["evidence"]["grain"]
            and _direction(json.loads(row["evidence"])) == _direction(item["evidence"])][:1]


def _direction(evidence: dict) -> str | None:
    observed, expected = evidence.get("observed"), evidence.get("expected")
    if observed is None or expected is None:
        return None
    return "up" if observed >= expected else "down"


def _near_duplicate(con, item: dict, threshold: float) -> dict | None:
    """An active analyst note of the same kind and metric saying nearly the same thing (rapidfuzz)."""
    notes = rows_as_dicts(con.execute(sql_file("memory/analyst_notes_like.sql"),
                                      {"kind": item["kind"], "metric": item["metric"]}))
    scored = [(fuzz.token_set_ratio(item["title"], n["title"]), n) for n in notes]
    best = max(scored, key=lambda pair: pair[0], default=(0, None))
    return best[1] if best[0] >= threshold else None


def _correct(con, item: dict, fp: str, cycle_id: str, flow_run_id: str | None, now) -> str:
    """The analyst withdrew an item (retracted, with its reason) or replaced it (the new one supersedes it)."""
    target = item["retracts"] or item["supersedes"]
    if not con.execute("select count(*) from memory where id = $id and status = 'active'", {"id": target}).fetchone()[0]:
        return "ignored"  # closed meanwhile
    if item["retracts"]:
        close_item(con, target, "retracted", "retract", f"{item['source']}: {item['title']}", cycle_id, now)
        return "retracted"
    new_id = insert_item(con, item, fp, cycle_id, flow_run_id, now, supersedes=target)
    con.execute("update memory set superseded_by = $new where id = $old", {"new": new_id, "old": target})
    close_item(con, target, "superseded", "supersede", f"superseded by {new_id}", cycle_id, now)
    return "superseded"


def _evidence_changed(con, since: date) -> list[tuple[str, str]]:
    """Detector insights about periods recomputed this cycle (a month back, for weeks and months) whose evidence
    no longer returns what they say — the data was corrected upstream — with why. Read before the write
    transaction: a query that fails here must not abort it."""
    changed = []
    for memory_id, raw in con.execute(sql_file("memory/detector_items_since.sql"),
                                      {"since": since - timedelta(days=31)}).fetchall():
        evidence = json.loads(raw)
        try:
            returned = [float(v) for row in con.execute(evidence["queries"][0]).fetchall() for v in row if is_number(v)]
        except duckdb.Error as exc:
            changed.append((memory_id, f"its evidence query fails now: {str(exc).splitlines()[0]}"))
            continue
        observed = evidence["observed"]
        if not any(abs(v - observed) <= 1e-9 * max(1.0, abs(observed)) for v in returned):
            changed.append((memory_id, "its evidence no longer holds after the data changed"))
    return changed


def _link_stories(con, cycle_id: str, now) -> int:
    """Items of this cycle that tell one story (sql/memory/stories.sql) name each other in linked_ids; returns how
    many links are new."""
    linked = 0
    for one, other in con.execute(sql_file("memory/stories.sql"), {"cycle_id": cycle_id}).fetchall():
        for this, that in ((one, other), (other, one)):
            (before,) = con.execute("select coalesce(linked_ids, []) from memory where id = $id", {"id": this}).fetchone()
            if that in before:
                continue
            con.execute("update memory set linked_ids = $ids where id = $id", {"ids": [*before, that], "id": this})
            record_change(con, this, "link", cycle_id, now, "linked_ids", None, that)
            linked += 1
    return linked // 2


def _unconfirmed(con, ttl_days: int, cycle_id: str, now) -> int:
    """Insights nobody confirmed for `ttl_days` expire."""
    old = con.execute(sql_file("memory/unconfirmed_items.sql"), {"before": now - timedelta(days=ttl_days)}).fetchall()
    for (memory_id,) in old:
        close_item(con, memory_id, "expired", "expire", f"not confirmed for {ttl_days} days", cycle_id, now)
    return len(old)


@task(name="consolidate", cache_policy=NO_CACHE)  # it writes: never cached
def consolidate(warehouse: Warehouse, cycle_id: str, flow_run_id: str | None, since: str | None = None,
                settings: MemorySettings | None = None) -> ConsolidateSummary:
    """Merge this cycle's insights into memory — insert, confirm, merge, supersede, retract, expire — in one
    transaction: a crash leaves memory as it was."""
    logger = run_logger()
    settings = settings or MemorySettings()
    counts: ConsolidateSummary = {"added": 0, "confirmed": 0, "merged": 0, "superseded": 0, "contradicted": 0, "retracted": 0,
              "expired": 0, "ignored": 0, "linked": 0}
    now = datetime.now()
    with warehouse.connect() as con:
        changed = _evidence_changed(con, date.fromisoformat(since)) if since else []
    with warehouse.connect() as con, transaction(con, "consolidate"):
        watermark = data_watermark(con)
        items = [_from_candidate(c, watermark) for c in rows_as_dicts(con.execute(
            "select * from candidates where cycle_id = $cycle_id order by rank", {"cycle_id": cycle_id}))]
        items += [_from_analyst(a, watermark) for a in rows_as_dicts(con.execute(
            "select * from agent_insights where cycle_id = $cycle_id order by written_at", {"cycle_id": cycle_id}))]
        items += [_from_quality(f, watermark) for f in rows_as_dicts(con.execute(
            sql_file("quality/data_quality_items.sql"), {"cycle_id": cycle_id}))]
        counts["expired"] += _resolve_fixed(con, cycle_id, now)
        subjects = {fingerprint(i["kind"], i["metric"], i["dimension"], i["member"], i["period_start"]) for i in items}
        for item in items:
            fp = fingerprint(item["kind"], item["metric"], item["dimension"], item["member"], item["period_start"])
            if not item["source"].startswith("detector:") and item["source"] != "quality-gate":
                # analyst text: a retraction or a correction of something in memory, else one note per thing said
                if item.get("retracts") or item.get("supersedes"):
                    counts[_correct(con, item, fp, cycle_id, flow_run_id, now)] += 1
                    continue
                note = _near_duplicate(con, item, settings.near_duplicate)
                if note is None:
                    insert_item(con, item, fp, cycle_id, flow_run_id, now)
                    counts["added"] += 1
                    continue
                related = sorted(set(note["related_ids"] or []) | set(item["related_ids"]))
                con.execute("update memory set last_confirmed = $now, related_ids = $related where id = $id",
                            {"now": now, "related": related, "id": note["id"]})
                same = note["title"] == item["title"]
                record_change(con, note["id"], "confirm" if same else "merge", cycle_id, now, new=None if same else item["title"])
                counts["confirmed" if same else "merged"] += 1
                continue
            existing = rows_as_dicts(con.execute(
                "select id, evidence, title from memory where fingerprint = $fp and status = 'active'", {"fp": fp}))
            existing = existing or _same_change(con, item, subjects, now)
            if not existing:
                insert_item(con, item, fp, cycle_id, flow_run_id, now)
                counts["added"] += 1
            elif _same_value(existing[0], item):
                _confirm(con, existing[0], item, cycle_id, now)
                counts["confirmed"] += 1
            else:  # a newer value for the same subject; if it now points the other way, the old one was wrong
                old_id = existing[0]["id"]
                flipped = _direction(json.loads(existing[0]["evidence"])) not in (None, _direction(item["evidence"]))
                new_id = insert_item(con, item, fp, cycle_id, flow_run_id, now, supersedes=old_id)
                con.execute("update memory set superseded_by = $new where id = $old", {"new": new_id, "old": old_id})
                if flipped:
                    close_item(con, old_id, "retracted", "contradict", f"contradicted by {new_id}", cycle_id, now)
                    counts["contradicted"] += 1
                else:
                    close_item(con, old_id, "superseded", "supersede", f"superseded by {new_id}", cycle_id, now)
                    counts["superseded"] += 1
        # still active and not found again this cycle with the same value (superseded ones are closed already)
        still = {i for (i,) in con.execute("select id from memory where status = 'active' and last_confirmed < $now",
                                           {"now": now}).fetchall()}
        for memory_id, reason in changed:
            if memory_id in still:
                close_item(con, memory_id, "expired", "expire", reason, cycle_id, now)
                counts["expired"] += 1
        counts["expired"] += _unconfirmed(con, settings.ttl_days, cycle_id, now)
        counts["linked"] = _link_stories(con, cycle_id, now)
    logger.info("memory: %(added)d added, %(confirmed)d confirmed, %(merged)d merged, %(superseded)d superseded, "
                "%(contradicted)d contradicted, %(expired)d expired", counts)
    try:
        update_index(warehouse)
    except (OSError, ValueError) as exc:  # the next search brings it up to date
        logger.warning("memory: search index not rebuilt: %s", exc)
    return counts
