"""Answers computed from the snapshot for a question reverie can read: levels, changes, drivers, starts, sizes
against usual, records, pace to goal, what happened on a day; over a span of days, totals, comparisons with the
span before, rankings of a dimension's members and the open items about a metric. Each names the day or the span
it answers.

Every number in an answer is a value of the snapshot (a daily value or a memory item's evidence), written
with `show` and kept with where it came from, so an answer is grounded by construction. The night prepares
these for the questions it expects; the memory path hands them to the model as facts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, timedelta

from reverie.ask.periods import Period
from reverie.ask.questions import Question
from reverie.queries import rows_as_dicts, with_values
from reverie.wording import scale_styles, show

When = date | Period | tuple | None


def _days(when: date | Period) -> dict:
    return {"start": when.start.isoformat(), "end": when.end.isoformat()} if isinstance(when, Period) else {
        "day": when.isoformat()}


def _lineage(when: When) -> dict:
    """Where a number's days are: `day`, or `start` and `end`, or (a change) `between` two of them."""
    if isinstance(when, tuple):
        return {"day": None, "between": [_days(w) for w in when]}
    return {"day": None, **_days(when)} if when else {"day": None}


@dataclass
class Answer:
    """An answer's text, the memory items it rests on, and each number in it with its value and subject."""
    text: str
    cited: list[str] = field(default_factory=list)
    numbers: list[dict] = field(default_factory=list)

    def number(self, value, style: str, question: Question, when: When, source: str) -> str:
        """A value written into the answer, kept with what it is about: its metric, slice and day or span of days
        (for a change, the two it is between; None for an item's figure, which its source names)."""
        shown = show(value, style)
        if isinstance(value, int | float):
            self.numbers.append({"text": shown, "value": float(value), "style": style, "from": source,
                                 "metric": question.metric, "dimension": question.dimension,
                                 "member": question.member, **_lineage(when)})
        return shown


def _slice(q: Question) -> str:
    return "" if q.dimension == "overall" else f" in {q.dimension} {q.member}"


def _scale(con, metric: str) -> str | None:
    row = con.execute(with_values("ask/metric_scale.sql", {"metric": metric})).fetchone()
    return row[0] if row else None


def _moved(a: Answer, now: float, then: float, change_style: str, q: Question, between: tuple) -> str:
    """How a value moved from `then` to `now`, in words: ' (up 13.6%)', ' (down 0.9 pp)', ' (unchanged)'."""
    difference = now - then
    if difference == 0:
        return " (unchanged)"
    if change_style == "change" and not then:
        return ""
    change = difference / abs(then) if change_style == "change" else difference
    return f" ({'up' if difference > 0 else 'down'} {a.number(abs(change), change_style, q, between, 'daily_values')})"


def _level(con, q: Question, day: date) -> Answer | None:
    row = rows_as_dicts(con.execute(with_values("ask/value_on_day.sql", {
        "metric": q.metric, "dimension": q.dimension, "member": q.member, "day": day})))[0]
    if row["value"] is None:
        return None
    style, change_style = scale_styles(row["scale"])
    a = Answer("")
    text = f"{q.metric}{_slice(q)} on {day.isoformat()}: {a.number(row['value'], style, q, day, 'daily_values')}"
    before = row["week_before"]
    if before is not None:
        week_before = day - timedelta(days=7)
        text += f", against {a.number(before, style, q, week_before, 'daily_values')} the same weekday a week before"
        text += _moved(a, row["value"], before, change_style, q, (week_before, day))
    a.text = text + "."
    return a


def _items(con, q: Question, day: date | None) -> list[dict]:
    rows = rows_as_dicts(con.execute(with_values("ask/change_items.sql", {
        "metric": q.metric, "dimension": q.dimension, "member": q.member, "day": day})))
    for row in rows:
        row["evidence"] = json.loads(row["evidence"]) if row["evidence"] else {}
    return rows


def _latest_change(con, q: Question, day: date | None, a: Answer) -> dict | None:
    """The newest change in memory about the question's metric and slice; its title goes into the answer."""
    items = _items(con, q, day)
    if not items:
        return None
    a.cited.append(items[0]["id"])
    return items[0]


def _change(con, q: Question, day: date) -> Answer | None:
    a = _level(con, q, day) or Answer(f"No value of {q.metric}{_slice(q)} on {day.isoformat()}.")
    item = _latest_change(con, q, q.day, a)
    if item:
        a.text += f" In memory: {item['title']} [{item['id']}]"
    return a


def _driver(con, q: Question, day: date) -> Answer:
    a = Answer("")
    item = _latest_change(con, q, q.day, a)
    if item is None:
        return Answer(f"Memory holds no change of {q.metric}{_slice(q)}{_on(q.day)} to explain.")
    drivers = item["evidence"].get("drivers") or {}
    lead = drivers.get("lead")
    text = f"{item['title']} [{item['id']}]"
    if item["dimension"] != "overall":
        text += f" The change is in {item['dimension']} {item['member']} itself."
    elif lead:
        found = next((d for dim in drivers.get("dimensions", []) if dim["dimension"] == lead["dimension"]
                      for d in dim.get("drivers", []) if d["member"] == lead["member"]), None)
        text += f" It was led by {lead['dimension']} {lead['member']}"
        if found and found.get("observed") is not None and found.get("expected") is not None:
            style = scale_styles(item["evidence"].get("scale") or _scale(con, q.metric))[0]
            member_q = Question(q.intent, q.metric, lead["dimension"], lead["member"], q.day)
            text += (f": {a.number(found['observed'], style, member_q, item['period_start'], item['id'])} against "
                     f"{a.number(found['expected'], style, member_q, None, item['id'])} usually")
        text += "."
    else:
        text += " No single slice led it."
    a.text = text
    return a


def _on(day: date | None) -> str:
    return f" on {day.isoformat()}" if day else ""


def _since(con, q: Question, day: date) -> Answer:
    a = Answer("")
    item = _latest_change(con, q, q.day, a)
    if item is None:
        return Answer(f"Memory holds no change of {q.metric}{_slice(q)}{_on(q.day)}.")
    first, last = item["valid_from"] or item["period_start"], item["valid_to"] or item["period_start"]
    span = f"on {first.isoformat()}" if first == last else f"from {first.isoformat()} to {last.isoformat()}"
    a.text = f"The latest change in {q.metric}{_slice(q)} holds {span}: {item['title']} [{item['id']}]"
    return a


def _usual(con, q: Question, day: date) -> Answer:
    a = Answer("")
    item = _latest_change(con, q, q.day, a)
    if item is None:
        return Answer(f"Memory holds no change of {q.metric}{_slice(q)}{_on(q.day)}; "
                      + (_level(con, q, day) or Answer("")).text)
    a.text = f"{item['title']} [{item['id']}]"
    return a


def _record(con, q: Question, day: date) -> Answer | None:
    span = q.period or Period(date.min, date.max, "")
    row = rows_as_dicts(con.execute(with_values("ask/extremes.sql", {
        "metric": q.metric, "dimension": q.dimension, "member": q.member, "start": span.start, "end": span.end})))[0]
    if not row["days"]:
        return None
    style = scale_styles(_scale(con, q.metric))[0]
    a = Answer("")
    over = (f"over {q.period.words()}" if q.period else
            f"over the {row['days']} days since {row['first_day'].isoformat()}")
    a.text = (f"The highest daily {q.metric}{_slice(q)} was {a.number(row['highest'], style, q, row['highest_day'], 'daily_values')} "
              f"on {row['highest_day'].isoformat()}, the lowest {a.number(row['lowest'], style, q, row['lowest_day'], 'daily_values')} "
              f"on {row['lowest_day'].isoformat()}, {over}.")
    return a


def _over_span(con, q: Question, period: Period, member: str | None) -> list[dict]:
    """The metric over a span of days: per member of `q.by` (member None), or for the question's slice."""
    dimension = q.by if member is None else q.dimension
    return rows_as_dicts(con.execute(with_values("ask/period_values.sql", {
        "metric": q.metric, "dimension": dimension, "member": member, "start": period.start, "end": period.end})))


def _span_value(con, q: Question, period: Period) -> tuple[float | None, int, str | None]:
    rows = _over_span(con, q, period, q.member)
    return (rows[0]["value"], rows[0]["days"], rows[0]["measure"]) if rows else (None, 0, None)


def _missing_days(period: Period, days: int) -> str:
    expected = (period.end - period.start).days + 1
    return "" if days >= expected else f" ({days} of its {expected} days have a value)"


def _total(con, q: Question) -> Answer:
    value, days, measure = _span_value(con, q, q.period)
    if value is None:
        why = ("distinct counts do not add up over days" if measure == "count_distinct" else "no value in it")
        return Answer(f"reverie cannot give {q.metric}{_slice(q)} over {q.period.words()}: {why}.")
    a = Answer("")
    style = scale_styles(_scale(con, q.metric))[0]
    a.text = (f"{q.metric}{_slice(q)} over {q.period.words()}: "
              f"{a.number(value, style, q, q.period, 'daily_values')}{_missing_days(q.period, days)}.")
    return a


def _compare(con, q: Question) -> Answer:
    before = q.period.before()
    now, days, measure = _span_value(con, q, q.period)
    then, days_before, _ = _span_value(con, q, before)
    if now is None or then is None:
        why = "distinct counts do not add up over days" if measure == "count_distinct" else "a span has no value"
        return Answer(f"reverie cannot compare {q.metric}{_slice(q)} over {q.period.words()} with {before.words()}: "
                      f"{why}.")
    a = Answer("")
    style, change_style = scale_styles(_scale(con, q.metric))
    text = (f"{q.metric}{_slice(q)} over {q.period.words()}: {a.number(now, style, q, q.period, 'daily_values')}"
            f"{_missing_days(q.period, days)}, against {a.number(then, style, q, before, 'daily_values')} over "
            f"{before.words()}{_missing_days(before, days_before)}")
    a.text = text + _moved(a, now, then, change_style, q, (before, q.period)) + "."
    return a


RANKED = 5  # members named in a ranking; the rest are counted


def _rank(con, q: Question) -> Answer:
    rows = [r for r in _over_span(con, q, q.period, None) if r["value"] is not None]
    if not rows:
        measure = con.execute(with_values("ask/metric_scale.sql", {"metric": q.metric})).fetchone()
        why = "distinct counts do not add up over days" if measure and measure[1] == "count_distinct" else "no values"
        return Answer(f"reverie cannot rank {q.by} by {q.metric} over {q.period.words()}: {why}.")
    if q.fewest:
        rows.reverse()
    a = Answer("")
    style = scale_styles(_scale(con, q.metric))[0]
    named = [f"{r['member']} {a.number(r['value'], style, Question('level', q.metric, q.by, r['member']), q.period, 'daily_values')}"
             for r in rows[:RANKED]]
    lead = rows[0]["member"]
    text = (f"Over {q.period.words()}, {q.by} {lead} had the {'least' if q.fewest else 'most'} {q.metric}: "
            + "; ".join(named))
    if len(rows) > RANKED:
        text += f"; and {len(rows) - RANKED} more"
    a.text = text + "."
    return a


def _review(con, q: Question) -> Answer:
    rows = con.execute(with_values("ask/review_items.sql", {
        "metric": q.metric, "dimension": q.dimension, "member": q.member, "start": q.period.start,
        "end": q.period.end})).fetchall()
    if not rows:
        return Answer(f"Memory holds no open item about {q.metric}{_slice(q)} over {q.period.words()}: nothing "
                      "unusual was found in it.")
    listed = "\n".join(f"- [{severity}] {title} [{memory_id}]" for memory_id, severity, title, _ in rows[:RANKED])
    more = f"\n({len(rows) - RANKED} more)" if len(rows) > RANKED else ""
    return Answer(f"Over {q.period.words()}, memory holds {len(rows)} open item(s) about {q.metric}{_slice(q)}, the "
                  f"most severe first:\n{listed}{more}", cited=[r[0] for r in rows[:RANKED]])


def _pace(con, q: Question, day: date) -> Answer:
    rows = con.execute(with_values("ask/goal_items.sql", {"metric": q.metric})).fetchall()
    if not rows:
        return Answer(f"Memory holds no pace-to-goal item for {q.metric}: it may have no goal, or be on pace.")
    return Answer(f"{rows[0][1]} [{rows[0][0]}]", cited=[rows[0][0]])


def _day(con, q: Question, day: date) -> Answer:
    rows = con.execute(with_values("ask/items_on_day.sql", {"day": day})).fetchall()
    if not rows:
        return Answer(f"Nothing in memory stands out on {day.isoformat()}.")
    lines = "\n".join(f"- {title} [{memory_id}]" for memory_id, _, title in rows)
    return Answer(f"On {day.isoformat()}, memory holds:\n{lines}", cited=[r[0] for r in rows])


ANSWERS = {"level": _level, "change": _change, "driver": _driver, "since": _since, "usual": _usual,
           "record": _record, "pace": _pace, "day": _day}
OVER_SPAN = {"level": _total, "compare": _compare, "rank": _rank, "review": _review}


def answer_question(con, q: Question, latest_day: date) -> Answer | None:
    """The answer the snapshot gives to a question read into an intent; None when it holds no value for it (and for
    a declined question, which has none)."""
    if q.intent == "decline":
        return None
    if q.period is not None and q.intent in OVER_SPAN:
        return OVER_SPAN[q.intent](con, q)
    return ANSWERS[q.intent](con, q, q.day or latest_day)
