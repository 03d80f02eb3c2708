"""Grounding: every number an LLM writes must be a value its evidence returned, about what the text says it is about.

The analyst can write numbers two ways. By reference — `{c2.observed}`, `{q1.revenue}`, `{q1[3].revenue}` —
reverie puts the value in, formatted; or as a literal (`1,234.5`, `12.5%`, `3.4M`), which must match a
value of the evidence within the rounding it was written with. Either way each number is a *cell*: a
value of a cited candidate or of an evidence query, traced to the data, with its subject (metric,
slice, period). A cell counts only if it comes from the warehouse's data (not a constant) and agrees
with the words: a metric named in the sentence, a member named in the text, dates named in the text.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from reverie.wording import is_number, show

ISO_DATE = re.compile(r"\b\d{4}-\d{2}-\d{2}\b")
NOT_VALUES = re.compile(r"\b\d{4}-\d{2}-\d{2}\b|\b\d{1,2}:\d{2}(?::\d{2})?\b")  # dates and times of day
# a number not glued to a word on either side (ids like c3_48, carriers like 9E are not numbers), or with a unit
UNITS = r"%|pp\b|percent\b|per cent\b|k\b|K\b|M\b|m\b|bn\b|thousand\b|million\b|billion\b"
NUMBER = re.compile(rf"(?<![\w.])([-+\u2212]?\d(?:[\d,]*\d)?(?:\.\d+)?)(?:\s*({UNITS})|(?![\w⁰¹²³⁴⁵⁶⁷⁸⁹]))")
PERCENT = ("%", "percent", "per cent")
PERCENT_UNITS = (*PERCENT, "pp")  # written per hundred: 12.5% or 12.5 pp stand for 0.125
SCALE = {"k": 1e3, "K": 1e3, "m": 1e6, "M": 1e6, "bn": 1e9, "thousand": 1e3, "million": 1e6, "billion": 1e9}
GROUPED = re.compile(r"\d{1,3}(?:,\d{3})*(?:\.\d+)?")  # 1,234,567.5: a comma only between thousands
DIGITS = re.compile(r"[\d⁰¹²³⁴⁵⁶⁷⁸⁹]+")
# written with digits but not numbers: reverie's ids, times of day, ordinals, quarters and halves, week numbers
NOT_NUMBERS = re.compile(r"(?:[cq]\d+|(?:ins|mem|cand|c\d{8}t\d+)-[\w-]+|\d+(?:st|nd|rd|th)"
                         r"|[qh][1-4]|w\d{1,2})", re.IGNORECASE)
# numbers in words that a sentence can carry a value with; one to nine are left to counting in prose ("one of six")
NUMBER_WORDS = re.compile(r"(?<![\w-])(?:zero|nil|ten|eleven|twelve|thirteen|fourteen|fifteen|sixteen|seventeen|"
                          r"eighteen|nineteen|twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety|hundreds?|"
                          r"thousands?|millions?|billions?|dozens?)(?![\w])", re.IGNORECASE)
REFERENCE = re.compile(r"\{+\s*([cq]\d+)\s*(?:\[\s*(\d+)\s*\])?\s*\.\s*(\w+)\s*\}+")
BRACES = re.compile(r"\{[^{}]*\}")
SENTENCE_END = re.compile(r"(?<=[.!?;])\s+|\n+| — ")
CLAUSE_END = re.compile(r"[,;:]\s+|\s+(?:then|and|but|while|whereas|against|versus|vs\.?)\s+")
FROM_TO = re.compile(r"\bfrom\b(?P<a>.*?)(?:\bto\b|→|->)(?P<b>.*)", re.IGNORECASE)
OVERALL = "overall"
WEEKDAYS = {name.lower(): n for n, name in enumerate(calendar.day_name)}
RELATIVE_DAY = re.compile(rf"\b(?:the day before yesterday|yesterday|today|(?:this|last|previous) (?:week|month)|"
                          rf"(?:last|on|this past) (?:{'|'.join(WEEKDAYS)}))\b", re.IGNORECASE)
WHOLE = re.compile(r"\b(?:overall|whole business|in total|all (?:countries|channels|devices|slices|members))\b",
                   re.IGNORECASE)
# the words that say what an aggregate of stored values is: a total over 20 days is not a day's value
SAYS_AGGREGATE = {
    "total": r"total|sum\w*|combined|altogether|in all|cumulative|add\w* up|over the (?:period|last|past)",
    "average": r"average|mean|avg|typical|per day|a day|daily",
    "count": r"count|number of|rows|days|weeks|months|times|entries|records|how many",
    "highest": r"highest|maximum|max|peak|record|largest|biggest|top|most|best",
    "lowest": r"lowest|minimum|min|smallest|least|bottom|worst|trough",
    "median": r"median|typical|middle",
    "spread": r"deviation|stddev|std|spread|volatil\w*|varian\w*|variab\w*",
    "percentile": r"percentile|quantile|p\d{2}",
    "share": r"share|proportion|fraction|ratio|percent of|% of|of all|of total|of the total",
}


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
    aggregate: str | None = None  # a new quantity computed over stored values: total, average, count, share, ...

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
    latest_day: date | None = None  # the newest complete day: what "yesterday" and "last week" resolve against

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
    """(as written, value, rounding tolerance, start, end) for every number in the text, dates and times excluded."""
    blanked = NOT_VALUES.sub(lambda m: " " * len(m.group(0)), text)
    found = []
    for match in NUMBER.finditer(blanked):
        literal, unit = match.group(1), match.group(2) or ""
        digits = literal.replace(",", "").replace("\u2212", "-").lstrip("+")
        decimals = len(digits.partition(".")[2])
        scale = SCALE.get(unit, 1.0)
        found.append((match.group(0).strip(), float(digits) * scale, 0.5 * 10 ** -decimals * scale,
                      match.start(), match.end()))
    return found


def unreadable(text: str, names: set[str]) -> list[str]:
    """What in the text carries a number reverie cannot read — 10x, 5e6, 1_000_000, EUR5000000, .75, 10⁶, 21,7,
    forty-two thousand — and must not pass unread; `names` (members, metrics) are words, whatever digits they hold."""
    blanked = NOT_VALUES.sub(lambda m: " " * len(m.group(0)), text)
    numbers = list(NUMBER.finditer(blanked))
    read = [(m.start(), m.end()) for m in numbers]
    found = [m.group(1) for m in numbers if "," in m.group(1) and not GROUPED.fullmatch(m.group(1).lstrip("+-\u2212"))]
    found += [blanked[m.start():m.end() + 1] for m in numbers  # 1.18%k: a unit and more glued on
              if m.end() < len(blanked) and blanked[m.end()].isalnum()]
    lowered = {n.lower() for n in names}
    for match in DIGITS.finditer(blanked):
        if any(a <= match.start() < b for a, b in read):
            continue
        start, end = match.start(), match.end()
        while start > 0 and not blanked[start - 1].isspace():
            start -= 1
        while end < len(blanked) and not blanked[end].isspace():
            end += 1
        token = blanked[start:end].rstrip(".,;:!?)]\"'").lstrip("([\"'")
        if token.lower() in lowered or NOT_NUMBERS.fullmatch(token) or token in found:
            continue
        found.append(token)
    found += [m.group(0) for m in NUMBER_WORDS.finditer(text) if not any(a <= m.start() < b for a, b in read)]
    return list(dict.fromkeys(found))


def weekday_before(latest: date, weekday: str) -> date:
    """The latest day named `weekday` (monday, ...) on or before `latest`."""
    return latest - timedelta(days=(latest.weekday() - WEEKDAYS[weekday.lower()]) % 7)


def relative_days(text: str, latest: date | None) -> set[date]:
    """The days a text's words for time — yesterday, last Tuesday, this week, last month — stand for, against the
    newest complete day ("yesterday" is that day; "today" the one after it, not complete)."""
    found: set[date] = set()
    if latest is None:
        return found
    for match in RELATIVE_DAY.finditer(text):
        words = match.group(0).lower()
        if words == "yesterday":
            found.add(latest)
        elif words == "the day before yesterday":
            found.add(latest - timedelta(days=1))
        elif words == "today":
            found.add(latest + timedelta(days=1))
        elif words.endswith("week"):
            monday = latest - timedelta(days=latest.weekday())
            start = monday if words.startswith("this") else monday - timedelta(days=7)
            found |= {start + timedelta(days=i) for i in range(7)}
        elif words.endswith("month"):
            first = latest.replace(day=1)
            start = first if words.startswith("this") else (first - timedelta(days=1)).replace(day=1)
            found |= {start + timedelta(days=i) for i in range(calendar.monthrange(start.year, start.month)[1])}
        else:
            found.add(weekday_before(latest, words.split()[-1]))
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


def _scaled(after: str) -> bool:
    """Whether what is written right after a reference changes its value: digits or a scale (a % does not: it says
    the value is in percent)."""
    after = after.strip()
    return bool(after) and after.lower() not in PERCENT_UNITS


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


def _agrees(cell: Cell, metrics: set[str], members: set[str], dates: set[date], about: set[str],
            sentence: str) -> str | None:
    """Why this cell cannot stand for a number in this sentence (None if it can)."""
    subject = cell.subject
    if cell.aggregate:
        words = SAYS_AGGREGATE.get(cell.aggregate, "|".join(SAYS_AGGREGATE.values()))
        if not re.search(rf"(?<!\w)(?:{words})", sentence, re.IGNORECASE):
            return (f"it is a {cell.aggregate} over many values ({cell.where()}), not one value: say what it is "
                    f"({words.split('|')[0]}, ...) or quote a single value")
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


def _whole(cell: Cell, named: set[str], clause: str) -> str | None:
    """Why a whole-business value cannot stand in a sentence about a slice (None if it can: it says "overall")."""
    if cell.subject.members == frozenset({OVERALL}) and named and not WHOLE.search(clause):
        return (f"it is {cell.about()} ({cell.where()}), but the sentence is about {', '.join(sorted(named))}: "
                "say overall, or quote the slice's value")
    return None


def _derived(sentence: str) -> tuple[list[str], dict[str, dict]]:
    """A change written next to the two values it relates ("fell 22.6% from 32,825.94 to 25,397.41") must be what
    they give — computed, not found somewhere else in the evidence: what is wrong, and the percentages that are right
    with where they come from (the two values themselves are grounded like any other)."""
    between = FROM_TO.search(sentence)
    if not between:
        return [], {}
    numbers = numbers_in(sentence)
    ends = [next((n for n in numbers if between.start(part) <= n[3] < between.end(part)), None) for part in ("a", "b")]
    if None in ends:
        return [], {}
    # an end written as a percent (2.7% of a rate) is that share: 0.027
    (first_written, first, first_rounding), (last_written, last, last_rounding) = [
        (n[0], n[1] / 100, n[2] / 100) if n[0].endswith(PERCENT_UNITS) else n[:3] for n in ends]
    if not first:
        return [], {}
    change = 100 * abs(last - first) / abs(first)
    # what the two could give, each anywhere within the rounding it is written with (3.2k is 3,150 to 3,250)
    corners = [(a, b) for a in (first - first_rounding, first + first_rounding)
               for b in (last - last_rounding, last + last_rounding) if a]
    changes = [100 * abs(b - a) / abs(a) for a, b in corners] + [change]
    ratios = [100 * abs(b / a) for a, b in corners] + [100 * abs(last / first)]
    problems, right = [], {}
    for number in numbers:
        literal, value, tolerance, *_ = number
        if number in ends or not literal.endswith(PERCENT):
            continue
        if any(min(given) - max(tolerance, 0.05) <= abs(value) <= max(given) + max(tolerance, 0.05)
               for given in (changes, ratios)):
            right[literal] = {"text": literal, "value": value, "from": "computed",
                              "column": f"change from {first_written} to {last_written}"}
        else:
            problems.append(f"{literal}: from {first_written} to {last_written} is a change of {change:.1f}%, "
                            f"not {literal}")
    return problems, right


def _fits(value: float, tolerance: float, literal: str, cell: Cell) -> bool:
    """Whether a number as written stands for a cell's value: within the rounding it was written with, with its sign
    if it has one (an unsigned number may be a change whose direction the words give), and with a digit that is not
    0 unless the value is 0 ("0M" is not 25,397)."""
    number = cell.number
    if number is None:
        return False
    options = [number, 100 * number] if literal.endswith(PERCENT_UNITS) else [number]
    signed = literal[:1] in "+-\u2212"
    if not any(c in "123456789" for c in literal) and number != 0:
        return False
    return any((abs(value - v) if signed else abs(abs(value) - abs(v))) <= max(tolerance, 0.005 * abs(v))
               for v in options)


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
    title_members = vocabulary.members_in(title_text)
    about = about | vocabulary.metrics_in(text)
    problems += [f"{token}: a number reverie cannot read; write it in digits (1,234.5 · 12.5% · 3.4k · 2.1M · 1.2bn)"
                 for token in unreadable(text, vocabulary.members | set(vocabulary.metrics))]
    for start, end in _spans(text, SENTENCE_END):
        sentence = text[start:end]
        wrong, computed = _derived(sentence)
        problems += wrong
        clauses = _spans(sentence, CLAUSE_END, start)
        sentence_metrics, sentence_members = vocabulary.metrics_in(sentence), vocabulary.members_in(sentence)
        sentence_days = relative_days(sentence, vocabulary.latest_day)
        for literal, value, tolerance, a, b in numbers_in(sentence):
            a, b = a + start, b + start
            clause = next(text[x:y] for x, y in clauses if x <= a < y or y == end)
            # each number is about what its own clause names, else its sentence, else (slices) the title
            metrics = vocabulary.metrics_in(clause) or sentence_metrics
            named = vocabulary.members_in(clause) or sentence_members
            members = named or title_members
            dates = _dates_of(a, text, (start, end), named_dates)
            said = relative_days(clause, vocabulary.latest_day) or sentence_days
            if said and not ISO_DATE.search(clause):  # "yesterday" is a date too, unless the clause writes one
                dates = said
            if literal in computed:
                result.numbers.append(computed[literal])
                continue
            referenced = [cell for s, e, cell in spans if s <= a < e or s < b <= e]
            glued = [(s, e) for s, e, _ in spans if (s <= a < e or s < b <= e) and (a < s or _scaled(text[e:b]))]
            if glued:
                problems.append(f"{literal}: a sign, digits or a scale written onto a reference change its value; "
                                "write the reference alone")
            candidates = referenced or [c for c in every if c.data and _fits(value, tolerance, literal, c)]
            if not candidates:
                constant = [c for c in every if not c.data and _fits(value, tolerance, literal, c)]
                problems.append(f"{literal}: a constant of {constant[0].source}, not a value of the data" if constant
                                else f"{literal}: no evidence returned this number")
                continue
            if not (metrics or about):  # a number about nothing named can pass for anything: "sales fell 99%"
                known = ", ".join(sorted(vocabulary.metrics)[:8])
                problems.append(f"{literal}: the text does not say which metric it is about (name one: {known})")
                continue
            reasons = [_agrees(c, metrics, members, dates, about, sentence) or _whole(c, named, clause)
                       for c in candidates]
            fitting = [c for c, why in zip(candidates, reasons) if why is None]
            if not fitting:
                problems.append(f"{literal}: {reasons[0]}")
                continue
            result.numbers.append(fitting[0].provenance(literal))
    return result
