"""History checks: freshness and volume of new batches against what reverie remembers of their source, in DuckDB."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import duckdb

from reverie.queries import rows_as_dicts, sql_file
from reverie.suites import MIN_VOLUME_HISTORY, Check
from reverie.tasks.quality.results import SOURCE_WIDE, Outcome

HISTORY_CHECKS = ("freshness", "volume", "time_window")


def freshness_outcomes(con: duckdb.DuckDBPyConnection, source: str, cycle_id: str, check: Check,
                       now: datetime, local: Callable[[datetime], datetime]) -> list[Outcome]:
    """Each new batch far behind the data already loaded is stale; a source with no recent data gets a warning.

    Recent means near the clock for live data; for history loaded after the fact (`live: false`), near the arrival
    of the batch that holds the newest row, so a backfill is not reported as stale every cycle. `now` and the data
    are in the project's zone; `local` puts a file's modification time (this machine's clock) there too."""
    outcomes = []
    for b in rows_as_dicts(con.execute(sql_file("quality/new_batches_against_history.sql"), {"source": source,
                                                                                             "cycle_id": cycle_id})):
        stale = b["hours_behind"] is not None and b["hours_behind"] > check.max_age_hours
        outcomes.append(Outcome(b["file"], check, not stale, b["rows"], b["rows"] if stale else 0, message=(
            f"stale: its newest row ({b['last_event']:%Y-%m-%d %H:%M}) is {b['hours_behind']:,.0f} h behind "
            f"the data already loaded ({b['watermark']:%Y-%m-%d %H:%M}); allowed: {check.max_age_hours:g} h"
        ) if stale else ""))
    newest = rows_as_dicts(con.execute(sql_file("quality/newest_row.sql"), {"source": source}))
    if newest:
        row, arrived = newest[0]["last_event"], local(newest[0]["arrived_at"])
        age = ((now if check.live else arrived) - row).total_seconds() / 3600
        old = age > check.max_age_hours
        since = "ago" if check.live else f"before its file was written ({arrived:%Y-%m-%d %H:%M})"
        outcomes.append(Outcome(SOURCE_WIDE, check.model_copy(update={"severity": "warning"}), not old, message=(
            f"no fresh data: the newest row is from {row:%Y-%m-%d %H:%M}, {age / 24:,.1f} days {since}; "
            f"allowed: {check.max_age_hours:g} h") if old else ""))
    return outcomes


def volume_outcomes(con: duckdb.DuckDBPyConnection, source: str, cycle_id: str, check: Check) -> list[Outcome]:
    """Each new batch's rows per hour of data against the median of the batches before it."""
    outcomes = []
    params = {"source": source, "cycle_id": cycle_id, "history": check.history}
    for b in rows_as_dicts(con.execute(sql_file("quality/batch_volume.sql"), params)):
        if b["history"] < MIN_VOLUME_HISTORY or b["ratio"] is None:
            continue
        odd = not check.min_ratio <= b["ratio"] <= check.max_ratio
        outcomes.append(Outcome(b["file"], check, not odd, b["rows"], b["rows"] if odd else 0, message=(
            f"volume: {b['rows']:,} rows, {b['rows_per_hour']:,.0f} an hour of data, {b['ratio']:.0%} of the "
            f"usual {b['usual_per_hour']:,.0f} (median of the {b['history']} batches before it); "
            f"allowed: {check.min_ratio:.0%}–{check.max_ratio:.0%}"
        ) if odd else ""))
    return outcomes


def time_window_outcomes(con: duckdb.DuckDBPyConnection, source: str, cycle_id: str, check: Check, time_column: str,
                         local: Callable[[datetime], datetime]) -> list[Outcome]:
    """Each new batch's rows must lie between `max_behind_days` before the data already loaded and `max_ahead_hours`
    after the batch arrived: a clock reset to 1900 or a year typed 2926 is held back, not charted."""
    outcomes = []
    for b in rows_as_dicts(con.execute(sql_file("quality/new_batches_against_history.sql"), {"source": source,
                                                                                    "cycle_id": cycle_id})):
        if b["first_event"] is None:
            continue
        problems = []
        arrived = local(b["arrived_at"])
        if check.max_ahead_hours is not None and b["last_event"] > arrived + timedelta(hours=check.max_ahead_hours):
            problems.append(f"runs to {b['last_event']:%Y-%m-%d %H:%M}, after the file was written "
                            f"({arrived:%Y-%m-%d %H:%M}); allowed: {check.max_ahead_hours:g} h after")
        floor = b["watermark"] - timedelta(days=check.max_behind_days) if (
            check.max_behind_days is not None and b["watermark"] is not None) else None
        if floor is not None and b["first_event"] < floor:
            problems.append(f"starts at {b['first_event']:%Y-%m-%d %H:%M}, "
                            f"{(b['watermark'] - b['first_event']).days:,} days before the data already loaded "
                            f"({b['watermark']:%Y-%m-%d %H:%M}); allowed: {check.max_behind_days:g} days before")
        outcomes.append(Outcome(b["file"], check.model_copy(update={"column": time_column}), not problems, b["rows"],
                                None, message=f"time_window: {time_column} {' and '.join(problems)}" if problems else ""))
    return outcomes


def history_outcomes(con: duckdb.DuckDBPyConnection, source: str, cycle_id: str, checks: list[Check],
                     now: datetime, local: Callable[[datetime], datetime], time_column: str) -> list[Outcome]:
    """Freshness, volume and time windows, computed in DuckDB from what reverie remembers of the source's batches."""
    outcomes = []
    for check in checks:
        if check.check == "freshness":
            outcomes += freshness_outcomes(con, source, cycle_id, check, now, local)
        elif check.check == "volume":
            outcomes += volume_outcomes(con, source, cycle_id, check)
        elif check.check == "time_window":
            outcomes += time_window_outcomes(con, source, cycle_id, check, time_column, local)
    return outcomes
