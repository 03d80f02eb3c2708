"""Grounding: every number an LLM writes must be one of the values its evidence returned."""

from __future__ import annotations

import re
from datetime import date

ISO_DATE = re.compile(r"\b\d{4}-\d{2}-\d{2}\b")
# a number not glued to a word (so ids like c3_48 are not read as numbers), with an optional unit
NUMBER = re.compile(r"(?<![\w.])([-+]?\d[\d,]*(?:\.\d+)?)\s*(%|k\b|K\b|M\b|m\b|bn\b)?")
SCALE = {"k": 1e3, "K": 1e3, "m": 1e6, "M": 1e6, "bn": 1e9}


def display_number(value: float) -> str:
    """A metric value as people and the analyst see it: 1,234.50 or 0.0312."""
    return f"{value:,.2f}" if abs(value) >= 1 else f"{value:.4f}"


def numbers_in(text: str) -> list[tuple[str, float, float]]:
    """(as written, value, rounding tolerance) for every number in the text, dates excluded."""
    found = []
    for match in NUMBER.finditer(ISO_DATE.sub(" ", text)):
        literal, unit = match.group(1), match.group(2) or ""
        digits = literal.replace(",", "").lstrip("+")
        decimals = len(digits.partition(".")[2])
        scale = SCALE.get(unit, 1.0)
        found.append((match.group(0).strip(), float(digits) * scale, 0.5 * 10 ** -decimals * scale))
    return found


def ungrounded(text: str, allowed_values: list[float], allowed_dates: set[date]) -> list[str]:
    """The numbers and dates in `text` that match no allowed value (sign-insensitive, within rounding)."""
    problems = [d for d in ISO_DATE.findall(text) if date.fromisoformat(d) not in allowed_dates]
    as_percent = [100 * v for v in allowed_values]  # a ratio of 0.0312 may be written 3.12%
    for literal, value, tolerance in numbers_in(text):
        candidates = allowed_values + as_percent if literal.endswith("%") else allowed_values
        if not any(abs(abs(value) - abs(v)) <= max(tolerance, 0.005 * abs(v)) for v in candidates):
            problems.append(literal)
    return problems
