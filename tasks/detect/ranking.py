"""Ranking: score each finding, merge findings of one underlying change, phrase the headline."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import date, timedelta

from reverie.analyst.candidates import moved_with
from reverie.tasks.detect.detector import Detector
from reverie.wording import change_text, slice_name, value_text

AGREEMENT_BONUS = 0.05  # per further detector that saw the same change
FEEDBACK_WEIGHT = {"useful": 1.25, "noise": 0.5}  # people's verdict on earlier insights of the same kind and subject
MERGE_DAYS = 3  # days in a row that are one change (a three-day spike); a longer run is several changes, each seen
HIGH_SURPRISE = 0.6  # a bad change this surprising is critical; a good or neutral one at HIGH_SURPRISE + 0.15 is a warning
LEADS = ((0.8, "almost all from"), (0.5, "mostly from"))
SEVERITY_ORDER = ("critical", "warning", "info")  # a member's share of a change that the headline names


def _surprise(strength: float, magnitude: float | None) -> float:
    """How surprising a finding is, in [0, 1]: how far outside its noise (strength), and how large on a relative
    scale (a signed value's size is its strength alone)."""
    certainty = 1 - math.exp(-abs(strength) / 8)
    return 0.5 * certainty + 0.5 * (min(abs(magnitude), 1.0) if magnitude is not None else certainty)


def _severity(favourable: str, surprise: float, magnitude: float | None, neutral: bool) -> str:
    """Critical: bad and surprising (or half gone or doubled); warning: bad, or a surprise either way; info: the rest."""
    if neutral:
        return "info"
    if favourable == "bad":
        return "critical" if surprise >= HIGH_SURPRISE or abs(magnitude or 0) >= 0.5 else "warning"
    return "warning" if surprise >= HIGH_SURPRISE + 0.15 else "info"


def judged(finding: dict, favourability: str, scale: str, detector: Detector) -> dict:
    """A detector's finding with its change (relative, and in the metric's units), direction, favourability, score
    (weighed by its detector) and severity, read on its metric's scale."""
    observed, expected = finding["observed"], finding["expected"]
    if scale == "absolute":  # a signed value: "-0.35 against 24.7" is not "down 101%"
        magnitude = None
    else:  # from zero (no refunds in a usual week) the relative change is unbounded: counted as +100%
        magnitude = observed / expected - 1 if expected else (1.0 if observed > 0 else -1.0 if observed < 0 else 0.0)
    direction = "up" if observed >= expected else "down"
    if favourability == "neutral" or detector.neutral:
        favourable = "neutral"
    else:
        favourable = "good" if (direction == "up") == (favourability == "up") else "bad"
    surprise = _surprise(finding["strength"] or 0.0, magnitude)
    score = surprise * detector.weight * (1.0 if finding["dimension"] == "overall" else 0.8)
    return {**finding, "magnitude": magnitude, "difference": observed - expected, "scale": scale,
            "direction": direction, "favourable": favourable, "score": score,
            "severity": _severity(favourable, surprise, magnitude, detector.neutral)}


def _one_day(finding: dict) -> bool:
    return finding["period_start"] == finding["period_end"]


def _same_change(group: list[dict], other: dict) -> bool:
    """Whether a finding describes the change of a group headed by its strongest finding (same metric and direction,
    already checked). Days: the group's days with this one stay within MERGE_DAYS in a row, so a run of bad days
    does not chain into one week-long change. Longer periods (a week, a month, a new level): within a day of the
    head's; a day and a new level (a span of days) only where the level begins. And in the whole business, or slicing
    by another dimension than the head (US and mobile), or another member of its dimension over the very same days
    (three Loop stations down on 11 September; US on Monday and DE on Tuesday are two changes)."""
    head = group[0]
    if _one_day(head) and _one_day(other):
        days = [f["period_start"] for f in group if _one_day(f)] + [other["period_start"]]
        if (max(days) - min(days)).days >= MERGE_DAYS:
            return False
    elif _one_day(head) != _one_day(other) and head["grain"] == other["grain"] == "day":
        day, level = (head, other) if _one_day(head) else (other, head)
        if abs((day["period_start"] - level["period_start"]).days) > 1:  # a collapse within a new level is news too
            return False
    elif other["period_start"] > head["period_end"] + timedelta(days=1) \
            or head["period_start"] > other["period_end"] + timedelta(days=1):
        return False
    if "overall" in (head["dimension"], other["dimension"]) or head["dimension"] != other["dimension"] \
            or head["member"] == other["member"]:
        return True
    return (other["grain"], other["period_start"], other["period_end"]) == (
        head["grain"], head["period_start"], head["period_end"])


def merged(findings: list[dict], detectors: Mapping[str, Detector]) -> list[dict]:
    """One candidate per underlying change: its headline finding (the whole business when it moved, else the
    strongest), the detectors that saw it, the other findings in `related`, and the days the change covers
    (`valid_from`, `valid_to`); highest score first."""
    groups: list[list[dict]] = []
    by_subject: dict[tuple, list[list[dict]]] = {}  # changes of one metric in one direction
    # the whole business's changes first, so every member that moved with one joins it: 17 stations down with the
    # whole city on a holiday are one change, not one headed by the strongest station and 16 more of their own
    for finding in sorted(findings, key=lambda f: (f["dimension"] != "overall", -f["score"], -abs(f["strength"] or 0))):
        if not detectors[finding["detector"]].describes_change:
            groups.append([finding])
            continue
        same = by_subject.setdefault((finding["metric"], finding["direction"]), [])
        joined = next((g for g in same if _same_change(g, finding)), None)
        if joined is None:
            same.append([finding])
            groups.append(same[-1])
        else:
            joined.append(finding)
    candidates = []
    for group in groups:
        overall = [f for f in group if f["dimension"] == "overall"]
        head = overall[0] if overall else group[0]
        detectors_seen = sorted({f["detector"] for f in group})
        score = min(1.0, max(f["score"] for f in group) + AGREEMENT_BONUS * (len(detectors_seen) - 1))
        days = [f for f in group if f["grain"] == head["grain"] and f["dimension"] == head["dimension"]
                and f["member"] == head["member"] and _one_day(f) == _one_day(head)]  # a new level has its own span
        severity = min((f["severity"] for f in group), key=SEVERITY_ORDER.index)  # a member x3 is news overall too
        candidates.append({**head, "score": score, "detectors": detectors_seen, "severity": severity,
                           "valid_from": min(f["period_start"] for f in days),
                           "valid_to": max(f["period_end"] for f in days),
                           "related": [f for f in group if f is not head]})
    return sorted(candidates, key=lambda c: -c["score"])


def with_feedback(candidates: list[dict], verdicts: dict[tuple, str]) -> list[dict]:
    """Scores weighed by the latest feedback on memory of the same kind, metric and slice; highest first."""
    for c in candidates:
        verdict = verdicts.get((c["detector"], c["metric"], c["dimension"], c["member"]))
        if verdict:
            c["score"] = min(1.0, c["score"] * FEEDBACK_WEIGHT[verdict])
            c["feedback"] = verdict
    return sorted(candidates, key=lambda c: -c["score"])


def _period(c: dict) -> str:
    start: date = c["period_start"]
    if c["grain"] == "day" and c.get("period_end", start) != start:  # a run of days read together
        return f"from {start} to {c['period_end']}"
    return {"day": f"on {start}", "week": f"in the week of {start}", "month": f"in {start:%B %Y}"}.get(
        c["grain"], f"from {start}")


def carried_by(c: dict) -> str:
    """Where a change of the whole business is, when one member carries most of it: "almost all from region latam
    (x3.2 there)"; empty when no member leads it."""
    drivers = c.get("drivers")
    if not drivers or c["dimension"] != "overall":
        return ""
    lead = drivers["lead"]
    share = min(lead["share_of_change"] or 0, 1.0)
    words = next((w for least, w in LEADS if share >= least), None)
    if words is None:
        return ""
    part = next((p for d in drivers["dimensions"] if d["dimension"] == lead["dimension"] for p in d["drivers"]
                 if p["member"] == lead["member"]), None)
    if part and part.get("observed") is not None and part.get("expected") is not None \
            and (part["observed"] - part["expected"]) * c["difference"] < 0:
        return ""  # the member moved the other way itself (its weight moved): it does not carry the change
    there = ""
    if part and part.get("observed") is not None and part.get("expected"):
        if c["scale"] == "relative" and part["observed"] >= 0 < part["expected"]:
            there = f" (x{part['observed'] / part['expected']:.1f} there)"
        elif c["scale"] != "relative":
            there = f" ({change_text({**c, 'difference': part['observed'] - part['expected']})} there)"
    return f"{words} {lead['dimension']} {lead['member']}{there}"


def _with_others(c: dict) -> str:
    names = [f["member"] for f in moved_with(c)]
    if not names:
        return ""
    if len(names) > 4:
        names = [*names[:3], f"{len(names) - 3} more"]
    shown = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"
    return f"also {c['dimension']} {shown}"


def headline(c: dict, detector: Detector) -> str:
    """One sentence for people and the analyst, in the words of its detector's headline, with the member that
    carries the change when one does; every number in it is observed, expected or their change."""
    up = c["direction"] == "up"
    scale = c.get("scale", "relative")
    sentence = detector.headline.format(
        metric=c["metric"], slice=slice_name(c), dimension=c["dimension"], member=c["member"], period=_period(c),
        period_start=c["period_start"], observed=value_text(c["observed"], scale),
        expected=value_text(c["expected"], scale),
        observed_percent=f"{100 * c['observed']:.1f}%", expected_percent=f"{100 * c['expected']:.1f}%",
        change=change_text(c), size=change_text(c, signed=False), direction=c["direction"],
        high_or_low="high" if up else "low", ahead_or_behind="ahead of" if up else "behind",
        comparison=c["comparison"])
    where = carried_by(c) or _with_others(c)
    return f"{sentence.removesuffix('.')}; {where}." if where else sentence
