"""Trend change: where a daily series moved to a new level, found by changepoint detection (ruptures)."""

from __future__ import annotations

import warnings
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import ruptures
from scipy.ndimage import median_filter

from reverie.queries import render, sql_file
from reverie.tasks.detect.detector import Detector, OwnSetting

SEGMENT_DAYS = 7  # the shortest level a changepoint may start (a week: weekday effects cancel)
WINDOW_DAYS = 14  # before and after a changepoint, two full weeks: what a new level reports, night after night
LONGEST_WINDOW_DAYS = 28  # the evidence: up to four weeks once the new level has held that long (more days)
HISTORY_DAYS = 140  # read before the earliest changepoint that can still be reported
HOLD_DAYS = 42  # a new level must also stand against these six weeks before it, not only a spike just before
MEDIAN_EFFICIENCY = 1.25  # a median of n noisy days is as uncertain as a mean of n / 1.25^2 of them


def _daily_series(con, since: date) -> tuple[list[tuple[str, str, str]], list[date], np.ndarray, np.ndarray,
                                             np.ndarray]:
    """Every complete daily series from `since` on as rows of one matrix (series x days); missing days are NaN; and
    which series are signed (their metric's scale is absolute)."""
    rows = con.execute(sql_file("detect/trend_series.sql"), {"since": since}).fetchnumpy()
    if len(rows["day"]) == 0:
        return [], [], np.empty((0, 0)), np.empty((0, 0)), np.empty(0, dtype=bool)
    keys = list(zip(rows["metric"], rows["dimension"], rows["member"]))
    series = sorted(set(keys))
    index = {key: i for i, key in enumerate(series)}
    day = rows["day"].astype("datetime64[D]")
    first, last = day.min(), day.max()
    days = np.arange(first, last + np.timedelta64(1, "D"), dtype="datetime64[D]")
    values = np.full((len(series), len(days)), np.nan)
    volume = np.full_like(values, np.nan)
    row = np.fromiter((index[k] for k in keys), dtype=np.int64, count=len(keys))
    col = (day - first).astype(np.int64)
    values[row, col] = rows["value"]
    volume[row, col] = rows["volume"]
    absolute = np.zeros(len(series), dtype=bool)
    absolute[row] = rows["absolute"]
    return series, [d.item() for d in days], values, volume, absolute


def _deseasonalised(values: np.ndarray, days: list[date], absolute: np.ndarray) -> np.ndarray:
    """Each value relative to the median of its weekday in its series (signed series: its difference from it, in
    its units), spikes replaced by the local median."""
    weekday = np.array([d.weekday() for d in days])
    relative = np.full_like(values, np.nan)
    for w in range(7):
        on = weekday == w
        typical = np.nanmedian(values[:, on], axis=1, keepdims=True)
        ratio = values[:, on] / np.where(typical == 0, np.nan, typical)
        relative[:, on] = np.where(absolute[:, None], values[:, on] - typical, ratio)
    filled = np.where(np.isnan(relative), np.nanmedian(relative, axis=1, keepdims=True), relative)
    local = median_filter(filled, size=(1, SEGMENT_DAYS), mode="nearest")
    spread = 1.4826 * np.nanmedian(np.abs(filled - local), axis=1, keepdims=True)
    spikes = np.abs(filled - local) > 4 * np.maximum(spread, 1e-9)  # one-off days are unusual changes, not trends
    return np.where(spikes, local, filled)


def _window(at: int, days: int) -> int:
    """How many days on each side of a changepoint at `at` weigh in as evidence: all there are after it, up to four
    weeks."""
    return int(min(days - at, at, LONGEST_WINDOW_DAYS))


def _shift_z(clean: np.ndarray, at: int, window: int, noise: float) -> tuple[float, float]:
    """The median level of `window` days after `at` less that of as many before, and that in noise units — medians,
    so a cluster of spikes on either side is not a level."""
    after = np.nanmedian(clean[at:at + window])
    shift = after - np.nanmedian(clean[at - window:at])
    return shift, shift / (noise * MEDIAN_EFFICIENCY * np.sqrt(2 / window))


def _new_level_z(clean: np.ndarray, at: int, window: int, noise: float, level: float,
                 settings: dict) -> float | None:
    """The shift's z when the level from `at` on is new, else None: it moved by trend_min_change (of the series'
    level) and trend_min_z noise units, the six weeks before it agree (the end of a spike cluster is no new level),
    and it moved at once. A step moves the week after from the week before by all of the shift, steady growth by a
    week's share of it (a quarter over four weeks): the week must move by more than halfway between the two."""
    shift, z = _shift_z(clean, at, window, noise)
    held = np.nanmedian(clean[at:at + window]) - np.nanmedian(clean[max(0, at - HOLD_DAYS):at])
    jump = np.nanmedian(clean[at:at + SEGMENT_DAYS]) - np.nanmedian(clean[at - SEGMENT_DAYS:at])
    at_once = (1 + SEGMENT_DAYS / window) / 2
    new = (abs(shift) >= settings["trend_min_change"] * level and abs(z) >= settings["trend_min_z"]
           and np.sign(held) == np.sign(shift) and abs(held) >= 0.5 * abs(shift)
           and np.sign(jump) == np.sign(shift) and abs(jump) >= at_once * abs(shift))
    return z if new else None


def trend_changes(con, since: date, settings: dict) -> list[dict]:
    """Level shifts confirmed since `since` (a changepoint needs a week of data after it to be seen)."""
    earliest = since - timedelta(days=settings["trend_lookback_days"])
    series, days, values, volume, absolute = _daily_series(con, earliest - timedelta(days=HISTORY_DAYS))
    if not series or len(days) < 4 * WINDOW_DAYS:
        return []
    with warnings.catch_warnings():  # a series with no value on some weekday: NaN there, skipped below
        warnings.simplefilter("ignore", RuntimeWarning)
        clean = _deseasonalised(values, days, absolute)
        noise = 1.4826 * np.nanmedian(np.abs(np.diff(clean, axis=1)), axis=1) / np.sqrt(2)
        level = np.nanmedian(np.abs(values), axis=1)
    penalty = settings["trend_penalty"] * np.log(len(days))
    found = []
    for i, (metric, dimension, member) in enumerate(series):
        observed_days = ~np.isnan(values[i])
        if observed_days.sum() < 4 * WINDOW_DAYS or np.nanmedian(volume[i]) < settings["min_volume"] or noise[i] <= 0:
            continue
        if np.mean(values[i, observed_days] == 0) > 0.1:  # mostly a few refunds a week: no level to shift
            continue
        signal = (clean[i] / noise[i]).reshape(-1, 1)
        breaks = ruptures.KernelCPD(kernel="linear", min_size=SEGMENT_DAYS).fit(signal).predict(pen=penalty)[:-1]
        for at in breaks:
            window = _window(at, len(days))
            if window < WINDOW_DAYS or days[at] < earliest:
                continue
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                z = _new_level_z(clean[i], at, window, noise[i], level[i] if absolute[i] else 1.0, settings)
            if z is None:
                continue
            # reported on the first two weeks, so the same change reads the same every night it is found again
            before, after = np.nanmean(values[i, at - WINDOW_DAYS:at]), np.nanmean(values[i, at:at + WINDOW_DAYS])
            if (not absolute[i] and before <= 0) or np.sign(after - before) != np.sign(z):
                continue  # the daily averages people read must move the way the level did
            start, end = days[at], days[at] + timedelta(days=WINDOW_DAYS - 1)
            found.append({
                "metric": metric, "grain": "day", "dimension": dimension, "member": member,
                "period_start": start, "period_end": end, "observed": float(after), "expected": float(before),
                "comparison": f"the daily average of the {WINDOW_DAYS} days before",
                "strength": float(z),
                "evidence_sql": render("detect/trend_evidence.sql", literals={
                    "start": str(start), "end": str(end), "metric": metric, "dimension": dimension, "member": member},
                    expressions={"window_days": str(WINDOW_DAYS)}),
            })
    return found


TREND_CHANGE = Detector(
    name="trend_change", weight=1.0, describes_change=True, baseline="trend_window",
    settings=("min_volume",),
    own_settings=(
        OwnSetting("trend_lookback_days", 35, at_least=1),  # changepoints are confirmed this long after they happen
        OwnSetting("trend_penalty", 6.0, at_least=0.1),  # changepoint penalty, in units of log(days) x noise variance
        OwnSetting("trend_min_change", 0.1),  # smallest level shift a changepoint must show, of the series' level ...
        OwnSetting("trend_min_z", 4.0)),  # ... and how sure: two weeks after against two weeks before, in noise units
    source=Path(__file__), function=trend_changes,
    headline="{metric} ({slice}) moved to a new level from {period_start}: {observed} a day against {expected} a day "
             "before ({change}).")
