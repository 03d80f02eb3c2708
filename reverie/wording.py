"""How reverie writes numbers, slices, changes and unchecked data into text — one way, for the headlines of detect,
the memory items of consolidate, the brief, the analyst's grounding and the answers of ask alike."""

from __future__ import annotations

import math
from datetime import date, datetime
from decimal import Decimal
from typing import Any

SCALE_STYLES = {"points": ("percent", "points"), "absolute": ("number", "size"), "relative": ("number", "change")}


def scale_styles(scale: str | None) -> tuple[str, str]:
    """How a metric's values and their change are written, by its scale (`show`'s styles): a share in percent and
    its change in percentage points, a signed value and its change in its units, anything else with a relative
    change."""
    return SCALE_STYLES.get(scale or "relative", SCALE_STYLES["relative"])


def is_number(value) -> bool:
    """Whether DuckDB returned a number: any integer (HUGEINT, unsigned), DECIMAL or finite float; not a boolean."""
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        return False
    return math.isfinite(value)


def display_number(value: float) -> str:
    """A metric value as people and the analyst see it: 1,234.50 or 0.0312."""
    return f"{value:,.2f}" if abs(value) >= 1 else f"{value:.4f}"


def show(value: Any, style: str = "number") -> str:
    """A value as reverie writes it into text: 1,234 · 1,234.56 · 0.0312 · 14.12% (a share, style "percent") ·
    396.9% (a relative change, style "change": its size, the direction is said in words) · 11.3 pp (a share's
    change, style "points") · 62.30 (a signed value's change, style "size") · 2026-11-16."""
    if value is None:
        return "n/a"
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == datetime.min.time() else f"{value:%Y-%m-%d %H:%M}"
    if isinstance(value, date):
        return value.isoformat()
    if not is_number(value):
        return str(value)
    number = float(value)
    if style == "percent":
        return f"{100 * number:.2f}%"
    if style == "change":
        return f"{abs(100 * number):.1f}%"
    if style == "points":
        return f"{abs(100 * number):.1f} pp"
    if style == "size":
        return show(abs(number))
    if number.is_integer() and abs(number) < 1e15:
        return f"{int(number):,}"
    return display_number(number)


def slice_name(c: dict) -> str:
    """A candidate's slice as words: `overall`, or `country DE`."""
    return "overall" if c["dimension"] == "overall" else f"{c['dimension']} {c['member']}"


def value_text(value: float, scale: str) -> str:
    """A metric's value as people read it: a share in percent (21.6%), anything else as a number (254, 1,234.50)."""
    return f"{100 * value:.1f}%" if scale == "points" else show(value)


def change_text(c: dict, signed: bool = True) -> str:
    """A change as its scale reads it: +62.3% (relative), +21.2 pp (a share), +62.30 or +3 (a signed value, its
    units)."""
    sign = "+" if c["difference"] >= 0 else "-"
    if c["scale"] == "points":
        size = f"{abs(100 * c['difference']):.1f} pp"
    elif c["scale"] == "absolute":
        size = show(abs(c["difference"]))
    elif not c["expected"]:
        return "from zero"
    else:
        size = f"{abs(100 * c['magnitude']):.1f}%"
    return f"{sign}{size}" if signed else size


def unchecked_text(source: dict) -> str:
    """A source's new batches no check looked at, and why (a row of quality/new_batches_checked.sql)."""
    return (f"source {source['source']}: {source['unchecked']} of {source['batches']} new batch(es) loaded without "
            f"checks — {source['why']}")
