"""Ranking: score each finding, merge findings of one underlying change, phrase the headline."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import date, timedelta

from reverie.analyst.candidates import slice_name
from reverie.analyst.grounding import display_number
from tasks.detect.detector import Detector

AGREEMENT_BONUS = 0.05  # per further detector that saw the same change
FEEDBACK_WEIGHT = {"useful": 1.25, "noise": 0.5}  # people's verdict on earlier insights of the same kind and subject


def judged(finding: dict, favourability: str, detector: Detector) -> dict:
    """A detector's finding with magnitude, direction, favourability and score (weighed by its detector)."""
    observed, expected = finding["observed"], finding["expected"]
    # from zero (no refunds in a usual week) the relative change is unbounded: counted as +100%
    magnitude = observed / expected - 1 if expected else (1.0 if observed > 0 else -1.0 if observed < 0 else 0.0)
    direction = "up" if observed >= expected else "down"
    if favourability == "neutral" or detector.neutral:
        favourable = "neutral"
    else:
        favourable = "good" if (direction == "up") == (favourability == "up") else "bad"
    strength = finding["strength"] or 0.0
    score = (0.5 * (1 - math.exp(-abs(strength) / 8)) + 0.5 * min(abs(magnitude), 1.0))
    score *= detector.weight * (1.0 if finding["dimension"] == "overall" else 0.8)
    return {**finding, "magnitude": magnitude, "direction": direction, "favourable": favourable, "score": score}


def _same_change(group: list[dict], other: dict) -> bool:
    """Whether a finding describes the group's change (same metric and direction, already checked): within a
    day of the group's periods (a three-day spike is one change), and in the whole business, or slicing by
    another dimension than the group's strongest finding (US and mobile, not US and DE)."""
    head = group[0]
    first, last = min(f["period_start"] for f in group), max(f["period_end"] for f in group)
    if other["period_start"] > last + timedelta(days=1) or first > other["period_end"] + timedelta(days=1):
        return False
    return ("overall" in (head["dimension"], other["dimension"]) or head["dimension"] != other["dimension"]
            or head["member"] == other["member"])


def merged(findings: list[dict], detectors: Mapping[str, Detector]) -> list[dict]:
    """One candidate per underlying change: its headline finding (the whole business when it moved, else the
    strongest), the detectors that saw it, the other findings in `related`; highest score first."""
    groups: list[list[dict]] = []
    by_subject: dict[tuple, list[list[dict]]] = {}  # changes of one metric in one direction
    for finding in sorted(findings, key=lambda f: -f["score"]):
        if not detectors[finding["detector"]].describes_change:
            groups.append([finding])
            continue
        same = by_subject.setdefault((finding["metric"], finding["direction"]), [])
        joined = [g for g in same if _same_change(g, finding)]
        if not joined:
            same.append([finding])
            groups.append(same[-1])
            continue
        joined[0].append(finding)
        for other in joined[1:]:  # the finding bridges two groups (the middle day of three): one change
            joined[0].extend(other)
            same[:] = [g for g in same if g is not other]
            groups[:] = [g for g in groups if g is not other]
    candidates = []
    for group in groups:
        overall = [f for f in group if f["dimension"] == "overall"]
        head = overall[0] if overall else group[0]
        detectors = sorted({f["detector"] for f in group})
        score = min(1.0, max(f["score"] for f in group) + AGREEMENT_BONUS * (len(detectors) - 1))
        candidates.append({**head, "score": score, "detectors": detectors,
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
    return {"day": f"on {start}", "week": f"in the week of {start}", "month": f"in {start:%B %Y}"}.get(
        c["grain"], f"from {start}")


def headline(c: dict, detector: Detector) -> str:
    """One sentence for people and the analyst, in the words of its detector's headline; every number in it is
    observed, expected or their change."""
    up = c["direction"] == "up"
    return detector.headline.format(
        metric=c["metric"], slice=slice_name(c), dimension=c["dimension"], member=c["member"], period=_period(c),
        period_start=c["period_start"], observed=display_number(c["observed"]), expected=display_number(c["expected"]),
        observed_percent=f"{100 * c['observed']:.1f}%", expected_percent=f"{100 * c['expected']:.1f}%",
        change=f"{100 * c['magnitude']:+.1f}%" if c["expected"] else "from zero",
        size=f"{abs(100 * c['magnitude']):.1f}%" if c["expected"] else "from zero", direction=c["direction"],
        high_or_low="high" if up else "low", ahead_or_behind="ahead of" if up else "behind",
        comparison=c["comparison"])
