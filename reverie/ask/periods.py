"""The spans of days a question names — this week, last month, the last 30 days, March, all time — read against
the newest complete day, each with the span it is compared with.

Libraries that read relative dates (dateparser) turn "last week" into one instant seven days ago, not the
Monday-to-Sunday week a BI user means, so spans are read here by rules; single days stay in `questions.py`.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, timedelta

ALL_DATA = "all the data"  # the span from the first day of data to the newest
MONTHS = {name.lower(): n for n, name in enumerate(calendar.month_name) if name}
_MONTH = "|".join(MONTHS)
SPAN_WORDS = (
    ("week_to_date", r"\b(?:this|current) week\b|\bweek to date\b|\bwtd\b|\bso far this week\b"),
    ("last_week", r"\b(?:last|previous|prior) week\b"),
    ("month_to_date", r"\b(?:this|current) month\b|\bmonth to date\b|\bmtd\b|\bso far this month\b"),
    ("last_month", r"\b(?:last|previous|prior) month\b"),
    ("quarter_to_date", r"\b(?:this|current) quarter\b|\bquarter to date\b|\bqtd\b"),
    ("last_quarter", r"\b(?:last|previous|prior) quarter\b"),
    ("year_to_date", r"\b(?:this|current) year\b|\byear to date\b|\bytd\b"),
    ("last_year", r"\b(?:last|previous|prior) year\b"),
    ("last_n", r"\b(?:last|past|previous|recent) (\d{1,3}) (day|week|month)s?\b|\bpast (week|month)\b"),
    ("named_month", rf"\b(?:in|during|for|of|over) ({_MONTH})(?:,? (\d{{4}}))?\b|\b({_MONTH}) (\d{{4}})\b"),
    ("all_time", r"\b(?:all[- ]time|all the data|whole history|entire history|since the (?:start|beginning)|"
                 r"to date|so far|over time|ever)\b"),
)
# time words no rule above reads: a question that uses one is declined, never read as another span
UNREAD_TIME = re.compile(r"\b(fiscal|fy\d*|q[1-4]|h[12]|half[- ]year|semester|weekends?|holidays?|seasons?|"
                         r"christmas|black friday|quarters?|decade)\b")
YEAR_AGO = re.compile(r"\b(?:year over year|yoy|a year (?:earlier|ago|before)|same (?:\w+ )?last year|"
                      r"(?:against|vs\.?|versus|than|to|with) last year)\b")


@dataclass(frozen=True)
class Period:
    """Days from `start` to `end` (both included), what the question called them, and the days compared with."""
    start: date
    end: date
    label: str
    before_start: date | None = None
    before_end: date | None = None
    before_label: str = ""

    def span(self) -> str:
        return f"{self.start.isoformat()}..{self.end.isoformat()}"

    def words(self) -> str:
        return f"{self.label} ({self.start.isoformat()} to {self.end.isoformat()})"

    def before(self) -> Period | None:
        """The span compared with, as a period of its own."""
        if self.before_start is None or self.before_end is None:
            return None
        return Period(self.before_start, self.before_end, self.before_label)

    def year_earlier(self) -> Period:
        """The same days a year before (29 February: the 28th)."""
        return Period(self.start, self.end, self.label, _years_back(self.start, 1), _years_back(self.end, 1),
                      "the same days a year earlier")


def _years_back(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:
        return day.replace(year=day.year - years, day=28)


def _months_back(day: date, months: int) -> date:
    """The first of the month `months` before `day`'s month."""
    index = day.year * 12 + day.month - 1 - months
    return date(index // 12, index % 12 + 1, 1)


def _month_end(first: date) -> date:
    return first.replace(day=calendar.monthrange(first.year, first.month)[1])


def period_in(text: str, latest: date, first: date) -> Period | None:
    """The span of days a question names, against the newest complete day `latest` and the first day of data."""
    lowered = text.lower()
    for kind, pattern in SPAN_WORDS:
        match = re.search(pattern, lowered)
        if match:
            return _span(kind, match, latest, first)
    return None


def _span(kind: str, match: re.Match, latest: date, first: date) -> Period:
    monday = latest - timedelta(days=latest.weekday())
    month = latest.replace(day=1)
    quarter = date(latest.year, 3 * ((latest.month - 1) // 3) + 1, 1)
    year = date(latest.year, 1, 1)
    if kind == "week_to_date":
        return Period(monday, latest, "this week so far" if latest != monday + timedelta(days=6) else "this week",
                      monday - timedelta(days=7), latest - timedelta(days=7), "the same days of last week")
    if kind == "last_week":
        start = monday - timedelta(days=7)
        return Period(start, start + timedelta(days=6), "last week", start - timedelta(days=7),
                      start - timedelta(days=1), "the week before")
    if kind == "month_to_date":
        back = _months_back(month, 1)
        end = min(back + (latest - month), _month_end(back))
        return Period(month, latest, "this month so far" if latest != _month_end(month) else "this month",
                      back, end, "the same days of last month")
    if kind == "last_month":
        start = _months_back(month, 1)
        return Period(start, _month_end(start), "last month", _months_back(start, 1), start - timedelta(days=1),
                      "the month before")
    if kind == "quarter_to_date":
        back = _months_back(quarter, 3)
        return Period(quarter, latest, "this quarter so far", back, min(back + (latest - quarter),
                                                                        quarter - timedelta(days=1)),
                      "the same days of last quarter")
    if kind == "last_quarter":
        start = _months_back(quarter, 3)
        return Period(start, quarter - timedelta(days=1), "last quarter", _months_back(start, 3),
                      start - timedelta(days=1), "the quarter before")
    if kind == "year_to_date":
        back = date(year.year - 1, 1, 1)
        return Period(year, latest, "this year so far", back, _years_back(latest, 1), "the same days of last year")
    if kind == "last_year":
        start = date(year.year - 1, 1, 1)
        return Period(start, year - timedelta(days=1), "last year", date(start.year - 1, 1, 1),
                      start - timedelta(days=1), "the year before")
    if kind == "last_n":
        count, unit = (int(match.group(1)), match.group(2)) if match.group(1) else (1, match.group(3))
        days = count * {"day": 1, "week": 7}.get(unit, 0) or (latest - _months_back(latest, count)).days
        start = latest - timedelta(days=days - 1)
        return Period(start, latest, f"the last {days} days", start - timedelta(days=days),
                      start - timedelta(days=1), f"the {days} days before")
    if kind == "named_month":
        name, year_text = (match.group(1), match.group(2)) if match.group(1) else (match.group(3), match.group(4))
        start = date(int(year_text) if year_text else latest.year, MONTHS[name], 1)
        if not year_text and start > latest:
            start = start.replace(year=start.year - 1)
        end = min(_month_end(start), latest) if start <= latest else _month_end(start)
        label = f"{calendar.month_name[start.month]} {start.year}" + (" so far" if end < _month_end(start) else "")
        back = _months_back(start, 1)
        return Period(start, end, label, back, min(back + (end - start), _month_end(back)),
                      "the same days of the month before" if end < _month_end(start) else "the month before")
    return Period(first, latest, ALL_DATA)  # all_time
