"""The brief as markdown: what the Prefect artifact, the terminal and chat tools show."""

from __future__ import annotations

from reverie.wording import change_text, unchecked_text, value_text


def _cell(text) -> str:
    return str(text if text is not None else "").replace("|", "\\|").replace("\n", " ")


def week_on_week(m: dict) -> str:
    """A key metric's change against the same weekday a week before, as its scale reads it (+4.2%, -1.3 pp, +2.10)."""
    if m["week_before"] is None:
        return "n/a"
    return change_text({"scale": m["scale"], "observed": m["value"], "expected": m["week_before"],
                        "difference": m["value"] - m["week_before"], "magnitude": m["change"]})


def stories(items: list[dict]) -> list[tuple[dict, bool]]:
    """Items in the brief's order, each followed by the items linked to it (one story), marked as its parts."""
    by_id = {i["id"]: i for i in items}
    shown: set[str] = set()
    ordered = []
    for item in items:
        if item["id"] in shown:
            continue
        shown.add(item["id"])
        ordered.append((item, False))
        for other in item.get("linked_ids") or []:
            if other in by_id and other not in shown:
                shown.add(other)
                ordered.append((by_id[other], True))
    return ordered


def reach_text(watermark, timezone: str | None) -> str:
    """How far the data reaches, in the project's local time and zone ("2026-12-03 23:59 (UTC)")."""
    return f"{watermark:%Y-%m-%d %H:%M}" + (f" ({timezone})" if timezone else "") if watermark else "n/a"


def quality_verdict(document: dict) -> str | None:
    """The one line the data-quality section says when it lists nothing: only what was checked is said to pass."""
    if document["quality"] or document["unchecked"]:
        return None
    return "Every new batch passed its checks." if document["new_batches"] else "No new batch this cycle."


def _quality_lines(document: dict) -> list[str]:
    lines = []
    for f in document["quality"]:
        what = ("metric " + f["batch"] if f["source"] == "metrics" else
                f"source {f['source']}" if f["batch"] == "(source)" else f"`{f['batch']}` ({f['source']})")
        verdict = "**held back**" if f["held_back"] else "warning"
        lines.append(f"- {verdict} — {what}: {_cell(f['reasons'])}")
    lines += [f"- **unchecked** — {_cell(unchecked_text(u))}" for u in document["unchecked"]]
    if nothing_listed := quality_verdict(document):
        lines.append(nothing_listed)
    return lines


def render_brief(document: dict, insights: list[dict]) -> str:
    """The brief as markdown (from reverie.tasks.deliver.brief_document): what failed, if anything, then what this cycle
    found new, the analyst's notes, the data's quality, key metrics and, compactly, what is still open; times are
    the project's local times."""
    lines = [f"# reverie brief — {document['project']}", "",
             f"Cycle `{document['cycle_id']}` · data up to {document['reach']} · {document['metrics_rows']} metric "
             "values refreshed", ""]
    if document["failed"]:
        lines += ["## This cycle is degraded", "", "What failed (the rest of the brief is what still ran):", ""]
        lines += [f"- {_cell(f)}" for f in document["failed"]] + [""]
    analyst = [i for i in insights if not i["source"].startswith("detector:")]
    detected = [i for i in insights if i["source"].startswith("detector:")]
    new = [i for i in detected if i["news"]]
    lines += ["## New since the last cycle", ""]
    if new:
        lines += ["| severity | insight | score | id |", "|---|---|---|---|"]
        listed = {i["id"] for i in new}
        for i, part in stories(new):
            elsewhere = [f"`{other}`" for other in i.get("linked_ids") or [] if other not in listed]
            see_also = f" (one story with {', '.join(elsewhere)})" if elsewhere else ""
            changed = "changed: " if i["news"] == "changed" else ""
            lines.append(f"| {i['severity']} | {'↳ ' if part else ''}{changed}{_cell(i['title'])}{see_also} | "
                         f"{i['score']:.2f} | `{i['id']}` |")
    else:
        lines.append("Nothing new or changed in the new data.")
    lines += ["", "## The analyst's notes", ""]
    if analyst:
        for i in analyst:
            lines += [f"- **{_cell(i['title'])}** ({i['kind']}, {i['severity']}) — {_cell(i['body'])} "
                      f"_[{i['source']}, `{i['id']}`]_"]
    else:
        lines.append("No grounded notes from the analyst this cycle.")
    lines += ["", "## Data quality", "", *_quality_lines(document)]
    key_metrics = document["key_metrics"]
    if key_metrics:
        lines += ["", "## Key metrics (latest complete day)", "", "| metric | day | value | vs. a week before |",
                  "|---|---|---|---|"]
        lines += [f"| {m['metric']} | {m['day']:%Y-%m-%d} | {value_text(m['value'], m['scale'])} | "
                  f"{week_on_week(m)} |" for m in key_metrics]
    still_open = [i for i in detected if not i["news"]]
    if still_open:
        lines += ["", "## Still open", "", "Confirmed again by this cycle's data:", ""]
        lines += [f"- {i['severity']} · {_cell(i['title'])} · `{i['id']}`" for i in still_open]
    return "\n".join(lines) + "\n"
