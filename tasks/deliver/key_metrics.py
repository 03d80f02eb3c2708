"""The brief's key metrics: each metric's latest complete day against the week before."""

from __future__ import annotations

import duckdb
import polars as pl

from reverie.queries import sql_file


def metric_summary(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """Each metric's latest complete day (overall) against the same weekday a week before, as polars."""
    daily = con.execute(sql_file("metrics/complete_daily_values.sql")).pl()
    latest = daily.group_by("metric").agg(pl.col("day").max()).join(daily, on=["metric", "day"])
    week_before = daily.select("metric", (pl.col("day") + pl.duration(days=7)).alias("day"),
                               pl.col("value").alias("week_before"))
    return (latest.join(week_before, on=["metric", "day"], how="left")
            .with_columns(pl.when(pl.col("week_before") != 0).then(pl.col("value") / pl.col("week_before") - 1)
                          .alias("change"))
            .sort("metric"))
