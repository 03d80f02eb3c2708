"""The cycle's candidates as the analyst sees them: one line each under a short id (c1, c2, ...), and what an
insight citing one may quote; and what every stage reads of one: its related findings, the members that moved
with it."""

from __future__ import annotations

import json

from reverie.analyst.grounding import Cell, Subject
from reverie.wording import scale_styles, show, slice_name


def related_findings(c: dict) -> list[dict]:
    """The other findings merged into a candidate (or a memory item's), as stored: as a list, or as JSON text."""
    return json.loads(c["related"]) if isinstance(c.get("related"), str) else (c.get("related") or [])


def moved_with(c: dict) -> list[dict]:
    """The other members of a member's dimension that moved with it over the very same days (its related findings
    from the database or in memory alike)."""
    related = related_findings(c)
    same_days = (str(c["period_start"]), str(c["period_end"]))
    seen: dict[str, dict] = {}
    for f in related:
        if c["dimension"] != "overall" and f["dimension"] == c["dimension"] and f["member"] != c["member"] \
                and (str(f["period_start"]), str(f["period_end"])) == same_days:
            seen.setdefault(f["member"], f)
    return list(seen.values())


def _styles(c: dict, measures: dict[str, str] | None) -> tuple[str, str]:
    """How a candidate's values and its change are written, by its metric's scale: a share in percent and its change
    in percentage points, a signed value and its change in its units, anything else with a relative change."""
    return scale_styles(c.get("scale") or ("points" if (measures or {}).get(c["metric"]) == "ratio" else "relative"))


def _change(c: dict, measures: dict[str, str] | None) -> float | None:
    """The value the change style writes: the relative change, or the difference for shares and signed values."""
    relative = _styles(c, measures)[1] == "change"
    if relative:
        return c["magnitude"]
    return None if c["expected"] is None else c["observed"] - c["expected"]


def describe_candidates(candidates: dict[str, dict], measures: dict[str, str] | None = None) -> str:
    """One line per candidate under its short id (c1, c2, ...): its values, what it was compared with, what drove it."""
    lines = []
    for alias, c in candidates.items():
        drivers = json.loads(c["drivers"]) if isinstance(c.get("drivers"), str) else c.get("drivers")
        led = f"; led by {drivers['lead']['dimension']}={drivers['lead']['member']}" if drivers else ""
        style, change_style = _styles(c, measures)
        sign = "+" if c["direction"] == "up" else "-"
        lines.append(
            f"- {alias}: {c['metric']} ({slice_name(c)}) on {c['period_start']}: observed {show(c['observed'], style)}, "
            f"expected {show(c['expected'], style)}, change {sign}{show(_change(c, measures), change_style)} "
            f"({c['direction']}, {c['favourable']} for the business) [{c['kind']}: against {c['comparison']}{led}]"
        )
    return "\n".join(lines)


def candidate_cells(alias: str, c: dict, measures: dict[str, str]) -> list[Cell]:
    """What an insight citing a candidate may quote: its values and its words, about its metric, slice and period."""
    subject = Subject(frozenset({c["metric"]}), frozenset({"overall" if c["dimension"] == "overall" else c["member"]}),
                      frozenset(d for d in (c["period_start"], c.get("period_end")) if d))
    style, change_style = _styles(c, measures)
    fields = {"observed": (c["observed"], style), "expected": (c["expected"], style),
              "change": (_change(c, measures), change_style),
              "difference": (None if c["expected"] is None else c["observed"] - c["expected"], style),
              "metric": (c["metric"], "number"), "slice": (slice_name(c), "number"),
              "period": (c["period_start"], "number"), "direction": (c["direction"], "number")}
    return [Cell(value=value, source=alias, column=name, subject=subject, style=shown, candidate_id=c["candidate_id"],
                 query=c["evidence_sql"]) for name, (value, shown) in fields.items()]


def cited_candidates(args: dict, by_id: dict[str, dict]) -> dict[str, dict]:
    """The candidates an insight cites, by their short id (c1) or full id, under their short id."""
    aliases = {c["candidate_id"]: alias for alias, c in by_id.items()}
    cited = {}
    for given in args.get("candidate_ids") or []:
        alias = str(given) if str(given) in by_id else aliases.get(str(given))
        if alias:
            cited[alias] = by_id[alias]
    return cited
