"""Questions as reverie reads them: what is asked (an intent), about which metric and slice, on which day or
over which span of days, against what, ranked by what — or why it cannot be answered.

A question is read into all of its parts, and one with a part reverie cannot read or has no data for is
declined at once, saying what it can answer instead: an answer to another question is worse than none.
A question is read the same way when it is asked and when the night prepares answers, so a prepared answer
is found by the key of the question it answers: `driver|revenue|country:DE|2026-11-25`. Words are matched
against the snapshot's own vocabulary (its metrics and the members of their slices), never a model.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass, field, replace
from datetime import date, timedelta

from reverie.analyst.grounding import WEEKDAYS, Vocabulary, weekday_before
from reverie.ask.periods import ALL_DATA, UNREAD_TIME, YEAR_AGO, Period, period_in
from reverie.memory.aliases import read_aliases
from reverie.queries import rows_as_dicts, sql_file

OVERALL = ("overall", "all")
CHANGE_WORDS = (r"\b(chang\w*|up|down|drop\w*|r[io]se|rising|increas\w*|decreas\w*|f[ae]ll\w*|spik\w*|jump\w*|"
                r"mov\w*|trend\w*|happened to|going on with|week on week|compared|grow\w*|grew|declin\w*|shr[iu]nk\w*)\b")
# checked in this order: the first intent whose words the question has is what it asks
INTENTS = (
    ("driver", r"\b(drove|drive[sn]?|driv\w+|drivers?|why|explain\w*|cause[sd]?|behind|led|which (?:segments?|"
               r"dimensions?|members?|slices?)|where did|contribut\w+)\b"),
    ("since", r"\b(since when|how long|when did|start(?:ed|s)?|began|begin)\b"),
    ("usual", r"\b(usual(?:ly)?|normal(?:ly)?|typical(?:ly)?|expected|how big|how unusual|how large|baseline|"
              r"against)\b"),
    ("record", r"\b(records?|highest|lowest|best|worst|peak|all[- ]time|maximum|minimum|ever)\b"),
    ("pace", r"\b(pace|goals?|targets?|on track|track)\b"),
    ("change", CHANGE_WORDS),
    ("level", r"\b(what (?:was|is|were|are)|how (?:much|many)|values?|total|level|number of|count of)\b"),
)
FORECAST = (r"\b(will|going to be|forecast\w*|predict\w*|projection|projected|expect(?:ed)? to|next (?:day|week|"
            r"month|quarter|year)|tomorrow|what if|would|could we|if we)\b")
REVIEW = (r"\b(anything (?:wrong|off|unusual|odd|strange|bad)|wrong with|problems?|issues?|concerns?|risks?|"
          r"anomal\w*|alerts?|lately|recently|how (?:is|are) \w+(?: \w+)? doing|what happened (?:to|with))\b")
COMPARE = (r"\b(compar\w*|vs\.?|versus|against|than|week over week|wow|month over month|mom|year over year|yoy|"
           r"a year (?:earlier|ago|before))\b")
RANK = r"\b(most|least|highest|lowest|top|bottom|best|worst|biggest|largest|smallest|fewest|leading|rank\w*)\b"
FEWEST = r"\b(least|lowest|bottom|smallest|fewest)\b"
# a question for a number: with no metric reverie knows in it, it is declined at once with the metrics there are
QUANTITY = (r"\b(how (?:much|many)|what (?:was|is|were|are) (?:the|our|my)|total|number of|count|rate|average|"
            r"which|compare|trend|sum|revenue|sales|profit|cost|margin)\b")
REVIEW_DAYS = 90  # "anything wrong with X": the open items about X over the last 90 days
DAY_WORDS = r"\b(what happened|anything|news|notable|unusual day|going on)\b"
ISO_DAY = re.compile(r"\b(\d{4})-(\d{2})-(\d{2})\b")
MONTH_NAMES = {name.lower(): n for n, name in enumerate(calendar.month_name) if name} | {
    name.lower(): n for n, name in enumerate(calendar.month_abbr) if name}
_MONTH = "|".join(sorted(MONTH_NAMES, key=len, reverse=True))
MONTH_DAY = re.compile(rf"\b(?:({_MONTH})\.?\s+(\d{{1,2}})(?:st|nd|rd|th)?|(\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?"
                       rf"({_MONTH}))\b(?:,?\s+(\d{{4}}))?", re.IGNORECASE)


@dataclass(frozen=True)
class Question:
    """What a question asks: an intent, about a metric (None: the whole day), a slice, a day (None: the latest) or a
    span of days, the span it is compared with, the dimension whose members it ranks; or why it is declined."""
    intent: str  # level | change | driver | since | usual | record | pace | day | rank | compare | review | decline
    metric: str | None = None
    dimension: str = "overall"
    member: str = "all"
    day: date | None = None
    period: Period | None = None  # a span of days (level, record, rank, compare, review)
    by: str | None = None  # rank: the dimension whose members are ranked
    fewest: bool = False  # rank: the smallest first
    note: str = ""  # said before the answer: a day asked about that is not complete, and the day answered instead
    reason: str = ""  # decline: what reverie cannot answer, and what it can

    def key(self) -> str:
        """What a prepared answer to this question is found by."""
        when = self.day.isoformat() if self.day else "latest"
        if self.period:
            when = self.period.span() + (f"~{self.period.before().span()}" if self.intent == "compare" else "")
        ranked = f"|by:{self.by}:{'fewest' if self.fewest else 'most'}" if self.by else ""
        return f"{self.intent}|{self.metric or ''}|{self.dimension}:{self.member}|{when}{ranked}"

    def on(self, day: date | None) -> Question:
        return replace(self, day=day)

    def words(self) -> str:
        """The question in plain words, as a prepared answer's title says it."""
        what = (self.metric or "").replace("_", " ")
        where = "" if self.dimension == "overall" else f" in {self.dimension} {self.member}"
        when = f" on {self.day.isoformat()}" if self.day else " on the latest day"
        over = f" over {self.period.words()}" if self.period else ""
        return {
            "level": f"What was {what}{where}{over or when}?",
            "change": f"How did {what}{where} change{when}?",
            "driver": f"What drove the latest change in {what}{where}?",
            "since": f"Since when has {what}{where} been changing?",
            "usual": f"How big is the latest change in {what}{where} against usual?",
            "record": f"What are the highest and lowest {what}{where}{over}?",
            "pace": f"Is {what} on pace for its goal?",
            "day": f"What happened{when}?",
            "rank": f"Which {self.by} had the {'least' if self.fewest else 'most'} {what}{over}?",
            "compare": f"How did {what}{where}{over} compare with {self.period.before_label if self.period else ''}?",
            "review": f"Is anything wrong with {what}{where}{over}?",
            "decline": self.reason,
        }[self.intent]

    def understood(self) -> dict:
        """The reading of the question, for a person to see what was answered."""
        read = {"intent": self.intent, "metric": self.metric,
                "slice": None if self.dimension == "overall" else f"{self.dimension}:{self.member}"}
        if self.period:
            read["period"] = {"label": self.period.label, "start": self.period.start.isoformat(),
                              "end": self.period.end.isoformat()}
            if self.intent == "compare" and (before := self.period.before()):
                read["against"] = {"label": before.label, "start": before.start.isoformat(),
                                   "end": before.end.isoformat()}
        elif self.intent not in ("decline",):
            read["day"] = self.day.isoformat() if self.day else "latest"
        if self.by:
            read["ranked_by"] = self.by
            read["order"] = "fewest first" if self.fewest else "most first"
        if self.reason:
            read["declined"] = self.reason
        return {k: v for k, v in read.items() if v is not None}


def declined(reason: str) -> Question:
    return Question("decline", reason=reason)


@dataclass
class Lexicon:
    """The names questions are matched against: the snapshot's metrics (with their dimensions, measure and which
    way is good) and the members of their slices; the newest complete day, the first, and today's date."""
    metrics: list[str]
    members: dict[str, str]  # member -> its dimension
    latest_day: date | None
    first_day: date | None = None
    today: date | None = None  # in the project's time zone; None: the day after the newest complete day
    catalogue: dict[str, dict] = field(default_factory=dict)  # metric -> dimensions, measure, favourability
    aliases: dict[str, tuple[str, str]] = field(default_factory=dict)  # lowercase alias -> (dimension, member)
    not_computed: dict[str, str] = field(default_factory=dict)  # a dbt metric reverie does not compute -> why

    def names(self) -> Vocabulary:
        """The same names as the grounding check reads an answer's words with."""
        return Vocabulary(metrics={m: "" for m in self.metrics}, members=set(self.members), latest_day=self.latest_day)

    def metrics_in(self, text: str) -> list[str]:
        """The metrics a question names: whole names ('average order value', not the 'order' in it), else a word of
        one that names no other metric ('conversion'), singular or plural."""
        lowered = text.lower()
        spans = sorted(((m.start(), m.end(), name) for name in self.metrics
                        for m in re.finditer(rf"\b{_words(name)}\b", lowered)), key=lambda s: s[0] - s[1])
        whole: list[str] = []
        taken: list[tuple[int, int]] = []
        for start, end, name in spans:  # longest first: a name inside a longer one is part of it
            if not any(start < e and s < end for s, e in taken):
                taken.append((start, end))
                whole += [name] if name not in whole else []
        if whole:
            return whole
        words = set(re.findall(r"[a-z]+", lowered))
        named = [m for m in self.metrics if any(w in words or f"{w}s" in words or w.rstrip("s") in words
                                                 for w in m.split("_") if len(w) >= 5)]
        return named if len(named) == 1 else []

    def members_in(self, text: str) -> list[tuple[str, str]]:
        """The slices a question names (dimension, member), by their names or aliases ("Germany" for DE), longest
        names first, each once."""
        names = [(member, (dimension, member)) for member, dimension in self.members.items()]
        # a short alias is a code, written in capitals ("UK"); "can" or "us" in a sentence are words
        names += [(alias.upper() if len(alias) <= 3 else alias, named) for alias, named in self.aliases.items()]
        found: list[tuple[str, str]] = []
        for name, named in sorted(names, key=lambda kv: -len(kv[0])):
            flags = 0 if len(name) <= 3 else re.IGNORECASE  # "DE" is a country, "de" may be a word
            if named not in found and re.search(rf"(?<!\w){re.escape(name)}(?!\w)", text, flags):
                found.append(named)
        return found

    def dimension_in(self, text: str) -> str | None:
        """A dimension a question names ('channel', 'countries')."""
        lowered = text.lower()
        for dimension in sorted(set(self.members.values()), key=len, reverse=True):
            plural = dimension[:-1] + "ies" if dimension.endswith("y") else dimension + "s"
            if re.search(rf"\b(?:{re.escape(dimension)}|{re.escape(plural)})\b", lowered.replace("_", " ")):
                return dimension
        return None

    def today_or_next(self) -> date | None:
        if self.today is not None:
            return self.today
        return self.latest_day + timedelta(days=1) if self.latest_day else None

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
        latest, today = self.latest_day, self.today_or_next()
        if latest is None or today is None:
            return None
        if re.search(r"\bthe day before yesterday\b", lowered):
            return today - timedelta(days=2)
        if re.search(r"\byesterday\b", lowered):
            return today - timedelta(days=1)
        if re.search(r"\btoday\b", lowered):
            return today
        if re.search(r"\b(latest|last day|newest day)\b", lowered):
            return None  # the latest complete day: what a prepared answer is keyed as
        if match := re.search(rf"\b(?:last|on|this past)\s+({'|'.join(WEEKDAYS)})\b", lowered):
            return weekday_before(min(latest, today - timedelta(days=1)), match.group(1))
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


def _has(pattern: str, text: str) -> bool:
    return re.search(pattern, text) is not None


def parse_question(text: str, lexicon: Lexicon) -> Question | None:
    """What the question asks, a decline saying why it cannot be answered, or None when reverie cannot tell (the
    memory path reads it instead)."""
    lowered = text.lower()
    metrics = lexicon.metrics_in(text)
    listed = ", ".join(lexicon.metrics)
    for name, why in lexicon.not_computed.items():  # named whole: a metric reverie knows of but does not compute
        if re.search(rf"\b{_words(name)}\b", lowered):
            return declined(f"reverie does not compute {name} ({why}). Its metrics are {listed}.")
    if _has(FORECAST, lowered):
        return _forecast(metrics, lexicon)
    if len(metrics) > 1:
        return declined(f"That names {len(metrics)} metrics ({', '.join(metrics)}): ask about one at a time.")
    day = lexicon.day_in(text)
    if not metrics:
        if _has(DAY_WORDS, lowered) and not _has(QUANTITY, lowered):
            return _on_day(Question("day"), day, lexicon)
        if _has(QUANTITY, lowered) or _has(RANK, lowered):
            return declined(f"reverie has no metric for that. Its metrics are {listed}; ask about one of them "
                            f"(\"what was {lexicon.metrics[0] if lexicon.metrics else 'revenue'} last week?\").")
        return None
    metric = metrics[0]
    slices = lexicon.members_in(text)
    if len({member for _, member in slices}) > 1:
        return declined(f"That names {len(slices)} slices ({', '.join(m for _, m in slices)}): reverie answers about "
                        "one slice at a time (or ranks them: \"which country had the most "
                        f"{metric.replace('_', ' ')}?\").")
    dimension, member = slices[0] if slices else OVERALL
    period = None if day or lexicon.latest_day is None else period_in(text, lexicon.latest_day,
                                                                       lexicon.first_day or lexicon.latest_day)
    if day is None and period is None and (unread := UNREAD_TIME.search(lowered)):
        return declined(f"reverie cannot tell which days \"{unread.group(0)}\" means. It reads days (2026-11-25, "
                        "yesterday, last Tuesday) and spans (this week, last week, this month, last month, the last "
                        "30 days, March, this year, all time).")
    q = Question("level", metric, dimension, member)
    by = lexicon.dimension_in(text)
    if by and by != dimension and (_has(RANK, lowered) or _has(rf"\b(?:by|per|each|across)\s+{by}", lowered)):
        if _has(CHANGE_WORDS, lowered) and period is None:
            return _on_day(replace(q, intent="driver"), day, lexicon)  # which country drove the drop
        return _rank(replace(q, by=by, fewest=_fewest_first(metric, lowered, lexicon)), period, day, lexicon)
    # "how is revenue doing this week versus last week" compares; "how is revenue doing" reviews
    if day is None and _has(REVIEW, lowered) and not (period and _has(COMPARE, lowered)) and lexicon.latest_day:
        start = max(lexicon.latest_day - timedelta(days=REVIEW_DAYS - 1), lexicon.first_day or date.min)
        days = (lexicon.latest_day - start).days + 1
        return replace(q, intent="review", period=period or Period(start, lexicon.latest_day, f"the last {days} days"))
    if period is not None:
        return _over(q, period, lowered, lexicon)
    for intent, words in INTENTS:
        if re.search(words, lowered):
            return _on_day(replace(q, intent=intent), day, lexicon)
    return _on_day(q, day, lexicon)


def _fewest_first(metric: str, lowered: str, lexicon: Lexicon) -> bool:
    """Whether a ranking asks for the smallest values first: "least", "lowest"; "worst" of a metric whose rise is
    good and "best" of one whose fall is good (the worst refund rate is the highest)."""
    good = lexicon.catalogue.get(metric, {}).get("favourability")
    return (_has(FEWEST, lowered) or (good == "up" and _has(r"\bworst\b", lowered))
            or (good == "down" and _has(r"\bbest\b", lowered)))


def _forecast(metrics: list[str], lexicon: Lexicon) -> Question:
    """Forecasts and what-ifs: declined, pointing to pace to goal where the metric has a goal."""
    goal = next((m for m in metrics if lexicon.catalogue.get(m, {}).get("goal")), None)
    instead = (f" {goal} has a goal: ask \"is {goal.replace('_', ' ')} on pace for its goal?\"" if goal else
               " Ask what happened: a day, a week, a month, or what changed.")
    return declined("reverie reports what the data shows; it does not forecast or answer what-ifs." + instead)


def _on_day(q: Question, day: date | None, lexicon: Lexicon) -> Question:
    """A question about one day: the latest complete day is keyed as such; a day not complete yet is said and the
    newest complete day answered; a day outside the data is declined."""
    latest = lexicon.latest_day
    if day is None or latest is None:
        return q
    if day > latest:
        today = lexicon.today_or_next()
        named = {today: "Today", today - timedelta(days=1): "Yesterday"}.get(day, "That day")
        return replace(q, day=None, note=f"{named} ({day.isoformat()}) is not in the data yet (not complete, or not "
                                         f"loaded); the newest complete day is {latest.isoformat()}:")
    if lexicon.first_day and day < lexicon.first_day:
        return declined(f"The data begins on {lexicon.first_day.isoformat()}: there is nothing on {day.isoformat()}.")
    return q.on(None if day == latest else day)


def _covered(period: Period, lexicon: Lexicon) -> str:
    """Why a span cannot be answered from the data (it starts before the data or ends after it), or ''."""
    first, latest = lexicon.first_day, lexicon.latest_day
    if first and period.start < first:
        return (f"The data begins on {first.isoformat()}, so {period.words()} is not all in it: reverie answers over "
                "spans of days it holds whole.")
    if latest and period.end > latest:
        return f"{period.words()} is not over: the newest complete day is {latest.isoformat()}."
    return ""


def _rank(q: Question, period: Period | None, day: date | None, lexicon: Lexicon) -> Question:
    if q.dimension != "overall":
        return declined(f"reverie ranks members of a dimension over the whole business, not within {q.dimension} "
                        f"{q.member}: ask \"which {q.by} had the most {q.metric}?\"")
    dimensions = lexicon.catalogue.get(q.metric, {}).get("dimensions")
    if dimensions is not None and q.by not in dimensions:
        return declined(f"{q.metric} is not broken down by {q.by}; it is by {', '.join(dimensions) or 'nothing'}.")
    if day is not None:
        period = Period(day, day, day.isoformat())
    period = period or Period(lexicon.first_day or lexicon.latest_day, lexicon.latest_day, ALL_DATA)
    if why := _covered(period, lexicon):
        return declined(why)
    return replace(q, intent="rank", period=period)


def _over(q: Question, period: Period, lowered: str, lexicon: Lexicon) -> Question:
    """A question about a span of days: its level, its record days, or how it compares with the span before."""
    if _has(COMPARE, lowered) or _has(CHANGE_WORDS, lowered):
        if _has(YEAR_AGO, lowered) and period.label != "last year":
            period = period.year_earlier()
        before = period.before()
        if before is None:
            return declined(f"Compare {period.words()} with what? Ask about this week against last week, this month "
                            "against last month, or a span against the same days a year earlier.")
        if why := _covered(period, lexicon) or _covered(before, lexicon):
            return declined(why)
        return replace(q, intent="compare", period=period)
    if why := _covered(period, lexicon):
        return declined(why)
    for intent in ("driver", "since", "usual", "pace"):
        if _has(dict(INTENTS)[intent], lowered):
            return declined(f"reverie answers that about a day or the latest change, not over {period.words()}: ask "
                            f"\"what drove the latest change in {q.metric.replace('_', ' ')}?\"")
    if _has(dict(INTENTS)["record"], lowered):  # over all the data: the record of the whole history, as asked
        return replace(q, intent="record", period=None if period.label == ALL_DATA else period)
    return replace(q, intent="level", period=period)


def load_lexicon(con, latest_day: date | None, today: date | None = None) -> Lexicon:
    """The snapshot's metrics and members, to read questions with."""
    rows = con.execute(sql_file("ask/vocabulary.sql")).fetchall()
    catalogue = {m["name"]: m for m in rows_as_dicts(con.execute(sql_file("ask/metric_catalogue.sql")))}
    first = con.execute("select min(day) from daily_values").fetchone()[0]
    return Lexicon(metrics=sorted(name for kind, name, _ in rows if kind == "metric"),
                   members={name: dimension for kind, name, dimension in rows if kind == "member"},
                   latest_day=latest_day, first_day=first, today=today, catalogue=catalogue,
                   aliases=read_aliases(con), not_computed=_not_computed(con))


def _not_computed(con) -> dict[str, str]:
    """The dbt metrics the snapshot's cycle did not compute, and why (none in a snapshot of an earlier release)."""
    if not con.execute("select count(*) from duckdb_tables() where table_name = 'metrics_not_computed'").fetchone()[0]:
        return {}
    return dict(con.execute("select name, reason from metrics_not_computed").fetchall())
