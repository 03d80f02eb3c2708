"""Grounding: every number an LLM writes must be a value its evidence returned, about what the text says it is about.

The analyst can write numbers two ways. By reference — `{c2.observed}`, `{q1.revenue}`, `{q1[3].revenue}` —
reverie puts the value in, formatted; or as a literal (`1,234.5`, `12.5%`, `3.4M`), which must match a
value of the evidence within the rounding it was written with. Either way each number is a *cell*: a
value of a cited candidate or of an evidence query, traced to the data, with its subject (metric,
slice, period). A cell counts only if it comes from the warehouse's data (not a constant) and agrees
with the words: a metric named in the sentence, a member named in the text, dates named in the text.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

ISO_DATE = re.compile(r"\b\d{4}-\d{2}-\d{2}\b")
# a number not glued to a word on either side (ids like c3_48, carriers like 9E are not numbers), or with a unit
NUMBER = re.compile(r"(?<![\w.])([-+]?\d[\d,]*(?:\.\d+)?)(?:\s*(%|pp\b|k\b|K\b|M\b|m\b|bn\b)|(?!\w))")
PERCENT_UNITS = ("%", "pp")  # written per hundred: 12.5% or 12.5 pp stand for 0.125
SCALE = {"k": 1e3, "K": 1e3, "m": 1e6, "M": 1e6, "bn": 1e9}
REFERENCE = re.compile(r"\{+\s*([cq]\d+)\s*(?:\[\s*(\d+)\s*\])?\s*\.\s*(\w+)\s*\}+")
BRACES = re.compile(r"\{[^{}]*\}")
SENTENCE_END = re.compile(r"(?<=[.!?;])\s+|\n+| — ")
CLAUSE_END = re.compile(r"[,;:]\s+|\s+(?:then|and|but|while|against|versus|vs\.?)\s+")
OVERALL = "overall"


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


@dataclass(frozen=True)
class Subject:
    """What a value is about. None means unknown: the value may belong to any metric or slice."""
    metrics: frozenset[str] | None
    members: frozenset[str] | None  # 'overall' for the whole business
    dates: frozenset[date] = frozenset()


@dataclass
class Cell:
    """One value an insight may quote: a field of a cited candidate, or a cell of an evidence query's result."""
    value: Any
    source: str  # c2 | q1
    column: str  # a query's column, or a candidate's field
    subject: Subject
    row: int | None = None  # 1-based, for queries
    data: bool = True  # computed from the warehouse's data, not a constant of the query
    style: str = "number"  # how it is written: number | percent (a share's value) | change | points | size
    query: str | None = None
    candidate_id: str | None = None

    @property
    def number(self) -> float | None:
        return float(self.value) if is_number(self.value) else None

    def where(self) -> str:
        """Where the value comes from, in words: 'q1 row 2, revenue' or 'c2 observed'."""
        return f"{self.source} row {self.row}, {self.column}" if self.row else f"{self.source} {self.column}"

    def about(self) -> str:
        """What the value is about, in words."""
        metric = "/".join(sorted(self.subject.metrics)) if self.subject.metrics else "no single metric"
        if self.subject.members is None:
            where = "a mix of slices"
        else:
            members = sorted(self.subject.members)
            where = "the whole business" if members == [OVERALL] else ", ".join(m for m in members if m != OVERALL)
        return f"{metric} for {where}"

    def provenance(self, text: str) -> dict:
        """What memory keeps for each number: as written, its value, and the query cell or candidate field."""
        kept = {"text": text, "value": self.number, "from": self.source, "column": self.column}
        if self.row:
            kept.update(row=self.row, query=self.query)
        if self.candidate_id:
            kept["candidate_id"] = self.candidate_id
        return kept


@dataclass
class Vocabulary:
    """The names an insight's words are matched against: metrics (and which are ratios) and members of slices."""
    metrics: dict[str, str] = field(default_factory=dict)  # name -> measure (sum, count, ..., ratio)
    members: set[str] = field(default_factory=set)

    def metrics_in(self, text: str) -> set[str]:
        lowered = text.lower()
        return {m for m in self.metrics if re.search(rf"(?<!\w)({re.escape(m)}|{re.escape(m.replace('_', ' '))})(?!\w)",
                                                     lowered)}

    def mentions(self, text: str, metric: str) -> bool:
        """Whether the text speaks of a metric, also in plain words: "refunds" for refund_rate."""
        words = [w for w in metric.split("_") if len(w) >= 5]
        return metric in self.metrics_in(text) or any(
            re.search(rf"(?<!\w){re.escape(w)}", text, re.IGNORECASE) for w in words)

    def members_in(self, text: str) -> set[str]:
        found = set()
        for member in self.members:
            flags = 0 if len(member) <= 3 else re.IGNORECASE  # "US" is a country, "us" is a word
            if re.search(rf"(?<!\w){re.escape(member)}(?!\w)", text, flags):
                found.add(member)
        return found


@dataclass
class Grounding:
    """The verdict on one insight's text: what is wrong with it (nothing, if grounded) and where each number came from."""
    title: str
    body: str
    problems: list[str] = field(default_factory=list)
    numbers: list[dict] = field(default_factory=list)


def numbers_in(text: str) -> list[tuple[str, float, float, int, int]]:
    """(as written, value, rounding tolerance, start, end) for every number in the text, dates excluded."""
    blanked = ISO_DATE.sub(lambda m: " " * len(m.group(0)), text)
    found = []
    for match in NUMBER.finditer(blanked):
        literal, unit = match.group(1), match.group(2) or ""
        digits = literal.replace(",", "").lstrip("+")
        decimals = len(digits.partition(".")[2])
        scale = SCALE.get(unit, 1.0)
        found.append((match.group(0).strip(), float(digits) * scale, 0.5 * 10 ** -decimals * scale,
                      match.start(), match.end()))
    return found


def dates_in(text: str) -> tuple[set[date], list[str]]:
    """The dates written in the text (YYYY-MM-DD), and the ones that are not dates at all (2026-02-30)."""
    found = ISO_DATE.findall(text)
    return {date.fromisoformat(d) for d in found if _is_date(d)}, [d for d in found if not _is_date(d)]


def fill_references(text: str, cells: dict[str, list[Cell]], problems: list[str]) -> tuple[str, list[tuple[int, int, Cell]]]:
    """The text with each reference replaced by its value, and where each rendered value sits."""
    out, spans, last = [], [], 0
    length = 0
    for match in REFERENCE.finditer(text):
        source, row, column = match.group(1).lower(), match.group(2), match.group(3)
        cell = _resolve(source, int(row) if row else 1, column, cells, problems, match.group(0))
        shown = show(cell.value, cell.style) if cell else match.group(0)
        out.append(text[last:match.start()])
        length += match.start() - last
        if cell:
            spans.append((length, length + len(shown), cell))
        out.append(shown)
        length += len(shown)
        last = match.end()
    out.append(text[last:])
    rendered = "".join(out)
    for leftover in BRACES.findall(REFERENCE.sub("", text)):
        problems.append(f"{leftover} is not a reference: write {{c1.observed}} for a candidate's value or "
                        "{q1.column} (first row) / {q1[2].column} (second row) for a cell of an evidence query")
    return rendered, spans


def _resolve(source: str, row: int, column: str, cells: dict[str, list[Cell]], problems: list[str],
             written: str) -> Cell | None:
    if source not in cells:
        known = ", ".join(sorted(cells)) or "none"
        problems.append(f"{written}: there is no {source} (this insight can refer to: {known})")
        return None
    own = cells[source]
    columns = list(dict.fromkeys(c.column for c in own))
    if source.startswith("q"):
        rows = max((c.row or 0 for c in own), default=0)
        if row < 1 or row > rows:
            problems.append(f"{written}: {source} returned {rows} row(s); rows count from 1")
            return None
    match = [c for c in own if c.column.lower() == column.lower() and (c.row in (None, row))]
    if not match:
        problems.append(f"{written}: {source} has no {column!r} (it has: {', '.join(columns)})")
        return None
    cell = match[0]
    if not cell.data:
        problems.append(f"{written}: {source}.{cell.column} is a constant of the query, not a value of the data")
        return None
    if cell.value is None:
        problems.append(f"{written}: {source}.{cell.column} is empty (NULL)")
        return None
    return cell


def _spans(text: str, separator: re.Pattern, offset: int = 0) -> list[tuple[int, int]]:
    """Where the pieces of `text` between separators start and end (sentences, clauses)."""
    bounds, start = [], 0
    for match in separator.finditer(text):
        bounds.append((offset + start, offset + match.start()))
        start = match.end()
    bounds.append((offset + start, offset + len(text)))
    return bounds


def _dates_of(position: int, text: str, sentence: tuple[int, int], named: set[date]) -> set[date]:
    """The date a number at `position` is said to be of: the nearest date in its clause, else its sentence's
    dates, else every date the text names."""
    start, end = sentence
    for a, b in _spans(text[start:end], CLAUSE_END, start):
        if a <= position < b:
            found = [(abs(m.start() + a - position), m.group(0)) for m in ISO_DATE.finditer(text[a:b])]
            valid = [d for _, d in sorted(found) if _is_date(d)]
            if valid:
                return {date.fromisoformat(valid[0])}
    in_sentence = {date.fromisoformat(d) for d in ISO_DATE.findall(text[start:end]) if _is_date(d)}
    return in_sentence or named


def _is_date(text: str) -> bool:
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True


def _agrees(cell: Cell, metrics: set[str], members: set[str], dates: set[date], about: set[str]) -> str | None:
    """Why this cell cannot stand for a number in this sentence (None if it can)."""
    subject = cell.subject
    wanted = metrics or about
    if wanted and (subject.metrics is None or not subject.metrics & wanted):
        return f"it is {cell.about()} ({cell.where()}), but the text is about {', '.join(sorted(wanted))}"
    if subject.members is None and wanted:
        return f"{cell.where()} mixes slices: filter the dimension and member, or select them"
    sliced = (subject.members or frozenset()) - {OVERALL}
    if sliced and not sliced & members:
        return f"it is {cell.about()} ({cell.where()}), but the text does not name {', '.join(sorted(sliced))}"
    if dates and subject.dates and not subject.dates & dates:
        shown = ", ".join(d.isoformat() for d in sorted(subject.dates)[:3])
        return f"it is the value for {shown} ({cell.where()}), not for {', '.join(d.isoformat() for d in sorted(dates))}"
    return None


def _fits(value: float, tolerance: float, percent_written: bool, cell: Cell) -> bool:
    number = cell.number
    if number is None:
        return False
    options = [number, 100 * number] if percent_written else [number]
    return any(abs(abs(value) - abs(v)) <= max(tolerance, 0.005 * abs(v)) for v in options)


def ground(title: str, body: str, cells: dict[str, list[Cell]], vocabulary: Vocabulary,
           about: set[str]) -> Grounding:
    """Render the references in an insight and check every number and date in it against its evidence."""
    problems: list[str] = []
    title_text, title_spans = fill_references(title, cells, problems)
    body_text, body_spans = fill_references(body, cells, problems)
    result = Grounding(title_text, body_text, problems)
    text = f"{title_text}\n{body_text}"
    spans = title_spans + [(a + len(title_text) + 1, b + len(title_text) + 1, c) for a, b, c in body_spans]
    named_dates, impossible = dates_in(text)
    problems += [f"{d} is not a date" for d in impossible]
    every = [c for own in cells.values() for c in own]
    returned_dates = {d for c in every if c.data for d in c.subject.dates}  # a row's dates are its cells' subject
    problems += [f"{d} is not a date the evidence returned" for d in sorted(named_dates - returned_dates)]
    members = vocabulary.members_in(text)
    about = about | vocabulary.metrics_in(text)
    for start, end in _spans(text, SENTENCE_END):
        sentence = text[start:end]
        metrics = vocabulary.metrics_in(sentence)
        for literal, value, tolerance, a, b in numbers_in(sentence):
            a, b = a + start, b + start
            dates = _dates_of(a, text, (start, end), named_dates)
            referenced = [cell for s, e, cell in spans if s <= a < e]
            candidates = referenced or [c for c in every if c.data and _fits(value, tolerance, literal.endswith(PERCENT_UNITS), c)]
            if not candidates:
                constant = [c for c in every if not c.data and _fits(value, tolerance, literal.endswith(PERCENT_UNITS), c)]
                problems.append(f"{literal}: a constant of {constant[0].source}, not a value of the data" if constant
                                else f"{literal}: no evidence returned this number")
                continue
            if not (metrics or about):  # a number about nothing named can pass for anything: "sales fell 99%"
                named = ", ".join(sorted(vocabulary.metrics)[:8])
                problems.append(f"{literal}: the text does not say which metric it is about (name one: {named})")
                continue
            reasons = [_agrees(c, metrics, members, dates, about) for c in candidates]
            fitting = [c for c, why in zip(candidates, reasons) if why is None]
            if not fitting:
                problems.append(f"{literal}: {reasons[0]}")
                continue
            result.numbers.append(fitting[0].provenance(literal))
    return result
