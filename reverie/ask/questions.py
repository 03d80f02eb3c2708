"""Questions as reverie reads them: what is asked (an intent), about which metric and slice, on which day.

A question is read the same way when it is asked and when the night prepares answers, so a prepared answer
is found by the key of the question it answers: `driver|revenue|country:DE|2026-11-25`. Words are matched
against the snapshot's own vocabulary (its metrics and the members of their slices), never a model.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass, replace
from datetime import date

from reverie.analyst.grounding import WEEKDAYS, Vocabulary, weekday_before
from reverie.warehouse import sql_file

OVERALL = ("overall", "all")
# checked in this order: the first intent whose words the question has is what it asks
INTENTS = (
    ("driver", r"\b(drove|drive[sn]?|driv\w+|drivers?|why|explain\w*|cause[sd]?|behind|led|which (?:segments?|"
               r"dimensions?|members?|slices?|countr\w+|channels?|categor\w+|devices?)|where did|contribut\w+)\b"),
    ("since", r"\b(since when|how long|when did|start(?:ed|s)?|began|begin)\b"),
    ("usual", r"\b(usual(?:ly)?|normal(?:ly)?|typical(?:ly)?|expected|how big|how unusual|how large|baseline|"
              r"against)\b"),
    ("record", r"\b(records?|highest|lowest|best|worst|peak|all[- ]time|maximum|minimum|ever)\b"),
    ("pace", r"\b(pace|goals?|targets?|on track|track)\b"),
    ("change", r"\b(chang\w*|up|down|drop\w*|r[io]se|rising|increas\w*|decreas\w*|f[ae]ll\w*|spik\w*|jump\w*|"
               r"mov\w*|trend\w*|happened to|going on with|week on week|compared)\b"),
    ("level", r"\b(what (?:was|is|were|are)|how (?:much|many)|values?|total|level|number of|count of)\b"),
)
DAY_WORDS = r"\b(what happened|anything|news|notable|unusual day|going on)\b"
ISO_DAY = re.compile(r"\b(\d{4})-(\d{2})-(\d{2})\b")
MONTH_NAMES = {name.lower(): n for n, name in enumerate(calendar.month_name) if name} | {
    name.lower(): n for n, name in enumerate(calendar.month_abbr) if name}
_MONTH = "|".join(sorted(MONTH_NAMES, key=len, reverse=True))
MONTH_DAY = re.compile(rf"\b(?:({_MONTH})\.?\s+(\d{{1,2}})(?:st|nd|rd|th)?|(\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?"
                       rf"({_MONTH}))\b(?:,?\s+(\d{{4}}))?", re.IGNORECASE)


@dataclass(frozen=True)
class Question:
    """What a question asks: an intent, about a metric (None: the whole day), a slice, a day (None: the latest)."""
    intent: str  # level | change | driver | since | usual | record | pace | day
    metric: str | None = None
    dimension: str = "overall"
    member: str = "all"
    day: date | None = None

    def key(self) -> str:
        """What a prepared answer to this question is found by."""
        when = self.day.isoformat() if self.day else "latest"
        return f"{self.intent}|{self.metric or ''}|{self.dimension}:{self.member}|{when}"

    def on(self, day: date | None) -> Question:
        return replace(self, day=day)

    def words(self) -> str:
        """The question in plain words, as a prepared answer's title says it."""
        what = (self.metric or "").replace("_", " ")
        where = "" if self.dimension == "overall" else f" in {self.dimension} {self.member}"
        when = f" on {self.day.isoformat()}" if self.day else " on the latest day"
        return {
            "level": f"What was {what}{where}{when}?",
            "change": f"How did {what}{where} change{when}?",
            "driver": f"What drove the latest change in {what}{where}?",
            "since": f"Since when has {what}{where} been changing?",
            "usual": f"How big is the latest change in {what}{where} against usual?",
            "record": f"What are the highest and lowest {what}{where}?",
            "pace": f"Is {what} on pace for its goal?",
            "day": f"What happened{when}?",
        }[self.intent]


@dataclass
class Lexicon:
    """The names questions are matched against: the snapshot's metrics and the members of their slices."""
    metrics: list[str]
    members: dict[str, str]  # member -> its dimension
    latest_day: date | None

    def names(self) -> Vocabulary:
        """The same names as the grounding check reads an answer's words with."""
        return Vocabulary(metrics={m: "" for m in self.metrics}, members=set(self.members), latest_day=self.latest_day)

    def metric_in(self, text: str) -> str | None:
        """The metric a question names: its whole name first ('average order value'), then a word of it that names
        no other metric ('conversion'), singular or plural."""
        lowered = text.lower()
        whole = [m for m in self.metrics if re.search(rf"\b{_words(m)}\b", lowered)]
        if whole:
            return max(whole, key=len)
        words = set(re.findall(r"[a-z]+", lowered))
        named = [m for m in self.metrics if any(w in words or f"{w}s" in words or w.rstrip("s") in words
                                                 for w in m.split("_") if len(w) >= 5)]
        return named[0] if len(named) == 1 else None

    def member_in(self, text: str) -> tuple[str, str]:
        """The slice a question names (dimension, member), or the whole business."""
        for member, dimension in sorted(self.members.items(), key=lambda kv: -len(kv[0])):
            flags = 0 if len(member) <= 3 else re.IGNORECASE  # "DE" is a country, "de" may be a word
            if re.search(rf"(?<!\w){re.escape(member)}(?!\w)", text, flags):
                return dimension, member
        return OVERALL

    def day_in(self, text: str) -> date | None:
        """The day a question names: 2026-11-25, Nov 25, 25 November, yesterday, today, last Tuesday."""
        lowered = text.lower()
        if match := ISO_DAY.search(text):
            try:
                return date(*map(int, match.groups()))
            except ValueError:
                return None
        if match := MONTH_DAY.search(text):
            month = MONTH_NAMES[(match.group(1) or match.group(4)).lower().rstrip(".")]
            day = int(match.group(2) or match.group(3))
            return self._in_year(month, day, int(match.group(5)) if match.group(5) else None)
        latest = self.latest_day
        if latest is None:
            return None
        if re.search(r"\b(yesterday|today|latest|last day)\b", lowered):
            return None  # the latest complete day: what a prepared answer is keyed as
        if match := re.search(rf"\b(?:last|on)\s+({'|'.join(WEEKDAYS)})\b", lowered):
            return weekday_before(latest, match.group(1))
        return None

    def _in_year(self, month: int, day: int, year: int | None) -> date | None:
        """A month and day in the year given, else the latest such day up to the newest data."""
        latest = self.latest_day or date.today()
        try:
            found = date(year or latest.year, month, day)
        except ValueError:
            return None
        if year is None and found > latest:
            found = found.replace(year=found.year - 1)
        return found


def _words(metric: str) -> str:
    return r"[ _]".join(re.escape(part) for part in metric.split("_")) + "s?"


def text_key(text: str) -> str:
    """What a prepared answer to a question reverie cannot read is found by: its words, lowercase."""
    return "text|" + " ".join(re.findall(r"\w+", text.lower()))


def parse_question(text: str, lexicon: Lexicon) -> Question | None:
    """What the question asks, or None when reverie cannot tell (the memory path reads it instead)."""
    lowered = text.lower()
    metric = lexicon.metric_in(text)
    dimension, member = lexicon.member_in(text)
    day = lexicon.day_in(text)
    if day is not None and lexicon.latest_day is not None and day == lexicon.latest_day:
        day = None  # the latest day, named by its date: the same question
    if metric is None:
        if re.search(DAY_WORDS, lowered):
            return Question("day", day=day)
        return None
    for intent, words in INTENTS:
        if re.search(words, lowered):
            return Question(intent, metric, dimension, member, day)
    return Question("level", metric, dimension, member, day)


def load_lexicon(con, latest_day: date | None) -> Lexicon:
    """The snapshot's metrics and members, to read questions with."""
    rows = con.execute(sql_file("ask/vocabulary.sql")).fetchall()
    return Lexicon(metrics=sorted(name for kind, name, _ in rows if kind == "metric"),
                      members={name: dimension for kind, name, dimension in rows if kind == "member"},
                      latest_day=latest_day)
