"""Public data sets that ship inside PyPI packages, exported as a user's nightly job would, with labelled days.

Each module holds one data set: NAME, TIMEZONE, FIRST and LAST days, TUNE_UNTIL (labels before it tuned the
detectors, the rest is the report), FIRST_CYCLE_UNTIL, SOURCE (its reverie.toml section), METRICS (its
metrics/*.yml), `export(folder, files)` writing its files, and `labels()`: the notable days and the days not
judged. A day that is neither is ordinary: any alert on it is a false alarm.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import pandas as pd


@dataclass(frozen=True)
class Label:
    """A notable day (or days): which metrics moved which way, where (None: overall), and why."""
    start: date
    end: date
    effects: dict[str, str]  # metric -> up | down
    member: tuple[str, str] | None  # (dimension, member) the event is about; None: the whole business
    why: str
    recall: bool = True  # an event to find (False: only right to report, like one carrier's bad day)
    days: tuple[date, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "days", tuple(self.start + timedelta(days=i)
                                               for i in range((self.end - self.start).days + 1)))


def holiday_days(first_year: int, last_year: int) -> dict[date, str]:
    """US federal holidays (the `holidays` package, observed days too), Christmas Eve, New Year's Eve, the Friday
    after Thanksgiving, and the weekends of long weekends and of Thanksgiving: the days a holiday may move."""
    import holidays

    days: dict[date, str] = {}
    for day, name in sorted(holidays.US(years=range(first_year, last_year + 1)).items()):
        days[day] = name
        if "Thanksgiving" in name:
            for offset, what in ((1, "the Friday after Thanksgiving"), (2, "Thanksgiving weekend"),
                                 (3, "Thanksgiving weekend")):
                days.setdefault(day + timedelta(days=offset), what)
        if day.weekday() in (0, 4):  # a long weekend: its Saturday and Sunday
            weekend = (-2, -1) if day.weekday() == 0 else (1, 2)
            for offset in weekend:
                days.setdefault(day + timedelta(days=offset), f"{name} weekend")
    for year in range(first_year, last_year + 1):
        days.setdefault(date(year, 12, 24), "Christmas Eve")
        days.setdefault(date(year, 12, 31), "New Year's Eve")
    return dict(sorted(days.items()))


def same_weekday_ratio(values: dict[date, float], day: date, exclude: dict | set = frozenset(),
                       weeks: int = 3) -> float | None:
    """A day's value against the median of the same weekday in the `weeks` weeks before and after it (other
    excluded days left out): how much the day itself stands out, whatever came before."""
    around = [values[other] for k in range(1, weeks + 1) for other in (day - timedelta(weeks=k), day + timedelta(weeks=k))
              if other in values and other not in exclude]
    if day not in values or len(around) < 3 or statistics.median(around) == 0:
        return None
    return values[day] / statistics.median(around)


def holidays_moved(values: dict[date, float], holidays: dict[date, str], metric: str, shift: float,
                   ) -> tuple[list[Label], set[date]]:
    """The holidays whose value fell by `shift` or more against the same weekday three weeks either side (labels of
    the whole business), and the days not judged: the other holidays and the three days after each."""
    found, unjudged = [], set()
    for day, name in holidays.items():
        if day not in values:
            continue
        ratio = same_weekday_ratio(values, day, exclude=holidays)
        if ratio is not None and ratio <= 1 - shift:
            found.append(Label(day, day, {metric: "down"}, None, f"{name} ({ratio - 1:+.0%} {metric})"))
        else:
            unjudged.add(day)
        unjudged.update(day + timedelta(days=k) for k in (1, 2, 3))
    return found, unjudged


def write_periods(rows: pd.DataFrame, days: pd.Series, folder: Path, files: str, suffix: str) -> list[tuple[date, Path]]:
    """Rows written one file per day or per month (`files`), R's `NA` for missing values; each file with the
    last day it holds, in order."""
    folder.mkdir(parents=True, exist_ok=True)
    keys = days.map(lambda d: d.isoformat() if files == "daily" else d.strftime("%Y-%m"))
    written = []
    for key, part in rows.groupby(keys.values, sort=True):
        path = folder / f"{key}.{suffix}"
        part.to_csv(path, index=False, na_rep="NA")
        written.append((max(days[part.index]), path))
    return written
